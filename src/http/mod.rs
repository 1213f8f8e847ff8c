//! Pure HTTP/1.1: request heads and their targets, body framing, response
//! heads, dates and the PROXY protocol.
//!
//! Nothing here touches a socket, Python or the clock: callers pass bytes in
//! (and the current time, where one is needed) and get parsed values or an
//! [`HttpError`] back. This is what makes every case testable byte by byte,
//! split at every offset. The worker's I/O loop is the only caller in the
//! server.

pub mod body;
pub mod date;
pub mod error;
pub mod fields;
pub mod proxy;
pub mod request;
pub mod response;
pub mod target;
pub mod trust;

pub use body::{BodyDecoder, Framing};
pub use error::HttpError;
pub use request::{parse_head, HeaderMap, Parsed, RequestHead, Version};

/// gunicorn's hard cap on the request line (`MAX_REQUEST_LINE`).
pub const MAX_REQUEST_LINE: usize = 8190;
/// gunicorn's hard cap on the number of header fields (`MAX_HEADERS`).
pub const MAX_HEADERS: usize = 32768;
/// gunicorn's default and fallback for one header field
/// (`DEFAULT_MAX_HEADERFIELD_SIZE`).
pub const DEFAULT_MAX_HEADERFIELD_SIZE: usize = 8190;
/// What `limit_request_line = 0` ("unlimited") means here: a bound is still
/// needed to bound memory, and gunicorn's C parser uses the same 1 MiB.
pub const UNLIMITED_REQUEST_LINE: usize = 1024 * 1024;

/// What the `header_map` setting says to do with a header whose name
/// contains `_` (it would collide with `-` in the environ key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMapPolicy {
    /// Drop the header silently (gunicorn's default).
    Drop,
    /// Refuse the request with 400.
    Refuse,
    /// Keep it, accepting the ambiguity.
    Dangerous,
}

/// Everything that changes how a request is parsed, frozen from the
/// configuration before the worker starts. Kept apart from any per-connection
/// state (STYLE 4).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line accepted (`limit_request_line`, 0 = unlimited).
    pub request_line: usize,
    /// Most header fields in one head (`limit_request_fields`).
    pub request_fields: usize,
    /// Longest header field line, CRLF included (`limit_request_field_size`).
    pub request_field_size: usize,
    /// Largest request body (`limit_request_body`, 0 = unlimited).
    pub request_body: u64,
    /// `permit_unconventional_http_method`: allow lowercase and odd lengths.
    pub permit_unconventional_method: bool,
    /// `permit_unconventional_http_version`: allow HTTP/0.x and HTTP/2+.
    pub permit_unconventional_version: bool,
    /// `casefold_http_method`: uppercase the method before the app sees it.
    pub casefold_method: bool,
    /// `permit_obsolete_folding`: join obs-fold continuation lines.
    pub permit_obsolete_folding: bool,
    /// `strip_header_spaces`: allow whitespace between a name and its colon.
    pub strip_header_spaces: bool,
    /// `header_map`: what to do with `_` in header names.
    pub header_map: HeaderMapPolicy,
    /// `forwarder_headers`, uppercased: `_` headers a trusted proxy may set.
    pub forwarder_headers: Vec<String>,
    /// `secure_scheme_headers`, names uppercased: header → value meaning https.
    pub secure_scheme_headers: Vec<(String, String)>,
}

impl Default for Limits {
    /// gunicorn's defaults.
    fn default() -> Self {
        Limits {
            request_line: 4094,
            request_fields: 100,
            request_field_size: 8190,
            request_body: 0,
            permit_unconventional_method: false,
            permit_unconventional_version: false,
            casefold_method: false,
            permit_obsolete_folding: false,
            strip_header_spaces: false,
            header_map: HeaderMapPolicy::Drop,
            forwarder_headers: vec!["SCRIPT_NAME".into(), "PATH_INFO".into()],
            secure_scheme_headers: vec![
                ("X-FORWARDED-PROTOCOL".into(), "ssl".into()),
                ("X-FORWARDED-PROTO".into(), "https".into()),
                ("X-FORWARDED-SSL".into(), "on".into()),
            ],
        }
    }
}

impl Limits {
    /// The request-line bound actually enforced (gunicorn: 0 is unlimited,
    /// anything above `MAX_REQUEST_LINE` is capped to it).
    pub fn effective_request_line(&self) -> usize {
        match self.request_line {
            0 => UNLIMITED_REQUEST_LINE,
            n => n.min(MAX_REQUEST_LINE),
        }
    }

    /// The header-count bound actually enforced.
    pub fn effective_fields(&self) -> usize {
        match self.request_fields {
            0 => MAX_HEADERS,
            n => n.min(MAX_HEADERS),
        }
    }

    /// The header-line bound actually enforced.
    pub fn effective_field_size(&self) -> usize {
        match self.request_field_size {
            0 => DEFAULT_MAX_HEADERFIELD_SIZE,
            n => n,
        }
    }

    /// Bound on the whole header block (gunicorn's `max_buffer_headers`).
    pub fn max_header_block(&self) -> usize {
        self.effective_fields() * (self.effective_field_size() + 2) + 4
    }
}

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// [`is_tchar`] for every byte value, so a token check is one load per byte.
const TCHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_tchar(b as u8);
        b += 1;
    }
    table
};

/// True when `s` is a non-empty RFC 9110 token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TCHARS[b as usize])
}

/// True when `s` is a non-empty RFC 9110 token (for names given as text).
pub fn is_token_str(s: &str) -> bool {
    is_token(s.as_bytes())
}

/// RFC 9110 §5.5 field-value bytes: HTAB, SP, VCHAR and obs-text.
pub(crate) const fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// [`trim_ows`] for text: SP and HTAB are ASCII, so the cut falls on
/// character boundaries.
pub(crate) fn trim_ows_str(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(start, |i| i + 1);
    &s[start..end]
}

/// Strip leading and trailing SP / HTAB.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_limits() {
        let mut l = Limits::default();
        assert_eq!(l.effective_request_line(), 4094);
        l.request_line = 0;
        assert_eq!(l.effective_request_line(), UNLIMITED_REQUEST_LINE);
        l.request_line = 100_000;
        assert_eq!(l.effective_request_line(), MAX_REQUEST_LINE);
        l.request_fields = 0;
        assert_eq!(l.effective_fields(), MAX_HEADERS);
        assert_eq!(Limits::default().max_header_block(), 100 * 8192 + 4);
    }

    #[test]
    fn tokens_and_values() {
        assert!(is_token(b"X-Foo_Bar"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(is_field_value_byte(b'\t'));
        assert!(is_field_value_byte(0x80));
        assert!(!is_field_value_byte(0x7f));
        assert!(!is_field_value_byte(0));
        assert_eq!(trim_ows(b" \ta b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows_str(" \tcaf\u{e9} b\t "), "caf\u{e9} b");
        assert_eq!(trim_ows_str("\u{e9}"), "\u{e9}");
        assert_eq!(trim_ows_str(" \t "), "");
        assert_eq!(trim_ows_str(""), "");
    }

    #[test]
    fn token_table_is_tchar() {
        for b in 0..=255u8 {
            assert_eq!(is_token(&[b]), is_tchar(b), "byte {b}");
        }
    }
}
