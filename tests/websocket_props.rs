//! Property tests for the pure WebSocket code (proptest): any sequence of
//! messages, cut into any fragments, masked with any key, compressed or
//! not, with pings between the fragments, and delivered in reads split
//! anywhere, decodes to exactly those messages and pings; the server's own
//! encoding (with and without permessage-deflate) reads back the same way.

use _rsgi::websocket::deflate::{Deflater, Inflater};
use _rsgi::websocket::frame::{write_frame, Opcode};
use _rsgi::websocket::sender::encode_message;
use _rsgi::websocket::{DataKind, Incoming, Peer, Receiver, Sender};
use proptest::prelude::*;

/// One message as the test describes it.
#[derive(Debug, Clone)]
struct Msg {
    text: bool,
    payload: Vec<u8>,
    /// Where the frames are cut (offsets into what goes on the wire).
    cuts: Vec<usize>,
    /// A ping sent after the first fragment.
    ping: Option<Vec<u8>>,
}

fn msg() -> impl Strategy<Value = Msg> {
    let text = prop::collection::vec(any::<char>(), 0..40).prop_map(|c| (true, c.into_iter().collect::<String>().into_bytes()));
    let binary = prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| (false, b));
    (prop_oneof![text, binary], prop::collection::vec(0usize..400, 0..5), prop::option::of(prop::collection::vec(any::<u8>(), 0..125)))
        .prop_map(|((text, payload), mut cuts, ping)| {
            cuts.sort_unstable();
            Msg { text, payload, cuts, ping }
        })
}

/// What a client sends for `msgs`, and the events the server must read.
fn client_wire(msgs: &[Msg], mask: [u8; 4], compress: Option<&mut Deflater>) -> (Vec<u8>, Vec<Incoming>) {
    let mut compress = compress;
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for m in msgs {
        let kind = if m.text { DataKind::Text } else { DataKind::Binary };
        let body = match compress.as_deref_mut() {
            Some(d) => {
                let mut c = Vec::new();
                d.compress(&m.payload, &mut c);
                c
            }
            None => m.payload.clone(),
        };
        let mut frames = Vec::new();
        encode_message(&mut frames, kind, &body, &m.cuts, compress.is_some(), Some(mask));
        // Put the ping after the first frame (a control frame may come
        // between a message's fragments).
        let first_end = first_frame_len(&frames);
        wire.extend_from_slice(&frames[..first_end]);
        if let Some(p) = &m.ping {
            write_frame(&mut wire, true, false, Opcode::Ping, p, Some(mask));
        }
        wire.extend_from_slice(&frames[first_end..]);
        let message = if m.text {
            Incoming::Text(String::from_utf8(m.payload.clone()).unwrap())
        } else {
            Incoming::Binary(m.payload.clone())
        };
        let ping = m.ping.clone().map(Incoming::Ping);
        if first_end == frames.len() {
            // One frame: the ping follows the whole message.
            expected.push(message);
            expected.extend(ping);
        } else {
            expected.extend(ping);
            expected.push(message);
        }
    }
    (wire, expected)
}

/// The length of the first (masked) frame in `frames`.
fn first_frame_len(frames: &[u8]) -> usize {
    let (h, used) = _rsgi::websocket::frame::parse_header(frames, Peer::Client).unwrap().unwrap();
    used + h.len as usize
}

/// Feed `wire` in reads ending at `cuts`; every event, or the first close
/// code that failed the connection.
fn read(wire: &[u8], cuts: &[usize], peer: Peer, inflater: Option<Inflater>) -> Result<Vec<Incoming>, u16> {
    let mut r = Receiver::new(peer, 1 << 20, inflater);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut fed = 0;
    let ends = cuts.iter().copied().filter(|&c| c < wire.len());
    for end in ends.chain(std::iter::once(wire.len())) {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&wire[fed..end]);
        fed = end;
        loop {
            let f = r.feed(&buf).map_err(|v| v.code)?;
            buf.drain(..f.used);
            match f.event {
                Some(e) => events.push(e),
                None => break,
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    Ok(events)
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn client_messages_round_trip(
        msgs in prop::collection::vec(msg(), 0..6),
        mask in any::<[u8; 4]>(),
        reads in prop::collection::vec(0usize..3000, 0..12),
    ) {
        let (wire, expected) = client_wire(&msgs, mask, None);
        prop_assert_eq!(read(&wire, &sorted(reads), Peer::Client, None), Ok(expected));
    }

    #[test]
    fn compressed_client_messages_round_trip(
        msgs in prop::collection::vec(msg(), 0..6),
        mask in any::<[u8; 4]>(),
        reads in prop::collection::vec(0usize..3000, 0..12),
        client_no_context in any::<bool>(),
    ) {
        let mut d = Deflater::new(client_no_context);
        let (wire, expected) = client_wire(&msgs, mask, Some(&mut d));
        let got = read(&wire, &sorted(reads), Peer::Client, Some(Inflater::new(client_no_context)));
        prop_assert_eq!(got, Ok(expected));
    }

    #[test]
    fn server_messages_read_back(
        msgs in prop::collection::vec(msg(), 0..6),
        reads in prop::collection::vec(0usize..3000, 0..12),
        deflate in any::<bool>(),
        no_context in any::<bool>(),
    ) {
        let mut s = Sender::new(deflate.then(|| Deflater::new(no_context)));
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for m in &msgs {
            let kind = if m.text { DataKind::Text } else { DataKind::Binary };
            s.message(kind, &m.payload, &mut wire);
            expected.push(if m.text {
                Incoming::Text(String::from_utf8(m.payload.clone()).unwrap())
            } else {
                Incoming::Binary(m.payload.clone())
            });
        }
        let inflater = deflate.then(|| Inflater::new(false));
        prop_assert_eq!(read(&wire, &sorted(reads), Peer::Server, inflater), Ok(expected));
    }

    #[test]
    fn any_bytes_any_reads_same_verdict(
        wire in prop::collection::vec(any::<u8>(), 0..400),
        reads in prop::collection::vec(0usize..400, 0..12),
        deflate in any::<bool>(),
    ) {
        let whole = read_lenient(&wire, &[], deflate);
        prop_assert_eq!(read_lenient(&wire, &sorted(reads), deflate), whole);
    }
}

/// `read` that tolerates a frame left unfinished at the end.
fn read_lenient(wire: &[u8], cuts: &[usize], deflate: bool) -> (Vec<Incoming>, Option<u16>) {
    let mut r = Receiver::new(Peer::Client, 64, deflate.then(|| Inflater::new(false)));
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut fed = 0;
    for end in cuts.iter().copied().filter(|&c| c < wire.len()).chain(std::iter::once(wire.len())) {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&wire[fed..end]);
        fed = end;
        loop {
            match r.feed(&buf) {
                Ok(f) => {
                    buf.drain(..f.used);
                    match f.event {
                        Some(e) => events.push(e),
                        None => break,
                    }
                }
                Err(v) => return (events, Some(v.code)),
            }
        }
    }
    (events, None)
}
