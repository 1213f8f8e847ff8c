//! The receiving half of a WebSocket connection: bytes from the socket in,
//! whole messages and control frames out, or the close code that fails the
//! connection.
//!
//! The caller owns the read buffer. [`Receiver::feed`] takes whatever has
//! been read, uses what it can (a frame header only once it is complete;
//! payload bytes as soon as they arrive, unmasked into the message being
//! assembled) and says how many bytes it used, so the caller drains them
//! and keeps the rest for after its next read. At most one event comes out
//! of a call, so the caller can stop feeding while the app is not
//! receiving (back-pressure is the caller's: it reads no more).
//!
//! Every verdict depends only on the bytes up to the one that decides it,
//! not on how the reads cut them (the `websocket` fuzz target checks this):
//! - a frame that breaks RFC 6455 §5 (see `frame`), RSV1 without
//!   permessage-deflate or on anything but a message's first frame, a
//!   continuation with no message, a new message inside a fragmented one,
//!   or a close payload that is one byte or carries a code that may not be
//!   sent: 1002;
//! - a text message (or close reason) that is not UTF-8: 1007, at the
//!   first byte that makes it invalid for an uncompressed message;
//! - a message whose frames announce more than the size bound, decided by
//!   the frame header that passes it; a compressed one whose compressed
//!   form passes the bound plus DEFLATE's overhead, or that decompresses
//!   past the bound: 1009; one that does not decompress: 1002.
//!
//! Pings come out as events for the caller to answer with a pong (it needs
//! no app); after a close frame or a failure the receiver uses and ignores
//! everything (RFC 6455 §5.5.1: nothing after a close is data).

use super::close::{self, CloseFrame};
use super::deflate::{InflateError, Inflater};
use super::frame::{apply_mask, parse_header, Header, Opcode, Peer};
use super::utf8::Validator;

/// What the peer sent: a whole message or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// Answer with a pong carrying the same payload.
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The peer's close frame; the caller answers with its own close
    /// (usually echoing the code) and closes the connection.
    Close(CloseFrame),
}

/// The connection must fail: send a close frame with this code and reason,
/// then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

/// What one [`Receiver::feed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input used; the caller drains them.
    pub used: usize,
    /// An event, after which the caller feeds the rest again.
    pub event: Option<Incoming>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// A data message being assembled from its frames.
struct Message {
    kind: Kind,
    /// RSV1 on the first frame: the payloads are compressed.
    compressed: bool,
    data: Vec<u8>,
    /// For an uncompressed text message, its UTF-8 so far.
    utf8: Option<Validator>,
}

enum State {
    /// Waiting for a frame header.
    Header,
    /// Inside a frame's payload, `done` bytes of it taken.
    Payload { header: Header, done: u64 },
    /// A close frame came, or the connection failed.
    Closed,
}

/// The receiving state of one connection.
pub struct Receiver {
    peer: Peer,
    max_message: usize,
    inflater: Option<Inflater>,
    state: State,
    message: Option<Message>,
    control: Vec<u8>,
}

/// The most a message buffer reserves ahead of the bytes that fill it, so
/// a header announcing a large frame does not allocate before the peer
/// sends it.
const RESERVE_AHEAD: usize = 64 * 1024;

impl Receiver {
    /// A receiver for frames from `peer` (a server receives from
    /// [`Peer::Client`]), refusing messages over `max_message` bytes, with
    /// the decompressor when permessage-deflate was agreed.
    pub fn new(peer: Peer, max_message: usize, inflater: Option<Inflater>) -> Self {
        Receiver { peer, max_message, inflater, state: State::Header, message: None, control: Vec::new() }
    }

    /// True once a close frame came or the connection failed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while a fragmented message is under way.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Use what can be used of `input`; see the module documentation.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed, Violation> {
        let mut at = 0;
        loop {
            match &mut self.state {
                State::Closed => return Ok(Fed { used: input.len(), event: None }),
                State::Header => match parse_header(&input[at..], self.peer) {
                    Err(e) => return Err(self.fail(close::PROTOCOL_ERROR, e.reason())),
                    Ok(None) => return Ok(Fed { used: at, event: None }),
                    Ok(Some((header, n))) => {
                        at += n;
                        self.start_frame(&header)?;
                        self.state = State::Payload { header, done: 0 };
                    }
                },
                State::Payload { header, done } => {
                    let header = *header;
                    let take = (header.len - *done).min((input.len() - at) as u64) as usize;
                    let offset = *done;
                    *done += take as u64;
                    let finished = *done == header.len;
                    let piece = &input[at..at + take];
                    at += take;
                    self.take_payload(&header, piece, offset)?;
                    if !finished {
                        return Ok(Fed { used: at, event: None });
                    }
                    self.state = State::Header;
                    if let Some(event) = self.end_frame(&header)? {
                        return Ok(Fed { used: at, event: Some(event) });
                    }
                }
            }
        }
    }

    fn fail(&mut self, code: u16, reason: &'static str) -> Violation {
        self.state = State::Closed;
        self.message = None;
        Violation { code, reason }
    }

    /// The bound on a message's payloads as they arrive: compressed ones
    /// may be a little longer than what they decompress to.
    fn wire_bound(&self, compressed: bool) -> usize {
        if compressed {
            self.max_message.saturating_add(self.max_message / 1024 + 64)
        } else {
            self.max_message
        }
    }

    fn start_frame(&mut self, h: &Header) -> Result<(), Violation> {
        let too_big = |had: usize, bound: usize| h.len > bound.saturating_sub(had) as u64;
        match h.opcode {
            op if op.is_control() => {
                if h.rsv1 {
                    return Err(self.fail(close::PROTOCOL_ERROR, "RSV1 set on a control frame"));
                }
                self.control.clear();
            }
            Opcode::Continuation => {
                if h.rsv1 {
                    return Err(self.fail(close::PROTOCOL_ERROR, "RSV1 set on a continuation frame"));
                }
                let Some(m) = &self.message else {
                    return Err(self.fail(close::PROTOCOL_ERROR, "continuation frame without a message"));
                };
                if too_big(m.data.len(), self.wire_bound(m.compressed)) {
                    return Err(self.fail(close::TOO_BIG, "message too big"));
                }
                let ahead = (h.len as usize).min(RESERVE_AHEAD);
                self.message.as_mut().expect("checked above").data.reserve(ahead);
            }
            op => {
                if self.message.is_some() {
                    return Err(self.fail(close::PROTOCOL_ERROR, "new message inside a fragmented message"));
                }
                if h.rsv1 && self.inflater.is_none() {
                    return Err(self.fail(close::PROTOCOL_ERROR, "RSV1 set without permessage-deflate"));
                }
                if too_big(0, self.wire_bound(h.rsv1)) {
                    return Err(self.fail(close::TOO_BIG, "message too big"));
                }
                let kind = if op == Opcode::Text { Kind::Text } else { Kind::Binary };
                self.message = Some(Message {
                    kind,
                    compressed: h.rsv1,
                    data: Vec::with_capacity((h.len as usize).min(RESERVE_AHEAD)),
                    utf8: (kind == Kind::Text && !h.rsv1).then(Validator::new),
                });
            }
        }
        Ok(())
    }

    fn take_payload(&mut self, h: &Header, piece: &[u8], offset: u64) -> Result<(), Violation> {
        let dest = if h.opcode.is_control() {
            &mut self.control
        } else {
            &mut self.message.as_mut().expect("a data frame has its message").data
        };
        let start = dest.len();
        dest.extend_from_slice(piece);
        if let Some(key) = h.mask {
            apply_mask(&mut dest[start..], key, offset);
        }
        if !h.opcode.is_control() {
            let m = self.message.as_mut().expect("a data frame has its message");
            if let Some(v) = &mut m.utf8 {
                if v.feed(&m.data[start..]).is_err() {
                    return Err(self.fail(close::INVALID_DATA, "invalid UTF-8 in a text message"));
                }
            }
        }
        Ok(())
    }

    fn end_frame(&mut self, h: &Header) -> Result<Option<Incoming>, Violation> {
        match h.opcode {
            Opcode::Ping => Ok(Some(Incoming::Ping(std::mem::take(&mut self.control)))),
            Opcode::Pong => Ok(Some(Incoming::Pong(std::mem::take(&mut self.control)))),
            Opcode::Close => match close::parse(&self.control) {
                Ok(frame) => {
                    self.state = State::Closed;
                    self.message = None;
                    Ok(Some(Incoming::Close(frame)))
                }
                Err(bad) => Err(self.fail(bad.code(), "invalid close frame")),
            },
            _ if !h.fin => Ok(None),
            _ => {
                let m = self.message.take().expect("a data frame has its message");
                self.finish(m).map(Some)
            }
        }
    }

    fn finish(&mut self, m: Message) -> Result<Incoming, Violation> {
        let data = if m.compressed {
            let inflater = self.inflater.as_mut().expect("RSV1 is refused without a decompressor");
            let mut out = Vec::new();
            match inflater.inflate(&m.data, self.max_message, &mut out) {
                Ok(()) => out,
                Err(InflateError::TooBig) => return Err(self.fail(close::TOO_BIG, "message too big")),
                Err(InflateError::Corrupt) => return Err(self.fail(close::PROTOCOL_ERROR, "invalid compressed data")),
            }
        } else {
            if m.utf8.as_ref().is_some_and(|v| v.finish().is_err()) {
                return Err(self.fail(close::INVALID_DATA, "invalid UTF-8 in a text message"));
            }
            m.data
        };
        match m.kind {
            Kind::Binary => Ok(Incoming::Binary(data)),
            Kind::Text => match String::from_utf8(data) {
                Ok(text) => Ok(Incoming::Text(text)),
                Err(_) => Err(self.fail(close::INVALID_DATA, "invalid UTF-8 in a text message")),
            },
        }
    }
}

#[cfg(test)]
#[path = "receiver_tests.rs"]
mod tests;
