//! The opening handshake (RFC 6455 §4.2): telling a WebSocket upgrade from
//! plain HTTP, validating it, computing `Sec-WebSocket-Accept`, and the
//! server's answers: the 101 with the app's subprotocol and headers, a 400
//! for a bad handshake, a 426 naming version 13 for another version.
//!
//! A request is a WebSocket one when its `Upgrade` header names
//! `websocket`; anything else stays HTTP, and a request that says
//! `websocket` but breaks a rule is refused rather than served as HTTP.
//! Pure: heads in, bytes out; the date comes from the caller.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::extension::{self, Deflate};
use crate::http::response::{check_app_header, encode_app_header, error_response, server_header, ResponseError};
use crate::http::{Framing, RequestHead, Version};

/// The GUID RFC 6455 appends to the key before hashing it.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version there is.
pub const VERSION: &str = "13";

/// A valid upgrade request: what the server needs to answer it and what
/// the app is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept` for this request's key.
    pub accept: String,
    /// The subprotocols the client offered, in its order.
    pub subprotocols: Vec<String>,
    /// permessage-deflate, when the client offered it in a form the server
    /// honours and the server allows it.
    pub deflate: Option<Deflate>,
}

/// Why an upgrade request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A rule of RFC 6455 §4.2.1 is broken (400); the text says which.
    Bad(&'static str),
    /// `Sec-WebSocket-Version` is not 13 (426, naming 13).
    Version,
}

impl Refusal {
    /// The response status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Bad(_) => 400,
            Refusal::Version => 426,
        }
    }

    /// The whole response, with `Connection: close`.
    pub fn response(self, date: &[u8]) -> Vec<u8> {
        match self {
            Refusal::Bad(why) => error_response(400, why, date, true),
            Refusal::Version => {
                let mut out = error_response(426, "Unsupported WebSocket version", date, true);
                let line_end = out.windows(2).position(|w| w == b"\r\n").expect("a status line") + 2;
                out.splice(line_end..line_end, b"Sec-WebSocket-Version: 13\r\n".iter().copied());
                out
            }
        }
    }
}

/// All values of header `name` (uppercase), in order.
fn values<'a>(head: &'a RequestHead, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_slice())
}

/// The comma-separated elements of every value of header `name`, trimmed,
/// empty ones skipped.
fn elements<'a>(head: &'a RequestHead, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    values(head, name).flat_map(|v| v.split(|&b| b == b',')).map(|e| e.trim_ascii()).filter(|e| !e.is_empty())
}

/// True when the request asks to upgrade to WebSocket (its `Upgrade`
/// header names `websocket`); such a request goes to [`check`].
pub fn is_upgrade(head: &RequestHead) -> bool {
    elements(head, "UPGRADE").any(|e| e.eq_ignore_ascii_case(b"websocket"))
}

/// Validate an upgrade request. `allow_deflate` is false when the server
/// is configured not to compress.
pub fn check(head: &RequestHead, allow_deflate: bool) -> Result<Upgrade, Refusal> {
    if head.method != "GET" {
        return Err(Refusal::Bad("A WebSocket handshake must be a GET request"));
    }
    if head.version < Version::HTTP_11 {
        return Err(Refusal::Bad("A WebSocket handshake needs HTTP/1.1"));
    }
    if head.framing != Framing::Empty {
        return Err(Refusal::Bad("A WebSocket handshake has no body"));
    }
    if !elements(head, "CONNECTION").any(|e| e.eq_ignore_ascii_case(b"upgrade")) {
        return Err(Refusal::Bad("Connection header does not include upgrade"));
    }
    let mut versions = values(head, "SEC-WEBSOCKET-VERSION");
    match (versions.next(), versions.next()) {
        (None, _) => return Err(Refusal::Bad("Missing Sec-WebSocket-Version header")),
        (Some(v), None) if v == VERSION.as_bytes() => {}
        _ => return Err(Refusal::Version),
    }
    let mut keys = values(head, "SEC-WEBSOCKET-KEY");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k,
        (None, _) => return Err(Refusal::Bad("Missing Sec-WebSocket-Key header")),
        (Some(_), Some(_)) => return Err(Refusal::Bad("More than one Sec-WebSocket-Key header")),
    };
    if STANDARD.decode(key).map(|k| k.len()) != Ok(16) {
        return Err(Refusal::Bad("Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    let mut subprotocols = Vec::new();
    for p in elements(head, "SEC-WEBSOCKET-PROTOCOL") {
        if !crate::http::is_token(p) {
            return Err(Refusal::Bad("Invalid Sec-WebSocket-Protocol header"));
        }
        subprotocols.push(String::from_utf8_lossy(p).into_owned());
    }
    let deflate = if allow_deflate {
        extension::parse_offers(values(head, "SEC-WEBSOCKET-EXTENSIONS")).and_then(|o| extension::negotiate_deflate(&o))
    } else {
        None
    };
    Ok(Upgrade { accept: accept_value(key), subprotocols, deflate })
}

/// `Sec-WebSocket-Accept` for a key: base64 of the SHA-1 of the key (as
/// sent) and the GUID.
pub fn accept_value(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.digest().bytes())
}

/// Headers the server writes itself in a 101, which an app's extra
/// headers may not repeat (besides the hop-by-hop ones).
const SERVER_OWNED: [&str; 5] =
    ["sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-version", "content-length", "transfer-encoding"];

/// The 101 response accepting `upgrade`: the app's chosen subprotocol (a
/// token) and its extra headers (latin-1 names and values, checked as a
/// response's; hop-by-hop ones and those the server owns are dropped, as
/// is a `Sec-WebSocket-Protocol` when `subprotocol` is given).
pub fn accept_response<'a>(
    upgrade: &Upgrade,
    subprotocol: Option<&str>,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    date: &[u8],
) -> Result<Vec<u8>, ResponseError> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(upgrade.accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = subprotocol {
        if !crate::http::is_token_str(p) {
            return Err(ResponseError::InvalidHeaderValue(format!("subprotocol {p:?}")));
        }
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(d) = &upgrade.deflate {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(d.response_value().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Server: ");
    out.extend_from_slice(server_header().as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let (value, printable) = check_app_header(name, value)?;
        let name_is = |n: &str| name.trim_ascii().eq_ignore_ascii_case(n);
        if crate::http::response::is_hop_by_hop(name)
            || SERVER_OWNED.iter().any(|n| name_is(n))
            || (subprotocol.is_some() && name_is("sec-websocket-protocol"))
        {
            continue;
        }
        encode_app_header(&mut out, name, value, printable);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Limits, Parsed};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn head(extra: &str) -> RequestHead {
        head_with("GET / HTTP/1.1", extra)
    }

    fn head_with(line: &str, extra: &str) -> RequestHead {
        let raw = format!("{line}\r\nHost: a\r\n{extra}\r\n");
        match parse_head(raw.as_bytes(), &Limits::default(), false).unwrap() {
            Parsed::Complete(h, _) => h,
            Parsed::Incomplete => panic!("incomplete: {raw:?}"),
        }
    }

    fn good(more: &str) -> String {
        format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{more}")
    }

    #[test]
    fn rfc_accept_value() {
        // RFC 6455 §1.3.
        assert_eq!(accept_value(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn accepts_a_valid_upgrade() {
        let h = head(&good("Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Protocol: v2\r\n"));
        assert!(is_upgrade(&h));
        let up = check(&h, true).unwrap();
        assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(up.subprotocols, ["chat", "superchat", "v2"]);
        assert_eq!(up.deflate, None);
        // Case and lists in Upgrade and Connection.
        let h = head(&format!(
            "Upgrade: foo, WebSocket\r\nConnection: keep-alive, UPGRADE\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n"
        ));
        assert!(is_upgrade(&h));
        assert!(check(&h, true).is_ok());
    }

    #[test]
    fn plain_http_is_not_an_upgrade() {
        assert!(!is_upgrade(&head("")));
        assert!(!is_upgrade(&head("Upgrade: h2c\r\nConnection: Upgrade\r\n")));
    }

    #[test]
    fn refusals() {
        let bad = |line: &str, extra: &str| check(&head_with(line, extra), true).unwrap_err();
        assert_eq!(bad("POST / HTTP/1.1", &good("")).status(), 400);
        assert_eq!(bad("GET / HTTP/1.0", &good("")).status(), 400);
        assert_eq!(bad("GET / HTTP/1.1", &good("Content-Length: 3\r\n")).status(), 400);
        let without = |name: &str| good("").lines().filter(|l| !l.starts_with(name)).map(|l| format!("{l}\r\n")).collect::<String>();
        assert_eq!(bad("GET / HTTP/1.1", &without("Connection")).status(), 400);
        assert_eq!(bad("GET / HTTP/1.1", &without("Sec-WebSocket-Key")).status(), 400);
        assert_eq!(bad("GET / HTTP/1.1", &without("Sec-WebSocket-Version")).status(), 400);
        let version = |v: &str| bad("GET / HTTP/1.1", &good("").replace("Version: 13", &format!("Version: {v}")));
        assert_eq!(version("8"), Refusal::Version);
        assert_eq!(version("13, 8"), Refusal::Version);
        let key = |k: &str| bad("GET / HTTP/1.1", &good("").replace(KEY, k));
        assert_eq!(key("dGhlIHNhbXBsZSBub25jZQ").status(), 400, "unpadded");
        assert_eq!(key("dGhlIHNhbXBsZSBub25jZXg=").status(), 400, "17 bytes");
        assert_eq!(key("!!!!").status(), 400);
        assert_eq!(bad("GET / HTTP/1.1", &good(&format!("Sec-WebSocket-Key: {KEY}\r\n"))).status(), 400);
        assert_eq!(bad("GET / HTTP/1.1", &good("Sec-WebSocket-Protocol: a b\r\n")).status(), 400);
    }

    #[test]
    fn refusal_responses() {
        let r = String::from_utf8(Refusal::Version.response(b"DATE")).unwrap();
        assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"), "{r}");
        assert!(r.contains("Connection: close\r\n"));
        let r = String::from_utf8(Refusal::Bad("Missing Sec-WebSocket-Key header").response(b"DATE")).unwrap();
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(r.contains("Missing Sec-WebSocket-Key header"));
    }

    #[test]
    fn negotiates_deflate_when_allowed() {
        let h = head(&good("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"));
        assert_eq!(check(&h, true).unwrap().deflate, Some(Deflate::default()));
        assert_eq!(check(&h, false).unwrap().deflate, None);
        let h = head(&good("Sec-WebSocket-Extensions: permessage-deflate; bogus=\r\n"));
        assert_eq!(check(&h, true).unwrap().deflate, None, "an unparsable header offers nothing");
    }

    #[test]
    fn the_101_response() {
        let h = head(&good("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"));
        let up = check(&h, true).unwrap();
        let headers = [("X-Custom", "yes"), ("Connection", "close"), ("Sec-WebSocket-Accept", "forged"), ("Sec-WebSocket-Protocol", "other")];
        let out = String::from_utf8(accept_response(&up, Some("chat"), headers, b"DATE").unwrap()).unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
             Server: rsgi\r\nDate: DATE\r\nX-Custom: yes\r\n\r\n"
        );
        let out = String::from_utf8(accept_response(&up, None, [("Sec-WebSocket-Protocol", "p")], b"D").unwrap()).unwrap();
        assert!(out.contains("\r\nSec-WebSocket-Protocol: p\r\n"));
        assert!(accept_response(&up, Some("a b"), [], b"D").is_err());
        assert!(accept_response(&up, None, [("Bad Name", "v")], b"D").is_err());
        assert!(accept_response(&up, None, [("X", "line\nbreak")], b"D").is_err());
    }
}
