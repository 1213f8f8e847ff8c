//! Static files (`--static-map PREFIX=DIR`): the pure decisions, apart from
//! any file or socket. Which mapping a request path falls under and the
//! file path components it names (refusing `..`, `.`, empty segments,
//! encoded `/` and NUL), the content type from the extension, the
//! validators (`ETag`, `Last-Modified`) and the conditional-request answer
//! (304), the `Range` answer (206 with one range, 416), the precompressed
//! sibling a client accepts (`.br`, `.gz`), the `Cache-Control` value
//! (immutable for hashed names such as Django's `name.0123456789ab.css`),
//! and the response head.
//!
//! The worker's `static_serve` opens the files (one component at a time,
//! refusing symlinks) and queues the head and a sendfile region.

use crate::http::date::imf_fixdate;

/// One `--static-map` entry as written: `/static=./staticfiles`. Returns
/// the URL prefix (no trailing `/`; empty for `/`) and the directory.
pub fn parse_mapping(spec: &str) -> Result<(String, String), String> {
    let (prefix, dir) = spec.split_once('=').ok_or_else(|| "expected PREFIX=DIR, e.g. /static=./staticfiles".to_owned())?;
    let prefix = prefix.trim();
    if !prefix.starts_with('/') {
        return Err(format!("the URL prefix {prefix:?} must start with '/'"));
    }
    if prefix.bytes().any(|b| matches!(b, b'%' | b'?' | b'#') || b <= b' ' || b >= 0x7f) {
        return Err(format!("the URL prefix {prefix:?} must be a plain path (no '%', '?', '#', spaces)"));
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(format!("the URL prefix {prefix:?} may not contain '.' or '..' segments"));
    }
    let dir = dir.trim();
    if dir.is_empty() {
        return Err("the directory is empty".to_owned());
    }
    Ok((prefix.trim_end_matches('/').to_owned(), dir.to_owned()))
}

/// The part of `path` (still percent-encoded) after `prefix` and its `/`,
/// when `path` is under `prefix`.
pub fn under_prefix<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_prefix('/')
}

/// True when a raw request's target (origin-form) starts under `prefix`:
/// a look at the bytes before the head is parsed.
pub fn raw_target_under(prefix: &str, raw: &[u8]) -> bool {
    let start = raw.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(raw.len());
    let raw = &raw[start..];
    let Some(sp) = memchr::memchr(b' ', raw) else { return false };
    let target = &raw[sp + 1..];
    target.starts_with(prefix.as_bytes()) && target.get(prefix.len()) == Some(&b'/')
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The file path components `rest` (the path below a prefix, still
/// percent-encoded) names, each decoded. `None` for anything that could
/// leave the directory or name something odd: an empty, `.` or `..`
/// segment (encoded or not), a segment that decodes to `/` or holds NUL, a
/// malformed escape, or no segment at all.
pub fn components(rest: &str) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for seg in rest.split('/') {
        let b = seg.as_bytes();
        let mut dec = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let h = hex(*b.get(i + 1)?)?;
                let l = hex(*b.get(i + 2)?)?;
                dec.push(h * 16 + l);
                i += 3;
            } else {
                dec.push(b[i]);
                i += 1;
            }
        }
        if dec.is_empty() || dec == b"." || dec == b".." || dec.iter().any(|&c| c == b'/' || c == 0) {
            return None;
        }
        out.push(dec);
    }
    (!out.is_empty()).then_some(out)
}

/// The `Content-Type` for a file name, from its extension.
pub fn content_type(name: &[u8]) -> &'static str {
    let ext = match name.iter().rposition(|&b| b == b'.') {
        Some(i) => name[i + 1..].to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_slice() {
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"json" | b"map" => "application/json",
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"txt" => "text/plain; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"md" => "text/markdown; charset=utf-8",
        b"xml" => "application/xml",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"avif" => "image/avif",
        b"ico" => "image/vnd.microsoft.icon",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"ttf" => "font/ttf",
        b"otf" => "font/otf",
        b"eot" => "application/vnd.ms-fontobject",
        b"pdf" => "application/pdf",
        b"wasm" => "application/wasm",
        b"webmanifest" => "application/manifest+json",
        b"mp4" => "video/mp4",
        b"webm" => "video/webm",
        b"mp3" => "audio/mpeg",
        b"ogg" => "audio/ogg",
        b"wav" => "audio/wav",
        b"zip" => "application/zip",
        b"gz" => "application/gzip",
        b"br" => "application/x-brotli",
        _ => "application/octet-stream",
    }
}

/// Types worth a precompressed sibling: only their responses look for one
/// and say `Vary: Accept-Encoding`.
pub fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/xml")
        || content_type.starts_with("application/manifest+json")
        || content_type == "image/svg+xml"
        || content_type == "application/wasm"
        || content_type == "image/vnd.microsoft.icon"
}

/// A representation's encoding: the file itself or a precompressed sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Brotli,
    Gzip,
}

impl Encoding {
    /// The sibling's file name suffix and the `Content-Encoding` value.
    pub fn suffix_and_name(self) -> Option<(&'static str, &'static str)> {
        match self {
            Encoding::Identity => None,
            Encoding::Brotli => Some((".br", "br")),
            Encoding::Gzip => Some((".gz", "gzip")),
        }
    }
}

/// The precompressed encodings `Accept-Encoding` allows, best first
/// (brotli, then gzip). A coding with `q=0` is refused; `*` stands for the
/// ones not named.
pub fn accepted_encodings(header: Option<&[u8]>) -> Vec<Encoding> {
    let Some(h) = header else { return Vec::new() };
    let (mut br, mut gz, mut star) = (None, None, None);
    for item in h.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii().to_ascii_lowercase();
        let mut ok = true;
        for p in parts {
            let p = p.trim_ascii();
            if let Some(q) = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")) {
                let q = std::str::from_utf8(q).ok().and_then(|q| q.trim().parse::<f32>().ok()).unwrap_or(0.0);
                ok = q > 0.0;
            }
        }
        match name.as_slice() {
            b"br" => br = Some(ok),
            b"gzip" | b"x-gzip" => gz = Some(ok),
            b"*" => star = Some(ok),
            _ => {}
        }
    }
    let star = star.unwrap_or(false);
    let mut out = Vec::new();
    if br.unwrap_or(star) {
        out.push(Encoding::Brotli);
    }
    if gz.unwrap_or(star) {
        out.push(Encoding::Gzip);
    }
    out
}

/// What is known of a file: enough for the validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    pub mtime_nsec: i64,
}

/// The strong `ETag` of a representation: modification time and size, and
/// the encoding (so `.br` and `.gz` siblings never share one).
pub fn etag(meta: FileMeta, encoding: Encoding) -> String {
    let tag = match encoding {
        Encoding::Identity => "",
        Encoding::Brotli => "-br",
        Encoding::Gzip => "-gz",
    };
    format!("\"{:x}.{:x}-{:x}{tag}\"", meta.mtime, meta.mtime_nsec, meta.size)
}

/// The `Last-Modified` value.
pub fn last_modified(meta: FileMeta) -> String {
    String::from_utf8_lossy(&imf_fixdate(meta.mtime.max(0) as u64)).into_owned()
}

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
/// The obsolete formats are not read (the condition is then ignored).
pub fn parse_http_date(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { std::str::from_utf8(&b[r]).ok()?.parse().ok() };
    let day = num(5..7)?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as i64 + 1;
    let year = num(12..16)?;
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

fn opaque(tag: &[u8]) -> &[u8] {
    let tag = tag.trim_ascii();
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// True when the client's copy is current (answer 304): `If-None-Match`
/// (weak comparison) when sent, else `If-Modified-Since`.
pub fn not_modified(if_none_match: Option<&[u8]>, if_modified_since: Option<&[u8]>, etag: &str, meta: FileMeta) -> bool {
    if let Some(inm) = if_none_match {
        return inm.split(|&b| b == b',').any(|t| t.trim_ascii() == b"*" || opaque(t) == opaque(etag.as_bytes()));
    }
    match if_modified_since.and_then(parse_http_date) {
        Some(since) => meta.mtime <= since,
        None => false,
    }
}

/// How a `Range` request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200 with the whole file (no range, one that does not parse, several
    /// ranges, or an `If-Range` that no longer matches).
    Full,
    /// 206: bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// The answer to `Range` (one byte range) for a file of `size` bytes, with
/// `If-Range` checked against the current validators (strong comparison,
/// or the exact `Last-Modified` date).
pub fn range(header: Option<&[u8]>, if_range: Option<&[u8]>, size: u64, etag: &str, last_modified: &str) -> RangeAnswer {
    let Some(h) = header else { return RangeAnswer::Full };
    if let Some(ir) = if_range {
        let ir = ir.trim_ascii();
        let matches = if ir.starts_with(b"\"") { ir == etag.as_bytes() } else { ir == last_modified.as_bytes() };
        if !matches {
            return RangeAnswer::Full;
        }
    }
    let h = h.trim_ascii();
    if h.len() < 6 || !h[..6].eq_ignore_ascii_case(b"bytes=") {
        return RangeAnswer::Full;
    }
    let spec = h[6..].trim_ascii();
    if spec.contains(&b',') {
        return RangeAnswer::Full;
    }
    let Some(dash) = memchr::memchr(b'-', spec) else { return RangeAnswer::Full };
    let number = |b: &[u8]| -> Option<u64> {
        let b = b.trim_ascii();
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Too many digits for u64: as large as can be.
        Some(std::str::from_utf8(b).ok()?.parse().unwrap_or(u64::MAX))
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.trim_ascii().is_empty() {
        // Suffix: the last N bytes.
        return match number(last) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial { start: size.saturating_sub(n), end: size - 1 },
        };
    }
    let Some(start) = number(first) else { return RangeAnswer::Full };
    let end = if last.trim_ascii().is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(e) if e >= start => e,
            _ => return RangeAnswer::Full,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial { start, end: end.min(size - 1) }
}

/// True for a name carrying a content hash, such as Django's
/// ManifestStaticFilesStorage `base.5af66c1b1797.css` or a bundler's
/// `app.3f9a1c2e.js`: a dot-separated part, neither the first nor the
/// last, of 8 to 32 hexadecimal digits.
pub fn is_hashed(name: &[u8]) -> bool {
    let parts: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|p| (8..=32).contains(&p.len()) && p.iter().all(u8::is_ascii_hexdigit))
}

/// `Cache-Control` for a file: a year and `immutable` for hashed names
/// (their content never changes under that name), a minute otherwise
/// (clients then revalidate cheaply with the validators).
pub fn cache_control(name: &[u8]) -> &'static str {
    if is_hashed(name) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    }
}

/// The status line of the statuses static responses use.
pub fn status_line(code: u16) -> &'static str {
    match code {
        200 => "200 OK",
        206 => "206 Partial Content",
        304 => "304 Not Modified",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        416 => "416 Range Not Satisfiable",
        _ => "500 Internal Server Error",
    }
}

/// A response head: `HTTP/1.1`, `Server`, `Date`, `Connection`, then the
/// given fields, then the blank line.
pub fn response_head(code: u16, date: &[u8], close: bool, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status_line(code).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(crate::http::response::SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(if close { b"\r\nConnection: close\r\n" } else { b"\r\nConnection: keep-alive\r\n" });
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
#[path = "static_files_tests.rs"]
mod tests;
