//! Fuzz target: a WebSocket client's bytes through the server's receiver
//! (`websocket::Receiver`: frame headers, masking, fragmentation, control
//! frames, close payloads, UTF-8, permessage-deflate, the message-size
//! bound), delivered in reads that end at fuzzer-chosen offsets. Checks
//! that nothing panics, that a feed never uses more than it was given, and
//! that the split delivery gives exactly the events and the close code of
//! one whole delivery. The same bytes through a `websocket::Session` (what
//! the worker runs) give the app those messages and at most one disconnect
//! after them, and the session's own output (pongs, the close) is valid
//! server frames.
//!
//! Input: settings (bit 0: permessage-deflate agreed; bits 1-2: the size
//! bound, among unlimited, 0, 16 and 1000 bytes; bit 3: frames mode), the
//! number of gaps, the gaps, then the bytes. In frames mode the bytes are
//! frame descriptions (first byte as sent, one length byte, that many
//! payload bytes) that the target encodes as masked frames, so the fuzzer
//! reaches message assembly without first finding valid headers and masks.
#![no_main]

use _rsgi::websocket::deflate::Inflater;
use _rsgi::websocket::extension::Deflate;
use _rsgi::websocket::frame::{write_header, Opcode};
use _rsgi::websocket::{Incoming, Peer, Receiver, Session, ToApp};
use libfuzzer_sys::fuzz_target;
use rsgi_fuzz::cuts_from;

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Incoming>,
    /// The close code that failed the connection, if one did.
    failed: Option<u16>,
    /// Bytes left unused at the end (an unfinished frame header).
    left: usize,
}

fn run(input: &[u8], cuts: &[usize], max: usize, deflate: bool) -> Outcome {
    let mut r = Receiver::new(Peer::Client, max, deflate.then(|| Inflater::new(false)));
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut fed = 0;
    for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match r.feed(&buf) {
                Ok(f) => {
                    assert!(f.used <= buf.len(), "used {} of {}", f.used, buf.len());
                    buf.drain(..f.used);
                    match f.event {
                        Some(e) => events.push(e),
                        None => break,
                    }
                }
                Err(v) => {
                    assert!(r.is_closed());
                    return Outcome { events, failed: Some(v.code), left: 0 };
                }
            }
        }
    }
    Outcome { events, failed: None, left: buf.len() }
}

/// Frames mode: each description becomes a masked frame.
fn frames(desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = desc;
    let mut mask = [0x5a, 0x01, 0xc3, 0x7e];
    while let [b0, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (payload, next) = tail.split_at(n);
        let opcode = Opcode::from_bits(b0 & 0x0F).unwrap_or(Opcode::Binary);
        write_header(&mut out, b0 & 0x80 != 0, b0 & 0x40 != 0, opcode, n, Some(mask));
        let start = out.len();
        out.extend_from_slice(payload);
        _rsgi::websocket::frame::apply_mask(&mut out[start..], mask, 0);
        mask.rotate_left(1);
        mask[0] = mask[0].wrapping_add(*len);
        rest = next;
    }
    out
}

/// The session over the whole input: what the app is told, and the
/// session's output checked as a client would read it.
fn check_session(input: &[u8], max: usize, deflate: bool, whole: &Outcome) {
    let (mut session, _) = Session::new(deflate.then(Deflate::default), max);
    let mut out = Vec::new();
    let mut told = Vec::new();
    let mut at = 0;
    loop {
        let step = session.on_bytes(&input[at..], &mut out);
        assert!(step.used <= input.len() - at);
        at += step.used;
        match step.to_app {
            Some(t) => told.push(t),
            None => break,
        }
    }
    let messages: Vec<ToApp> = whole
        .events
        .iter()
        .filter_map(|e| match e {
            Incoming::Text(t) => Some(ToApp::Text(t.clone())),
            Incoming::Binary(b) => Some(ToApp::Binary(b.clone())),
            _ => None,
        })
        .collect();
    assert!(told.len() == messages.len() || told.len() == messages.len() + 1, "{told:?}");
    assert_eq!(told[..messages.len()], messages[..]);
    if let Some(last) = told.get(messages.len()) {
        assert!(matches!(last, ToApp::Disconnect { .. }), "{last:?}");
    }
    let mut client = Receiver::new(Peer::Server, usize::MAX, None);
    let mut read = 0;
    while read < out.len() {
        let fed = client.feed(&out[read..]).expect("the session's output is valid server frames");
        read += fed.used;
        if fed.event.is_none() {
            break;
        }
    }
    assert_eq!(read, out.len(), "whole frames only");
}

fuzz_target!(|data: &[u8]| {
    let [settings, ngaps, rest @ ..] = data else { return };
    let deflate = settings & 1 != 0;
    let max = [usize::MAX, 0, 16, 1000][((settings >> 1) & 3) as usize];
    let ngaps = (*ngaps as usize % 32).min(rest.len());
    let (gaps, bytes) = rest.split_at(ngaps);
    let encoded;
    let input = if settings & 8 != 0 {
        encoded = frames(bytes);
        &encoded[..]
    } else {
        bytes
    };
    let whole = run(input, &[], max, deflate);
    check_session(input, max, deflate, &whole);
    let cuts = cuts_from(gaps, input.len());
    let split = run(input, &cuts, max, deflate);
    assert_eq!(split, whole, "cuts {cuts:?}");
});
