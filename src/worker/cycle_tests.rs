//! One connection's cycle driven by hand over a unix socket pair: the
//! loop's side of it is `advance`, the app's side is played by the test
//! (taking the job from the channel, pushing output, finishing). The unit
//! tests of `cycle.rs`, in a file of their own; its helpers are shared with
//! `upgraded`'s tests.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::sync::atomic::Ordering;

use super::conn::{Conn, Peer, Phase, Stream};
use super::cycle::*;
use super::exchange::{Finish, OutChunk};
use super::script::{Rig, Setup};
use super::task::Task;
use crate::http::proxy::ProxyMode;
use crate::http::Limits;

/// The loop's surroundings (`script::Rig`) with `threads` app threads,
/// run inline or not.
pub(super) fn rig(threads: usize, inline: bool) -> Rig {
    let setup = Setup { limits: Limits::default(), trusted: true, proxy: ProxyMode::Off, proxy_allowed: false, eof: false };
    let mut cfg = super::script::loop_config(&setup);
    cfg.worker_connections = 100;
    cfg.threads = threads;
    cfg.inline = inline;
    Rig::new(cfg)
}

/// Step the connection until it waits (or closes): the step, whether it
/// wants an executor, whether its output was held.
pub(super) fn settle(rig: &Rig, conn: &mut Conn, hold_output: bool) -> (Step, bool, bool) {
    for _ in 0..64 {
        let ctx = rig.ctx(hold_output);
        let step = advance(conn, &ctx);
        rig.end_pass();
        if step != Step::Again {
            return (step, ctx.tasks.wants_executor.get(), ctx.held.get());
        }
    }
    panic!("the connection never settled");
}

pub(super) fn pair() -> (Conn, StdUnix) {
    let (ours, client) = StdUnix::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut conn = Conn::new(Stream::Unix(mio::net::UnixStream::from_std(ours)), 1, Peer::Unix, 0, true);
    conn.readable = true;
    conn.writable = true;
    (conn, client)
}

/// The app's side: answer `body` with a complete response, and count
/// the executor free again (as an executor thread does).
fn answer(rig: &Rig, task: Task, body: &[u8]) {
    rig.cfg.in_flight.fetch_sub(1, Ordering::AcqRel);
    let exchange = task.exchange();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    exchange.push_output(OutChunk::Bytes(bytes), false);
    exchange.finish(Finish::KeepAlive);
}

pub(super) fn read_some(client: &mut StdUnix) -> Vec<u8> {
    client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = client.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_request_goes_to_a_free_executor_and_its_answer_to_the_client() {
    let rig = rig(2, false);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(settle(&rig, &mut conn, false), (Step::Wait, false, false));
    let task = rig.taken.try_recv().expect("a task for the executor");
    match &task {
        Task::Serve(job) => assert_eq!((job.head.path(), job.head.query()), ("/a", "b=1")),
        Task::Resume(_) => panic!("a resume"),
    }
    answer(&rig, task, b"hello");
    conn.readable = true;
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Wait);
    assert!(read_some(&mut client).ends_with(b"\r\n\r\nhello"));
    assert!(matches!(conn.phase, Phase::Head), "ready for the next request");
}

#[test]
fn with_every_executor_busy_the_head_stays_raw_and_the_connection_waits() {
    let rig = rig(1, false);
    rig.cfg.in_flight.store(1, Ordering::Release);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(settle(&rig, &mut conn, false), (Step::Wait, true, false));
    assert!(matches!(conn.phase, Phase::Head));
    assert_eq!(&conn.rbuf[..], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(conn.can_move(), "a waiting connection can go to a sibling");
    assert!(rig.taken.try_recv().is_err());
    // An executor frees up: the request goes out.
    rig.cfg.in_flight.store(0, Ordering::Release);
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Wait);
    assert!(rig.taken.try_recv().is_ok());
}

#[test]
fn with_one_idle_executor_the_loop_runs_the_app_itself() {
    let rig = rig(1, true);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    settle(&rig, &mut conn, false);
    let task = rig.inline_task.borrow_mut().take().expect("an inline task");
    assert!(rig.taken.try_recv().is_err());
    assert_eq!(rig.cfg.in_flight.load(Ordering::Acquire), 1, "counted until the runner is done");
    assert!(task.exchange().lock().inline.is_some());
}

#[test]
fn held_output_waits_for_the_end_of_the_pass() {
    let rig = rig(1, false);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    settle(&rig, &mut conn, false);
    answer(&rig, rig.taken.try_recv().unwrap(), b"x");
    let (step, _, held) = settle(&rig, &mut conn, true);
    assert_eq!((step, held), (Step::Wait, true));
    assert!(!conn.wq.is_empty(), "nothing written while held");
    assert!(!settle(&rig, &mut conn, false).2);
    assert!(conn.wq.is_empty());
    assert!(read_some(&mut client).ends_with(b"\r\n\r\nx"));
}

#[test]
fn a_malformed_request_is_answered_and_closed() {
    let rig = rig(1, false);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").unwrap();
    assert_eq!(settle(&rig, &mut conn, false).0, Step::Close);
    assert!(read_some(&mut client).starts_with(b"HTTP/1.1 400 "));
    assert!(rig.taken.try_recv().is_err(), "never reaches the app");
}

#[test]
fn pipelined_requests_are_served_one_after_the_other() {
    let rig = rig(1, false);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    settle(&rig, &mut conn, false);
    let first = rig.taken.try_recv().unwrap();
    assert!(rig.taken.try_recv().is_err(), "one at a time per connection");
    answer(&rig, first, b"1");
    settle(&rig, &mut conn, false);
    match rig.taken.try_recv().expect("the second request") {
        Task::Serve(job) => assert_eq!(job.head.path(), "/2"),
        Task::Resume(_) => panic!("a resume"),
    }
}

/// A kind's bell that counts what the loop rang for.
#[derive(Default)]
struct CountingBell {
    tasks: std::sync::atomic::AtomicUsize,
    requests: std::sync::Mutex<Vec<u64>>,
}

impl super::task::Bell for CountingBell {
    fn tasks(&self) {
        self.tasks.fetch_add(1, Ordering::SeqCst);
    }
    fn request(&self, key: u64) {
        self.requests.lock().unwrap().push(key);
    }
}

#[test]
fn a_kind_with_a_bell_is_rung_for_work_and_for_a_waiting_request() {
    let bell = std::sync::Arc::new(CountingBell::default());
    let setup = Setup { limits: Limits::default(), trusted: true, proxy: ProxyMode::Off, proxy_allowed: false, eof: false };
    let mut cfg = super::script::loop_config(&setup);
    cfg.threads = 2;
    cfg.bell = Some(bell.clone());
    let rig = Rig::new(cfg);
    let (mut conn, mut client) = pair();
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    settle(&rig, &mut conn, false);
    let task = rig.taken.try_recv().expect("a task");
    assert_eq!(bell.tasks.load(Ordering::SeqCst), 1, "rung once for the task");
    let exchange = task.exchange();
    let mut st = exchange.lock();
    exchange.wake_executor(&st);
    assert!(bell.requests.lock().unwrap().is_empty(), "nobody waits: not rung");
    st.executor_waiting = true;
    exchange.wake_executor(&st);
    assert!(bell.requests.lock().unwrap().is_empty(), "no key registered: not rung");
    st.bell_key = Some(41);
    exchange.wake_executor(&st);
    assert_eq!(*bell.requests.lock().unwrap(), vec![41]);
}

#[test]
fn read_ahead_takes_an_idle_connections_request_and_then_its_step_serves_it() {
    let rig = rig(1, true);
    let (mut conn, mut client) = pair();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write_all(request).unwrap();
    read_ahead(&mut conn, &rig.cfg);
    assert_eq!(conn.rbuf, request, "read before the pass steps it");
    assert!(!conn.readable, "a short read emptied the socket");
    settle(&rig, &mut conn, false);
    assert!(rig.inline_task.borrow_mut().take().is_some(), "the step serves what was read ahead");
}

#[test]
fn read_ahead_leaves_a_buffered_connection_alone_and_closes_on_eof() {
    let rig = rig(1, true);
    let (mut conn, mut client) = pair();
    conn.rbuf.extend_from_slice(b"GET / HT");
    client.write_all(b"TP/1.1\r\n").unwrap();
    read_ahead(&mut conn, &rig.cfg);
    assert_eq!(conn.rbuf, b"GET / HT", "a half-read head is read by its own step");
    let (mut idle, client2) = pair();
    drop(client2);
    read_ahead(&mut idle, &rig.cfg);
    assert!(idle.read_closed && idle.rbuf.is_empty());
    assert_eq!(settle(&rig, &mut idle, false).0, Step::Close);
}
