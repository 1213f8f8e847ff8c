//! permessage-deflate's codec (RFC 7692 §7.2): a message is compressed as
//! raw DEFLATE ending in a sync flush whose `00 00 ff ff` tail is taken off
//! before sending and put back before decompressing.
//!
//! Both directions keep their LZ77 window from message to message unless
//! the negotiation said otherwise (`*_no_context_takeover`, see
//! `extension`). The compressor always uses a 32 KiB window (miniz_oxide,
//! flate2's pure-Rust backend, has no smaller one, which is why the
//! negotiation declines `server_max_window_bits` below 15); the
//! decompressor's 32 KiB window reads a stream made with any smaller one.
//! Decompression stops as soon as the output would pass the message-size
//! bound, so a small compressed message cannot make a large allocation
//! (a "zip bomb" is refused with close 1009, not buffered).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail every sync-flushed message ends with, which the wire omits.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How much output one decompression step may produce.
const STEP: usize = 32 * 1024;

/// Why a compressed message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Decompressed, it would pass the message-size bound (close 1009).
    TooBig,
    /// Not a DEFLATE stream (close 1002).
    Corrupt,
}

/// The server's compressor for the messages it sends. Its state (some
/// hundreds of KiB with miniz_oxide) is made on the first message, so a
/// connection that only receives does not pay for it.
pub struct Deflater {
    compress: Option<Box<Compress>>,
    /// `server_no_context_takeover`: every message starts a fresh window.
    reset_each: bool,
}

impl Deflater {
    /// A compressor; `reset_each` when the client asked for
    /// `server_no_context_takeover`.
    pub fn new(reset_each: bool) -> Self {
        Deflater { compress: None, reset_each }
    }

    /// Append the compressed form of one message to `out` (without the
    /// sync-flush tail).
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let c = self.compress.get_or_insert_with(|| Box::new(Compress::new(Compression::default(), false)));
        let start = out.len();
        let base = c.total_in();
        loop {
            let used = (c.total_in() - base) as usize;
            out.reserve((data.len() - used) / 2 + 64);
            c.compress_vec(&data[used..], out, FlushCompress::Sync)
                .expect("compressing into spare capacity cannot fail");
            let used = (c.total_in() - base) as usize;
            if used == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        debug_assert!(out[start..].ends_with(&TAIL));
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_each {
            // Nothing carries over: drop the state until the next message.
            self.compress = None;
        }
    }
}

/// The server's decompressor for the messages a client sends.
pub struct Inflater {
    decompress: Decompress,
    /// `client_no_context_takeover`: the client starts every message with
    /// a fresh window, so this side may drop its own.
    reset_each: bool,
    /// Output of one step, made on the first compressed message.
    scratch: Vec<u8>,
}

impl Inflater {
    /// A decompressor; `reset_each` when `client_no_context_takeover` was
    /// agreed.
    pub fn new(reset_each: bool) -> Self {
        Inflater { decompress: Decompress::new(false), reset_each, scratch: Vec::new() }
    }

    /// Decompress one whole message (its frames' payloads joined) into
    /// `out`, which must not grow past `max` bytes.
    pub fn inflate(&mut self, compressed: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
        let result = self.run(compressed, max, out);
        if self.reset_each || result.is_err() {
            self.decompress.reset(false);
        }
        result
    }

    fn run(&mut self, compressed: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; STEP];
        }
        for input in [compressed, &TAIL[..]] {
            let mut pos = 0;
            loop {
                let (in0, out0) = (self.decompress.total_in(), self.decompress.total_out());
                let status = self
                    .decompress
                    .decompress(&input[pos..], &mut self.scratch, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                let read = (self.decompress.total_in() - in0) as usize;
                let made = (self.decompress.total_out() - out0) as usize;
                pos += read;
                if made > max.saturating_sub(out.len()) {
                    return Err(InflateError::TooBig);
                }
                out.extend_from_slice(&self.scratch[..made]);
                if status == Status::StreamEnd {
                    // A final block (BFINAL) ends the stream: what follows
                    // it, the tail included, is not DEFLATE data. The next
                    // message starts a new stream.
                    self.decompress.reset(false);
                    return Ok(());
                }
                if made == self.scratch.len() {
                    continue;
                }
                if pos == input.len() {
                    break;
                }
                if read == 0 && made == 0 {
                    return Err(InflateError::Corrupt);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(reset_tx: bool, reset_rx: bool) {
        let mut tx = Deflater::new(reset_tx);
        let mut rx = Inflater::new(reset_rx);
        let messages: Vec<Vec<u8>> = vec![
            b"Hello".to_vec(),
            b"Hello".to_vec(),
            Vec::new(),
            (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect(),
            b"the quick brown fox ".repeat(5000),
        ];
        for m in &messages {
            let mut wire = Vec::new();
            tx.compress(m, &mut wire);
            let mut back = Vec::new();
            rx.inflate(&wire, usize::MAX, &mut back).unwrap();
            assert_eq!(&back, m);
        }
    }

    #[test]
    fn round_trips_with_and_without_context() {
        round_trip(false, false);
        round_trip(true, false);
        round_trip(true, true);
    }

    #[test]
    fn rfc_7692_examples() {
        // §7.2.3.1: "Hello" compressed, as one message.
        let mut rx = Inflater::new(false);
        let mut out = Vec::new();
        rx.inflate(b"\xf2\x48\xcd\xc9\xc9\x07\x00", 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the second "Hello" refers back to the first one.
        out.clear();
        rx.inflate(b"\xf2\x00\x11\x00\x00", 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.3: a stored (uncompressed) block.
        let mut rx = Inflater::new(false);
        out.clear();
        rx.inflate(b"\x00\x05\x00\xfa\xffHello\x00", 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.6: a message with BFINAL set.
        let mut rx = Inflater::new(false);
        out.clear();
        rx.inflate(b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
        out.clear();
        rx.inflate(b"\xf2\x48\xcd\xc9\xc9\x07\x00", 100, &mut out).unwrap();
        assert_eq!(out, b"Hello", "a new stream after the final block");
    }

    #[test]
    fn a_bomb_is_refused_before_it_is_buffered() {
        let mut tx = Deflater::new(false);
        let mut wire = Vec::new();
        tx.compress(&vec![0u8; 10 * 1024 * 1024], &mut wire);
        assert!(wire.len() < 20 * 1024, "{} compressed bytes", wire.len());
        let mut rx = Inflater::new(false);
        let mut out = Vec::new();
        assert_eq!(rx.inflate(&wire, 1024 * 1024, &mut out), Err(InflateError::TooBig));
        assert!(out.len() <= 1024 * 1024);
        assert!(out.capacity() <= 2 * 1024 * 1024, "capacity {}", out.capacity());
        // Exactly at the bound is fine.
        let mut tx = Deflater::new(true);
        let mut wire = Vec::new();
        tx.compress(&[7u8; 1000], &mut wire);
        let mut rx = Inflater::new(false);
        let mut out = Vec::new();
        assert_eq!(rx.inflate(&wire, 1000, &mut out), Ok(()));
        let mut out = Vec::new();
        let mut rx = Inflater::new(false);
        assert_eq!(rx.inflate(&wire, 999, &mut out), Err(InflateError::TooBig));
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut rx = Inflater::new(false);
        let mut out = Vec::new();
        assert_eq!(rx.inflate(b"\xff\xff\xff\xff", 100, &mut out), Err(InflateError::Corrupt));
        // The decompressor is usable again afterwards.
        out.clear();
        rx.inflate(b"\xf2\x48\xcd\xc9\xc9\x07\x00", 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
    }
}
