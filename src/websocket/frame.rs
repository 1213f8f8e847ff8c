//! The frame layer (RFC 6455 §5.2): opcodes, parsing a frame header from
//! the bytes received so far, writing frame headers, and masking.
//!
//! Parsing is incremental: [`parse_header`] looks at the start of a buffer
//! and says "incomplete" until the whole header (2 to 14 bytes) is there,
//! so the caller can keep its own read buffer and feed whatever a read
//! returned. Only the header is parsed here; the payload is streamed by
//! `receiver`, which applies the mask as the bytes arrive. The checks that
//! need no history are made here (reserved opcodes, control frames that are
//! fragmented or longer than 125 bytes, the mask a peer must or must not
//! use, a 64-bit length with its top bit set); RSV1 is reported and judged
//! by the receiver, which knows whether permessage-deflate was agreed. A
//! length in more bytes than needed is accepted, as the common
//! implementations accept it.

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    /// The opcode for its four bits, `None` for the reserved values.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// The four bits of this opcode.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// The largest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// Which end sent the frames being parsed, and so whether they are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A client: every frame must be masked (the server's case).
    Client,
    /// A server: no frame may be masked.
    Server,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// RSV1: "compressed" under permessage-deflate, refused otherwise.
    pub rsv1: bool,
    pub opcode: Opcode,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
}

/// A header the protocol forbids; each is a protocol error (close 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// RSV2 or RSV3 set (no extension here defines them).
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    ReservedOpcode,
    /// A close, ping or pong without FIN.
    FragmentedControl,
    /// A close, ping or pong with more than 125 bytes.
    ControlTooLong,
    /// A client frame without a mask.
    Unmasked,
    /// A server frame with a mask.
    Masked,
    /// A 64-bit length with the most significant bit set.
    LengthTooLarge,
}

impl FrameError {
    /// A short reason for the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::ReservedBits => "reserved bits set",
            FrameError::ReservedOpcode => "reserved opcode",
            FrameError::FragmentedControl => "fragmented control frame",
            FrameError::ControlTooLong => "control frame too long",
            FrameError::Unmasked => "client frame not masked",
            FrameError::Masked => "server frame masked",
            FrameError::LengthTooLarge => "frame length too large",
        }
    }
}

/// Parse the frame header at the start of `buf`: the header and its length
/// in bytes, `Ok(None)` when more bytes are needed. A verdict is reached as
/// soon as the bytes that decide it are there (the first two bytes decide
/// all but the length checks).
pub fn parse_header(buf: &[u8], from: Peer) -> Result<Option<(Header, usize)>, FrameError> {
    let [b0, b1, rest @ ..] = buf else { return Ok(None) };
    if b0 & 0x30 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(FrameError::ReservedOpcode)?;
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    let masked = b1 & 0x80 != 0;
    match (from, masked) {
        (Peer::Client, false) => return Err(FrameError::Unmasked),
        (Peer::Server, true) => return Err(FrameError::Masked),
        _ => {}
    }
    let short = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(FrameError::FragmentedControl);
        }
        if short > MAX_CONTROL_PAYLOAD as u8 {
            return Err(FrameError::ControlTooLong);
        }
    }
    let (len, at) = match short {
        126 => {
            let [a, b, ..] = rest else { return Ok(None) };
            (u16::from_be_bytes([*a, *b]) as u64, 2)
        }
        127 => {
            let Some(bytes) = rest.get(..8) else {
                // The top bit is decided by the first length byte.
                if rest.first().is_some_and(|b| b & 0x80 != 0) {
                    return Err(FrameError::LengthTooLarge);
                }
                return Ok(None);
            };
            let len = u64::from_be_bytes(bytes.try_into().expect("eight bytes"));
            if len >> 63 != 0 {
                return Err(FrameError::LengthTooLarge);
            }
            (len, 8)
        }
        n => (n as u64, 0),
    };
    let mask = if masked {
        let Some(key) = rest.get(at..at + 4) else { return Ok(None) };
        Some(key.try_into().expect("four bytes"))
    } else {
        None
    };
    let used = 2 + at + if masked { 4 } else { 0 };
    Ok(Some((Header { fin, rsv1, opcode, mask, len }, used)))
}

/// Append a frame header to `out`.
pub fn write_header(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: Opcode, len: usize, mask: Option<[u8; 4]>) {
    let b0 = (fin as u8) << 7 | (rsv1 as u8) << 6 | opcode.bits();
    let m = if mask.is_some() { 0x80 } else { 0 };
    out.push(b0);
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Append a whole frame; `mask` is `None` for the server's frames (a client
/// masks, which the tests and the fuzz target use to play the client).
pub fn write_frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    write_header(out, fin, rsv1, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// XOR `data` with the mask `key`, `offset` being the position of `data`'s
/// first byte in the frame's payload (payloads are unmasked as they arrive,
/// in pieces). Masking and unmasking are the same operation.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    let mut k = key;
    k.rotate_left((offset % 4) as usize);
    let word = u32::from_ne_bytes(k);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(k) {
        *b ^= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        let (h, used) = parse_header(frame, Peer::Client).unwrap().unwrap();
        assert_eq!(used, 6);
        assert_eq!(h, Header { fin: true, rsv1: false, opcode: Opcode::Text, mask: Some([0x37, 0xfa, 0x21, 0x3d]), len: 5 });
        let mut payload = frame[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // The unmasked "Hello" a server sends, and a 256-byte binary frame.
        let mut out = Vec::new();
        write_frame(&mut out, true, false, Opcode::Text, b"Hello", None);
        assert_eq!(out, b"\x81\x05Hello");
        let mut out = Vec::new();
        write_header(&mut out, true, false, Opcode::Binary, 256, None);
        assert_eq!(out, b"\x82\x7e\x01\x00");
        let mut out = Vec::new();
        write_header(&mut out, true, false, Opcode::Binary, 65536, None);
        assert_eq!(out, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00");
    }

    #[test]
    fn incomplete_until_the_whole_header() {
        let mut out = Vec::new();
        write_header(&mut out, false, true, Opcode::Binary, 70_000, Some([1, 2, 3, 4]));
        assert_eq!(out.len(), MAX_HEADER);
        for n in 0..out.len() {
            assert_eq!(parse_header(&out[..n], Peer::Client), Ok(None), "{n} bytes");
        }
        let (h, used) = parse_header(&out, Peer::Client).unwrap().unwrap();
        assert_eq!((h.fin, h.rsv1, h.opcode, h.len, used), (false, true, Opcode::Binary, 70_000, 14));
    }

    #[test]
    fn refusals() {
        let p = |b: &[u8]| parse_header(b, Peer::Client);
        assert_eq!(p(b"\x91\x80"), Err(FrameError::ReservedBits));
        assert_eq!(p(b"\xa1\x80"), Err(FrameError::ReservedBits));
        assert_eq!(p(b"\x83\x80"), Err(FrameError::ReservedOpcode));
        assert_eq!(p(b"\x8b\x80"), Err(FrameError::ReservedOpcode));
        assert_eq!(p(b"\x09\x80"), Err(FrameError::FragmentedControl));
        assert_eq!(p(b"\x89\xfe"), Err(FrameError::ControlTooLong));
        assert_eq!(p(b"\x89\xfd"), Ok(None), "125 bytes is fine; the mask is missing");
        assert_eq!(p(b"\x81\x05"), Err(FrameError::Unmasked));
        assert_eq!(parse_header(b"\x81\x85", Peer::Server), Err(FrameError::Masked));
        assert_eq!(p(b"\x82\xff\x80"), Err(FrameError::LengthTooLarge), "decided by the first length byte");
        let mut out = Vec::new();
        write_header(&mut out, true, false, Opcode::Binary, 0, Some([0; 4]));
        out[1] = 0x80 | 127;
        out.splice(2..2, (i64::MAX as u64).to_be_bytes());
        assert!(p(&out).unwrap().is_some(), "the largest length allowed");
    }

    #[test]
    fn masking_in_pieces_is_masking_whole() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..=200u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut as u64);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
        apply_mask(&mut whole, key, 0);
        assert_eq!(whole, data);
    }
}
