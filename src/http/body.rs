//! Request body framing: how the body is delimited ([`Framing`], decided
//! from Content-Length / Transfer-Encoding by `framing`) and the
//! decoder that turns received bytes into body bytes ([`BodyDecoder`]), with
//! the chunked grammar of RFC 9112 §7.1 as a state machine.
//!
//! Pure: the caller feeds bytes and says how many body bytes it can take
//! (which is how a full buffer applies back-pressure). Runs on the worker's
//! I/O thread; never touches Python.

use super::error::{lossy, HttpError};
use super::fields::parse_fields;
use super::request::{HeaderMap, Version};
use super::{trim_ows, Limits};

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no Content-Length, or Content-Length: 0).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Body framing from Content-Length / Transfer-Encoding (RFC 9112 §6), with
/// every ambiguity refused. The bool is true when a transfer coding other
/// than chunked means the connection must close after the response.
pub(crate) fn framing(headers: &HeaderMap, version: Version, limits: &Limits) -> Result<(Framing, bool), HttpError> {
    let mut content_length: Option<&[u8]> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut force_close = false;

    for (name, value) in headers {
        match name.as_ref() {
            "CONTENT-LENGTH" => {
                if content_length.is_some() {
                    return Err(HttpError::InvalidHeader("CONTENT-LENGTH".into()));
                }
                content_length = Some(value);
            }
            "TRANSFER-ENCODING" => {
                transfer_encoding = true;
                for coding in value.split(|&b| b == b',').map(trim_ows) {
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        if chunked {
                            return Err(HttpError::InvalidHeader("TRANSFER-ENCODING".into()));
                        }
                        chunked = true;
                    } else if coding.eq_ignore_ascii_case(b"identity") {
                        if chunked {
                            return Err(HttpError::InvalidHeader("TRANSFER-ENCODING".into()));
                        }
                    } else if [&b"compress"[..], b"deflate", b"gzip"]
                        .iter()
                        .any(|c| coding.eq_ignore_ascii_case(c))
                    {
                        if chunked {
                            return Err(HttpError::InvalidHeader("TRANSFER-ENCODING".into()));
                        }
                        force_close = true;
                    } else {
                        return Err(HttpError::UnsupportedTransferCoding(lossy(value)));
                    }
                }
            }
            _ => {}
        }
    }

    if transfer_encoding && !chunked {
        return Err(HttpError::InvalidHeader("TRANSFER-ENCODING".into()));
    }
    if chunked {
        if !version.at_least_11() {
            return Err(HttpError::InvalidHeader("TRANSFER-ENCODING".into()));
        }
        if content_length.is_some() {
            return Err(HttpError::InvalidHeader("CONTENT-LENGTH".into()));
        }
        return Ok((Framing::Chunked, force_close));
    }
    match content_length {
        None => Ok((Framing::Empty, force_close)),
        Some(v) => {
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::InvalidHeader("CONTENT-LENGTH".into()));
            }
            let n: u64 = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| HttpError::InvalidHeader("CONTENT-LENGTH".into()))?;
            if limits.request_body > 0 && n > limits.request_body {
                return Err(HttpError::BodyTooLarge(limits.request_body));
            }
            Ok((if n == 0 { Framing::Empty } else { Framing::Length(n) }, force_close))
        }
    }
}

/// Longest chunk-size line (size, extensions) accepted, when
/// `limit_request_field_size` gives none (gunicorn's
/// `DEFAULT_MAX_CHUNK_SIZE_LINE`).
const MAX_CHUNK_SIZE_LINE: usize = 8190;

/// Where the chunked decoder stands in the grammar. One variant per
/// position; each carries what that position needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedState {
    /// Reading hex digits of a chunk size.
    Size { size: u64, digits: usize, line: usize },
    /// After the size: optional whitespace before `;` (BWS).
    SizeWhitespace { size: u64, line: usize },
    /// Inside chunk extensions (RFC 9112 §7.1.1), up to the line's CR.
    Extension { size: u64, line: usize, at: ExtPos },
    /// Saw CR ending the size line; expecting LF.
    SizeLf { size: u64 },
    /// Inside chunk data, this many bytes left.
    Data { remaining: u64 },
    /// After data: expecting CR.
    DataCr,
    /// After data: expecting LF.
    DataLf,
    /// After the last chunk: collecting the trailer section (including its
    /// final empty line) until it ends.
    Trailers { section: Vec<u8> },
    /// The body is complete.
    Done,
}

/// Where the chunk-extension grammar stands:
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtPos {
    /// After `;`: optional whitespace, then a name.
    BeforeName,
    /// Inside the name token.
    Name,
    /// After the name: whitespace, `=`, `;` or the end of the line.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    BeforeValue,
    /// Inside a token value.
    Value,
    /// Inside a quoted-string value; `escaped` after a backslash.
    Quoted { escaped: bool },
    /// After a value: whitespace, `;` or the end of the line.
    AfterValue,
}

/// Decodes a request body from the bytes that follow the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// Content-Length framing: bytes still expected.
    Length { remaining: u64 },
    /// Chunked framing.
    Chunked { state: ChunkedState, total: u64 },
}

/// What one call to [`BodyDecoder::decode`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used (framing and data).
    pub consumed: usize,
    /// The body ended within this input.
    pub done: bool,
    /// Trailer fields, once the chunked body ended with some.
    pub trailers: HeaderMap,
}

impl BodyDecoder {
    /// A decoder for `framing`; `None` when there is no body to decode.
    pub fn new(framing: Framing) -> Option<BodyDecoder> {
        match framing {
            Framing::Empty => None,
            Framing::Length(n) => Some(BodyDecoder::Length { remaining: n }),
            Framing::Chunked => Some(BodyDecoder::Chunked {
                state: ChunkedState::Size { size: 0, digits: 0, line: 0 },
                total: 0,
            }),
        }
    }

    /// True once the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            BodyDecoder::Length { remaining: 0 } | BodyDecoder::Chunked { state: ChunkedState::Done, .. }
        )
    }

    /// Decode from `input`, appending at most `room` body bytes to `out`.
    /// Stops early when `room` runs out; the caller keeps the unconsumed
    /// input and calls again when there is room.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize, limits: &Limits) -> Result<Decoded, HttpError> {
        match self {
            BodyDecoder::Length { remaining } => {
                let take = (input.len() as u64).min(*remaining).min(room as u64) as usize;
                out.extend_from_slice(&input[..take]);
                *remaining -= take as u64;
                Ok(Decoded { consumed: take, done: *remaining == 0, trailers: Vec::new() })
            }
            BodyDecoder::Chunked { state, total } => decode_chunked(state, total, input, out, room, limits),
        }
    }
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u64),
        b'a'..=b'f' => Some((b - b'a' + 10) as u64),
        b'A'..=b'F' => Some((b - b'A' + 10) as u64),
        _ => None,
    }
}

fn decode_chunked(
    state: &mut ChunkedState,
    total: &mut u64,
    input: &[u8],
    out: &mut Vec<u8>,
    mut room: usize,
    limits: &Limits,
) -> Result<Decoded, HttpError> {
    use ChunkedState::*;
    let line_limit = match limits.request_field_size {
        0 => MAX_CHUNK_SIZE_LINE,
        n => n,
    };
    // The most body bytes a request may have: `limit_request_body`, or
    // what the body's byte count can hold when there is no limit.
    let body_bound = match limits.request_body {
        0 => u64::MAX,
        n => n,
    };
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match state {
            Size { size, digits, line } => {
                *line += 1;
                if *line > line_limit {
                    return Err(HttpError::InvalidChunkSize(format!("line over {line_limit} bytes")));
                }
                if let Some(v) = hex_value(b) {
                    *size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(v))
                        .ok_or_else(|| HttpError::InvalidChunkSize("chunk size overflows".into()))?;
                    *digits += 1;
                    // A size only grows with more digits: once the body
                    // could not fit, it is refused now, before any data.
                    if total.checked_add(*size).is_none_or(|t| t > body_bound) {
                        return Err(HttpError::BodyTooLarge(body_bound));
                    }
                } else if *digits == 0 {
                    return Err(HttpError::InvalidChunkSize(lossy(&[b])));
                } else {
                    match b {
                        b'\r' => *state = SizeLf { size: *size },
                        b' ' | b'\t' => *state = SizeWhitespace { size: *size, line: *line },
                        b';' => *state = Extension { size: *size, line: *line, at: ExtPos::BeforeName },
                        _ => return Err(HttpError::InvalidChunkSize(lossy(&[b]))),
                    }
                }
            }
            SizeWhitespace { size, line } => {
                *line += 1;
                if *line > line_limit {
                    return Err(HttpError::InvalidChunkSize(format!("line over {line_limit} bytes")));
                }
                match b {
                    b' ' | b'\t' => {}
                    b';' => *state = Extension { size: *size, line: *line, at: ExtPos::BeforeName },
                    // Whitespace after the size is allowed only before an
                    // extension (RFC 9112 §7.1.1 BWS).
                    _ => return Err(HttpError::InvalidChunkSize("whitespace after chunk size".into())),
                }
            }
            Extension { size, line, at } => {
                *line += 1;
                if *line > line_limit {
                    return Err(HttpError::InvalidChunkSize(format!("line over {line_limit} bytes")));
                }
                let bad = || HttpError::InvalidChunkExtension("invalid chunk extension");
                let qdtext = |b: u8| b == b'\t' || b == b' ' || b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b) || b >= 0x80;
                let ws = b == b' ' || b == b'\t';
                *at = match (*at, b) {
                    (ExtPos::Quoted { escaped: true }, _) => {
                        if !(b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80) {
                            return Err(HttpError::InvalidChunkExtension("invalid quoted-pair"));
                        }
                        ExtPos::Quoted { escaped: false }
                    }
                    (ExtPos::Quoted { .. }, b'\\') => ExtPos::Quoted { escaped: true },
                    (ExtPos::Quoted { .. }, b'"') => ExtPos::AfterValue,
                    (ExtPos::Quoted { .. }, _) if qdtext(b) => ExtPos::Quoted { escaped: false },
                    (ExtPos::Quoted { .. }, _) => return Err(HttpError::InvalidChunkExtension("invalid character in quoted-string")),
                    (ExtPos::Name | ExtPos::AfterName | ExtPos::Value | ExtPos::AfterValue, b'\r') => {
                        *state = SizeLf { size: *size };
                        i += 1;
                        continue;
                    }
                    (ExtPos::BeforeName | ExtPos::BeforeValue | ExtPos::AfterName | ExtPos::AfterValue, _) if ws => *at,
                    (ExtPos::Name | ExtPos::Value, _) if ws => if *at == ExtPos::Name { ExtPos::AfterName } else { ExtPos::AfterValue },
                    (ExtPos::BeforeName | ExtPos::Name, _) if super::is_tchar(b) => ExtPos::Name,
                    (ExtPos::Name | ExtPos::AfterName, b'=') => ExtPos::BeforeValue,
                    (ExtPos::Name | ExtPos::AfterName | ExtPos::Value | ExtPos::AfterValue, b';') => ExtPos::BeforeName,
                    (ExtPos::BeforeValue, b'"') => ExtPos::Quoted { escaped: false },
                    (ExtPos::BeforeValue | ExtPos::Value, _) if super::is_tchar(b) => ExtPos::Value,
                    _ => return Err(bad()),
                };
            }
            SizeLf { size } => {
                if b != b'\n' {
                    return Err(HttpError::InvalidChunkExtension("bare CR not allowed"));
                }
                *state = if *size == 0 { Trailers { section: Vec::new() } } else { Data { remaining: *size } };
            }
            Data { remaining } => {
                if room == 0 {
                    return Ok(Decoded { consumed: i, done: false, trailers: Vec::new() });
                }
                let take = ((input.len() - i) as u64).min(*remaining).min(room as u64) as usize;
                out.extend_from_slice(&input[i..i + take]);
                *remaining -= take as u64;
                // Cannot pass the bound: the chunk's size was checked.
                *total += take as u64;
                room -= take;
                i += take;
                if *remaining == 0 {
                    *state = DataCr;
                }
                continue;
            }
            DataCr => {
                if b != b'\r' {
                    return Err(HttpError::ChunkMissingTerminator);
                }
                *state = DataLf;
            }
            DataLf => {
                if b != b'\n' {
                    return Err(HttpError::ChunkMissingTerminator);
                }
                *state = Size { size: 0, digits: 0, line: 0 };
            }
            Trailers { section } => {
                section.push(b);
                if section.len() > limits.max_header_block() {
                    return Err(HttpError::HeadersTooLarge);
                }
                if section == b"\r\n" || section.ends_with(b"\r\n\r\n") {
                    let trailers = parse_fields(section, limits, true)?;
                    *state = Done;
                    return Ok(Decoded { consumed: i + 1, done: true, trailers });
                }
                if b == b'\n' && (section.len() < 2 || section[section.len() - 2] != b'\r') {
                    return Err(HttpError::InvalidHeader("bare LF as line terminator".into()));
                }
            }
            Done => return Ok(Decoded { consumed: i, done: true, trailers: Vec::new() }),
        }
        i += 1;
    }
    Ok(Decoded { consumed: i, done: matches!(state, Done), trailers: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `input` fed in pieces of `step` bytes with unlimited room.
    fn run(framing: Framing, input: &[u8], step: usize) -> Result<(Vec<u8>, usize, HeaderMap), HttpError> {
        let limits = Limits::default();
        let mut d = BodyDecoder::new(framing).unwrap();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut used = 0;
        let mut trailers = Vec::new();
        for piece in input.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            let r = d.decode(&pending, &mut out, usize::MAX, &limits)?;
            used += r.consumed;
            pending.drain(..r.consumed);
            if r.done {
                trailers = r.trailers;
                return Ok((out, used, trailers));
            }
        }
        assert!(!d.is_done());
        Ok((out, used, trailers))
    }

    /// Every split of `input` into two reads gives the same result.
    fn all_splits(framing: Framing, input: &[u8]) -> (Vec<u8>, usize) {
        let (whole, used, _) = run(framing, input, input.len()).unwrap();
        for step in 1..input.len() {
            let (out, u, _) = run(framing, input, step).unwrap();
            assert_eq!((&out, u), (&whole, used), "step {step}");
        }
        (whole, used)
    }

    #[test]
    fn length_body() {
        let (out, used) = all_splits(Framing::Length(5), b"hello, next request");
        assert_eq!(out, b"hello");
        assert_eq!(used, 5);
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let body = b"5;name=val;q=\"a \\\" b\"\r\nhello\r\n0006\r\n world\r\nA \t;x\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\nGET";
        let (out, used) = all_splits(Framing::Chunked, body);
        assert_eq!(out, b"hello world0123456789");
        assert_eq!(used, body.len() - 3);
        let (_, _, trailers) = run(Framing::Chunked, body, body.len()).unwrap();
        assert_eq!(trailers, vec![("X-TRAILER".into(), b"yes".to_vec())]);
    }

    #[test]
    fn chunked_empty() {
        let (out, used) = all_splits(Framing::Chunked, b"0\r\n\r\n");
        assert!(out.is_empty());
        assert_eq!(used, 5);
    }

    #[test]
    fn chunked_errors() {
        let err = |b: &[u8]| run(Framing::Chunked, b, b.len()).unwrap_err().status();
        assert_eq!(err(b"x\r\n"), 400);
        assert_eq!(err(b"-5\r\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"0x5\r\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b" 5\r\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"5 \r\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"5\rhello\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"5\r\nhelloXX0\r\n\r\n"), 400);
        assert_eq!(err(b"5\r\nhello\n0\r\n\r\n"), 400);
        assert_eq!(err(b"10000000000000000\r\n"), 400);
        assert_eq!(err(b"ffffffffffffffffff\r\n"), 400);
        assert_eq!(err(b"5;a\x01\r\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"0\r\nContent-Length: 5\r\n\r\n"), 400);
        assert_eq!(err(b"0\r\nX: y\n\r\n"), 400);
        assert_eq!(err(b"2;=x\r\nhi\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"2;a=\r\nhi\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"2;a=\"x\r\nhi\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"2;a b\r\nhi\r\n0\r\n\r\n"), 400);
        assert_eq!(err(b"2;a=b c\r\nhi\r\n0\r\n\r\n"), 400);
    }

    #[test]
    fn room_applies_back_pressure() {
        let limits = Limits::default();
        let mut d = BodyDecoder::new(Framing::Chunked).unwrap();
        let mut out = Vec::new();
        let input = b"a\r\n0123456789\r\n0\r\n\r\n";
        let r = d.decode(input, &mut out, 4, &limits).unwrap();
        assert_eq!(out, b"0123");
        assert!(!r.done);
        let r2 = d.decode(&input[r.consumed..], &mut out, 100, &limits).unwrap();
        assert!(r2.done);
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn chunk_size_that_cannot_fit_is_refused_before_its_data() {
        let limits = Limits { request_body: 16, ..Limits::default() };
        let mut d = BodyDecoder::new(Framing::Chunked).unwrap();
        let mut out = Vec::new();
        let r = d.decode(b"a\r\n0123456789\r\n", &mut out, 100, &limits).unwrap();
        assert_eq!(r.consumed, 15);
        assert_eq!(d.decode(b"7", &mut out, 100, &limits).unwrap_err(), HttpError::BodyTooLarge(16));
        let unlimited = Limits::default();
        let mut d = BodyDecoder::new(Framing::Chunked).unwrap();
        d.decode(b"1\r\nx\r\n", &mut out, 100, &unlimited).unwrap();
        let err = d.decode(b"ffffffffffffffff", &mut out, 100, &unlimited).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn body_limit() {
        let limits = Limits { request_body: 3, ..Limits::default() };
        let mut d = BodyDecoder::new(Framing::Chunked).unwrap();
        let err = d.decode(b"5\r\nhello\r\n0\r\n\r\n", &mut Vec::new(), 100, &limits).unwrap_err();
        assert_eq!(err.status(), 413);
    }
}
