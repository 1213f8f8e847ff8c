//! Unit tests of `session`: a client's frames in, what the client reads
//! back and what the app is told out.

use super::*;
use crate::websocket::deflate::{Deflater, Inflater};
use crate::websocket::frame::{write_frame, Opcode};
use crate::websocket::sender::encode_message;

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

fn frame(op: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, true, false, op, payload, MASK);
    out
}

/// Feed all of `input`; what the app got, and the frames the client reads.
fn drive(s: &mut Session, input: &[u8]) -> (Vec<ToApp>, Vec<Incoming>) {
    let mut out = Vec::new();
    let mut app = Vec::new();
    let mut at = 0;
    loop {
        let step = s.on_bytes(&input[at..], &mut out);
        at += step.used;
        match step.to_app {
            Some(t) => app.push(t),
            None => break,
        }
    }
    assert!(at <= input.len(), "never more than given");
    (app, client_reads(&out))
}

/// Decode the server's output as a client would.
fn client_reads(out: &[u8]) -> Vec<Incoming> {
    let mut r = Receiver::new(Peer::Server, usize::MAX, Some(Inflater::new(false)));
    let mut events = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let fed = r.feed(&out[at..]).expect("the server's output is valid");
        at += fed.used;
        match fed.event {
            Some(e) => events.push(e),
            None => break,
        }
    }
    assert_eq!(at, out.len(), "whole frames only");
    events
}

fn disconnect(code: u16, reason: &str) -> ToApp {
    ToApp::Disconnect { code, reason: reason.into() }
}

#[test]
fn echoes_pings_and_the_peers_close() {
    let (mut s, mut tx) = Session::new(None, 100);
    let wire = [frame(Opcode::Text, b"hi"), frame(Opcode::Ping, b"p1"), frame(Opcode::Binary, b"\x00"), frame(Opcode::Close, b"\x0f\xa0bye")].concat();
    let (app, client) = drive(&mut s, &wire);
    assert_eq!(app, [ToApp::Text("hi".into()), ToApp::Binary(vec![0]), disconnect(4000, "bye")]);
    assert_eq!(client, [Incoming::Pong(b"p1".to_vec()), Incoming::Close(CloseFrame { code: Some(4000), reason: String::new() })]);
    assert!(s.is_finished());
    let mut out = Vec::new();
    assert_eq!(s.send(&mut tx, DataKind::Text, b"late", &mut out), Err(Refused::Closed));
    assert_eq!(s.on_eof(), None, "told once");
    assert!(out.is_empty());
}

#[test]
fn an_empty_close_is_1005_and_answered_empty() {
    let (mut s, _) = Session::new(None, 100);
    let (app, client) = drive(&mut s, &frame(Opcode::Close, b""));
    assert_eq!(app, [disconnect(1005, "")]);
    assert_eq!(client, [Incoming::Close(CloseFrame { code: None, reason: String::new() })]);
}

#[test]
fn the_apps_close_waits_for_the_answer() {
    let (mut s, mut tx) = Session::new(None, 100);
    let mut out = Vec::new();
    s.send(&mut tx, DataKind::Text, b"hello", &mut out).unwrap();
    assert_eq!(s.close(999, "", &mut out), Err(Refused::BadCode(999)));
    s.close(4001, "done", &mut out).unwrap();
    assert_eq!(s.closing(), Closing::CloseSent);
    assert_eq!(s.close(1000, "", &mut out), Err(Refused::Closed));
    assert_eq!(
        client_reads(&out),
        [Incoming::Text("hello".into()), Incoming::Close(CloseFrame { code: Some(4001), reason: "done".into() })]
    );
    // Data still in flight is dropped; the peer's close finishes it and
    // is not answered again, nor told to the app that closed.
    let (app, client) = drive(&mut s, &[frame(Opcode::Text, b"late"), frame(Opcode::Ping, b""), frame(Opcode::Close, b"\x0f\xa1")].concat());
    assert_eq!((app, client), (vec![], vec![]));
    assert!(s.is_finished());
}

#[test]
fn protocol_failures_close_with_their_code_at_once() {
    for (wire, code) in [
        (b"\x81\x02hi".to_vec(), 1002),                   // unmasked
        (frame(Opcode::Text, b"\xff"), 1007),             // not UTF-8
        (frame(Opcode::Binary, &[0; 101]), 1009),         // over the bound
        (frame(Opcode::Close, b"\x03\xee"), 1002),        // 1006 may not be sent
    ] {
        let (mut s, _) = Session::new(None, 100);
        let (app, client) = drive(&mut s, &wire);
        assert_eq!(app.len(), 1);
        assert!(matches!(&app[0], ToApp::Disconnect { code: c, .. } if *c == code), "{app:?}");
        assert!(matches!(&client[..], [Incoming::Close(CloseFrame { code: Some(c), .. })] if *c == code), "{client:?}");
        assert!(s.is_finished(), "no wait for an answer");
    }
}

#[test]
fn shutdown_and_eof() {
    let (mut s, _) = Session::new(None, 100);
    let mut out = Vec::new();
    assert_eq!(s.shutdown(1012, &mut out), Some(disconnect(1012, "")));
    assert_eq!(s.shutdown(1012, &mut out), None);
    assert_eq!(client_reads(&out), [Incoming::Close(CloseFrame { code: Some(1012), reason: String::new() })]);
    assert_eq!(s.closing(), Closing::CloseSent);
    assert_eq!(s.on_eof(), None, "the app already knows");
    let (mut s, _) = Session::new(None, 100);
    assert_eq!(s.on_eof(), Some(disconnect(1006, "")));
    assert!(s.is_finished());
}

#[test]
fn compressed_both_ways() {
    let agreed = Deflate { server_no_context_takeover: false, client_no_context_takeover: true };
    let (mut s, mut tx) = Session::new(Some(agreed), 1000);
    let mut wire = Vec::new();
    let mut client = Deflater::new(true);
    for _ in 0..2 {
        let mut c = Vec::new();
        client.compress(&[b'z'; 500], &mut c);
        encode_message(&mut wire, DataKind::Binary, &c, &[1], true, MASK);
    }
    let (app, _) = drive(&mut s, &wire);
    assert_eq!(app, [ToApp::Binary(vec![b'z'; 500]), ToApp::Binary(vec![b'z'; 500])]);
    let mut out = Vec::new();
    s.send(&mut tx, DataKind::Text, "x".repeat(500).as_bytes(), &mut out).unwrap();
    assert!(out.len() < 50);
    assert_eq!(client_reads(&out), [Incoming::Text("x".repeat(500))]);
}

#[test]
fn keep_alive_pings_and_fails_without_a_pong() {
    use crate::websocket::keepalive::{KeepAlive, Pings};
    use std::time::{Duration, Instant};
    let t = Instant::now();
    let pings = Pings { interval: Some(Duration::from_millis(10)), timeout: Some(Duration::from_millis(5)) };
    let (mut s, _) = Session::new(None, 100);
    s.keep_alive(KeepAlive::new(pings, t));
    assert_eq!(s.next_timer(), Some(t + Duration::from_millis(10)));
    let mut out = Vec::new();
    assert_eq!(s.on_timer(t + Duration::from_millis(10), &mut out), None);
    let [Incoming::Ping(payload)] = &client_reads(&out)[..] else { panic!("one ping") };
    // The client answers: the next ping is due an interval after this one.
    let (app, _) = drive(&mut s, &frame(Opcode::Pong, payload));
    assert!(app.is_empty(), "pongs are not the app's");
    assert_eq!(s.next_timer(), Some(t + Duration::from_millis(20)));
    out.clear();
    assert_eq!(s.on_timer(t + Duration::from_millis(20), &mut out), None);
    assert!(matches!(&client_reads(&out)[..], [Incoming::Ping(_)]));
    // No answer this time: 1011, the app told, the socket to close.
    out.clear();
    assert_eq!(s.on_timer(t + Duration::from_millis(25), &mut out), Some(disconnect(1011, "keepalive ping timeout")));
    assert!(matches!(&client_reads(&out)[..], [Incoming::Close(c)] if c.code == Some(1011)));
    assert!(s.is_finished());
    assert_eq!(s.next_timer(), None);
}
