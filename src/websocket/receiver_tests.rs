//! Unit tests of `receiver`: client frames in, events and close codes out.

use super::*;
use crate::websocket::deflate::Deflater;
use crate::websocket::frame::write_frame;
use crate::websocket::sender::{encode_message, DataKind};

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// What a delivery of `bytes` made: every event, then the violation if any.
fn run(bytes: &[u8], max: usize, deflate: bool, step: usize) -> (Vec<Incoming>, Option<Violation>) {
    let mut r = Receiver::new(Peer::Client, max, deflate.then(|| Inflater::new(false)));
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match r.feed(&buf) {
                Ok(fed) => {
                    assert!(fed.used <= buf.len());
                    buf.drain(..fed.used);
                    let more = fed.event.is_some();
                    events.extend(fed.event);
                    if !more {
                        break;
                    }
                }
                Err(v) => return (events, Some(v)),
            }
        }
    }
    (events, None)
}

/// `run` with every step size from 1 to the whole input; all must agree.
fn run_all(bytes: &[u8], max: usize, deflate: bool) -> (Vec<Incoming>, Option<u16>) {
    let (events, v) = run(bytes, max, deflate, bytes.len());
    for step in 1..bytes.len().min(40) {
        let (e, w) = run(bytes, max, deflate, step);
        assert_eq!((&e, w.map(|v| v.code)), (&events, v.map(|v| v.code)), "step {step}");
    }
    (events, v.map(|v| v.code))
}

fn frame(fin: bool, rsv1: bool, op: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, fin, rsv1, op, payload, MASK);
    out
}

#[test]
fn messages_and_control_frames() {
    let mut wire = frame(true, false, Opcode::Text, "caf\u{e9}".as_bytes());
    wire.extend(frame(false, false, Opcode::Binary, b"ab"));
    wire.extend(frame(true, false, Opcode::Ping, b"mid-message"));
    wire.extend(frame(false, false, Opcode::Continuation, b""));
    wire.extend(frame(true, false, Opcode::Continuation, b"cd"));
    wire.extend(frame(true, false, Opcode::Pong, b""));
    wire.extend(frame(true, false, Opcode::Close, b"\x03\xe8done"));
    wire.extend(b"anything after a close is ignored");
    let (events, v) = run_all(&wire, 100, false);
    assert_eq!(v, None);
    assert_eq!(
        events,
        [
            Incoming::Text("caf\u{e9}".into()),
            Incoming::Ping(b"mid-message".to_vec()),
            Incoming::Binary(b"abcd".to_vec()),
            Incoming::Pong(vec![]),
            Incoming::Close(CloseFrame { code: Some(1000), reason: "done".into() }),
        ]
    );
}

#[test]
fn one_event_per_feed_and_partial_headers_stay_in_the_buffer() {
    let mut wire = frame(true, false, Opcode::Binary, b"one");
    wire.extend(frame(true, false, Opcode::Binary, b"two"));
    let mut r = Receiver::new(Peer::Client, 100, None);
    let fed = r.feed(&wire).unwrap();
    assert_eq!(fed, Fed { used: 9, event: Some(Incoming::Binary(b"one".to_vec())) });
    let fed = r.feed(&wire[9..12]).unwrap();
    assert_eq!(fed, Fed { used: 0, event: None }, "a header is used only whole");
    let fed = r.feed(&wire[9..16]).unwrap();
    assert_eq!(fed, Fed { used: 7, event: None }, "payload bytes are used as they come");
    assert!(r.in_message());
    let fed = r.feed(&wire[16..]).unwrap();
    assert_eq!(fed, Fed { used: 2, event: Some(Incoming::Binary(b"two".to_vec())) });
    assert!(!r.in_message());
}

#[test]
fn protocol_errors_are_1002() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", b"\x81\x00".to_vec()),
        ("reserved opcode", frame(true, false, Opcode::Text, b"").into_iter().enumerate().map(|(i, b)| if i == 0 { 0x83 } else { b }).collect()),
        ("continuation first", frame(true, false, Opcode::Continuation, b"x")),
        ("rsv1 without deflate", frame(true, true, Opcode::Text, b"x")),
        ("rsv1 on a ping", frame(true, true, Opcode::Ping, b"")),
        ("close of one byte", frame(true, false, Opcode::Close, b"\x03")),
        ("close 1005", frame(true, false, Opcode::Close, b"\x03\xed")),
        ("close 999", frame(true, false, Opcode::Close, b"\x03\xe7")),
        ("new message inside one", [frame(false, false, Opcode::Text, b"a"), frame(true, false, Opcode::Text, b"b")].concat()),
        ("rsv1 on a continuation", [frame(false, false, Opcode::Binary, b"a"), frame(true, true, Opcode::Continuation, b"b")].concat()),
    ];
    for (name, wire) in cases {
        let (events, v) = run_all(&wire, 100, false);
        assert_eq!((events, v), (vec![], Some(1002)), "{name}");
    }
    let (_, v) = run_all(&[frame(false, false, Opcode::Binary, b"a"), frame(true, true, Opcode::Continuation, b"b")].concat(), 100, true);
    assert_eq!(v, Some(1002), "rsv1 on a continuation, deflate agreed");
}

#[test]
fn invalid_text_is_1007_at_the_first_bad_byte() {
    let (_, v) = run_all(&frame(true, false, Opcode::Text, b"ok\xff"), 100, false);
    assert_eq!(v, Some(1007));
    let (_, v) = run_all(&frame(true, false, Opcode::Close, b"\x03\xe8\xff"), 100, false);
    assert_eq!(v, Some(1007), "a close reason");
    // A character cut between fragments is fine; one never finished is not.
    let wire = [frame(false, false, Opcode::Text, b"\xe2\x82"), frame(true, false, Opcode::Continuation, b"\xac")].concat();
    assert_eq!(run_all(&wire, 100, false), (vec![Incoming::Text("\u{20ac}".into())], None));
    let wire = [frame(false, false, Opcode::Text, b"\xe2\x82"), frame(true, false, Opcode::Continuation, b"")].concat();
    assert_eq!(run_all(&wire, 100, false).1, Some(1007));
    // Fail fast: the first fragment's bad byte ends it before the rest.
    let mut r = Receiver::new(Peer::Client, 100, None);
    let first = frame(false, false, Opcode::Text, b"\xc0\xaf");
    assert_eq!(r.feed(&first).unwrap_err().code, 1007);
    assert!(r.is_closed());
    assert_eq!(r.feed(b"more").unwrap(), Fed { used: 4, event: None });
}

#[test]
fn the_size_bound_is_decided_by_headers() {
    let exact = frame(true, false, Opcode::Binary, &[1; 10]);
    assert_eq!(run_all(&exact, 10, false).1, None);
    assert_eq!(run_all(&exact, 9, false), (vec![], Some(1009)));
    let mut r = Receiver::new(Peer::Client, 9, None);
    assert_eq!(r.feed(&exact[..6]).unwrap_err().code, 1009, "refused on the header, before the payload");
    let split = [frame(false, false, Opcode::Binary, &[1; 6]), frame(true, false, Opcode::Continuation, &[2; 6])].concat();
    assert_eq!(run_all(&split, 11, false), (vec![], Some(1009)));
    assert_eq!(run_all(&split, 12, false).0.len(), 1);
    // A header announcing 2^62 bytes allocates nothing up front.
    let mut huge = vec![0x82, 0xff];
    huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
    huge.extend_from_slice(&[0; 4]);
    let mut r = Receiver::new(Peer::Client, usize::MAX, None);
    assert_eq!(r.feed(&huge).unwrap(), Fed { used: 14, event: None });
    assert!(r.message.as_ref().unwrap().data.capacity() <= RESERVE_AHEAD);
}

#[test]
fn compressed_messages() {
    let text = "permessage-deflate ".repeat(50);
    let mut d = Deflater::new(false);
    let mut wire = Vec::new();
    for cuts in [&[][..], &[3, 7][..]] {
        let mut c = Vec::new();
        d.compress(text.as_bytes(), &mut c);
        encode_message(&mut wire, DataKind::Text, &c, cuts, true, MASK);
    }
    wire.extend(frame(true, false, Opcode::Text, b"plain")); // RSV1 clear: not compressed
    let (events, v) = run_all(&wire, 1000, true);
    assert_eq!(v, None);
    assert_eq!(events, [Incoming::Text(text.clone()), Incoming::Text(text.clone()), Incoming::Text("plain".into())]);
    // Bounded by the decompressed size.
    assert_eq!(run_all(&wire, text.len() - 1, true), (vec![], Some(1009)));
    // Garbage, and compressed invalid UTF-8.
    assert_eq!(run_all(&frame(true, true, Opcode::Binary, b"\xff\xff"), 100, true).1, Some(1002));
    let mut c = Vec::new();
    Deflater::new(true).compress(b"bad \xff", &mut c);
    assert_eq!(run_all(&frame(true, true, Opcode::Text, &c), 100, true).1, Some(1007));
}
