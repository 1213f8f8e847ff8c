//! `HttpError`: every way a client's bytes can be refused, and the one place
//! that maps a refusal to its status code.
//!
//! Pure data: no I/O, no Python. Used by the parser (`request`, `body`,
//! `proxy`) and by the worker's I/O loop, which answers with `status()` and
//! closes the connection.

use thiserror::Error;

/// A request the server refuses. Each variant knows its status (see
/// [`HttpError::status`]); the message is what the error log and the error
/// page say.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("Invalid HTTP request line: {0:?}")]
    InvalidRequestLine(String),
    #[error("Invalid HTTP method: {0:?}")]
    InvalidMethod(String),
    #[error("Invalid HTTP Version: {0:?}")]
    InvalidVersion(String),
    #[error("HTTP Version Not Supported: {0:?}")]
    UnsupportedVersion(String),
    #[error("Invalid HTTP Header: {0:?}")]
    InvalidHeader(String),
    #[error("Invalid HTTP header name: {0:?}")]
    InvalidHeaderName(String),
    #[error("Obsolete line folding is unacceptable: {0:?}")]
    ObsoleteFolding(String),
    /// The limit; how far past it the line went is not said, since that
    /// depends on how much had arrived.
    #[error("Request Line is too large (more than {0} bytes)")]
    RequestLineTooLong(usize),
    #[error("limit request headers fields")]
    TooManyHeaders,
    #[error("limit request headers fields size")]
    HeaderFieldTooLarge,
    #[error("max buffer headers")]
    HeadersTooLarge,
    #[error("Unsupported transfer coding: {0:?}")]
    UnsupportedTransferCoding(String),
    #[error("Unable to comply with expectation: {0:?}")]
    ExpectationFailed(String),
    #[error("Invalid chunk size: {0}")]
    InvalidChunkSize(String),
    #[error("Invalid chunk terminator is not '\\r\\n'")]
    ChunkMissingTerminator,
    #[error("Invalid chunk extension: {0}")]
    InvalidChunkExtension(&'static str),
    #[error("Request body is larger than the limit of {0} bytes")]
    BodyTooLarge(u64),
    #[error("Contradictory scheme headers")]
    ContradictorySchemeHeaders,
    #[error("Invalid PROXY line: {0:?}")]
    InvalidProxyLine(String),
    #[error("Invalid PROXY header: {0}")]
    InvalidProxyHeader(&'static str),
    #[error("Proxy request from {0:?} not allowed")]
    ForbiddenProxy(String),
    #[error("Request path {path:?} does not start with SCRIPT_NAME {script_name:?}")]
    ScriptNameMismatch { path: String, script_name: String },
}

impl HttpError {
    /// The status code a client gets for this error. This is the only place
    /// where a parse failure becomes a number.
    pub fn status(&self) -> u16 {
        use HttpError::*;
        match self {
            RequestLineTooLong(..) => 414,
            TooManyHeaders | HeaderFieldTooLarge | HeadersTooLarge => 431,
            UnsupportedTransferCoding(_) => 501,
            UnsupportedVersion(_) => 505,
            ExpectationFailed(_) => 417,
            BodyTooLarge(_) => 413,
            ForbiddenProxy(_) => 403,
            ScriptNameMismatch { .. } => 500,
            InvalidRequestLine(_) | InvalidMethod(_) | InvalidVersion(_) | InvalidHeader(_)
            | InvalidHeaderName(_) | ObsoleteFolding(_) | InvalidChunkSize(_)
            | ChunkMissingTerminator | InvalidChunkExtension(_) | ContradictorySchemeHeaders
            | InvalidProxyLine(_) | InvalidProxyHeader(_) => 400,
        }
    }

    /// The reason phrase sent with [`HttpError::status`].
    pub fn reason(&self) -> &'static str {
        super::response::reason_phrase(self.status())
    }
}

/// Render bytes from the wire for an error message: printable ASCII as is,
/// everything else escaped, and never longer than a log line should be.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let mut out = String::with_capacity(bytes.len().min(MAX));
    for &b in bytes.iter().take(MAX) {
        match b {
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(HttpError::RequestLineTooLong(4094).status(), 414);
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        assert_eq!(HttpError::UnsupportedTransferCoding("x".into()).status(), 501);
        assert_eq!(HttpError::UnsupportedVersion("HTTP/2.0".into()).status(), 505);
        assert_eq!(HttpError::BodyTooLarge(1).status(), 413);
        assert_eq!(HttpError::InvalidHeader("X".into()).status(), 400);
        assert_eq!(HttpError::BodyTooLarge(1).reason(), "Payload Too Large");
    }

    #[test]
    fn lossy_escapes() {
        assert_eq!(lossy(b"a\r\n\x00\xff"), "a\\x0d\\x0a\\x00\\xff");
    }
}
