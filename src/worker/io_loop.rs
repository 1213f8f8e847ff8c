//! The worker's I/O loop: one mio poller that owns every socket of the
//! worker. It accepts, reads, parses heads, decodes bodies, dispatches
//! complete requests to the executors, writes their output, keeps
//! connections alive, and enforces timeouts. It never takes the GIL, so an
//! idle or slow client costs a buffer and a poller slot, never a Python
//! thread.
//!
//! Runs on the worker process's main thread, with the GIL released.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, UnixListener};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{Conn, Phase, Stream};
use super::cycle::{abandon, advance, finish_orphan, Ctx, Dispatcher, Step};
use super::exchange::{LoopHandle, Notice};
use super::executor::{Inline, Task};
use crate::http::proxy::ProxyMode;
use crate::http::trust::AllowList;
use crate::http::Limits;
use crate::scoreboard::{SlotHandle, SlotState};
use crate::signals::{Signal, SignalPipe};
use crate::wsgi::environ::Peer;

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
}

pub struct IoLoop {
    poll: Poll,
    listeners: Vec<ListenSock>,
    /// SERVER_NAME / SERVER_PORT per listener.
    servers: Vec<Option<Arc<(String, String)>>>,
    conns: Slab<Conn>,
    next_serial: u64,
    jobs: Sender<Task>,
    notices: Receiver<Notice>,
    handle: Arc<LoopHandle>,
    signals: SignalPipe,
    cfg: LoopConfig,
    /// Set once a graceful stop began: when it must be over.
    drain_deadline: Option<Instant>,
    /// Accepting paused at the connection limit.
    accept_paused: bool,
    /// Requests left before `--max-requests` retires the worker.
    requests_left: std::cell::Cell<u64>,
    /// Runs the app on this thread when the worker has one executor.
    inline: Option<Inline>,
    /// Paused responses of closed connections, waiting for room in the
    /// executors' channel (see `cycle::abandon`).
    orphans: std::cell::RefCell<Vec<Task>>,
    /// The clock when the loop last woke up (or last ran the app).
    now: Instant,
}

/// How the loop hands work to the app, from the loop's parts (a free
/// function, so a connection's step can borrow them next to the connection).
fn dispatcher<'a>(
    jobs: &'a Sender<Task>,
    cfg: &'a LoopConfig,
    inline: Option<&'a Inline>,
    orphans: &'a std::cell::RefCell<Vec<Task>>,
) -> Dispatcher<'a> {
    Dispatcher {
        jobs,
        in_flight: &cfg.in_flight,
        inline,
        ran_inline: std::cell::Cell::new(false),
        orphans,
        io_timeout: cfg.io_timeout,
    }
}

impl IoLoop {
    /// Set up the poller, the listeners and the signal pipe. Called in the
    /// worker after fork.
    pub fn new(
        listeners: Vec<ListenSock>,
        servers: Vec<Option<Arc<(String, String)>>>,
        jobs: Sender<Task>,
        signals: SignalPipe,
        cfg: LoopConfig,
        inline: Option<Inline>,
    ) -> std::io::Result<IoLoop> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let (tx, notices) = crossbeam_channel::unbounded();
        for (i, l) in listeners.iter().enumerate() {
            listener_ctl(&poll, libc::EPOLL_CTL_ADD, l, LISTENER_BASE + i)?;
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
            handle: Arc::new(LoopHandle { notices: tx, waker, sleeping: Arc::new(std::sync::atomic::AtomicBool::new(false)) }),
            signals,
            cfg,
            drain_deadline: None,
            accept_paused: false,
            requests_left: std::cell::Cell::new(if cfg_max == 0 { u64::MAX } else { cfg_max }),
            inline,
            orphans: std::cell::RefCell::new(Vec::new()),
            now: Instant::now(),
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
            self.now = Instant::now();
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
                            if ev.is_read_closed() || ev.is_error() {
                                conn.hup_seen = true;
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
        for (i, l) in self.listeners.iter().enumerate() {
            let _ = listener_ctl(&self.poll, libc::EPOLL_CTL_DEL, l, LISTENER_BASE + i);
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
        if !self.orphans.borrow().is_empty() {
            self.retry_orphans();
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
        // The clock as read when the loop woke up (one read for all the
        // events of a poll), read again after the app ran on this thread.
        let mut now = self.now;
        for _ in 0..64 {
            let Some(conn) = self.conns.get_mut(key) else { return };
            let ctx = Ctx {
                cfg: &self.cfg,
                handle: &self.handle,
                servers: &self.servers,
                token: CONN_BASE + key,
                draining,
                now,
                completed: std::cell::Cell::new(0),
                requests_left: &self.requests_left,
                tasks: dispatcher(&self.jobs, &self.cfg, self.inline.as_ref(), &self.orphans),
            };
            let step = advance(conn, &ctx);
            if ctx.tasks.ran_inline.get() {
                now = Instant::now();
                self.now = now;
            }
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

    /// Work handed over outside a connection's own step.
    fn dispatcher(&self) -> Dispatcher<'_> {
        dispatcher(&self.jobs, &self.cfg, self.inline.as_ref(), &self.orphans)
    }

    /// Paused responses of closed connections, handed over as the
    /// executors' channel has room.
    fn retry_orphans(&mut self) {
        let orphans = std::mem::take(&mut *self.orphans.borrow_mut());
        let dispatcher = self.dispatcher();
        for task in orphans {
            finish_orphan(task, &dispatcher);
        }
    }

    /// Drop a connection; an executor still working on it is told the
    /// client is gone.
    fn close(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if let Phase::Exchange(a) = &mut conn.phase {
            // Tells a running app the client is gone; a paused response is
            // run to its end (its `close()`).
            abandon(a, &self.dispatcher());
        }
        let _ = self.poll.registry().deregister(conn.stream.source());
        if self.accept_paused && self.drain_deadline.is_none() {
            for i in 0..self.listeners.len() {
                self.accept(i);
            }
        }
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
fn listener_ctl(poll: &Poll, op: libc::c_int, l: &ListenSock, token: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
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

/// The worker's resident memory in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}
