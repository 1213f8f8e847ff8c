//! Close frames (RFC 6455 §5.5.1, §7.4): which status codes may appear on
//! the wire, parsing a peer's close payload and building the server's.
//!
//! A close payload is empty, or a two-byte big-endian code followed by a
//! UTF-8 reason; the whole payload is a control frame's, so at most 125
//! bytes. Codes follow the IANA registry as it stands (1012-1014 were
//! registered after the RFC; `websockets` and browsers accept them), so
//! the valid ones are 1000-1003, 1007-1014 and the 3000-4999 range for
//! libraries and applications. 1005, 1006 and 1015 are reserved for
//! reporting locally and never sent.

use super::utf8;

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The endpoint is going away (server shutdown, page navigated away).
pub const GOING_AWAY: u16 = 1001;
/// A protocol error (bad framing, bad close payload, an unexpected frame).
pub const PROTOCOL_ERROR: u16 = 1002;
/// No status code was present in the close frame (reported, never sent).
pub const NO_STATUS: u16 = 1005;
/// The connection was lost without a close frame (reported, never sent).
pub const ABNORMAL: u16 = 1006;
/// A text message (or a close reason) that is not UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// A message larger than the configured bound.
pub const TOO_BIG: u16 = 1009;
/// The server failed while handling the connection.
pub const INTERNAL_ERROR: u16 = 1011;

/// The largest close reason: 125 bytes of payload less the code.
pub const MAX_REASON: usize = 123;

/// True when `code` may appear in a close frame on the wire.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close frame's contents: `None` code for an empty payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: Option<u16>,
    pub reason: String,
}

impl CloseFrame {
    /// The code an application is told when the peer sent none (1005).
    pub fn code_or_no_status(&self) -> u16 {
        self.code.unwrap_or(NO_STATUS)
    }
}

/// Why a peer's close payload is refused: the close code to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadClose {
    /// One byte of payload, or a code that may not be sent (1002).
    Protocol,
    /// A reason that is not UTF-8 (1007).
    Reason,
}

impl BadClose {
    /// The close code that reports this.
    pub fn code(self) -> u16 {
        match self {
            BadClose::Protocol => PROTOCOL_ERROR,
            BadClose::Reason => INVALID_DATA,
        }
    }
}

/// Parse a peer's close payload (already unmasked, at most 125 bytes).
pub fn parse(payload: &[u8]) -> Result<CloseFrame, BadClose> {
    match payload {
        [] => Ok(CloseFrame { code: None, reason: String::new() }),
        [_] => Err(BadClose::Protocol),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_code(code) {
                return Err(BadClose::Protocol);
            }
            if !utf8::is_valid(reason) {
                return Err(BadClose::Reason);
            }
            let reason = String::from_utf8_lossy(reason).into_owned();
            Ok(CloseFrame { code: Some(code), reason })
        }
    }
}

/// The payload of a close frame the server sends: `code` (which the caller
/// has checked with [`is_valid_code`]) and `reason` cut to the longest
/// prefix of whole characters that fits in [`MAX_REASON`] bytes.
pub fn payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_follow_the_registry() {
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
            assert!(is_valid_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!is_valid_code(code), "{code}");
        }
    }

    #[test]
    fn parses_close_payloads() {
        assert_eq!(parse(b""), Ok(CloseFrame { code: None, reason: String::new() }));
        assert_eq!(parse(b"\x03\xe8"), Ok(CloseFrame { code: Some(1000), reason: String::new() }));
        assert_eq!(parse(b"\x0f\xa0bye \xc3\xa9").unwrap(), CloseFrame { code: Some(4000), reason: "bye \u{e9}".into() });
        assert_eq!(parse(b"\x03"), Err(BadClose::Protocol));
        assert_eq!(parse(b"\x03\xed"), Err(BadClose::Protocol), "1005 is never sent");
        assert_eq!(parse(b"\x00\x00"), Err(BadClose::Protocol));
        assert_eq!(parse(b"\x03\xe8\xff"), Err(BadClose::Reason));
        assert_eq!(parse(b"\x03\xe8\xc3"), Err(BadClose::Reason), "a cut character");
        assert_eq!(BadClose::Reason.code(), 1007);
        assert_eq!(CloseFrame { code: None, reason: String::new() }.code_or_no_status(), 1005);
    }

    #[test]
    fn payload_cuts_long_reasons_at_a_character() {
        assert_eq!(payload(1000, ""), b"\x03\xe8");
        assert_eq!(payload(4001, "ok"), b"\x0f\xa1ok");
        let long = "\u{e9}".repeat(100); // 200 bytes
        let p = payload(1000, &long);
        assert_eq!(p.len(), 2 + 122, "61 whole characters, not half of the 62nd");
        assert_eq!(parse(&p).unwrap().reason, "\u{e9}".repeat(61));
        let ascii = "x".repeat(500);
        assert_eq!(payload(1000, &ascii).len(), 125);
    }
}
