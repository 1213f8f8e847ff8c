//! Unit tests of `static_files`: mapping specs, path components (every
//! traversal form), content types, validators and conditions, ranges,
//! `Accept-Encoding`, hashed names.

use super::*;

const META: FileMeta = FileMeta { size: 1000, mtime: 784_111_777, mtime_nsec: 5 };

#[test]
fn mapping_specs() {
    assert_eq!(parse_mapping("/static=./staticfiles").unwrap(), ("/static".into(), "./staticfiles".into()));
    assert_eq!(parse_mapping("/static/=/srv/s").unwrap(), ("/static".into(), "/srv/s".into()));
    assert_eq!(parse_mapping("/=public").unwrap(), ("".into(), "public".into()));
    assert!(parse_mapping("static=dir").is_err());
    assert!(parse_mapping("/static").is_err());
    assert!(parse_mapping("/static=").is_err());
    assert!(parse_mapping("/st%61tic=dir").is_err());
    assert!(parse_mapping("/a/../b=dir").is_err());
}

#[test]
fn prefixes() {
    assert_eq!(under_prefix("/static", "/static/a.css"), Some("a.css"));
    assert_eq!(under_prefix("/static", "/static"), None);
    assert_eq!(under_prefix("/static", "/staticfoo/a.css"), None);
    assert_eq!(under_prefix("", "/a.css"), Some("a.css"));
    assert!(raw_target_under("/static", b"GET /static/a.css HTTP/1.1\r\n"));
    assert!(raw_target_under("/static", b"\r\nHEAD /static/x HTTP/1.1\r\n"));
    assert!(!raw_target_under("/static", b"GET /staticx HTTP/1.1\r\n"));
    assert!(!raw_target_under("/static", b"GET /app HTTP/1.1\r\n"));
    assert!(!raw_target_under("/static", b"GET"));
}

#[test]
fn components_refuse_traversal() {
    assert_eq!(components("css/base.css").unwrap(), vec![b"css".to_vec(), b"base.css".to_vec()]);
    assert_eq!(components("a%20b.txt").unwrap(), vec![b"a b.txt".to_vec()]);
    for bad in [
        "../etc/passwd",
        "css/../../x",
        "%2e%2e/x",
        "%2E%2E/x",
        ".%2e/x",
        "./a",
        "%2e/a",
        "a%2f..%2fb",
        "..%2fsecret",
        "a%00.css",
        "a%0",
        "a%zz",
        "",
        "a//b",
        "dir/",
        "/etc/passwd",
    ] {
        assert!(components(bad).is_none(), "{bad:?} must be refused");
    }
}

#[test]
fn content_types() {
    assert_eq!(content_type(b"base.css"), "text/css; charset=utf-8");
    assert_eq!(content_type(b"app.MJS"), "text/javascript; charset=utf-8");
    assert_eq!(content_type(b"logo.svg"), "image/svg+xml");
    assert_eq!(content_type(b"font.woff2"), "font/woff2");
    assert_eq!(content_type(b"README"), "application/octet-stream");
    assert_eq!(content_type(b"x.unknown"), "application/octet-stream");
    assert!(compressible(content_type(b"a.js")));
    assert!(compressible(content_type(b"a.svg")));
    assert!(!compressible(content_type(b"a.png")));
}

#[test]
fn encodings() {
    use Encoding::*;
    assert_eq!(accepted_encodings(None), vec![]);
    assert_eq!(accepted_encodings(Some(b"gzip, deflate, br")), vec![Brotli, Gzip]);
    assert_eq!(accepted_encodings(Some(b"gzip")), vec![Gzip]);
    assert_eq!(accepted_encodings(Some(b"br;q=0, gzip;q=0.5")), vec![Gzip]);
    assert_eq!(accepted_encodings(Some(b"*")), vec![Brotli, Gzip]);
    assert_eq!(accepted_encodings(Some(b"*;q=0.1, gzip;q=0")), vec![Brotli]);
    assert_eq!(accepted_encodings(Some(b"identity")), vec![]);
    assert_eq!(accepted_encodings(Some(b"x-gzip")), vec![Gzip]);
}

#[test]
fn validators() {
    assert_eq!(etag(META, Encoding::Identity), "\"2ebc98a1.5-3e8\"");
    assert_ne!(etag(META, Encoding::Brotli), etag(META, Encoding::Gzip));
    assert_eq!(last_modified(META), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
    assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(parse_http_date(b"Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
    assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
    assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 UTC"), None);
    assert_eq!(parse_http_date(b"garbage"), None);
    // Round trip through the formatter for many days.
    for secs in (0..4_000_000_000i64).step_by(7_777_777) {
        let text = imf_fixdate(secs as u64);
        assert_eq!(parse_http_date(&text), Some(secs));
    }
}

#[test]
fn conditions() {
    let tag = etag(META, Encoding::Identity);
    let lm = last_modified(META);
    assert!(not_modified(Some(tag.as_bytes()), None, &tag, META));
    assert!(not_modified(Some(format!("\"x\", W/{tag}").as_bytes()), None, &tag, META));
    assert!(not_modified(Some(b"*"), None, &tag, META));
    assert!(!not_modified(Some(b"\"other\""), Some(lm.as_bytes()), &tag, META));
    assert!(not_modified(None, Some(lm.as_bytes()), &tag, META));
    assert!(not_modified(None, Some(b"Mon, 07 Nov 1994 08:49:37 GMT"), &tag, META));
    assert!(!not_modified(None, Some(b"Sat, 05 Nov 1994 08:49:37 GMT"), &tag, META));
    assert!(!not_modified(None, Some(b"nonsense"), &tag, META));
    assert!(!not_modified(None, None, &tag, META));
}

#[test]
fn ranges() {
    use RangeAnswer::*;
    let r = |h: &str| range(Some(h.as_bytes()), None, 1000, "\"e\"", "LM");
    assert_eq!(range(None, None, 1000, "\"e\"", "LM"), Full);
    assert_eq!(r("bytes=0-99"), Partial { start: 0, end: 99 });
    assert_eq!(r("bytes=500-"), Partial { start: 500, end: 999 });
    assert_eq!(r("bytes=-100"), Partial { start: 900, end: 999 });
    assert_eq!(r("bytes=-5000"), Partial { start: 0, end: 999 });
    assert_eq!(r("bytes=900-5000"), Partial { start: 900, end: 999 });
    assert_eq!(r("BYTES=1-1"), Partial { start: 1, end: 1 });
    assert_eq!(r("bytes=1000-"), Unsatisfiable);
    assert_eq!(r("bytes=-0"), Unsatisfiable);
    assert_eq!(r("bytes=99999999999999999999999-"), Unsatisfiable);
    assert_eq!(r("bytes=5-1"), Full);
    assert_eq!(r("bytes=0-1,5-6"), Full);
    assert_eq!(r("items=0-1"), Full);
    assert_eq!(r("bytes=a-b"), Full);
    assert_eq!(r("bytes=-"), Full);
    assert_eq!(range(Some(b"bytes=-1"), None, 0, "\"e\"", "LM"), Unsatisfiable);
    assert_eq!(range(Some(b"bytes=0-1"), Some(b"\"e\""), 1000, "\"e\"", "LM"), Partial { start: 0, end: 1 });
    assert_eq!(range(Some(b"bytes=0-1"), Some(b"\"old\""), 1000, "\"e\"", "LM"), Full);
    assert_eq!(range(Some(b"bytes=0-1"), Some(b"LM"), 1000, "\"e\"", "LM"), Partial { start: 0, end: 1 });
    assert_eq!(range(Some(b"bytes=0-1"), Some(b"Other date"), 1000, "\"e\"", "LM"), Full);
}

#[test]
fn hashed_names() {
    assert!(is_hashed(b"base.5af66c1b1797.css"));
    assert!(is_hashed(b"app.3f9a1c2e.js"));
    assert!(is_hashed(b"app.min.3f9a1c2e0b1d.js"));
    assert!(!is_hashed(b"base.css"));
    assert!(!is_hashed(b"jquery.min.js"));
    assert!(!is_hashed(b"5af66c1b1797.css"));
    assert!(!is_hashed(b"base.css.5af66c1b1797"));
    assert_eq!(cache_control(b"base.5af66c1b1797.css"), "public, max-age=31536000, immutable");
    assert_eq!(cache_control(b"base.css"), "public, max-age=60");
}

#[test]
fn heads() {
    let h = response_head(200, b"DATE", false, &[("Content-Length", "3")]);
    assert_eq!(h, b"HTTP/1.1 200 OK\r\nServer: rsgi\r\nDate: DATE\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n");
    let h = response_head(404, b"D", true, &[]);
    assert!(h.starts_with(b"HTTP/1.1 404 Not Found\r\n") && h.ends_with(b"Connection: close\r\n\r\n"));
}
