//! The worker's I/O loop: one mio poller that owns every socket of the
//! worker. It accepts, reads, parses heads, decodes bodies, dispatches
//! complete requests to the executors, writes their output, keeps
//! connections alive, enforces timeouts, and passes connections to sibling
//! workers when its own app threads are all held (`intake`, `handoff`).
//!
//! The loop advances in turns (`IoLoop::turn`). A turn stops early when
//! the app is to run on the loop's own thread (one executor): the caller
//! runs it with the loop released, so that another thread can go on running
//! the loop if the app takes long (`relay`). The loop itself never takes
//! the GIL.
//!
//! Runs on the worker process's main thread (or its relay thread), with the
//! GIL released.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, UnixListener};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{Conn, Phase};
use super::cycle::{abandon, advance, finish_orphan, Ctx, Dispatcher, Step};
use super::dispatch::ring_due;
use super::exchange::{LoopHandle, Notice};
use super::task::Task;
use super::handoff::Handoff;
use super::pacing::{held_long_enough, sleep_for, STEPS_PER_TURN, TICK};
pub use super::lifecycle::{Evacuation, STUCK_MS};
use super::lifecycle::{Drain, Draining};
use crate::http::proxy::ProxyMode;
use crate::http::trust::AllowList;
use crate::http::Limits;
use crate::scoreboard::SlotHandle;
use crate::signals::{Signal, SignalPipe};

pub(super) const WAKER: Token = Token(0);
pub(super) const SIGNALS: Token = Token(1);
pub(super) const HANDOFF: Token = Token(2);
/// Listener tokens start here; connection tokens start at `CONN_BASE`.
pub(super) const LISTENER_BASE: usize = 3;
pub(super) const CONN_BASE: usize = 1024;


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
    /// App threads (or the kind's slots, `admission`): with this many
    /// requests in flight the worker takes no more work for them until one
    /// is free.
    pub threads: usize,
    /// How that capacity fills: when the worker stops accepting.
    pub admission: super::task::Admission,
    /// The kind's bell, for a kind that does not wait in the channel
    /// (`task::Bell`): rung when tasks are queued and when a registered
    /// request may go on.
    pub bell: Option<Arc<dyn super::task::Bell>>,
    /// The loop thread may run the app itself (one executor).
    pub inline: bool,
    /// `--static-map`: files the loop serves itself.
    pub static_files: Option<super::static_serve::StaticFiles>,
    /// `--certfile`: TCP connections speak TLS.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// What a TLS stream closed without close_notify means.
    pub ragged: super::tls_io::Ragged,
    /// WebSocket settings when the executor kind speaks WebSocket (ASGI);
    /// `None`: an upgrade request is plain HTTP to the app.
    pub websocket: Option<super::upgraded::WsSettings>,
    /// When a request goes to the app: after its body (the threaded and
    /// gevent kinds) or at its head (ASGI).
    pub start: super::exchange::Start,
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

/// What a turn of the loop asks its caller to do.
pub enum Turn {
    /// Call `turn` again.
    Again,
    /// Run this task on the calling thread (with the loop released), then
    /// call `app_returned`.
    RunApp(Task),
    /// The loop is over.
    Exit(LoopExit),
}

pub struct IoLoop {
    pub(super) poll: Poll,
    events: Events,
    pub(super) listeners: Vec<ListenSock>,
    /// The listeners are in the poller (taken out while the worker is
    /// stuck or draining, so new connections wake a sibling instead).
    pub(super) listening: bool,
    /// SERVER_NAME / SERVER_PORT per listener.
    servers: Vec<Option<Arc<(String, String)>>>,
    pub(super) conns: Slab<Conn>,
    pub(super) next_serial: u64,
    jobs: Sender<Task>,
    notices: Receiver<Notice>,
    handle: Arc<LoopHandle>,
    signals: SignalPipe,
    pub(super) cfg: LoopConfig,
    /// Set once a graceful stop or a retirement began: why, and when it
    /// must be over.
    pub(super) drain: Option<Draining>,
    /// While set, a stopping worker still accepts (see `ACCEPT_LINGER`):
    /// the time its last accept is due.
    pub(super) accept_until: Option<Instant>,
    /// Accepting paused (connection limit, or every executor held).
    pub(super) accept_paused: bool,
    /// Requests left before `--max-requests` retires the worker.
    pub(super) requests_left: Cell<u64>,
    /// Paused responses of closed connections, waiting for a free executor
    /// (see `cycle::abandon`).
    pub(super) orphans: RefCell<Vec<Task>>,
    /// The task the loop thread is to run itself (see `Turn::RunApp`).
    inline_task: RefCell<Option<Task>>,
    /// Tasks were queued since the kind's bell last rang (`ring_due`).
    bell_due: Cell<bool>,
    /// The connection whose app call runs on a thread that no longer holds
    /// the loop (`relay`): left alone until that call's notice comes.
    app_elsewhere: Option<Notice>,
    /// Connections to step, in order.
    pub(super) ready: VecDeque<usize>,
    /// Connections waiting for a free executor, in arrival order.
    pub(super) waiting: VecDeque<usize>,
    /// Connections whose output is held to the end of the pass.
    held: Vec<usize>,
    /// When this pass first held output.
    held_since: Option<Instant>,
    /// How many of the next connections stepped are ones whose held output
    /// is now written (never held again on the way).
    flushing: usize,
    /// This worker's socket for passing connections to siblings.
    pub(super) handoff: Option<Handoff>,
    /// `pass_on`'s list of connections to try, kept between turns.
    pub(super) pass_keys: Vec<usize>,
    /// The timeout thread's request to pass everything on.
    pub(super) evacuation: Arc<Evacuation>,
    /// The clock when the loop last woke up (or last ran the app).
    pub(super) now: Instant,
    pub(super) next_tick: Instant,
}

impl IoLoop {
    /// Set up the poller, the listeners, the hand-off socket and the signal
    /// pipe. Called in the worker after fork.
    pub fn new(
        listeners: Vec<ListenSock>,
        servers: Vec<Option<Arc<(String, String)>>>,
        jobs: Sender<Task>,
        signals: SignalPipe,
        cfg: LoopConfig,
        evacuation: Arc<Evacuation>,
    ) -> std::io::Result<IoLoop> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let _ = evacuation.waker.set(waker.clone());
        let (tx, notices) = crossbeam_channel::unbounded();
        for (i, l) in listeners.iter().enumerate() {
            super::intake::listener_ctl(&poll, libc::EPOLL_CTL_ADD, l, LISTENER_BASE + i)?;
        }
        poll.registry().register(&mut SourceFd(&signals.fd()), SIGNALS, Interest::READABLE)?;
        let handoff = match Handoff::bind(cfg.slot) {
            Ok(h) => {
                poll.registry().register(&mut SourceFd(&h.fd()), HANDOFF, Interest::READABLE)?;
                Some(h)
            }
            Err(e) => {
                crate::warn!("Cannot open the connection hand-off socket ({e}): connections stay with this worker");
                None
            }
        };
        let cfg_max = cfg.max_requests;
        let now = Instant::now();
        Ok(IoLoop {
            poll,
            events: Events::with_capacity(1024),
            listeners,
            listening: true,
            servers,
            conns: Slab::new(),
            next_serial: 0,
            jobs,
            notices,
            handle: Arc::new(LoopHandle { notices: tx, waker, sleeping: Arc::default(), bell: cfg.bell.clone() }),
            signals,
            cfg,
            drain: None,
            accept_until: None,
            accept_paused: false,
            requests_left: Cell::new(if cfg_max == 0 { u64::MAX } else { cfg_max }),
            orphans: RefCell::new(Vec::new()),
            inline_task: RefCell::new(None),
            bell_due: Cell::new(false),
            app_elsewhere: None,
            ready: VecDeque::new(),
            waiting: VecDeque::new(),
            held: Vec::new(),
            held_since: None,
            flushing: 0,
            handoff,
            pass_keys: Vec::new(),
            evacuation,
            now,
            next_tick: now + TICK,
        })
    }

    /// The loop's wake-up handle (for the relay's standby thread).
    pub fn handle(&self) -> &Arc<LoopHandle> {
        &self.handle
    }

    /// Run until stopped, running the app on this thread when asked (a
    /// worker without a relay).
    pub fn run(&mut self, inline: Option<&dyn super::task::RunInline>) -> LoopExit {
        loop {
            match self.turn() {
                Turn::Again => {}
                Turn::Exit(how) => return how,
                Turn::RunApp(task) => {
                    let notice = match inline {
                        Some(inline) => inline.run_inline(task),
                        None => {
                            debug_assert!(false, "an inline task without an inline runner");
                            continue;
                        }
                    };
                    self.app_returned(notice);
                }
            }
        }
    }

    /// One turn: step the connections that are ready, hand work to free
    /// executors, pass waiting connections on if this worker is stuck, then
    /// wait for events (at most until the next tick).
    pub fn turn(&mut self) -> Turn {
        loop {
            while let Some(key) = self.ready.pop_front() {
                let may_hold = if self.flushing > 0 {
                    self.flushing -= 1;
                    false
                } else {
                    true
                };
                self.drive(key, may_hold);
                if let Some(task) = self.inline_task.get_mut().take() {
                    return Turn::RunApp(task);
                }
                if held_long_enough(self.held_since, self.now) {
                    // Held long enough: out they go now, and the rest of
                    // the pass makes the next burst.
                    self.release_held();
                }
            }
            if self.held.is_empty() {
                self.flushing = 0;
                break;
            }
            // The end of the pass: write what it held (and step those
            // connections on, to their next request).
            self.release_held();
        }
        let queued = self.serve_waiting();
        ring_due(self.cfg.bell.as_deref(), &self.bell_due);
        if let Some(task) = self.inline_task.get_mut().take() {
            return Turn::RunApp(task);
        }
        if queued {
            return Turn::Again;
        }
        self.pass_on();
        let exit = self.poll_once();
        if let Some(task) = self.inline_task.get_mut().take() {
            return Turn::RunApp(task);
        }
        match exit {
            Some(how) => Turn::Exit(how),
            None => Turn::Again,
        }
    }

    /// Step the connections whose output is held next, without holding it
    /// again: they write it, and go on to their next request.
    fn release_held(&mut self) {
        self.held_since = None;
        let held = std::mem::take(&mut self.held);
        self.flushing += held.len();
        for &key in held.iter().rev() {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.output_held = false;
            }
            self.ready.push_front(key);
        }
    }

    /// The app call of `Turn::RunApp` is over (its thread has counted it
    /// done): step its connection first.
    pub fn app_returned(&mut self, notice: Notice) {
        self.now = Instant::now();
        self.app_elsewhere = None;
        let key = notice.token - CONN_BASE;
        if self.conns.get(key).map(|c| c.serial) == Some(notice.serial) {
            self.ready.push_front(key);
        }
    }

    /// The app call of `Turn::RunApp` goes on on a thread that no longer
    /// holds the loop: leave its connection alone until its notice comes.
    pub fn app_continues_elsewhere(&mut self, notice: Notice) {
        self.app_elsewhere = Some(notice);
    }

    /// Free executors take waiting connections (oldest first); paused
    /// responses of closed connections too. Returns true when some were
    /// queued to be stepped.
    fn serve_waiting(&mut self) -> bool {
        let free = self.cfg.threads.saturating_sub(self.cfg.in_flight.load(Ordering::Acquire));
        if free == 0 {
            return false;
        }
        if !self.orphans.borrow().is_empty() {
            self.retry_orphans();
        }
        let mut queued = false;
        for _ in 0..free {
            let Some(key) = self.waiting.pop_front() else { break };
            if let Some(conn) = self.conns.get_mut(key) {
                conn.awaiting_executor = false;
                self.ready.push_back(key);
                queued = true;
            }
        }
        queued
    }

    /// Wait for events and sort them: signals, new connections, hand-offs,
    /// connections to step, notices from executors, the periodic tick.
    fn poll_once(&mut self) -> Option<LoopExit> {
        ring_due(self.cfg.bell.as_deref(), &self.bell_due);
        let sibling_may_free = !self.waiting.is_empty() && self.handoff.is_some();
        let mut timeout = sleep_for(Instant::now(), self.next_tick, sibling_may_free, self.accept_until, self.drained());
        if let Some(bound) = self.cfg.bell.as_ref().and_then(|b| b.sleep_bound()) {
            timeout = timeout.min(bound);
        }
        // A worker that became stuck stops listening before it sleeps, so
        // the kernel wakes a sibling for the next client instead.
        self.keep_listening();
        self.publish_room();
        // Announce the sleep, then look for notices sent before it: an
        // executor that saw `sleeping` false left its notice queued.
        self.handle.sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if !self.notices.is_empty() || !self.ready.is_empty() || (self.accept_paused && self.has_capacity()) {
            timeout = Duration::ZERO;
        }
        let polled = self.poll.poll(&mut self.events, Some(timeout));
        self.handle.sleeping.store(false, Ordering::SeqCst);
        self.now = Instant::now();
        if let Err(e) = polled {
            if e.kind() != std::io::ErrorKind::Interrupted {
                crate::error!("poll failed: {e}");
                return Some(LoopExit::Fast);
            }
        }
        if self.accept_until.is_some_and(|until| self.now >= until) {
            // The last accept of a stopping worker: whatever the kernel had
            // queued is taken now; nothing new can have got in since.
            self.accept_all();
            self.accept_until = None;
        }
        self.keep_listening();
        // New clients first: an executor that just freed up takes a
        // waiting connection before the next queued request.
        if self.accept_paused && self.has_capacity() {
            self.accept_all();
        }
        // Taken out for the walk (the arms need `self`); an empty `Events`
        // allocates nothing.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                SIGNALS => {
                    for sig in self.signals.drain() {
                        match sig {
                            Signal::Term => self.begin_drain(Drain::Stop),
                            Signal::Int | Signal::Quit => {
                                self.events = events;
                                return Some(LoopExit::Fast);
                            }
                            Signal::Usr1 => {
                                crate::log::reopen();
                                crate::access_log::reopen();
                            }
                            _ => {}
                        }
                    }
                }
                HANDOFF => self.receive_handoffs(),
                Token(t) if (LISTENER_BASE..CONN_BASE).contains(&t) => self.accept(t - LISTENER_BASE),
                Token(t) => {
                    let key = t - CONN_BASE;
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        conn.hup_seen |= ev.is_read_closed() || ev.is_error();
                        conn.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        self.ready.push_back(key);
                    }
                }
            }
        }
        self.events = events;
        if self.cfg.inline {
            // Read every idle connection the poll reported before the pass runs
            // its first app call (`cycle::read_ahead`).
            for &key in &self.ready {
                if let Some(conn) = self.conns.get_mut(key) {
                    super::cycle::read_ahead(conn, &self.cfg);
                }
            }
        }
        while let Ok(n) = self.notices.try_recv() {
            if self.app_elsewhere == Some(n) {
                // The app call that ran on without the loop is over.
                self.app_elsewhere = None;
            }
            let key = n.token - CONN_BASE;
            if self.conns.get(key).map(|c| c.serial) == Some(n.serial) {
                self.ready.push_back(key);
            }
        }
        if self.accept_paused && self.has_capacity() {
            self.accept_all();
        }
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.tick(now);
        }
        if self.drained() || self.drain.is_some_and(|d| now >= d.deadline) {
            return Some(LoopExit::Graceful);
        }
        None
    }

    /// Draining with nothing left to serve: no connection, no last accept
    /// to come. The loop exits.
    fn drained(&self) -> bool {
        self.drain.is_some() && self.conns.is_empty() && self.accept_until.is_none()
    }

    /// The connection in `key` is being served by an app call on a thread
    /// that no longer holds the loop.
    pub(super) fn is_elsewhere(&self, key: usize) -> bool {
        self.app_elsewhere
            .is_some_and(|n| n.token == CONN_BASE + key && self.conns.get(key).is_some_and(|c| c.serial == n.serial))
    }

    /// Step a connection's state machine until it has to wait (or has had
    /// its share of this turn, or the app is to run on this thread).
    fn drive(&mut self, key: usize, may_hold: bool) {
        if self.is_elsewhere(key) {
            return;
        }
        let draining = self.drain.is_some();
        let handover_until = self.drain.and_then(|d| d.handover_until(self.handoff.is_some()));
        // Responses wait for the end of the pass while other connections
        // are still to be stepped in it (a lone request is answered at
        // once), for `HOLD_OUTPUT` at most.
        let hold_output = may_hold && !self.ready.is_empty();
        for _ in 0..STEPS_PER_TURN {
            let Some(conn) = self.conns.get_mut(key) else { return };
            let ctx = Ctx {
                cfg: &self.cfg,
                handle: &self.handle,
                servers: &self.servers,
                token: CONN_BASE + key,
                draining,
                handover_until,
                now: self.now,
                completed: Cell::new(0),
                requests_left: &self.requests_left,
                tasks: Dispatcher::of_loop(&self.jobs, &self.cfg, &self.inline_task, &self.orphans, &self.bell_due),
                hold_output,
                held: Cell::new(false),
            };
            let step = advance(conn, &ctx);
            if ctx.held.get() && !conn.output_held {
                conn.output_held = true;
                self.held.push(key);
                self.held_since.get_or_insert(self.now);
            }
            if ctx.tasks.wants_executor.get() && !conn.awaiting_executor {
                conn.awaiting_executor = true;
                self.waiting.push_back(key);
            }
            if ctx.completed.get() > 0 {
                self.cfg.slot.requests.fetch_add(ctx.completed.get(), Ordering::Relaxed);
            }
            self.check_max_requests();
            if self.inline_task.borrow().is_some() {
                return;
            }
            match step {
                Step::Again => continue,
                Step::Wait => return,
                Step::Close => {
                    self.close(key);
                    return;
                }
            }
        }
        // Its share is used up: the others go first, then it goes on.
        self.ready.push_back(key);
    }

    /// Work handed over outside a connection's own step.
    fn dispatcher(&self) -> Dispatcher<'_> {
        Dispatcher::of_loop(&self.jobs, &self.cfg, &self.inline_task, &self.orphans, &self.bell_due)
    }

    /// Paused responses of closed connections, handed over as executors
    /// free up.
    pub(super) fn retry_orphans(&mut self) {
        let orphans = std::mem::take(&mut *self.orphans.borrow_mut());
        let dispatcher = self.dispatcher();
        for task in orphans {
            finish_orphan(task, &dispatcher);
        }
    }

    /// Drop a connection; an executor still working on it is told the
    /// client is gone.
    pub(super) fn close(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if let Phase::Exchange(a) | Phase::Upgraded(a) = &mut conn.phase {
            // Tells a running app the client is gone; a paused response is
            // run to its end (its `close()`).
            abandon(a, &self.dispatcher());
        }
        if let Some(source) = conn.stream.source() {
            let _ = self.poll.registry().deregister(source);
        }
        if self.accept_paused && self.drain.is_none() {
            self.accept_all();
        }
    }
}
