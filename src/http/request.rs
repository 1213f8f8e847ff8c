//! The request-head parser: request line, header fields (`fields`), header
//! policy and body framing (`body::framing`), as gunicorn 27 reads them
//! (with 414/431/501/505 where gunicorn's statuses are less precise).
//!
//! Pure: takes the bytes received so far and returns a [`RequestHead`] with
//! the number of bytes it used, [`Parsed::Incomplete`], or an [`HttpError`].
//! Header fields are tokenized by `httparse`; the request line, line endings,
//! limits and gunicorn's header policy are checked here. Runs on the worker's
//! I/O thread; never touches Python.

use std::borrow::Cow;

use memchr::memmem;

use super::body::Framing;
use super::error::{lossy, HttpError};
use super::fields::{check_block_prefix, parse_fields};
use super::target::TargetParts;
use super::{is_token, trim_ows, HeaderMapPolicy, Limits};

/// Header fields as parsed: names uppercased (gunicorn's convention), values
/// with surrounding whitespace stripped, in arrival order, repeats kept.
pub type HeaderMap = Vec<(Cow<'static, str>, Vec<u8>)>;

/// An HTTP version `major.minor` (single digits, RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl Version {
    pub const HTTP_10: Version = Version { major: 1, minor: 0 };
    pub const HTTP_11: Version = Version { major: 1, minor: 1 };

    /// True for HTTP/1.1 and later: chunked, 100-continue and keep-alive by
    /// default are allowed.
    pub fn at_least_11(self) -> bool {
        self >= Version::HTTP_11
    }
}

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, uppercased when `casefold_http_method` is set (the
    /// common ones without an allocation).
    pub method: Cow<'static, str>,
    /// The request-target exactly as sent (`RAW_URI`).
    pub target: String,
    /// Where the target's path, query and fragment lie in it (see
    /// [`RequestHead::path`] and the others).
    parts: TargetParts,
    pub version: Version,
    /// Header fields kept after the `header_map` policy.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    /// `Some(true)` when a trusted peer's secure-scheme header says https,
    /// `Some(false)` when one says it is not, `None` when none was sent.
    pub forwarded_https: Option<bool>,
    /// The connection must close after this request's response.
    pub close: bool,
}

impl RequestHead {
    /// The path part of the target, still percent-encoded.
    pub fn path(&self) -> &str {
        self.parts.path(&self.target)
    }

    /// The query string, without `?`.
    pub fn query(&self) -> &str {
        self.parts.query(&self.target)
    }

    /// The fragment, without `#` (clients should never send one).
    pub fn fragment(&self) -> &str {
        self.parts.fragment(&self.target)
    }

    /// First value of header `name` (uppercase), if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// True when the method is HEAD: the response carries no body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// The outcome of feeding bytes to [`parse_head`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete head, and how many bytes of the input it used.
    Complete(RequestHead, usize),
    /// More bytes are needed.
    Incomplete,
}

/// Fields that may appear only once (RFC 9110 §5.3). Content-Length is
/// handled by the framing rules.
const SINGLETON_FIELDS: [&str; 2] = ["HOST", "CONTENT-TYPE"];

/// Cheap check for the end of a head, run before the full parse after each
/// read: returns the length of the head (through the empty line) if the
/// buffer holds one. `from` is how far an earlier call already looked.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = skip_leading_crlf(buf);
    // A head with no fields ends right after the request line's CRLF CRLF.
    let from = from.max(start).saturating_sub(3).max(start);
    find_blank_line(&buf[from..]).map(|i| from + i + 4)
}

/// Where the first CRLF CRLF in `hay` starts. The searcher is built once:
/// building one per call cost more than the search on small heads.
pub(crate) fn find_blank_line(hay: &[u8]) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n").into_owned());
    FINDER.find(hay)
}

/// RFC 9112 §2.2: one empty line before the request line is ignored.
fn skip_leading_crlf(buf: &[u8]) -> usize {
    if buf.starts_with(b"\r\n") {
        2
    } else {
        0
    }
}

/// Parse a request head from the start of `buf`.
///
/// `peer_trusted` says whether the peer is in `forwarded_allow_ips`: only a
/// trusted peer may set secure-scheme headers and forwarder headers.
pub fn parse_head(buf: &[u8], limits: &Limits, peer_trusted: bool) -> Result<Parsed, HttpError> {
    if buf.len() == 1 && buf[0] == b'\r' {
        return Ok(Parsed::Incomplete);
    }
    let start = skip_leading_crlf(buf);
    let rest = &buf[start..];
    let line_limit = limits.effective_request_line();

    // The request line.
    // Too long is decided before the line's end is looked at, as it is
    // while the line is still incomplete: the answer cannot depend on reads.
    let line_end = match memchr::memchr(b'\n', rest) {
        Some(i) if i.saturating_sub(2) > line_limit => return Err(HttpError::RequestLineTooLong(line_limit)),
        Some(i) if i > 0 && rest[i - 1] == b'\r' => i - 1,
        Some(_) => return Err(HttpError::InvalidRequestLine("bare LF as line terminator".into())),
        None => {
            if rest.len().saturating_sub(2) > line_limit {
                return Err(HttpError::RequestLineTooLong(line_limit));
            }
            return Ok(Parsed::Incomplete);
        }
    };
    if line_end > line_limit {
        return Err(HttpError::RequestLineTooLong(line_limit));
    }
    let line = RequestLine::parse(&rest[..line_end], limits)?;

    // The header block: everything after the request line up to and
    // including the empty line.
    let block_start = start + line_end + 2;
    let block = &buf[block_start..];
    let block_len = if block.starts_with(b"\r\n") {
        2
    } else {
        match find_blank_line(block) {
            Some(i) => i + 4,
            None => {
                check_block_prefix(block, limits.max_header_block())?;
                return Ok(Parsed::Incomplete);
            }
        }
    };
    if block_len > limits.max_header_block() {
        // Too large, unless a bare LF came first (`parse_fields` reports a
        // bare LF before anything else in a block within the bound).
        check_block_prefix(&block[..block_len], limits.max_header_block())?;
    }
    let fields = parse_fields(&block[..block_len], limits, false)?;
    let head = apply_policy(line, fields, limits, peer_trusted)?;
    Ok(Parsed::Complete(head, block_start + block_len))
}

/// The common methods, as static strings (exact bytes: a lowercase one that
/// `casefold_http_method` uppercases takes the general path).
fn known_method(method: &[u8]) -> Option<&'static str> {
    Some(match method {
        b"GET" => "GET",
        b"POST" => "POST",
        b"HEAD" => "HEAD",
        b"PUT" => "PUT",
        b"DELETE" => "DELETE",
        b"PATCH" => "PATCH",
        b"OPTIONS" => "OPTIONS",
        _ => return None,
    })
}

/// The three parts of a request line, validated.
struct RequestLine {
    method: Cow<'static, str>,
    target: String,
    version: Version,
}

impl RequestLine {
    fn parse(line: &[u8], limits: &Limits) -> Result<Self, HttpError> {
        let mut bits = line.splitn(3, |&b| b == b' ');
        let (method, target, version) = match (bits.next(), bits.next(), bits.next()) {
            (Some(m), Some(t), Some(v)) => (m, t, v),
            _ => return Err(HttpError::InvalidRequestLine(lossy(line))),
        };

        if !limits.permit_unconventional_method
            && (method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#')
                || !(3..=20).contains(&method.len()))
        {
            return Err(HttpError::InvalidMethod(lossy(method)));
        }
        if !is_token(method) {
            return Err(HttpError::InvalidMethod(lossy(method)));
        }
        let method = match known_method(method) {
            Some(known) => Cow::Borrowed(known),
            None => {
                let mut method = String::from_utf8_lossy(method).into_owned();
                if limits.casefold_method {
                    method.make_ascii_uppercase();
                }
                Cow::Owned(method)
            }
        };

        // RFC 9112 §3.2: printable ASCII only; never empty.
        if target.is_empty() || target.iter().any(|&b| !(0x21..=0x7e).contains(&b)) {
            return Err(HttpError::InvalidRequestLine(lossy(line)));
        }
        let is_origin = target[0] == b'/';
        let is_absolute = !is_origin && super::target::valid_absolute_form(target);
        if target == b"*" && method != "OPTIONS" {
            return Err(HttpError::InvalidRequestLine(lossy(line)));
        }
        if method != "CONNECT" && target != b"*" && !is_origin && !is_absolute {
            return Err(HttpError::InvalidRequestLine(lossy(line)));
        }
        // Validated as ASCII above.
        let target = String::from_utf8_lossy(target).into_owned();

        let version = parse_version(version, limits)?;
        Ok(RequestLine { method, target, version })
    }
}

/// `HTTP/d.d`, exactly. A well-formed version other than 1.x is refused with
/// 505 unless `permit_unconventional_http_version`.
fn parse_version(v: &[u8], limits: &Limits) -> Result<Version, HttpError> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', maj @ b'0'..=b'9', b'.', min @ b'0'..=b'9'] => {
            let version = Version { major: maj - b'0', minor: min - b'0' };
            if version.major != 1 && !limits.permit_unconventional_version {
                return Err(HttpError::UnsupportedVersion(lossy(v)));
            }
            Ok(version)
        }
        _ => Err(HttpError::InvalidVersion(lossy(v))),
    }
}

/// gunicorn's per-field policy (`_apply_header_policy`) and body framing
/// (`set_body_reader`), then the keep-alive decision.
fn apply_policy(
    line: RequestLine,
    fields: HeaderMap,
    limits: &Limits,
    peer_trusted: bool,
) -> Result<RequestHead, HttpError> {
    // Fields the policy drops are removed in place: the parsed list is the
    // head's list, without a second allocation.
    let mut headers = fields;
    let mut kept = 0;
    let mut expect_continue = false;
    let mut forwarded_https: Option<bool> = None;
    let mut seen_singletons = [false; SINGLETON_FIELDS.len()];

    for i in 0..headers.len() {
        let (name, value) = &headers[i];
        if let Some(i) = SINGLETON_FIELDS.iter().position(|s| s == name) {
            if seen_singletons[i] {
                return Err(HttpError::InvalidHeader(name.to_string()));
            }
            seen_singletons[i] = true;
        }
        if name == "EXPECT" {
            if value.eq_ignore_ascii_case(b"100-continue") {
                // RFC 9110 §10.1.1: an HTTP/1.0 expectation is ignored.
                expect_continue = line.version.at_least_11();
            } else {
                return Err(HttpError::ExpectationFailed(lossy(value)));
            }
        }
        if peer_trusted {
            if let Some((_, secure)) = limits.secure_scheme_headers.iter().find(|(n, _)| n == name) {
                let https = value == secure.as_bytes();
                match forwarded_https {
                    Some(previous) if previous != https => {
                        return Err(HttpError::ContradictorySchemeHeaders)
                    }
                    _ => forwarded_https = Some(https),
                }
            }
        }
        if memchr::memchr(b'_', name.as_bytes()).is_some() {
            let forwarded = peer_trusted
                && limits.forwarder_headers.iter().any(|f| f == "*" || f == name);
            if !forwarded {
                match limits.header_map {
                    HeaderMapPolicy::Dangerous => {}
                    HeaderMapPolicy::Drop => continue,
                    HeaderMapPolicy::Refuse => return Err(HttpError::InvalidHeaderName(name.to_string())),
                }
            }
        }
        headers.swap(kept, i);
        kept += 1;
    }
    headers.truncate(kept);

    let (framing, coding_forces_close) = super::body::framing(&headers, line.version, limits)?;
    let close = coding_forces_close || wants_close(&line.method, &headers, line.version);
    let parts = TargetParts::of(&line.target);
    Ok(RequestHead {
        method: line.method,
        target: line.target,
        parts,
        version: line.version,
        headers,
        framing,
        expect_continue,
        forwarded_https,
        close,
    })
}

/// gunicorn's `Message.should_close`: the first Connection header decides;
/// otherwise HTTP/1.0 closes and HTTP/1.1 keeps alive. CONNECT always closes.
fn wants_close(method: &str, headers: &HeaderMap, version: Version) -> bool {
    if method == "CONNECT" {
        return true;
    }
    if let Some((_, v)) = headers.iter().find(|(n, _)| n == "CONNECTION") {
        let v = trim_ows(v);
        if v.eq_ignore_ascii_case(b"close") {
            return true;
        }
        if v.eq_ignore_ascii_case(b"keep-alive") {
            return false;
        }
    }
    version <= Version::HTTP_10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Parsed, HttpError> {
        parse_head(buf, &Limits::default(), true)
    }

    fn complete(buf: &[u8]) -> (RequestHead, usize) {
        match parse(buf) {
            Ok(Parsed::Complete(h, n)) => (h, n),
            other => panic!("expected a head from {:?}, got {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn status(buf: &[u8]) -> u16 {
        match parse(buf) {
            Err(e) => e.status(),
            other => panic!("expected an error from {:?}, got {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    /// Every proper prefix of a valid head is Incomplete (never an error),
    /// and the whole parses the same way it would in one read.
    fn check_split(buf: &[u8]) {
        for cut in 0..buf.len() {
            match parse(&buf[..cut]) {
                Ok(Parsed::Incomplete) => {}
                other => panic!("prefix {cut} of {:?}: {other:?}", String::from_utf8_lossy(buf)),
            }
        }
    }

    #[test]
    fn simple_get() {
        let req = b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  v a l \t\r\n\r\n";
        check_split(req);
        let (h, n) = complete(req);
        assert_eq!(n, req.len());
        assert_eq!(h.method, "GET");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), "x=1&y=2");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.headers, vec![("HOST".into(), b"example.com".to_vec()), ("X-THING".into(), b"v a l".to_vec())]);
        assert_eq!(h.framing, Framing::Empty);
        assert!(!h.close);
    }

    #[test]
    fn leading_crlf_and_no_headers() {
        let req = b"\r\nGET / HTTP/1.0\r\n\r\nextra";
        let (h, n) = complete(req);
        assert_eq!(n, req.len() - 5);
        assert!(h.close);
        assert_eq!(find_head_end(req, 0), Some(req.len() - 5));
    }

    #[test]
    fn absolute_form_and_fragment() {
        let (h, _) = complete(b"GET http://h:8/p/q?a#f HTTP/1.1\r\n\r\n");
        assert_eq!((h.path(), h.query(), h.fragment()), ("/p/q", "a", "f"));
    }

    #[test]
    fn common_methods_need_no_allocation() {
        assert!(matches!(complete(b"GET / HTTP/1.1\r\n\r\n").0.method, Cow::Borrowed("GET")));
        assert!(matches!(complete(b"PROPFIND / HTTP/1.1\r\n\r\n").0.method, Cow::Owned(ref m) if m == "PROPFIND"));
    }

    #[test]
    fn bad_request_lines() {
        assert_eq!(status(b"GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"get / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GE / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"G(T / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET /\x7f HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET * HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET a/b HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.10\r\n\r\n"), 400);
        assert_eq!(status(b"GET / http/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/0.9\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/1.1\n\r\n"), 400);
        assert_eq!(status(b"GET /\r HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\n"), 400);
        assert_eq!(complete(b"OPTIONS * HTTP/1.1\r\n\r\n").0.path(), "*");
        assert_eq!(complete(b"GET / HTTP/1.5\r\n\r\n").0.version, Version { major: 1, minor: 5 });
    }

    #[test]
    fn request_line_limit() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', 5000));
        assert_eq!(status(&long), 414);
        long.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(status(&long), 414);
    }

    #[test]
    fn header_errors() {
        assert_eq!(status(b"GET / HTTP/1.1\r\nA : b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\nc: d\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\n: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA\"b: c\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"), 417);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: \x7f\r\n\r\n"), 400);
    }

    #[test]
    fn obs_text_and_empty_values() {
        let (h, _) = complete(b"GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\nB:\r\nC: \t\r\n\r\n");
        assert_eq!(h.header("A"), Some(&b"caf\xc3\xa9"[..]));
        assert_eq!(h.header("B"), Some(&b""[..]));
        assert_eq!(h.header("C"), Some(&b""[..]));
    }

    #[test]
    fn too_many_and_too_large() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        assert_eq!(status(&req), 431);
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'v', 8190));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(status(&big), 431);
        let limits = Limits { request_fields: 200, ..Limits::default() };
        assert!(matches!(parse_head(&req, &limits, true), Ok(Parsed::Complete(..))));
    }

    #[test]
    fn header_map_policy() {
        let req = b"GET / HTTP/1.1\r\nX_Y: 1\r\nSCRIPT_NAME: /s\r\n\r\n";
        let (h, _) = complete(req);
        assert_eq!(h.headers, vec![("SCRIPT_NAME".into(), b"/s".to_vec())]);
        let untrusted = parse_head(req, &Limits::default(), false).unwrap();
        assert!(matches!(untrusted, Parsed::Complete(ref h, _) if h.headers.is_empty()));
        let mut limits = Limits { header_map: HeaderMapPolicy::Refuse, ..Limits::default() };
        assert_eq!(parse_head(req, &limits, true).unwrap_err().status(), 400);
        limits.header_map = HeaderMapPolicy::Dangerous;
        let Parsed::Complete(h, _) = parse_head(req, &limits, false).unwrap() else { panic!() };
        assert_eq!(h.headers.len(), 2);
    }

    #[test]
    fn lenient_flags() {
        let req = b"get / HTTP/1.1\r\nA : 1\r\nB: x\r\n  y\r\n\r\n";
        let mut limits = Limits::default();
        assert!(parse_head(req, &limits, true).is_err());
        limits.permit_unconventional_method = true;
        limits.casefold_method = true;
        limits.strip_header_spaces = true;
        limits.permit_obsolete_folding = true;
        let Parsed::Complete(h, n) = parse_head(req, &limits, true).unwrap() else { panic!() };
        assert_eq!(n, req.len());
        assert_eq!(h.method, "GET");
        assert_eq!(h.headers, vec![("A".into(), b"1".to_vec()), ("B".into(), b"x y".to_vec())]);
        limits.permit_unconventional_version = true;
        assert!(parse_head(b"GET / HTTP/2.0\r\n\r\n", &limits, true).is_ok());
    }

    #[test]
    fn framing_rules() {
        let f = |s: &[u8]| complete(s).0.framing;
        assert_eq!(f(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), Framing::Length(5));
        assert_eq!(f(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), Framing::Empty);
        assert_eq!(f(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), Framing::Chunked);
        assert!(complete(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").0.close);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nTransfer-Encoding: bogus\r\n\r\n"), 501);
        assert_eq!(status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        let limits = Limits { request_body: 4, ..Limits::default() };
        let err = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", &limits, true).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn keep_alive_decision() {
        let close = |s: &[u8]| complete(s).0.close;
        assert!(!close(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(close(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(close(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!close(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(close(b"CONNECT h:443 HTTP/1.1\r\n\r\n"));
    }

    #[test]
    fn expect_and_scheme() {
        let (h, _) = complete(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(h.expect_continue);
        let (h, _) = complete(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.expect_continue);
        let (h, _) = complete(b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n");
        assert_eq!(h.forwarded_https, Some(true));
        let h = parse_head(b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n", &Limits::default(), false).unwrap();
        assert!(matches!(h, Parsed::Complete(ref h, _) if h.forwarded_https.is_none()));
        assert_eq!(status(b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n"), 400);
    }

    #[test]
    fn pipelined_heads_report_consumed() {
        let req = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
        let (h, n) = complete(req);
        assert_eq!(h.path(), "/1");
        let (h2, _) = complete(&req[n..]);
        assert_eq!(h2.path(), "/2");
    }
}
