//! Unit tests of `upgraded`: a WebSocket connection driven by hand over a
//! unix socket pair (the rig of `cycle_tests`), the kind's side played by
//! the test: the handshake checked before the app, the upgrade (frames
//! sent before the 101 included), pings and closes answered by the loop,
//! the inbox bound, the stop's 1012.

use std::io::Write;

use super::*;
use crate::websocket::frame::{write_frame, Opcode};
use crate::websocket::close::CloseFrame;
use crate::websocket::{Incoming, Peer, Receiver};
use crate::worker::conn::Conn;
use crate::worker::cycle_tests::{pair, read_some, rig as cycle_rig, settle};
use crate::worker::script::Rig;
use crate::worker::exchange::Exchange;
use crate::worker::task::Task;

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

const QUEUE: usize = 8;

fn rig() -> Rig {
    let mut rig = cycle_rig(4, false);
    rig.cfg.websocket = Some(WsSettings { max_message: 1000, deflate: true, max_queue: QUEUE, pings: crate::websocket::Pings::OFF });
    rig
}

fn client_frame(op: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, true, false, op, payload, Some([7, 7, 7, 7]));
    out
}

/// What the client reads: the server's frames.
fn frames(bytes: &[u8]) -> Vec<Incoming> {
    let mut r = Receiver::new(Peer::Server, usize::MAX, None);
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let fed = r.feed(&bytes[at..]).unwrap();
        at += fed.used;
        match fed.event {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

/// Upgrade a connection as the kind does when the app accepts.
fn upgraded(rig: &Rig) -> (Conn, std::os::unix::net::UnixStream, std::sync::Arc<Exchange>) {
    let (conn, client, exchange, answer) = accepted(rig, &[]);
    assert!(answer.windows(11).any(|w| w == b"X-Room: 1\r\n"));
    (conn, client, exchange)
}

/// [`upgraded`], the client having sent `early` right behind its
/// request; also what the client read first (the 101 and what follows it).
fn accepted(rig: &Rig, early: &[u8]) -> (Conn, std::os::unix::net::UnixStream, std::sync::Arc<Exchange>, Vec<u8>) {
    let (mut conn, mut client) = pair();
    client.write_all(&[UPGRADE, early].concat()).unwrap();
    settle(rig, &mut conn, false);
    let Ok(Task::Serve(mut job)) = rig.taken.try_recv() else { panic!("no job") };
    let offer = job.websocket.take().expect("a WebSocket offer");
    assert!(job.head.close);
    let (head, link, _sender) = offer.accept(None, [("X-Room", "1")]).unwrap();
    {
        let mut st = job.exchange.lock();
        st.out_pending += head.len();
        st.out.push_back(OutChunk::Bytes(head));
        st.websocket = Some(Box::new(link));
    }
    settle(rig, &mut conn, false);
    assert!(matches!(conn.phase, Phase::Upgraded(_)));
    let answer = read_some(&mut client);
    assert!(answer.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    (conn, client, job.exchange.clone(), answer)
}

fn inbox(exchange: &Exchange) -> Vec<ToApp> {
    let mut st = exchange.lock();
    let inbox = &mut st.websocket.as_mut().unwrap().inbox;
    std::iter::from_fn(|| inbox.pop()).collect()
}

#[test]
fn messages_in_pings_answered_and_the_close_echoed() {
    let rig = rig();
    let (mut conn, mut client, exchange) = upgraded(&rig);
    client.write_all(&[client_frame(Opcode::Text, b"hi"), client_frame(Opcode::Ping, b"p")].concat()).unwrap();
    conn.readable = true;
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Wait);
    assert_eq!(inbox(&exchange), [ToApp::Text("hi".into())]);
    assert_eq!(frames(&read_some(&mut client)), [Incoming::Pong(b"p".to_vec())], "answered without the app");
    assert_eq!(conn.deadline, None, "an idle WebSocket has no deadline");
    client.write_all(&client_frame(Opcode::Close, b"\x0f\xa0")).unwrap();
    conn.readable = true;
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Close);
    assert_eq!(inbox(&exchange), [ToApp::Disconnect { code: 4000, reason: String::new() }]);
    assert_eq!(frames(&read_some(&mut client)), [Incoming::Close(CloseFrame { code: Some(4000), reason: String::new() })]);
}

#[test]
fn frames_sent_with_the_request_are_read_once_the_app_accepts() {
    // A client that does not wait for the 101: its frames are read with
    // the head, kept while the app decides, and parsed once the connection
    // is upgraded, though no new readable edge comes for them.
    let rig = rig();
    let mut fragment = Vec::new();
    write_frame(&mut fragment, false, false, Opcode::Text, b"frag", Some([7, 7, 7, 7]));
    let mut last = Vec::new();
    write_frame(&mut last, true, false, Opcode::Continuation, b"mented", Some([7, 7, 7, 7]));
    let early = [fragment, client_frame(Opcode::Ping, b"p!"), last].concat();
    let (conn, mut client, exchange, answer) = accepted(&rig, &early);
    assert!(!conn.readable, "the socket was emptied before the upgrade");
    assert_eq!(inbox(&exchange), [ToApp::Text("fragmented".into())]);
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("the 101's end") + 4;
    let after = if answer.len() > end { answer[end..].to_vec() } else { read_some(&mut client) };
    assert_eq!(frames(&after), [Incoming::Pong(b"p!".to_vec())]);
}

#[test]
fn the_loop_stops_reading_while_the_app_does_not_receive() {
    let rig = rig();
    let (mut conn, mut client, exchange) = upgraded(&rig);
    let many: Vec<u8> = (0..QUEUE + 4).flat_map(|i| client_frame(Opcode::Binary, &[i as u8])).collect();
    client.write_all(&many).unwrap();
    conn.readable = true;
    settle(&rig, &mut conn, false);
    assert_eq!(exchange.lock().websocket.as_ref().unwrap().inbox.len(), QUEUE);
    // The app takes them: the rest is read.
    let first = inbox(&exchange);
    assert_eq!(first.len(), QUEUE);
    settle(&rig, &mut conn, false);
    assert_eq!(inbox(&exchange), (QUEUE..QUEUE + 4).map(|i| ToApp::Binary(vec![i as u8])).collect::<Vec<_>>());
}

#[test]
fn the_inbox_is_bounded_in_bytes_too() {
    let mut inbox = Inbox::new(1000);
    let piece = INBOX_BYTES / 4;
    for i in 0..4 {
        assert!(!inbox.is_full(), "{i} messages");
        inbox.push(ToApp::Binary(vec![0; piece]));
    }
    assert!(inbox.is_full(), "{INBOX_BYTES} bytes wait");
    inbox.pop();
    assert!(!inbox.is_full());
    // One message larger than the bound is still taken, alone.
    let mut inbox = Inbox::new(1000);
    inbox.push(ToApp::Text("x".repeat(INBOX_BYTES * 2)));
    assert!(inbox.is_full());
    assert_eq!(inbox.pop().map(|t| matches!(t, ToApp::Text(_))), Some(true));
    assert!(inbox.is_empty() && !inbox.is_full());
}

#[test]
fn keep_alive_pings_go_out_on_the_connections_timer() {
    use std::time::Duration;
    let mut rig = rig();
    let pings = crate::websocket::Pings { interval: Some(Duration::from_millis(1)), timeout: Some(Duration::from_secs(3600)) };
    rig.cfg.websocket.as_mut().unwrap().pings = pings;
    let (mut conn, mut client, exchange) = upgraded(&rig);
    let at = conn.wake_at.expect("the first ping's time");
    std::thread::sleep(Duration::from_millis(2));
    // The loop's tick finds the time passed and steps the connection.
    assert!(at <= std::time::Instant::now());
    settle(&rig, &mut conn, false);
    let [Incoming::Ping(payload)] = &frames(&read_some(&mut client))[..] else { panic!("one ping") };
    assert!(conn.wake_at.is_some_and(|w| w > at), "now the pong's deadline");
    client.write_all(&client_frame(Opcode::Pong, payload)).unwrap();
    conn.readable = true;
    settle(&rig, &mut conn, false);
    assert!(inbox(&exchange).is_empty(), "the pong is the loop's");
}

#[test]
fn a_protocol_error_fails_the_connection() {
    let rig = rig();
    let (mut conn, mut client, exchange) = upgraded(&rig);
    client.write_all(&client_frame(Opcode::Binary, &[0; 1001])).unwrap();
    conn.readable = true;
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Close);
    assert!(matches!(&inbox(&exchange)[..], [ToApp::Disconnect { code: 1009, .. }]));
    assert!(matches!(&frames(&read_some(&mut client))[..], [Incoming::Close(CloseFrame { code: Some(1009), .. })]));
}

#[test]
fn a_stop_closes_with_1012_and_waits_for_the_answer() {
    let rig = rig();
    let (mut conn, mut client, exchange) = upgraded(&rig);
    let mut ctx = rig.ctx(false);
    ctx.draining = true;
    while crate::worker::cycle::advance(&mut conn, &ctx) == Step::Again {}
    assert_eq!(inbox(&exchange), [ToApp::Disconnect { code: STOP_CODE, reason: String::new() }]);
    assert_eq!(frames(&read_some(&mut client)), [Incoming::Close(CloseFrame { code: Some(1012), reason: String::new() })]);
    assert!(conn.deadline.is_some(), "the wait for the answer is bounded");
    client.write_all(&client_frame(Opcode::Close, b"\x03\xf4")).unwrap();
    conn.readable = true;
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Close);
    assert_eq!(inbox(&exchange), [], "the app is told once");
}

#[test]
fn a_bad_handshake_never_reaches_the_app() {
    let rig = rig();
    let (mut conn, mut client) = pair();
    let version_8 = String::from_utf8(UPGRADE.to_vec()).unwrap().replace("Version: 13", "Version: 8");
    client.write_all(version_8.as_bytes()).unwrap();
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Close);
    let answer = read_some(&mut client);
    assert!(answer.starts_with(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(rig.taken.try_recv().is_err());
}

#[test]
fn without_a_kind_that_speaks_websocket_an_upgrade_is_plain_http() {
    let rig = cycle_rig(4, false);
    let (mut conn, mut client) = pair();
    client.write_all(UPGRADE).unwrap();
    settle(&rig, &mut conn, false);
    let Ok(Task::Serve(job)) = rig.taken.try_recv() else { panic!("no job") };
    assert!(job.websocket.is_none());
}
