//! The sending half of a WebSocket connection: messages and control frames
//! encoded into the caller's output buffer, compressed when
//! permessage-deflate was agreed.
//!
//! A server's frames are never masked. A message goes out as one frame:
//! the app hands over whole messages (ASGI's `websocket.send`), and the
//! caller bounds its output queue by the bytes queued, not by frames.
//! [`encode_message`] also writes fragmented and masked messages, which is
//! how the tests and the fuzz target play a client.

use super::close;
use super::deflate::Deflater;
use super::frame::{write_frame, write_header, Opcode};

/// A data message's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    Text,
    Binary,
}

/// The sending state of one connection.
pub struct Sender {
    deflater: Option<Deflater>,
}

impl Sender {
    /// A sender, with the compressor when permessage-deflate was agreed.
    pub fn new(deflater: Option<Deflater>) -> Self {
        Sender { deflater }
    }

    /// Append one message as a single frame.
    pub fn message(&mut self, kind: DataKind, payload: &[u8], out: &mut Vec<u8>) {
        let opcode = if kind == DataKind::Text { Opcode::Text } else { Opcode::Binary };
        match &mut self.deflater {
            None => {
                write_header(out, true, false, opcode, payload.len(), None);
                out.extend_from_slice(payload);
            }
            Some(d) => {
                let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
                d.compress(payload, &mut compressed);
                write_header(out, true, true, opcode, compressed.len(), None);
                out.extend_from_slice(&compressed);
            }
        }
    }

    /// Append a pong answering a ping with `payload` (at most 125 bytes, as
    /// the ping's was).
    pub fn pong(&self, payload: &[u8], out: &mut Vec<u8>) {
        write_frame(out, true, false, Opcode::Pong, payload, None);
    }

    /// Append a ping (the caller keeps the payload at most 125 bytes).
    pub fn ping(&self, payload: &[u8], out: &mut Vec<u8>) {
        debug_assert!(payload.len() <= super::frame::MAX_CONTROL_PAYLOAD);
        write_frame(out, true, false, Opcode::Ping, payload, None);
    }

    /// Append a close frame with `code` (checked by the caller with
    /// `close::is_valid_code`) and `reason` (cut to fit).
    pub fn close(&self, code: u16, reason: &str, out: &mut Vec<u8>) {
        write_frame(out, true, false, Opcode::Close, &close::payload(code, reason), None);
    }
}

/// Append `payload` as a message cut into frames at `cuts` (offsets into
/// the payload, in increasing order; others are ignored), with RSV1 on the
/// first frame when `compressed` (the payload already compressed), and each
/// frame masked with `mask` when given.
pub fn encode_message(
    out: &mut Vec<u8>,
    kind: DataKind,
    payload: &[u8],
    cuts: &[usize],
    compressed: bool,
    mask: Option<[u8; 4]>,
) {
    let mut start = 0;
    let ends = cuts.iter().copied().filter(|&c| c > 0 && c < payload.len());
    let mut first = true;
    for end in ends.chain(std::iter::once(payload.len())) {
        if end < start {
            continue;
        }
        let opcode = match (first, kind) {
            (false, _) => Opcode::Continuation,
            (true, DataKind::Text) => Opcode::Text,
            (true, DataKind::Binary) => Opcode::Binary,
        };
        write_frame(out, end == payload.len(), first && compressed, opcode, &payload[start..end], mask);
        first = false;
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::deflate::Inflater;
    use crate::websocket::frame::Peer;
    use crate::websocket::receiver::{Incoming, Receiver};

    fn read_all(bytes: &[u8], inflater: Option<Inflater>) -> Vec<Incoming> {
        let mut r = Receiver::new(Peer::Server, 1 << 20, inflater);
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let fed = r.feed(&bytes[at..]).unwrap();
            at += fed.used;
            events.extend(fed.event);
            if fed.used == 0 && events.is_empty() {
                break;
            }
        }
        events
    }

    #[test]
    fn server_frames_read_back() {
        let mut s = Sender::new(None);
        let mut out = Vec::new();
        s.message(DataKind::Text, "h\u{e9}llo".as_bytes(), &mut out);
        s.message(DataKind::Binary, &[0, 1, 2], &mut out);
        s.ping(b"p", &mut out);
        s.pong(b"q", &mut out);
        s.close(1001, "bye", &mut out);
        assert_eq!(&out[..2], b"\x81\x06");
        assert_eq!(
            read_all(&out, None),
            [
                Incoming::Text("h\u{e9}llo".into()),
                Incoming::Binary(vec![0, 1, 2]),
                Incoming::Ping(b"p".to_vec()),
                Incoming::Pong(b"q".to_vec()),
                Incoming::Close(close::CloseFrame { code: Some(1001), reason: "bye".into() }),
            ]
        );
    }

    #[test]
    fn compressed_frames_read_back() {
        let mut s = Sender::new(Some(Deflater::new(false)));
        let mut out = Vec::new();
        let big = "abcabcabc".repeat(1000);
        s.message(DataKind::Text, big.as_bytes(), &mut out);
        s.message(DataKind::Text, big.as_bytes(), &mut out);
        assert!(out.len() < 200, "{} bytes", out.len());
        assert_eq!(out[0], 0xC1, "FIN, RSV1, text");
        let events = read_all(&out, Some(Inflater::new(false)));
        assert_eq!(events, [Incoming::Text(big.clone()), Incoming::Text(big)]);
    }

    #[test]
    fn fragmented_and_masked() {
        let mut out = Vec::new();
        encode_message(&mut out, DataKind::Binary, b"abcdef", &[2, 2, 4, 99], false, Some([9, 8, 7, 6]));
        // Frames of 2, 0, 2 and 2 bytes, each with a 2-byte header and a mask.
        assert_eq!(out.len(), 4 * 6 + 6);
        assert_eq!(out[0], 0x02, "a first frame without FIN");
        let mut r = Receiver::new(Peer::Client, 100, None);
        let fed = r.feed(&out).unwrap();
        assert_eq!(fed, crate::websocket::receiver::Fed { used: out.len(), event: Some(Incoming::Binary(b"abcdef".to_vec())) });
        let mut out = Vec::new();
        encode_message(&mut out, DataKind::Text, b"", &[], false, None);
        assert_eq!(out, b"\x81\x00");
    }
}
