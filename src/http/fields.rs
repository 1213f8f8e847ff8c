//! Header fields: a header block (or a chunked body's trailer section)
//! tokenized by `httparse` into (NAME, value) pairs, after the checks
//! httparse is lenient about (bare LF) and the rewrites gunicorn's flags
//! permit (obs-fold, whitespace before the colon), with the per-line size
//! limit.
//!
//! Pure: bytes in, fields or an `HttpError` out. Used by `request` for heads
//! and by `body` for trailers, on the worker's I/O thread.

use std::borrow::Cow;

use super::error::{lossy, HttpError};
use super::request::HeaderMap;
use super::{is_field_value_byte, is_token, trim_ows, Limits};

/// Fields a trailer section may not carry (RFC 9110 §6.5.1).
const FORBIDDEN_TRAILERS: [&str; 6] =
    ["HOST", "CONTENT-LENGTH", "TRANSFER-ENCODING", "TRAILER", "AUTHORIZATION", "TE"];

/// Headers kept on the stack by `httparse` before falling back to the heap.
const STACK_HEADERS: usize = 32;

/// What the first bytes of a header block already decide, whether the rest
/// has arrived or not: a bare LF, or more than `max` bytes, whichever comes
/// first in the block (a bare LF at offset `max` counts as first, as the
/// earliest shorter read would see it). The same answer however the bytes
/// were split into reads.
pub(crate) fn check_block_prefix(block: &[u8], max: usize) -> Result<(), HttpError> {
    let bare = memchr::memchr_iter(b'\n', block).find(|&i| i == 0 || block[i - 1] != b'\r');
    match bare {
        Some(i) if i <= max => Err(HttpError::InvalidHeader("bare LF as line terminator".into())),
        _ if block.len() > max => Err(HttpError::HeadersTooLarge),
        _ => Ok(()),
    }
}

/// Tokenize a header block (ending in the empty line) into fields with
/// `httparse`, after checking what httparse is lenient about (bare LF) and
/// rewriting what gunicorn's flags permit (obs-fold, spaces before colons).
pub(crate) fn parse_fields(block: &[u8], limits: &Limits, trailer: bool) -> Result<HeaderMap, HttpError> {
    if block == b"\r\n" {
        return Ok(Vec::new());
    }
    // One pass over the line feeds: bare LF, obs-fold, and the count.
    let mut line_count = 0usize;
    let mut folded = false;
    for i in memchr::memchr_iter(b'\n', block) {
        if i == 0 || block[i - 1] != b'\r' {
            return Err(HttpError::InvalidHeader("bare LF as line terminator".into()));
        }
        folded |= matches!(block.get(i + 1), Some(b' ' | b'\t'));
        line_count += 1;
    }
    let line_count = line_count - 1;
    let normalized;
    let block = if folded || space_before_colon(block) {
        normalized = normalize(block, limits)?;
        &normalized[..]
    } else {
        block
    };

    let line_count = if folded { memchr::memchr_iter(b'\n', block).count() - 1 } else { line_count };
    if line_count > limits.effective_fields() {
        return Err(HttpError::TooManyHeaders);
    }
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let slots: &mut [httparse::Header] = if line_count <= STACK_HEADERS {
        &mut stack
    } else {
        heap = vec![httparse::EMPTY_HEADER; line_count];
        &mut heap
    };
    let parsed = match httparse::parse_headers(block, slots) {
        Ok(httparse::Status::Complete((_, h))) => h,
        Ok(httparse::Status::Partial) => {
            return Err(HttpError::InvalidHeader("incomplete header block".into()))
        }
        Err(e) => return Err(field_error(block, e)),
    };

    let field_size = limits.effective_field_size();
    let mut out = Vec::with_capacity(parsed.len());
    let base = block.as_ptr() as usize;
    for (i, h) in parsed.iter().enumerate() {
        let start = h.name.as_ptr() as usize - base;
        let end = match parsed.get(i + 1) {
            Some(next) => next.name.as_ptr() as usize - base,
            None => block.len() - 2,
        };
        if end - start > field_size {
            return Err(HttpError::HeaderFieldTooLarge);
        }
        let value = trim_ows(h.value);
        if !value.iter().all(|&b| is_field_value_byte(b)) {
            return Err(HttpError::InvalidHeader(h.name.to_ascii_uppercase()));
        }
        let name = field_name(h.name);
        if trailer && FORBIDDEN_TRAILERS.contains(&name.as_ref()) {
            return Err(HttpError::InvalidHeaderName(name.into_owned()));
        }
        out.push((name, value.to_vec()));
    }
    Ok(out)
}

/// Field names common enough to be kept as static strings (uppercase, as
/// the parsed head keeps names), so most requests allocate no name.
const COMMON_NAMES: [&str; 24] = [
    "HOST",
    "USER-AGENT",
    "ACCEPT",
    "ACCEPT-ENCODING",
    "ACCEPT-LANGUAGE",
    "CONNECTION",
    "CONTENT-LENGTH",
    "CONTENT-TYPE",
    "COOKIE",
    "REFERER",
    "ORIGIN",
    "AUTHORIZATION",
    "CACHE-CONTROL",
    "PRAGMA",
    "IF-NONE-MATCH",
    "IF-MODIFIED-SINCE",
    "UPGRADE-INSECURE-REQUESTS",
    "X-FORWARDED-FOR",
    "X-FORWARDED-PROTO",
    "X-REQUEST-ID",
    "SEC-FETCH-SITE",
    "SEC-FETCH-MODE",
    "SEC-FETCH-DEST",
    "TRANSFER-ENCODING",
];

/// A field name, uppercased: a static string for the common ones.
fn field_name(name: &str) -> Cow<'static, str> {
    match COMMON_NAMES.iter().find(|known| known.eq_ignore_ascii_case(name)) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_ascii_uppercase()),
    }
}

/// Name the field whose line httparse refused, for the error message.
fn field_error(block: &[u8], e: httparse::Error) -> HttpError {
    // Find the first line that is not `token ":" field-value`.
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        match memchr::memchr(b':', line) {
            Some(c) if c > 0 && is_token(&line[..c]) => {
                if !line[c + 1..].iter().all(|&b| is_field_value_byte(b)) {
                    return HttpError::InvalidHeader(lossy(&line[..c]).to_ascii_uppercase());
                }
            }
            Some(c) if c > 0 => return HttpError::InvalidHeaderName(lossy(&line[..c])),
            _ => return HttpError::InvalidHeader(lossy(line)),
        }
    }
    HttpError::InvalidHeader(e.to_string())
}

/// True when some colon follows a space or tab (`name :`), which httparse
/// refuses and gunicorn's flags may permit.
fn space_before_colon(block: &[u8]) -> bool {
    memchr::memchr_iter(b':', block).any(|i| i > 0 && matches!(block[i - 1], b' ' | b'\t'))
}

/// True when the block has an obs-fold line or whitespace before a colon.
#[cfg(test)]
fn needs_normalizing(block: &[u8]) -> bool {
    let folded = block.windows(3).any(|w| w[0] == b'\r' && w[1] == b'\n' && matches!(w[2], b' ' | b'\t'));
    folded || space_before_colon(block)
}

/// Rewrite obs-fold and `name :` per the permitting flags, or refuse them.
/// Only the rare requests that carry either reach this copy.
fn normalize(block: &[u8], limits: &Limits) -> Result<Vec<u8>, HttpError> {
    let field_size = limits.effective_field_size();
    let mut out: Vec<u8> = Vec::with_capacity(block.len());
    let mut current_len = 0usize;
    let mut last_name = String::new();
    let lines: Vec<&[u8]> = block[..block.len() - 4].split(|&b| b == b'\n').collect();
    for raw in lines {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if matches!(line.first(), Some(b' ' | b'\t')) && !out.is_empty() {
            if !limits.permit_obsolete_folding {
                return Err(HttpError::ObsoleteFolding(last_name));
            }
            current_len += line.len() + 2;
            if current_len > field_size {
                return Err(HttpError::HeaderFieldTooLarge);
            }
            // Replace the previous CRLF with one space plus the folded text.
            out.truncate(out.len() - 2);
            while matches!(out.last(), Some(b' ' | b'\t')) {
                out.pop();
            }
            out.push(b' ');
            out.extend_from_slice(trim_ows(line));
            out.extend_from_slice(b"\r\n");
            continue;
        }
        current_len = line.len() + 2;
        match memchr::memchr(b':', line) {
            Some(c) if c > 0 => {
                let mut name = &line[..c];
                if limits.strip_header_spaces {
                    while let [rest @ .., b' ' | b'\t'] = name {
                        name = rest;
                    }
                }
                if !is_token(name) {
                    return Err(HttpError::InvalidHeaderName(lossy(name)));
                }
                last_name = lossy(name).to_ascii_uppercase();
                out.extend_from_slice(name);
                out.extend_from_slice(&line[c..]);
            }
            _ => return Err(HttpError::InvalidHeader(lossy(line))),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_are_static_and_uppercase() {
        assert!(matches!(field_name("host"), Cow::Borrowed("HOST")));
        assert!(matches!(field_name("User-Agent"), Cow::Borrowed("USER-AGENT")));
        assert!(matches!(field_name("X-Custom-1"), Cow::Owned(ref n) if n == "X-CUSTOM-1"));
        assert!(matches!(field_name("hosts"), Cow::Owned(ref n) if n == "HOSTS"));
        for name in COMMON_NAMES {
            assert_eq!(name, name.to_ascii_uppercase());
        }
    }

    #[test]
    fn fields_and_trailers() {
        let limits = Limits::default();
        let f = parse_fields(b"A: 1\r\nB:  two \r\n\r\n", &limits, false).unwrap();
        assert_eq!(f, vec![("A".into(), b"1".to_vec()), ("B".into(), b"two".to_vec())]);
        assert!(parse_fields(b"\r\n", &limits, false).unwrap().is_empty());
        assert_eq!(parse_fields(b"Host: x\r\n\r\n", &limits, true).unwrap_err().status(), 400);
        assert_eq!(parse_fields(b"A: 1\nB: 2\r\n\r\n", &limits, false).unwrap_err().status(), 400);
    }

    #[test]
    fn normalizing_needs_the_flags() {
        let mut limits = Limits::default();
        let folded = b"A: 1\r\n 2\r\nB : 3\r\n\r\n";
        assert!(needs_normalizing(folded));
        assert_eq!(normalize(folded, &limits).unwrap_err(), HttpError::ObsoleteFolding("A".into()));
        limits.permit_obsolete_folding = true;
        limits.strip_header_spaces = true;
        assert_eq!(normalize(folded, &limits).unwrap(), b"A: 1 2\r\nB: 3\r\n\r\n");
        assert_eq!(check_block_prefix(b"a: b\nc", 3).unwrap_err().status(), 431);
        assert_eq!(check_block_prefix(b"a: b\nc", 4).unwrap_err().status(), 400);
        assert_eq!(check_block_prefix(b"a: b\r\n", 6), Ok(()));
        assert!(check_block_prefix(b"\nb", 10).is_err());
    }
}
