//! The real connection cycle without a socket, an executor or Python: a
//! connection whose stream is scripted bytes (`Stream::Memory`) is stepped
//! by `cycle::advance` exactly as the I/O loop steps it, its bytes arriving
//! in reads that end at chosen offsets and its output taken in writes of
//! chosen sizes, while [`run`] plays a deterministic app for each request
//! the cycle hands out. The [`Transcript`] (the requests as the app saw
//! them, the bytes the client got, how the connection ended) lets a test or
//! the `conn_real` fuzz target compare one delivery of the same bytes with
//! another.
//!
//! Test and fuzzing support: the worker never runs it. It checks, and
//! panics on, what would hang a real connection: stepping that never
//! settles, and waiting with bytes it can still read.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::conn::{ByteIo, Conn, Peer, Phase, Stream};
use super::cycle::{advance, Ctx, Dispatcher, Step};
use super::exchange::{BodyState, Finish, LoopHandle, OutChunk};
use super::io_loop::LoopConfig;
use super::task::{Job, Task};
use crate::http::proxy::ProxyMode;
use crate::http::request::find_head_end;
use crate::http::response::CONTINUE;
use crate::http::trust::AllowList;
use crate::http::{Limits, RequestHead};

/// Steps of one connection before it must have settled: more means the
/// cycle spins without waiting.
const MAX_STEPS: usize = 100_000;

/// How the connection is set up.
#[derive(Debug, Clone)]
pub struct Setup {
    pub limits: Limits,
    /// The peer may set forwarding headers.
    pub trusted: bool,
    pub proxy: ProxyMode,
    /// The peer is allowed to send a PROXY header.
    pub proxy_allowed: bool,
    /// The client closes its sending side after its last byte.
    pub eof: bool,
}

/// A request as the app received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub head: RequestHead,
    pub body: Vec<u8>,
    pub body_state: BodyState,
}

/// How the connection ended up once every byte was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The cycle dropped it.
    Closed,
    /// It waits for more from the client.
    Waiting,
}

/// What a delivery produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub requests: Vec<Seen>,
    /// The bytes the client received, with what may differ between
    /// deliveries taken out: `Date` header lines and `100 Continue` (sent
    /// only when the body had not arrived with the head).
    pub output: Vec<u8>,
    pub end: End,
}

/// The client's side of the scripted stream.
#[derive(Default)]
struct Wire {
    /// Pieces still to arrive.
    pieces: VecDeque<Vec<u8>>,
    /// Arrived and not yet read.
    arrived: VecDeque<u8>,
    /// The client's end of stream has arrived.
    eof: bool,
    /// What the client received.
    out: Vec<u8>,
    /// Bytes the next writes may take before the socket is full.
    room: usize,
    /// The server closed its sending side.
    shut: bool,
}

/// A [`ByteIo`] over a shared [`Wire`].
struct Scripted(Arc<Mutex<Wire>>);

impl Scripted {
    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ByteIo for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut wire = self.wire();
        if wire.arrived.is_empty() {
            return if wire.eof { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let n = buf.len().min(wire.arrived.len());
        for (slot, byte) in buf.iter_mut().zip(wire.arrived.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn write(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut wire = self.wire();
        if wire.shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if wire.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut taken = 0;
        for buf in bufs {
            let n = buf.len().min(wire.room);
            wire.out.extend_from_slice(&buf[..n]);
            wire.room -= n;
            taken += n;
            if wire.room == 0 {
                break;
            }
        }
        Ok(taken)
    }

    fn shutdown_write(&mut self) {
        self.wire().shut = true;
    }
}

/// The loop's surroundings for a connection stepped by hand: its
/// configuration, the executors' channel (`taken` is their end), counters.
/// Also used by `cycle_tests`.
pub(super) struct Rig {
    pub(super) cfg: LoopConfig,
    handle: Arc<LoopHandle>,
    jobs: Sender<Task>,
    pub(super) taken: Receiver<Task>,
    pub(super) inline_task: RefCell<Option<Task>>,
    orphans: RefCell<Vec<Task>>,
    bell_due: Cell<bool>,
    requests_left: Cell<u64>,
}

/// The loop configuration of `setup`: one app thread, not run inline.
pub(super) fn loop_config(setup: &Setup) -> LoopConfig {
    LoopConfig {
        limits: setup.limits.clone(),
        keepalive: Duration::from_secs(2),
        io_timeout: Duration::from_secs(30),
        worker_connections: 1,
        graceful_timeout: Duration::from_secs(30),
        forwarded_allow: AllowList::default(),
        proxy_mode: setup.proxy,
        proxy_allow: if setup.proxy_allowed { AllowList::parse("*").unwrap_or_default() } else { AllowList::default() },
        master_pid: 0,
        slot: shared().0.handle(crate::scoreboard::MAX_WORKERS - 1),
        max_requests: 0,
        max_memory: 0,
        in_flight: Arc::new(AtomicUsize::new(0)),
        threads: 1,
        admission: super::task::Admission::Threads,
        bell: None,
        inline: false,
        websocket: None,
        start: super::exchange::Start::AfterBody,
        static_files: None,
        tls: None,
        ragged: super::tls_io::Ragged::Error,
    }
}

/// One scoreboard and waker for every run in the process (each costs a
/// mapping or a descriptor).
fn shared() -> &'static (crate::scoreboard::Scoreboard, Arc<mio::Waker>, mio::Poll) {
    static SHARED: OnceLock<(crate::scoreboard::Scoreboard, Arc<mio::Waker>, mio::Poll)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let board = crate::scoreboard::Scoreboard::new().expect("a scoreboard mapping");
        let poll = mio::Poll::new().expect("an epoll descriptor");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("a waker"));
        (board, waker, poll)
    })
}

impl Rig {
    pub(super) fn new(cfg: LoopConfig) -> Rig {
        let (_, waker, _) = shared();
        let (notices, _) = crossbeam_channel::unbounded();
        let (jobs, taken) = crossbeam_channel::bounded(16);
        let bell = cfg.bell.clone();
        Rig {
            cfg,
            handle: Arc::new(LoopHandle { notices, waker: waker.clone(), sleeping: Arc::new(AtomicBool::new(false)), bell }),
            jobs,
            taken,
            inline_task: RefCell::new(None),
            orphans: RefCell::new(Vec::new()),
            bell_due: Cell::new(false),
            requests_left: Cell::new(u64::MAX),
        }
    }

    /// What `advance` is given; `hold_output` as in the loop's pass.
    pub(super) fn ctx(&self, hold_output: bool) -> Ctx<'_> {
        Ctx {
            cfg: &self.cfg,
            handle: &self.handle,
            servers: &[],
            token: 0,
            draining: false,
            handover_until: None,
            now: Instant::now(),
            completed: Cell::new(0),
            requests_left: &self.requests_left,
            tasks: Dispatcher {
                jobs: &self.jobs,
                in_flight: &self.cfg.in_flight,
                threads: self.cfg.threads,
                inline: self.cfg.inline,
                bell: self.cfg.bell.as_deref(),
                bell_due: &self.bell_due,
                inline_task: &self.inline_task,
                wants_executor: Cell::new(false),
                orphans: &self.orphans,
                io_timeout: self.cfg.io_timeout,
            },
            hold_output,
            held: Cell::new(false),
        }
    }

    /// What the loop does at the end of a pass: ring the kind's bell if a
    /// task went out.
    pub(super) fn end_pass(&self) {
        super::dispatch::ring_due(self.cfg.bell.as_deref(), &self.bell_due);
    }

    /// Step the connection until it waits or closes, as the loop does.
    fn settle(&self, conn: &mut Conn) -> Step {
        for _ in 0..MAX_STEPS {
            let step = advance(conn, &self.ctx(false));
            self.end_pass();
            if step != Step::Again {
                return step;
            }
        }
        panic!("the connection never settled");
    }
}

/// The app: takes the body as it comes, then answers with a summary of
/// what it got (no request bytes echoed, so a response never looks like
/// protocol text).
struct App {
    job: Box<Job>,
    body: Vec<u8>,
}

impl App {
    /// Take the body that arrived; once it is complete (or failed), record
    /// the request and answer. Returns the request when done.
    fn step(&mut self, rig: &Rig) -> Option<Seen> {
        let state = {
            let mut st = self.job.exchange.lock();
            self.body.append(&mut st.body);
            self.job.exchange.wake_executor(&st);
            st.body_state.clone()
        };
        if state == BodyState::Receiving {
            return None;
        }
        let exchange = &self.job.exchange;
        let summary = format!("{} {} {}\n", self.job.head.method, self.job.head.target.len(), self.body.len());
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", summary.len());
        let _ = exchange.push_output(OutChunk::Bytes(head.into_bytes()), false);
        let _ = exchange.push_output(OutChunk::Bytes(summary.into_bytes()), false);
        exchange.finish(if self.job.head.close { Finish::Close } else { Finish::KeepAlive });
        rig.cfg.in_flight.fetch_sub(1, Ordering::AcqRel);
        Some(Seen { head: self.job.head.clone(), body: std::mem::take(&mut self.body), body_state: state })
    }
}

/// Remove every `Date:` header line and every `100 Continue` response.
fn normalise(out: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        let rest = &out[i..];
        if rest.starts_with(CONTINUE) {
            i += CONTINUE.len();
        } else if rest.starts_with(b"\r\nDate: ") {
            let line = memchr::memmem::find(&rest[2..], b"\r\n").map_or(rest.len(), |e| e + 2);
            i += line;
        } else {
            v.push(out[i]);
            i += 1;
        }
    }
    v
}

/// Deliver `input` to a connection in pieces ending at `cuts` (increasing
/// offsets), letting each write take the next of `writes` bytes (then as
/// many as it likes), and play the app; see the module documentation.
pub fn run(input: &[u8], cuts: &[usize], writes: &[usize], setup: &Setup) -> Transcript {
    let rig = Rig::new(loop_config(setup));
    let mut wire = Wire::default();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(at, input.len());
        if cut > at {
            wire.pieces.push_back(input[at..cut].to_vec());
        }
        at = cut;
    }
    let mut writes = writes.iter().map(|&w| w.max(1)).collect::<VecDeque<_>>();
    wire.room = writes.pop_front().unwrap_or(usize::MAX);
    let wire = Arc::new(Mutex::new(wire));
    let peer = Peer::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
    let mut conn = Conn::new(Stream::Memory(Box::new(Scripted(wire.clone()))), 1, peer, 0, setup.trusted);
    conn.writable = true;
    let lock = || wire.lock().unwrap_or_else(|e| e.into_inner());
    let mut requests = Vec::new();
    let mut app: Option<App> = None;
    let end = loop {
        if rig.settle(&mut conn) == Step::Close {
            break End::Closed;
        }
        // The app's turn: a new request, or more of a streaming body.
        if app.is_none() {
            if let Ok(task) = rig.taken.try_recv() {
                match task {
                    Task::Serve(job) => app = Some(App { job, body: Vec::new() }),
                    Task::Resume(_) => panic!("a response was paused, though the app never pauses"),
                }
            }
        }
        if let Some(running) = app.as_mut() {
            let before = running.body.len();
            if let Some(seen) = running.step(&rig) {
                requests.push(seen);
                app = None;
                continue;
            }
            if running.body.len() > before {
                continue;
            }
        }
        // The client reads: the socket takes more.
        if !conn.writable && !conn.all_sent() {
            lock().room = writes.pop_front().unwrap_or(usize::MAX);
            conn.writable = true;
            continue;
        }
        // The next piece (or the end of the stream) arrives: a new edge.
        let arrived = {
            let mut wire = lock();
            if let Some(piece) = wire.pieces.pop_front() {
                wire.arrived.extend(piece);
                true
            } else if setup.eof && !wire.eof {
                wire.eof = true;
                conn.hup_seen = true;
                true
            } else {
                false
            }
        };
        if arrived {
            conn.readable = true;
            continue;
        }
        break End::Waiting;
    };
    let wire = lock();
    if end == End::Waiting {
        assert!(
            wire.arrived.is_empty() || conn.readable,
            "waits with {} bytes it will never be told to read",
            wire.arrived.len()
        );
        // A PROXY header still coming is not a request head, though its
        // v2 signature starts with a blank line.
        let proxy_pending = conn.served == 0
            && conn.proxy.is_none()
            && setup.proxy != ProxyMode::Off
            && crate::http::proxy::has_signature(&conn.rbuf, setup.proxy);
        let raw_head_ready = matches!(conn.phase, Phase::Head) && !proxy_pending && find_head_end(&conn.rbuf, 0).is_some();
        assert!(app.is_some() || !raw_head_ready, "waits with a whole request head and a free app thread");
    }
    Transcript { requests, output: normalise(&wire.out), end }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        // Refusals are logged at warning level: keep the test output clean.
        let _ = crate::log::init(crate::log::Level::Critical, "-");
        Setup { limits: Limits::default(), trusted: false, proxy: ProxyMode::Off, proxy_allowed: false, eof: true }
    }

    /// Every way of cutting `input` in two, and byte by byte, gives what
    /// one whole delivery gives.
    fn same_however_split(input: &[u8], setup: &Setup) -> Transcript {
        let whole = run(input, &[], &[], setup);
        for cut in 1..input.len() {
            assert_eq!(run(input, &[cut], &[], setup), whole, "cut at {cut}");
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(input, &every, &[1; 64], setup), whole, "byte by byte, written a byte at a time");
        whole
    }

    #[test]
    fn pipelined_requests_with_bodies_are_served_in_order() {
        let input = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n\
                      POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n";
        let t = same_however_split(input, &setup());
        let got: Vec<(&str, &[u8])> = t.requests.iter().map(|s| (s.head.path(), &s.body[..])).collect();
        assert_eq!(got, vec![("/a", &b"abc"[..]), ("/b", &b""[..]), ("/c", &b"de"[..])]);
        assert_eq!(t.output.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count(), 3);
        assert_eq!(t.end, End::Closed, "the client's end of stream closes it");
    }

    #[test]
    fn a_bad_request_is_refused_whatever_the_reads() {
        let t = same_however_split(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", &setup());
        assert!(t.requests.is_empty());
        assert!(t.output.starts_with(b"HTTP/1.1 400 "));
        assert_eq!(t.end, End::Closed);
    }

    #[test]
    fn a_proxy_header_is_read_before_the_request() {
        let s = Setup { proxy: ProxyMode::V1, proxy_allowed: true, ..setup() };
        let t = same_however_split(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n\r\n", &s);
        assert_eq!(t.requests.len(), 1);
        let refused = Setup { proxy_allowed: false, ..s };
        let t = same_however_split(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n\r\n", &refused);
        assert!(t.requests.is_empty() && t.output.starts_with(b"HTTP/1.1 403 "));
    }

    /// Found by the `conn_real` fuzz target: a PROXY v2 header whose
    /// declared length has not all arrived starts with a blank line, which
    /// the rig took for a whole request head left waiting.
    #[test]
    fn an_unfinished_proxy_v2_header_is_waited_for() {
        let s = Setup { proxy: ProxyMode::V2, proxy_allowed: true, eof: false, ..setup() };
        let mut input = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x40".to_vec();
        // Part of the header's 64 bytes, which happens to hold a blank line.
        input.extend_from_slice(b"\x01\x02\x03\x04GET / HTTP/1.1\r\n\r\n");
        let t = same_however_split(&input, &s);
        assert_eq!((t.requests.len(), t.end, t.output.len()), (0, End::Waiting, 0));
    }

    #[test]
    fn an_unfinished_request_waits_until_the_client_ends_it() {
        let open = Setup { eof: false, ..setup() };
        let t = same_however_split(b"GET / HTTP/1.1\r\nHost:", &open);
        assert_eq!((t.requests.len(), t.end), (0, End::Waiting));
        let t = same_however_split(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", &setup());
        assert_eq!((t.requests.len(), t.end, t.output.len()), (0, End::Closed, 0));
    }

    #[test]
    fn expect_continue_is_answered_only_when_the_body_is_not_there_yet() {
        let input = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
        let split = input.len() - 2;
        let s = setup();
        let raw = |cuts: &[usize]| {
            let rig_out = run(input, cuts, &[], &s);
            rig_out.requests[0].body.clone()
        };
        assert_eq!(raw(&[split]), b"hi");
        assert_eq!(run(input, &[split], &[], &s), run(input, &[], &[], &s));
        assert_eq!(normalise(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nDate: x\r\n\r\n"), b"HTTP/1.1 200 OK\r\n\r\n");
    }
}
