//! The worker's I/O loop: one mio poller that owns every socket of the
//! worker. It accepts, reads, parses heads, decodes bodies, dispatches
//! complete requests to the executors, writes their output, keeps
//! connections alive, and enforces timeouts. It never takes the GIL, so an
//! idle or slow client costs a buffer and a poller slot, never a Python
//! thread.
//!
//! Runs on the worker process's main thread, with the GIL released.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::{TcpListener, UnixListener};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{Active, Conn, Phase, Stream};
use super::exchange::{Exchange, ExchangeState, Finish, LoopHandle, Notice, BODY_BUFFER, OUT_HIGH_WATER};
use super::executor::Job;
use crate::http::proxy::{self, ProxyMode, ProxyParsed};
use crate::http::request::find_head_end;
use crate::http::response::{error_response, CONTINUE};
use crate::http::trust::AllowList;
use crate::http::{parse_head, BodyDecoder, HttpError, Limits, Parsed};
use crate::scoreboard::{SlotHandle, SlotState};
use crate::signals::{Signal, SignalPipe};
use crate::wsgi::environ::Peer;
use crate::wsgi::start_response::http_date;

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Listener tokens start here; connection tokens start at `CONN_BASE`.
const LISTENER_BASE: usize = 2;
const CONN_BASE: usize = 1024;

/// How often timeouts and the parent are checked.
const TICK: Duration = Duration::from_millis(500);

/// A request running longer than this on every executor makes the worker
/// stop accepting new connections until one finishes (see `has_capacity`).
const BUSY_ACCEPT_MS: u64 = 20;


/// What the loop needs from the configuration.
pub struct LoopConfig {
    pub limits: Limits,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keepalive: Duration,
    /// Time a client has to deliver a request head (and each stretch of a
    /// buffered body), and a stalled reader has before it is dropped.
    pub io_timeout: Duration,
    pub worker_connections: usize,
    pub graceful_timeout: Duration,
    pub forwarded_allow: AllowList,
    pub proxy_mode: ProxyMode,
    pub proxy_allow: AllowList,
    /// The master's pid: when the parent changes, the worker stops.
    pub master_pid: i32,
    /// This worker's scoreboard slot (heartbeat, state, request count).
    pub slot: SlotHandle,
    /// Retire after this many requests (0: never); jitter already added.
    pub max_requests: u64,
    /// Retire once the resident set passes this many bytes (0: never).
    pub max_memory: u64,
    /// Requests handed to executors and not yet done (executors decrement).
    pub in_flight: Arc<AtomicUsize>,
    /// Executor threads: with this many requests in flight the worker stops
    /// accepting, so other workers take new connections.
    pub threads: usize,
}

/// A listening socket as the worker holds it.
pub enum ListenSock {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopExit {
    /// Every connection finished (TERM, or the parent went away).
    Graceful,
    /// INT or QUIT: leave at once.
    Fast,
    /// ABRT from the master (a timeout): dump tracebacks, call the
    /// `worker_abort` hook, die by SIGABRT.
    Abort,
}

/// Everything `advance` needs besides the connection.
struct Ctx<'a> {
    cfg: &'a LoopConfig,
    jobs: &'a Sender<Job>,
    handle: &'a LoopHandle,
    in_flight: &'a AtomicUsize,
    servers: &'a [Option<Arc<(String, String)>>],
    token: usize,
    draining: bool,
    now: Instant,
    /// Requests this step completed (for the scoreboard).
    completed: std::cell::Cell<u64>,
    /// Requests this worker may still start under `--max-requests`
    /// (`u64::MAX` when unlimited); the one that reaches zero is answered
    /// with `Connection: close` and retires the worker, as in gunicorn.
    requests_left: &'a std::cell::Cell<u64>,
}

/// What one step of a connection's state machine asks for next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Something changed: step again.
    Again,
    /// Nothing to do until an event or notice arrives.
    Wait,
    /// Drop the connection.
    Close,
}

pub struct IoLoop {
    poll: Poll,
    listeners: Vec<ListenSock>,
    /// SERVER_NAME / SERVER_PORT per listener.
    servers: Vec<Option<Arc<(String, String)>>>,
    conns: Slab<Conn>,
    next_serial: u64,
    jobs: Sender<Job>,
    notices: Receiver<Notice>,
    handle: LoopHandle,
    signals: SignalPipe,
    cfg: LoopConfig,
    /// Set once a graceful stop began: when it must be over.
    drain_deadline: Option<Instant>,
    /// Accepting paused at the connection limit.
    accept_paused: bool,
    /// Requests left before `--max-requests` retires the worker.
    requests_left: std::cell::Cell<u64>,
}

impl IoLoop {
    /// Set up the poller, the listeners and the signal pipe. Called in the
    /// worker after fork.
    pub fn new(
        listeners: Vec<ListenSock>,
        servers: Vec<Option<Arc<(String, String)>>>,
        jobs: Sender<Job>,
        signals: SignalPipe,
        cfg: LoopConfig,
    ) -> std::io::Result<IoLoop> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let (tx, notices) = crossbeam_channel::unbounded();
        let mut listeners = listeners;
        for (i, l) in listeners.iter_mut().enumerate() {
            let token = Token(LISTENER_BASE + i);
            match l {
                ListenSock::Tcp(s) => poll.registry().register(s, token, Interest::READABLE)?,
                ListenSock::Unix(s) => poll.registry().register(s, token, Interest::READABLE)?,
            }
        }
        poll.registry().register(&mut SourceFd(&signals.fd()), SIGNALS, Interest::READABLE)?;
        let cfg_max = cfg.max_requests;
        Ok(IoLoop {
            poll,
            listeners,
            servers,
            conns: Slab::new(),
            next_serial: 0,
            jobs,
            notices,
            handle: LoopHandle { notices: tx, waker, sleeping: Arc::new(std::sync::atomic::AtomicBool::new(false)) },
            signals,
            cfg,
            drain_deadline: None,
            accept_paused: false,
            requests_left: std::cell::Cell::new(if cfg_max == 0 { u64::MAX } else { cfg_max }),
        })
    }

    /// Run until stopped.
    pub fn run(&mut self) -> LoopExit {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let mut timeout = next_tick.saturating_duration_since(Instant::now());
            // Announce the sleep, then look for notices sent before it: an
            // executor that saw `sleeping` false left its notice queued.
            self.handle.sleeping.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !self.notices.is_empty() || (self.accept_paused && self.has_capacity()) {
                timeout = Duration::ZERO;
            }
            let polled = self.poll.poll(&mut events, Some(timeout));
            self.handle.sleeping.store(false, Ordering::SeqCst);
            if let Err(e) = polled {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    crate::error!("poll failed: {e}");
                    return LoopExit::Fast;
                }
            }
            // New clients first: an executor that just freed up takes a
            // waiting connection before the next queued request.
            if self.accept_paused && self.has_capacity() {
                for i in 0..self.listeners.len() {
                    self.accept(i);
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    SIGNALS => {
                        for sig in self.signals.drain() {
                            match sig {
                                Signal::Term => self.begin_drain(),
                                Signal::Int | Signal::Quit => return LoopExit::Fast,
                                Signal::Abrt => return LoopExit::Abort,
                                Signal::Usr1 => {
                                    crate::log::reopen();
                                    crate::access_log::reopen();
                                }
                                _ => {}
                            }
                        }
                    }
                    Token(t) if (LISTENER_BASE..CONN_BASE).contains(&t) => self.accept(t - LISTENER_BASE),
                    Token(t) => {
                        let key = t - CONN_BASE;
                        if let Some(conn) = self.conns.get_mut(key) {
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                conn.readable = true;
                            }
                            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                                conn.writable = true;
                            }
                            self.drive(key);
                        }
                    }
                }
            }
            while let Ok(n) = self.notices.try_recv() {
                let key = n.token - CONN_BASE;
                if self.conns.get(key).map(|c| c.serial) == Some(n.serial) {
                    self.drive(key);
                }
            }
            if self.accept_paused && self.has_capacity() {
                for i in 0..self.listeners.len() {
                    self.accept(i);
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick(now);
            }
            if let Some(deadline) = self.drain_deadline {
                if self.conns.is_empty() || now >= deadline {
                    return LoopExit::Graceful;
                }
            }
        }
    }

    /// Stop accepting and let connections finish (TERM, max-requests, the
    /// memory ceiling, a lost parent). Connections between requests stay
    /// until their keep-alive time runs out, and any request that arrives
    /// on them meanwhile is answered with `Connection: close`, so a client
    /// never has a kept-alive connection shut under its next request.
    fn begin_drain(&mut self) {
        if self.drain_deadline.is_some() {
            return;
        }
        self.cfg.slot.set_state(SlotState::Retiring);
        self.drain_deadline = Some(Instant::now() + self.cfg.graceful_timeout);
        for l in self.listeners.iter_mut() {
            let _ = match l {
                ListenSock::Tcp(s) => self.poll.registry().deregister(s),
                ListenSock::Unix(s) => self.poll.registry().deregister(s),
            };
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.drive(key);
        }
    }

    /// Periodic work: the heartbeat, timeouts, re-trying paused work, the
    /// parent and memory checks.
    fn tick(&mut self, now: Instant) {
        self.cfg.slot.beat();
        if self.drain_deadline.is_none() {
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != self.cfg.master_pid {
                crate::info!("Parent changed, shutting down: {}", std::process::id());
                self.begin_drain();
            } else if self.cfg.max_memory > 0 {
                let rss = resident_bytes();
                if rss > self.cfg.max_memory {
                    crate::info!(
                        "Worker (pid:{}) uses {} MiB, over --max-worker-memory {} MiB: restarting after current requests.",
                        std::process::id(),
                        rss >> 20,
                        self.cfg.max_memory >> 20
                    );
                    self.begin_drain();
                }
            }
        }
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            self.close(key);
        }
        // Jobs that found the channel full, and paused accepts.
        let pending: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.phase, Phase::Exchange(a) if a.job.is_some()))
            .map(|(k, _)| k)
            .collect();
        for key in pending {
            self.drive(key);
        }
        if self.accept_paused {
            for i in 0..self.listeners.len() {
                self.accept(i);
            }
        }
    }

    /// True when this worker should take new connections: an executor is
    /// free, or every busy executor started its request only just now. A
    /// worker whose executors are all held by slow or stuck requests leaves
    /// new connections to the other workers (and takes them again as soon
    /// as a request finishes: paused accepts are retried first thing after
    /// every wake-up), while a worker that is merely saturated with quick
    /// requests keeps accepting, so a new client is answered promptly.
    fn has_capacity(&self) -> bool {
        if self.cfg.in_flight.load(Ordering::Acquire) < self.cfg.threads {
            return true;
        }
        match self.cfg.slot.oldest_busy_ms() {
            Some(since) => crate::scoreboard::now_ms().saturating_sub(since) < BUSY_ACCEPT_MS,
            None => true,
        }
    }

    fn accept(&mut self, index: usize) {
        if self.drain_deadline.is_some() {
            return;
        }
        if !self.has_capacity() {
            self.accept_paused = true;
            return;
        }
        loop {
            if self.conns.len() >= self.cfg.worker_connections {
                self.accept_paused = true;
                return;
            }
            let accepted = match &self.listeners[index] {
                ListenSock::Tcp(l) => l.accept().map(|(s, addr)| {
                    let _ = s.set_nodelay(true);
                    (Stream::Tcp(s), Peer::Tcp(addr))
                }),
                ListenSock::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), Peer::Unix)),
            };
            let (mut stream, peer) = match accepted {
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
            let trusted = match peer {
                Peer::Tcp(addr) => self.cfg.forwarded_allow.allows(addr.ip()),
                Peer::Unix => true,
            };
            self.next_serial += 1;
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let token = Token(CONN_BASE + key);
            if self.poll.registry().register(stream.source(), token, Interest::READABLE | Interest::WRITABLE).is_err() {
                continue;
            }
            let mut conn = Conn::new(stream, self.next_serial, peer, index, trusted);
            conn.deadline = Some(Instant::now() + self.cfg.io_timeout);
            entry.insert(conn);
        }
    }

    /// After a request completes: retire at `--max-requests`.
    fn check_max_requests(&mut self) {
        if self.requests_left.get() == 0 && self.drain_deadline.is_none() {
            crate::info!("Autorestarting worker after current request.");
            self.begin_drain();
        }
    }

    /// Step a connection's state machine until it has to wait.
    fn drive(&mut self, key: usize) {
        let draining = self.drain_deadline.is_some();
        for _ in 0..64 {
            let Some(conn) = self.conns.get_mut(key) else { return };
            let ctx = Ctx {
                cfg: &self.cfg,
                jobs: &self.jobs,
                handle: &self.handle,
                in_flight: &self.cfg.in_flight,
                servers: &self.servers,
                token: CONN_BASE + key,
                draining,
                now: Instant::now(),
                completed: std::cell::Cell::new(0),
                requests_left: &self.requests_left,
            };
            let step = advance(conn, &ctx);
            if ctx.completed.get() > 0 {
                self.cfg.slot.requests.fetch_add(ctx.completed.get(), std::sync::atomic::Ordering::Relaxed);
            }
            self.check_max_requests();
            match step {
                Step::Again => continue,
                Step::Wait => return,
                Step::Close => {
                    self.close(key);
                    return;
                }
            }
        }
    }

    /// Drop a connection; an executor still working on it is told the
    /// client is gone.
    fn close(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if let Phase::Exchange(a) = &conn.phase {
            let mut st = a.exchange.lock();
            st.client_gone = true;
            a.exchange.wake_executor(&st);
        }
        let _ = self.poll.registry().deregister(conn.stream.source());
        if self.accept_paused && self.drain_deadline.is_none() {
            for i in 0..self.listeners.len() {
                self.accept(i);
            }
        }
    }
}

/// One step of a connection: move output, write, read, and advance the
/// request cycle.
fn advance(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    // Take what the executor produced.
    if let Phase::Exchange(a) = &mut conn.phase {
        let mut st = a.exchange.lock();
        st.loop_notified = false;
        while let Some(chunk) = st.out.pop_front() {
            conn.wq.push_back((chunk, true));
        }
        if a.finished.is_none() {
            a.finished = st.finish;
        }
    }

    // Write what is queued.
    let mut progressed = false;
    if !conn.wq.is_empty() && conn.writable {
        match conn.flush() {
            Ok(counted) => {
                progressed = counted > 0;
                if let Phase::Exchange(a) = &conn.phase {
                    if counted > 0 {
                        let mut st = a.exchange.lock();
                        st.out_pending = st.out_pending.saturating_sub(counted);
                        if st.out_pending < OUT_HIGH_WATER {
                            a.exchange.wake_executor(&st);
                        }
                    }
                }
            }
            Err(_) => return Step::Close,
        }
    }
    if !conn.wq.is_empty() && (progressed || conn.deadline.is_none()) {
        // A client that stops reading is dropped after io_timeout.
        conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
    }

    match conn.phase {
        Phase::Closing => {
            if conn.wq.is_empty() {
                conn.stream.shutdown_write();
                Step::Close
            } else {
                if conn.deadline.is_none() {
                    conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
                }
                Step::Wait
            }
        }
        Phase::Head => head_step(conn, ctx),
        Phase::Exchange(_) => {
            let step = exchange_step(conn, ctx);
            if step == Step::Wait && progressed {
                Step::Again
            } else {
                step
            }
        }
    }
}

/// Answer a bad request and close.
fn refuse(conn: &mut Conn, err: &HttpError, ctx: &Ctx<'_>) -> Step {
    let ip = match conn.peer {
        Peer::Tcp(a) => a.ip().to_string(),
        Peer::Unix => String::new(),
    };
    crate::warn!("Invalid request from ip={ip}: {err}");
    conn.queue_own(error_response(err.status(), &err.to_string(), &http_date(), true));
    conn.phase = Phase::Closing;
    conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
    Step::Again
}

fn peer_ip(peer: Peer) -> Option<IpAddr> {
    match peer {
        Peer::Tcp(a) => Some(a.ip()),
        Peer::Unix => None,
    }
}

/// Waiting for or reading a request head.
fn head_step(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    if ctx.draining && conn.rbuf.is_empty() {
        // Keep the connection until its idle time runs out: a request
        // already on its way is answered (with Connection: close).
        let limit = ctx.now + ctx.cfg.keepalive;
        if conn.deadline.is_none_or(|d| d > limit) {
            conn.deadline = Some(limit);
        }
    }
    let limits = &ctx.cfg.limits;
    let cap = limits.effective_request_line() + limits.max_header_block() + 4096;
    let before = conn.rbuf.len();
    if conn.fill(cap).is_err() {
        return Step::Close;
    }
    if conn.rbuf.is_empty() {
        return if conn.read_closed { Step::Close } else { Step::Wait };
    }
    if conn.served == 0 && conn.proxy.is_none() && ctx.cfg.proxy_mode != ProxyMode::Off && conn.scanned == 0 {
        if proxy::has_signature(&conn.rbuf, ctx.cfg.proxy_mode) {
            if let Some(ip) = peer_ip(conn.peer) {
                if !ctx.cfg.proxy_allow.allows(ip) {
                    return refuse(conn, &HttpError::ForbiddenProxy(ip.to_string()), ctx);
                }
            }
        }
        match proxy::parse(&conn.rbuf, ctx.cfg.proxy_mode) {
            Ok(ProxyParsed::Incomplete) => {
                return if conn.read_closed { Step::Close } else { Step::Wait };
            }
            Ok(ProxyParsed::Header(info, used)) => {
                if let Some(ip) = peer_ip(conn.peer) {
                    if !ctx.cfg.proxy_allow.allows(ip) {
                        return refuse(conn, &HttpError::ForbiddenProxy(ip.to_string()), ctx);
                    }
                }
                conn.rbuf.drain(..used);
                conn.proxy = Some(info);
                return Step::Again;
            }
            Ok(ProxyParsed::Absent) => {}
            Err(e) => return refuse(conn, &e, ctx),
        }
    }
    let end = find_head_end(&conn.rbuf, conn.scanned);
    let parsed = match end {
        Some(end) => parse_head(&conn.rbuf[..end], limits, conn.trusted),
        None => {
            // Only re-run the full checks when the new bytes could fail
            // them (a line feed, or past the request-line bound), so a
            // client dribbling bytes costs a scan of its new bytes only.
            let from = if conn.scanned == 0 { 0 } else { before.saturating_sub(1) };
            let fresh = &conn.rbuf[from..];
            let check = memchr::memchr(b'\n', fresh).is_some() || conn.rbuf.len() > limits.effective_request_line();
            conn.scanned = conn.rbuf.len();
            if check {
                parse_head(&conn.rbuf, limits, conn.trusted)
            } else {
                Ok(Parsed::Incomplete)
            }
        }
    };
    match parsed {
        Err(e) => refuse(conn, &e, ctx),
        Ok(Parsed::Incomplete) => {
            if conn.read_closed {
                Step::Close
            } else if conn.rbuf.len() > before {
                Step::Again
            } else {
                Step::Wait
            }
        }
        Ok(Parsed::Complete(head, used)) => {
            conn.rbuf.drain(..used);
            conn.scanned = 0;
            let decoder = BodyDecoder::new(head.framing);
            if head.expect_continue && decoder.is_some() && conn.rbuf.is_empty() {
                conn.queue_own(CONTINUE.to_vec());
            }
            let state = ExchangeState { body_done: decoder.is_none(), ..ExchangeState::default() };
            let notice = Notice { token: ctx.token, serial: conn.serial };
            let exchange = Exchange::new(notice, ctx.handle.clone(), state);
            let mut head = head;
            if ctx.draining {
                head.close = true;
            }
            let close = head.close;
            let job = Job {
                head,
                exchange: exchange.clone(),
                peer: conn.peer,
                server: ctx.servers.get(conn.listener).cloned().flatten(),
                proxy: conn.proxy.clone(),
                started: ctx.now,
            };
            conn.deadline = if decoder.is_some() { Some(ctx.now + ctx.cfg.io_timeout) } else { None };
            conn.phase = Phase::Exchange(Active { exchange, decoder, job: Some(job), finished: None, close });
            Step::Again
        }
    }
}

/// Receiving a body, waiting for the app, and finishing the response.
fn exchange_step(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    let Phase::Exchange(mut a) = std::mem::replace(&mut conn.phase, Phase::Closing) else {
        return Step::Wait;
    };
    match exchange_next(conn, &mut a, ctx) {
        Next::Stay(step) => {
            conn.phase = Phase::Exchange(a);
            step
        }
        Next::Refuse(err) => refuse(conn, &err, ctx),
        Next::Close => Step::Close,
        Next::NextRequest => {
            conn.served += 1;
            conn.phase = Phase::Head;
            conn.deadline = Some(ctx.now + if conn.rbuf.is_empty() { ctx.cfg.keepalive } else { ctx.cfg.io_timeout });
            Step::Again
        }
    }
}

/// Where an exchange goes after one step.
enum Next {
    Stay(Step),
    Refuse(HttpError),
    Close,
    NextRequest,
}

fn exchange_next(conn: &mut Conn, a: &mut Active, ctx: &Ctx<'_>) -> Next {
    let mut changed = false;

    // The body: read and decode while there is room (or discard it after
    // the response, so the next request on the connection can be read).
    if let Some(decoder) = a.decoder.as_mut() {
        let discard = a.finished.is_some();
        let buffered = if discard { 0 } else { a.exchange.lock().body.len() };
        if buffered < BODY_BUFFER {
            let before = conn.rbuf.len();
            let limit = BODY_BUFFER.max(conn.rbuf.len() + 1);
            if conn.readable && !conn.read_closed && conn.fill(limit).is_err() {
                return Next::Close;
            }
            if conn.rbuf.len() > before {
                conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
            }
        }
        if !conn.rbuf.is_empty() {
            let mut st = a.exchange.lock();
            let mut scratch = Vec::new();
            let (out, room) = if discard {
                (&mut scratch, usize::MAX)
            } else {
                let room = BODY_BUFFER.saturating_sub(st.body.len());
                (&mut st.body, room)
            };
            if room > 0 {
                match decoder.decode(&conn.rbuf, out, room, &ctx.cfg.limits) {
                    Ok(d) => {
                        if d.consumed > 0 {
                            conn.rbuf.drain(..d.consumed);
                            changed = true;
                        }
                        if d.done {
                            st.body_done = true;
                            a.decoder = None;
                        }
                        if changed {
                            a.exchange.wake_executor(&st);
                        }
                    }
                    Err(e) => {
                        if a.job.is_some() {
                            return Next::Refuse(e);
                        }
                        crate::warn!("Invalid request body: {e}");
                        st.body_error = Some(e);
                        a.decoder = None;
                        a.close = true;
                        a.exchange.wake_executor(&st);
                        changed = true;
                    }
                }
            }
        }
        if a.decoder.is_some() && conn.read_closed && conn.rbuf.is_empty() {
            // The client stopped sending before the body ended.
            if a.job.is_some() || a.finished.is_some() {
                return Next::Close;
            }
            let mut st = a.exchange.lock();
            st.client_gone = true;
            a.exchange.wake_executor(&st);
            a.decoder = None;
            a.close = true;
            changed = true;
        }
    }

    // Hand the request to an executor once its body is in (or the buffer
    // is full and the rest must stream).
    if a.job.is_some() {
        let ready = a.decoder.is_none() || a.exchange.lock().body.len() >= BODY_BUFFER;
        if ready {
            if let Some(mut job) = a.job.take() {
                let left = ctx.requests_left.get();
                if left != u64::MAX {
                    if left <= 1 {
                        job.head.close = true;
                        a.close = true;
                    }
                    ctx.requests_left.set(left.saturating_sub(1));
                }
                ctx.in_flight.fetch_add(1, Ordering::AcqRel);
                match ctx.jobs.try_send(job) {
                    Ok(()) => {
                        changed = true;
                        if a.decoder.is_none() {
                            conn.deadline = None;
                        }
                    }
                    Err(TrySendError::Full(job)) => {
                        ctx.in_flight.fetch_sub(1, Ordering::AcqRel);
                        if left != u64::MAX {
                            ctx.requests_left.set(left);
                        }
                        a.job = Some(job);
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        ctx.in_flight.fetch_sub(1, Ordering::AcqRel);
                        return Next::Close;
                    }
                }
            }
        }
    }

    // The response is complete and written: next request, or close.
    if let Some(finish) = a.finished {
        if conn.wq.is_empty() {
            if a.decoder.is_none() || finish == Finish::Close || a.close {
                ctx.completed.set(ctx.completed.get() + 1);
            }
            let keep = finish == Finish::KeepAlive && !a.close;
            if !keep {
                conn.stream.shutdown_write();
                return Next::Close;
            }
            if a.decoder.is_some() {
                // Still discarding the unread body.
                if conn.read_closed {
                    return Next::Close;
                }
                return Next::Stay(if changed { Step::Again } else { Step::Wait });
            }
            return Next::NextRequest;
        } else if conn.deadline.is_none() {
            conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
        }
    }
    Next::Stay(if changed { Step::Again } else { Step::Wait })
}

/// The worker's resident memory in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}
