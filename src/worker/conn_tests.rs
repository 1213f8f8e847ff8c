//! Unit tests of `conn.rs`'s pure parts, on memory streams: the write
//! queue's bookkeeping (what is retired, what counts toward back-pressure,
//! what a full socket or a real failure does), reading with its readiness
//! rules, and the facts a connection reports about itself.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use super::*;

/// A client that takes at most `per_write` bytes a call, `calls` times,
/// then is full (or fails with `fail`); reads come from `input`.
#[derive(Default)]
struct Client {
    got: Vec<u8>,
    per_write: usize,
    calls: usize,
    fail: Option<io::ErrorKind>,
    input: VecDeque<Vec<u8>>,
    eof: bool,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Client>>);

impl ByteIo for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut c = self.0.lock().unwrap();
        match c.input.pop_front() {
            Some(mut piece) => {
                let n = piece.len().min(buf.len());
                buf[..n].copy_from_slice(&piece[..n]);
                if n < piece.len() {
                    c.input.push_front(piece.split_off(n));
                }
                Ok(n)
            }
            None if c.eof => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut c = self.0.lock().unwrap();
        if c.calls == 0 {
            return Err(c.fail.unwrap_or(io::ErrorKind::WouldBlock).into());
        }
        c.calls -= 1;
        let mut taken = 0;
        for b in bufs {
            let n = b.len().min(c.per_write - taken);
            c.got.extend_from_slice(&b[..n]);
            taken += n;
        }
        Ok(taken)
    }

    fn shutdown_write(&mut self) {}
}

fn bytes(b: &[u8], counted: bool) -> (OutChunk, bool) {
    (OutChunk::Bytes(b.to_vec()), counted)
}

fn queue() -> VecDeque<(OutChunk, bool)> {
    VecDeque::from([bytes(b"head|", false), bytes(b"", true), bytes(b"body|", true), bytes(b"tail", true)])
}

#[test]
fn a_full_socket_keeps_the_unwritten_rest_and_counts_only_exchange_bytes() {
    let client = Shared::default();
    {
        let mut c = client.0.lock().unwrap();
        c.per_write = 3;
        c.calls = 3;
    }
    let mut wq = queue();
    let (mut front, mut writable) = (0, true);
    let mut out = client.clone();
    let counted = write_queue_to(&mut MemoryOut(&mut out), &mut wq, &mut front, &mut writable).unwrap();
    assert!(!writable, "the socket is full");
    assert_eq!(client.0.lock().unwrap().got, b"head|body");
    // "head|" is the loop's own output; 4 of "body|" count.
    assert_eq!(counted, 4);
    assert_eq!((wq.len(), front), (2, 4), "\"body|\" is the front, 4 bytes of it written");
    let conn_left: usize = wq.iter().map(|(c, _)| c.len()).sum::<usize>() - front;
    assert_eq!(conn_left, 5);
    // The client reads: the rest goes.
    client.0.lock().unwrap().calls = 10;
    writable = true;
    let counted = write_queue_to(&mut MemoryOut(&mut out), &mut wq, &mut front, &mut writable).unwrap();
    assert_eq!((counted, wq.len(), front), (5, 0, 0));
    assert_eq!(client.0.lock().unwrap().got, b"head|body|tail");
}

#[test]
fn a_failed_write_is_an_error_and_an_interrupted_one_is_retried() {
    let client = Shared::default();
    client.0.lock().unwrap().fail = Some(io::ErrorKind::BrokenPipe);
    let (mut wq, mut front, mut writable) = (queue(), 0, true);
    let mut out = client.clone();
    let err = write_queue_to(&mut MemoryOut(&mut out), &mut wq, &mut front, &mut writable).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let mut w = true;
    assert!(matches!(write_failed(io::ErrorKind::Interrupted.into(), &mut w), Ok(Retry::Now)) && w);
    assert!(matches!(write_failed(io::ErrorKind::WouldBlock.into(), &mut w), Ok(Retry::Blocked)) && !w);
}

#[test]
fn a_file_region_is_sent_and_a_shrunk_file_is_an_error() {
    let path = std::env::temp_dir().join(format!("rsgi-conn-test-{}", std::process::id()));
    std::fs::write(&path, b"0123456789").unwrap();
    let file = || std::fs::File::open(&path).unwrap();
    let client = Shared::default();
    {
        let mut c = client.0.lock().unwrap();
        c.per_write = 100;
        c.calls = 100;
    }
    let mut out = client.clone();
    let mut wq = VecDeque::from([(OutChunk::File { file: file(), offset: 2, remaining: 5 }, true), bytes(b"!", false)]);
    let (mut front, mut writable) = (0, true);
    let counted = write_queue_to(&mut MemoryOut(&mut out), &mut wq, &mut front, &mut writable).unwrap();
    assert_eq!((counted, wq.len()), (5, 0));
    assert_eq!(client.0.lock().unwrap().got, b"23456!");
    let mut wq = VecDeque::from([(OutChunk::File { file: file(), offset: 8, remaining: 5 }, true)]);
    let err = write_queue_to(&mut MemoryOut(&mut out), &mut wq, &mut front, &mut writable).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "promised 5 bytes, the file had 2");
    std::fs::remove_file(&path).unwrap();
}

fn memory_conn(client: &Shared) -> Conn {
    let mut conn = Conn::new(Stream::Memory(Box::new(client.clone())), 1, Peer::Unix, 0, false);
    conn.readable = true;
    conn.writable = true;
    conn
}

#[test]
fn a_short_read_ends_readiness_until_the_next_edge() {
    let client = Shared::default();
    client.0.lock().unwrap().input = VecDeque::from([b"GET / HTTP/1.1\r\n".to_vec()]);
    let mut conn = memory_conn(&client);
    assert_eq!(conn.fill(1 << 16).unwrap(), 16);
    assert!(!conn.readable, "a short read emptied the socket");
    // Nothing is read without a new edge.
    client.0.lock().unwrap().input.push_back(b"Host: x\r\n".to_vec());
    assert_eq!(conn.fill(1 << 16).unwrap(), 0);
    conn.readable = true;
    assert_eq!(conn.fill(1 << 16).unwrap(), 9);
    assert_eq!(&conn.rbuf[..], b"GET / HTTP/1.1\r\nHost: x\r\n");
}

#[test]
fn after_a_hangup_reading_goes_on_to_the_end_of_the_stream() {
    let client = Shared::default();
    {
        let mut c = client.0.lock().unwrap();
        c.input = VecDeque::from([b"ab".to_vec(), b"cd".to_vec()]);
        c.eof = true;
    }
    let mut conn = memory_conn(&client);
    conn.hup_seen = true;
    assert_eq!(conn.fill(1 << 16).unwrap(), 4);
    assert!(conn.read_closed, "read to the end, not stopped at the first short read");
    assert_eq!(&conn.rbuf[..], b"abcd");
}

#[test]
fn reading_stops_at_the_limit() {
    let client = Shared::default();
    client.0.lock().unwrap().input = VecDeque::from([vec![b'x'; 10_000]]);
    let mut conn = memory_conn(&client);
    conn.fill(5000).unwrap();
    assert_eq!(conn.rbuf.len(), 5000);
    assert!(conn.readable, "more is there: still readable");
}

#[test]
fn what_a_connection_says_of_itself() {
    let client = Shared::default();
    let mut conn = memory_conn(&client);
    assert!(conn.all_sent() && !conn.can_move(), "a memory stream has no descriptor to pass");
    assert_eq!(conn.stream.fd(), -1);
    assert!(conn.stream.source().is_none());
    conn.wq = queue();
    conn.wq_offset = 0;
    assert_eq!(conn.queued_counted(), 9);
    conn.wq.pop_front();
    conn.wq.pop_front();
    conn.wq_offset = 2;
    assert_eq!(conn.queued_counted(), 7, "the written part of the front chunk is not counted");
    assert!(!conn.all_sent());
    let c = census([&conn].into_iter());
    assert_eq!((c.open, c.in_flight, c.waiting), (1, 0, 0));
}

#[test]
fn the_access_log_address_prefers_the_proxy_header() {
    let tcp = Peer::Tcp("192.0.2.9:5000".parse().unwrap());
    let via = |client: Option<(std::net::IpAddr, u16)>| crate::http::proxy::ProxyInfo { protocol: "TCP4", client, proxy: None };
    assert_eq!(tcp.remote_addr(None), "192.0.2.9");
    assert_eq!(tcp.remote_addr(Some(&via(Some(("198.51.100.1".parse().unwrap(), 1))))), "198.51.100.1");
    assert_eq!(tcp.remote_addr(Some(&via(None))), "192.0.2.9", "a LOCAL header names no client");
    assert_eq!(Peer::Unix.remote_addr(None), "");
}
