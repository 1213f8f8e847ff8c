//! Where the loop's connections come from and where they go besides
//! closing: accepting from the listeners, taking connections a sibling
//! worker passed over, and passing connections on when this worker cannot
//! serve them soon (every app thread held for `STUCK_MS`, a graceful stop,
//! or the timeout thread's evacuation before the worker dies).
//!
//! The rule it keeps: a request whose head is complete never waits for an
//! app thread of this worker while a sibling has an idle one, and a request
//! that never entered the app is not lost when this worker dies.
//!
//! Runs on the worker's I/O thread (the loop); never touches Python.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

use mio::{Interest, Poll, Token};

use super::conn::{Conn, Stream};
use super::tls_io::TlsStream;
use super::io_loop::{IoLoop, ListenSock, CONN_BASE, LISTENER_BASE};
use crate::worker::conn::Peer;

impl IoLoop {
    /// Keep the listeners in the poller exactly while this worker should
    /// take new connections. With `EPOLLEXCLUSIVE` the kernel wakes one
    /// worker that waits in its poll per new connection; a stuck or draining
    /// worker that still listened could be that one and leave the
    /// connection in the queue while a sibling sits idle.
    pub(super) fn keep_listening(&mut self) {
        let want = match self.drain {
            None => self.has_capacity(),
            Some(_) => self.accept_until.is_some(),
        };
        if want == self.listening {
            return;
        }
        let op = if want { libc::EPOLL_CTL_ADD } else { libc::EPOLL_CTL_DEL };
        for (i, l) in self.listeners.iter().enumerate() {
            let _ = listener_ctl(&self.poll, op, l, LISTENER_BASE + i);
        }
        self.listening = want;
        if want {
            // Connections that queued meanwhile raise no new edge.
            self.accept_paused = true;
        }
    }

    /// Accept from every listener (a retry of paused accepts).
    pub(super) fn accept_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    /// Accept from listener `index` until it has no more, the connection
    /// limit is reached, or this worker has no capacity. A stopping worker
    /// accepts only in its last moments of listening (`accept_until`), and
    /// then whatever its load: no sibling is left to take the connection.
    pub(super) fn accept(&mut self, index: usize) {
        let stopping = self.accept_until.is_some();
        if self.drain.is_some() && !stopping {
            return;
        }
        if !stopping && !self.has_capacity() {
            // Woken for a new client while every app thread is held (the
            // kernel wakes one waiting worker per connection, and this one
            // was waiting): take it and pass it to a sibling that can serve
            // it, rather than leave it queued with that wake-up spent.
            if self.drain.is_none() {
                self.accept_for_siblings(index);
            }
            self.accept_paused = true;
            return;
        }
        loop {
            if self.conns.len() >= self.cfg.worker_connections {
                self.accept_paused = true;
                return;
            }
            let (stream, peer) = match self.accept_one(index) {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.accept_paused = false;
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ECONNABORTED, EMFILE…: log and try again later.
                    crate::debug!("accept failed: {e}");
                    self.accept_paused = true;
                    return;
                }
            };
            let deadline = self.now + self.cfg.io_timeout;
            self.adopt(stream, peer, index, |conn| conn.deadline = Some(deadline));
        }
    }

    /// Accept one connection from listener `index`, wrapped as this
    /// worker serves it (TLS with `--certfile`).
    fn accept_one(&self, index: usize) -> std::io::Result<(Stream, Peer)> {
        match &self.listeners[index] {
            ListenSock::Tcp(l) => l.accept().and_then(|(s, addr)| {
                let _ = s.set_nodelay(true);
                let stream = match &self.cfg.tls {
                    Some(config) => Stream::Tls(Box::new(TlsStream::new(s, config.clone(), self.cfg.ragged)?)),
                    None => Stream::Tcp(s),
                };
                Ok((stream, Peer::Tcp(addr)))
            }),
            ListenSock::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), Peer::Unix)),
        }
    }

    /// Accept from listener `index` while a sibling can take the
    /// connections (this worker is stuck), passing each on at once.
    fn accept_for_siblings(&mut self, index: usize) {
        if self.cfg.tls.is_some() {
            // A TLS connection's state cannot travel (see `Conn::can_move`).
            return;
        }
        let mut sent: Vec<(usize, usize)> = Vec::new();
        loop {
            let Some(target) = self.handoff.as_ref().and_then(|h| h.pick(self.cfg.admission, self.cfg.threads, super::io_loop::STUCK_MS, &sent)) else {
                return;
            };
            let Ok((stream, peer)) = self.accept_one(index) else { return };
            let deadline = self.now + self.cfg.io_timeout;
            let Some(key) = self.adopt(stream, peer, index, |conn| conn.deadline = Some(deadline)) else { continue };
            if self.move_to(key, target) {
                match sent.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, n)) => *n += 1,
                    None => sent.push((target, 1)),
                }
            } else {
                // It stays here, served once a thread is free.
                return;
            }
        }
    }

    /// Take a new connection into the poller and the slab; `set_up` fills
    /// in what the caller knows about it. Returns its key.
    fn adopt(&mut self, mut stream: Stream, peer: Peer, listener: usize, set_up: impl FnOnce(&mut Conn)) -> Option<usize> {
        let trusted = match peer {
            Peer::Tcp(addr) => self.cfg.forwarded_allow.allows(addr.ip()),
            Peer::Unix => true,
        };
        self.next_serial += 1;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let token = Token(CONN_BASE + key);
        let source = stream.source()?;
        if self.poll.registry().register(source, token, Interest::READABLE | Interest::WRITABLE).is_err() {
            return None;
        }
        let mut conn = Conn::new(stream, self.next_serial, peer, listener, trusted);
        set_up(&mut conn);
        entry.insert(conn);
        Some(key)
    }

    /// Take every connection siblings passed to this worker. They are
    /// stepped at once: bytes may already wait in their buffers.
    pub(super) fn receive_handoffs(&mut self) {
        loop {
            let Some(handoff) = &self.handoff else { return };
            let received = match handoff.recv() {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    crate::debug!("hand-off receive failed: {e}");
                    return;
                }
            };
            let c = received.carried;
            let raw = received.fd.into_raw_fd();
            let (stream, peer) = if c.unix {
                // SAFETY: the descriptor came to us with SCM_RIGHTS and is
                // owned by nothing else in this process.
                let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(raw) };
                let _ = s.set_nonblocking(true);
                (Stream::Unix(mio::net::UnixStream::from_std(s)), Peer::Unix)
            } else {
                // SAFETY: as above.
                let s = unsafe { std::net::TcpStream::from_raw_fd(raw) };
                let _ = s.set_nonblocking(true);
                let Ok(addr) = s.peer_addr() else { continue };
                (Stream::Tcp(mio::net::TcpStream::from_std(s)), Peer::Tcp(addr))
            };
            let listener = usize::from(c.listener).min(self.listeners.len().saturating_sub(1));
            let deadline = self.now + if c.rbuf.is_empty() { self.cfg.keepalive } else { self.cfg.io_timeout };
            let key = self.adopt(stream, peer, listener, move |conn| {
                conn.served = c.served;
                conn.read_closed = c.read_closed;
                conn.proxy = c.proxy;
                conn.rbuf = c.rbuf;
                conn.readable = true;
                conn.writable = true;
                conn.deadline = Some(deadline);
            });
            if let Some(key) = key {
                self.ready.push_back(key);
            }
        }
    }

    /// Pass connections to siblings when this worker cannot serve them
    /// soon:
    /// - stuck (every app thread held for `STUCK_MS`): connections whose
    ///   request waits for an app thread go to siblings with an idle one;
    /// - draining: idle connections go to any sibling still serving (their
    ///   next request is then not met by a closing worker), waiting ones to
    ///   a sibling with an idle app thread;
    /// - evacuating (the worker is about to be killed for a timeout):
    ///   everything that can move goes to any sibling still serving.
    ///
    /// Nothing moves when no sibling qualifies: the connection stays, as it
    /// would without siblings.
    pub(super) fn pass_on(&mut self) {
        if self.handoff.is_none() {
            return;
        }
        let evacuating = self.evacuation.requested();
        let draining = self.drain.is_some();
        let stuck = self.is_stuck();
        if !evacuating && !draining && (!stuck || self.waiting.is_empty()) {
            return;
        }
        // The keys are copied (moving a connection changes `conns` and
        // `waiting`) into a buffer kept between turns: a draining worker
        // comes here every turn.
        let mut keys = std::mem::take(&mut self.pass_keys);
        keys.clear();
        if evacuating || draining {
            keys.extend(self.conns.iter().map(|(k, _)| k));
        } else {
            keys.extend(self.waiting.iter().copied());
        }
        let mut sent: Vec<(usize, usize)> = Vec::new();
        let mut round = 0;
        for &key in &keys {
            let Some(conn) = self.conns.get(key) else { continue };
            if !conn.can_move() {
                continue;
            }
            let has_request = !conn.rbuf.is_empty();
            let Some(handoff) = &self.handoff else { break };
            let target = match handoff.pick(self.cfg.admission, self.cfg.threads, super::io_loop::STUCK_MS, &sent) {
                Some(t) if has_request || evacuating || draining => Some(t),
                _ if evacuating || (draining && !has_request) => {
                    round += 1;
                    handoff.any(round)
                }
                _ => None,
            };
            let Some(target) = target else { continue };
            if self.move_to(key, target) {
                match sent.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, n)) => *n += 1,
                    None => sent.push((target, 1)),
                }
            }
        }
        self.pass_keys = keys;
        self.waiting.retain(|k| self.conns.contains(*k));
        if evacuating {
            self.evacuation.complete();
        }
    }

    /// Send connection `key` to the sibling in slot `target`; on success it
    /// is gone from this worker. Returns whether it moved.
    fn move_to(&mut self, key: usize, target: usize) -> bool {
        let Some(conn) = self.conns.get(key) else { return false };
        let Some(handoff) = &self.handoff else { return false };
        let carried = super::handoff::Carried {
            listener: conn.listener as u16,
            served: conn.served,
            read_closed: conn.read_closed,
            unix: matches!(conn.peer, Peer::Unix),
            proxy: conn.proxy.clone(),
            rbuf: conn.rbuf.clone(),
        };
        if let Err(e) = handoff.send(target, conn.stream.fd(), &carried) {
            crate::debug!("hand-off to slot {target} failed: {e}");
            return false;
        }
        let mut conn = self.conns.remove(key);
        // Out of this poller before the descriptor closes: the connection
        // lives on in the sibling, and epoll would otherwise keep reporting
        // it here.
        if let Some(source) = conn.stream.source() {
            let _ = self.poll.registry().deregister(source);
        }
        true
    }
}

/// Add a listening socket to (or remove it from) the loop's epoll set.
///
/// Every worker watches the same listening sockets. Registered plainly, one
/// new connection would wake every idle worker, and all but one would find
/// nothing to accept (the thundering herd: measured with bench/scaling.py
/// as CPU per request growing with the worker count on short
/// connections). With EPOLLEXCLUSIVE the kernel wakes one idle worker per
/// connection; busy workers still see it in their next poll. Edge-triggered
/// like every mio registration: a worker accepts until EAGAIN, and one that
/// paused accepting retries on its own (`accept_paused`).
pub(super) fn listener_ctl(poll: &Poll, op: libc::c_int, l: &ListenSock, token: usize) -> std::io::Result<()> {
    let fd = match l {
        ListenSock::Tcp(s) => s.as_raw_fd(),
        ListenSock::Unix(s) => s.as_raw_fd(),
    };
    let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32, u64: token as u64 };
    // SAFETY: epoll_ctl on mio's epoll descriptor with a descriptor we own;
    // mio reads the token back from the event's data as it does for its own
    // registrations.
    if unsafe { libc::epoll_ctl(poll.as_raw_fd(), op, fd, &mut ev) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
