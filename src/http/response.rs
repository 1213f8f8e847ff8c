//! Response heads: status validation, the headers an app may send, the
//! framing decision (Content-Length, chunked, or read-until-close), the
//! keep-alive decision, chunk framing and the server's own error pages.
//!
//! Pure: produces bytes; the executor hands them to the I/O loop, which
//! writes them. Mirrors gunicorn's `Response` (http/wsgi.py). The `Server`
//! header is `rsgi` unless the master set another value once at startup
//! (a configuration's `gunicorn.SERVER_SOFTWARE`).

use super::request::Version;

/// The `Server` header value unless the configuration changed it.
pub const SERVER: &str = "rsgi";

/// The `Server` header and `SERVER_SOFTWARE` a configuration set through
/// `gunicorn.SERVER_SOFTWARE` (set once in the master, before fork).
static SERVER_NAMES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Use `header` for the `Server` header and `software` for the
/// `SERVER_SOFTWARE` environ key. Only the first call counts.
pub fn set_server_names(header: String, software: String) {
    let _ = SERVER_NAMES.set((header, software));
}

/// The `Server` header value.
pub fn server_header() -> &'static str {
    SERVER_NAMES.get().map(|(h, _)| h.as_str()).unwrap_or(SERVER)
}

/// The `SERVER_SOFTWARE` environ value.
pub fn server_software() -> String {
    match SERVER_NAMES.get() {
        Some((_, s)) => s.clone(),
        None => format!("{SERVER}/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// Headers the app may not send: hop-by-hop ones (RFC 9110 §7.6.1) and the
/// two the server always writes itself. Dropped as gunicorn drops them.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "server",
    "date",
];

/// True when `name` is one the server does not forward from the app.
pub fn is_hop_by_hop(name: &str) -> bool {
    let name = name.trim_ascii();
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Why an app's status or header is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    InvalidStatus(String),
    InvalidHeaderName(String),
    InvalidHeaderValue(String),
    InvalidContentLength(String),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::InvalidStatus(s) => write!(f, "Invalid status {s:?}"),
            ResponseError::InvalidHeaderName(s) => write!(f, "Invalid response header name from the application: {s:?}"),
            ResponseError::InvalidHeaderValue(s) => write!(f, "Invalid response header from the application: {s:?}"),
            ResponseError::InvalidContentLength(s) => write!(f, "Invalid Content-Length from the application: {s:?}"),
        }
    }
}

/// RFC 9112 §4 status-line: `3DIGIT [SP reason]`, reason = HTAB/SP/VCHAR/obs-text.
/// Returns the status code.
pub fn parse_status(status: &str) -> Result<u16, ResponseError> {
    let b = status.as_bytes();
    let ok = b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && (b.len() == 3
            || (b[3] == b' ' && b[4..].iter().all(|&c| c == b'\t' || (0x20..=0x7e).contains(&c) || c >= 0x80)));
    if !ok {
        return Err(ResponseError::InvalidStatus(status.to_owned()));
    }
    Ok((b[0] - b'0') as u16 * 100 + (b[1] - b'0') as u16 * 10 + (b[2] - b'0') as u16)
}

/// True when a response with this status never has a body.
pub fn status_forbids_body(code: u16) -> bool {
    (100..200).contains(&code) || code == 204 || code == 304
}

/// The app's headers, validated and sorted into what the server needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppHeaders {
    /// Headers to forward, already `Name: value\r\n` encoded.
    pub encoded: Vec<u8>,
    /// The app's Content-Length, if it gave one.
    pub content_length: Option<u64>,
    /// How many headers are forwarded.
    pub count: usize,
}

/// Check one header from the app: a token name, and a value of tab,
/// printable ASCII or latin-1. Returns the value with optional whitespace
/// trimmed, and whether it is plain printable ASCII (the usual case, which
/// is encoded without a per-character pass).
pub fn check_app_header<'a>(name: &str, value: &'a str) -> Result<(&'a str, bool), ResponseError> {
    if !super::is_token(name.as_bytes()) {
        return Err(ResponseError::InvalidHeaderName(name.to_owned()));
    }
    let printable = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if !printable && !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c)) {
        return Err(ResponseError::InvalidHeaderValue(name.to_owned()));
    }
    Ok((super::trim_ows_str(value), printable))
}

/// Append `Name: value\r\n` for a header `check_app_header` accepted (the
/// value in latin-1: each char is one byte).
pub fn encode_app_header(out: &mut Vec<u8>, name: &str, value: &str, printable: bool) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    if printable {
        out.extend_from_slice(value.as_bytes());
    } else {
        out.extend(value.chars().map(|c| c as u32 as u8));
    }
    out.extend_from_slice(b"\r\n");
}

/// Validate and encode one app header, as gunicorn's `process_headers`.
/// `name` and `value` are latin-1 strings from Python.
pub fn push_app_header(h: &mut AppHeaders, name: &str, value: &str) -> Result<(), ResponseError> {
    let (value, printable) = check_app_header(name, value)?;
    if printable {
        return push_checked(h, name, value.as_bytes());
    }
    let latin1: Vec<u8> = value.chars().map(|c| c as u32 as u8).collect();
    push_checked(h, name, &latin1)
}

/// [`push_app_header`] for a header given as bytes (ASGI's), each byte
/// one latin-1 character: no string is made of either.
pub fn push_app_header_bytes(h: &mut AppHeaders, name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
    // A token is ASCII, so the name is a `str` as it is.
    let name = match std::str::from_utf8(name) {
        Ok(n) if super::is_token(name) => n,
        _ => return Err(ResponseError::InvalidHeaderName(latin1_string(name))),
    };
    if !value.iter().all(|&b| super::is_field_value_byte(b)) {
        return Err(ResponseError::InvalidHeaderValue(name.to_owned()));
    }
    push_checked(h, name, super::trim_ows(value))
}

/// The bytes as the latin-1 string they stand for.
fn latin1_string(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Sort a checked header (`value` trimmed, in latin-1 bytes) into `h`:
/// Content-Length read, hop-by-hop headers dropped, the rest encoded.
fn push_checked(h: &mut AppHeaders, name: &str, value: &[u8]) -> Result<(), ResponseError> {
    if name.eq_ignore_ascii_case("content-length") {
        let n = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ResponseError::InvalidContentLength(latin1_string(value)))?;
        h.content_length = Some(n);
    } else if is_hop_by_hop(name) {
        return Ok(());
    }
    let out = &mut h.encoded;
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    h.count += 1;
    Ok(())
}

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body is sent (HEAD, 1xx, 204, 304).
    None,
    /// The app's Content-Length.
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1, no Content-Length).
    Chunked,
    /// Until the connection closes (HTTP/1.0, no Content-Length).
    UntilClose,
}

impl BodyFraming {
    /// Append the body bytes `data` to `out` as this framing sends them: a
    /// chunk (size line, bytes, CRLF) when chunked, else as they are. No
    /// bytes add nothing (an empty chunk would end the body).
    pub fn append(self, data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if self == BodyFraming::Chunked {
            out.reserve(data.len() + 12);
            chunk_header(data.len(), out);
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(data);
        }
    }
}

/// What the request tells the response head.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts {
    pub version: Version,
    pub is_head: bool,
    /// The request asked to close (or the server decided to).
    pub close: bool,
}

/// The framing and connection decisions for a response, as gunicorn's
/// `is_chunked` and `should_close`.
pub fn decide(req: RequestFacts, code: u16, content_length: Option<u64>) -> (BodyFraming, bool) {
    let omits_body = req.is_head || status_forbids_body(code);
    let framing = if omits_body {
        BodyFraming::None
    } else if let Some(n) = content_length {
        BodyFraming::Length(n)
    } else if req.version.at_least_11() {
        BodyFraming::Chunked
    } else {
        BodyFraming::UntilClose
    };
    let close = req.close || framing == BodyFraming::UntilClose;
    (framing, close)
}

/// Encode the response head: status line, server headers, app headers.
/// (Eight plain arguments: the parts come from the request, the app and
/// the clock, and bundling them would only move the list to a struct
/// built for this one call.)
#[allow(clippy::too_many_arguments)]
pub fn encode_head(
    out: &mut Vec<u8>,
    version: Version,
    status: &str,
    date: &[u8],
    close: bool,
    framing: BodyFraming,
    app: &AppHeaders,
    code: u16,
) {
    out.extend_from_slice(b"HTTP/");
    out.push(b'0' + version.major);
    out.push(b'.');
    out.push(b'0' + version.minor);
    out.push(b' ');
    out.reserve(status.len() + date.len() + app.encoded.len() + 96);
    if status.is_ascii() {
        out.extend_from_slice(status.as_bytes());
    } else {
        out.extend(status.chars().map(|c| c as u32 as u8));
    }
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(server_header().as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(if close { &b"\r\nConnection: close\r\n"[..] } else { &b"\r\nConnection: keep-alive\r\n"[..] });
    if framing == BodyFraming::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if code == 204 || (100..200).contains(&code) {
        // RFC 9110 §8.6: never a Content-Length on 1xx/204.
        for line in app.encoded.split_inclusive(|&b| b == b'\n') {
            if !line.to_ascii_lowercase().starts_with(b"content-length:") {
                out.extend_from_slice(line);
            }
        }
    } else {
        out.extend_from_slice(&app.encoded);
    }
    out.extend_from_slice(b"\r\n");
}

/// The size line of one chunk: `HEX\r\n`.
pub fn chunk_header(len: usize, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Reason phrases for the statuses the server itself produces.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

/// A complete error response the server sends on its own (bad request, app
/// failure), always with `Connection: close`. `mesg` is shown escaped.
pub fn error_response(code: u16, mesg: &str, date: &[u8], with_body: bool) -> Vec<u8> {
    let reason = reason_phrase(code);
    let body = format!(
        "<html>\n  <head>\n    <title>{reason}</title>\n  </head>\n  <body>\n    <h1><p>{reason}</p></h1>\n    {}\n  </body>\n</html>\n",
        html_escape(mesg)
    );
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nServer: {}\r\nDate: {}\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
        server_header(),
        String::from_utf8_lossy(date),
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200 OK"), Ok(200));
        assert_eq!(parse_status("404"), Ok(404));
        assert_eq!(parse_status("599 Whatever\tyes"), Ok(599));
        assert!(parse_status("20 OK").is_err());
        assert!(parse_status("200OK").is_err());
        assert!(parse_status("200 OK\r\nX: y").is_err());
        assert!(parse_status("abc OK").is_err());
    }

    #[test]
    fn app_headers() {
        let mut h = AppHeaders::default();
        push_app_header(&mut h, "Content-Type", " text/plain ").unwrap();
        push_app_header(&mut h, "Content-Length", "12").unwrap();
        push_app_header(&mut h, "Connection", "close").unwrap();
        push_app_header(&mut h, "X-Latin", "caf\u{e9}").unwrap();
        assert_eq!(h.encoded, b"Content-Type: text/plain\r\nContent-Length: 12\r\nX-Latin: caf\xe9\r\n");
        assert_eq!(h.content_length, Some(12));
        assert!(push_app_header(&mut h, "X", "a\r\nb").is_err());
        assert!(push_app_header(&mut h, "X Y", "a").is_err());
        assert!(push_app_header(&mut h, "Content-Length", "x").is_err());
        assert!(push_app_header(&mut h, "X", "\u{100}").is_err());
    }

    #[test]
    fn app_headers_as_bytes_read_as_the_strings_do() {
        let (mut s, mut b) = (AppHeaders::default(), AppHeaders::default());
        for (n, v) in [("Content-Type", " text/plain "), ("Content-Length", "12"), ("Connection", "close"), ("X-Latin", "caf\u{e9}")] {
            push_app_header(&mut s, n, v).unwrap();
            let v: Vec<u8> = v.chars().map(|c| c as u32 as u8).collect();
            push_app_header_bytes(&mut b, n.as_bytes(), &v).unwrap();
        }
        assert_eq!(s, b);
        for (n, v) in [(&b"X"[..], &b"a\r\nb"[..]), (b"X Y", b"a"), (b"Content-Length", b"x"), (b"Content-Length", b"1\xe9"), (b"X", b"\x7f"), (b"N\xe9", b"a")] {
            assert!(push_app_header_bytes(&mut b, n, v).is_err(), "{n:?}: {v:?}");
        }
        assert_eq!(b.count, 3);
    }

    #[test]
    fn framing_decisions() {
        let r11 = RequestFacts { version: Version::HTTP_11, is_head: false, close: false };
        let r10 = RequestFacts { version: Version::HTTP_10, is_head: false, close: true };
        assert_eq!(decide(r11, 200, None), (BodyFraming::Chunked, false));
        assert_eq!(decide(r11, 200, Some(3)), (BodyFraming::Length(3), false));
        assert_eq!(decide(r11, 204, None), (BodyFraming::None, false));
        assert_eq!(decide(r11, 304, Some(10)), (BodyFraming::None, false));
        assert_eq!(decide(RequestFacts { is_head: true, ..r11 }, 200, None), (BodyFraming::None, false));
        assert_eq!(decide(r10, 200, None), (BodyFraming::UntilClose, true));
        let r10ka = RequestFacts { close: false, ..r10 };
        assert_eq!(decide(r10ka, 200, None), (BodyFraming::UntilClose, true));
        assert_eq!(decide(r10ka, 200, Some(1)), (BodyFraming::Length(1), false));
    }

    #[test]
    fn head_encoding() {
        let mut h = AppHeaders::default();
        push_app_header(&mut h, "Content-Length", "0").unwrap();
        let mut out = Vec::new();
        encode_head(&mut out, Version::HTTP_11, "204 No Content", b"DATE", false, BodyFraming::None, &h, 204);
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nServer: rsgi\r\nDate: DATE\r\nConnection: keep-alive\r\n\r\n");
        let mut out = Vec::new();
        encode_head(&mut out, Version::HTTP_10, "200 OK", b"D", true, BodyFraming::Chunked, &AppHeaders::default(), 200);
        assert_eq!(out, b"HTTP/1.0 200 OK\r\nServer: rsgi\r\nDate: D\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        chunk_header(0x1a2b, &mut out);
        chunk_header(0, &mut out);
        assert_eq!(out, b"1A2B\r\n0\r\n");
    }

    #[test]
    fn error_page() {
        let r = error_response(400, "<bad>", b"D", true);
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(s.contains("Connection: close\r\n"));
        assert!(s.contains("&lt;bad&gt;"));
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
