//! What the I/O loop hands to the app, and what it needs from the executor
//! kind that runs it: the seam between the worker core (loop, connections,
//! exchange) and the kinds that sit on top of it (WSGI threads, the ASGI
//! event loop, gevent).
//!
//! The core moves [`Task`]s (a parsed request with its [`Exchange`], or a
//! paused response to go on with) to the kind's threads over a bounded
//! channel, or asks the kind to run one on the loop's own thread
//! ([`RunInline`]); it never looks inside a paused response ([`Paused`]).
//! A kind whose threads block in the channel's `recv` needs nothing more.
//! A kind whose thread waits on something else than the channel and the
//! exchange's condition variable (the ASGI event loop, gevent's hub: each
//! waits on a descriptor of its own) gives the core a [`Bell`] to ring, and
//! says how its capacity fills ([`Admission`]).
//!
//! Shared by the worker's I/O thread and its executor threads; never
//! touches Python.

use std::sync::Arc;

use super::conn::Peer;
use super::exchange::{Exchange, Notice};
use crate::http::proxy::ProxyInfo;
use crate::http::RequestHead;

/// One request, handed from the loop to an executor.
pub struct Job {
    /// The parsed head.
    pub head: RequestHead,
    /// The body in, the response out.
    pub exchange: Arc<Exchange>,
    /// The client.
    pub peer: Peer,
    /// The listener's SERVER_NAME / SERVER_PORT (none for unix sockets).
    pub server: Option<Arc<(String, String)>>,
    /// What a PROXY protocol header said, if one came.
    pub proxy: Option<ProxyInfo>,
    /// The connection is TLS: what the environ shows of it.
    pub tls: Option<Arc<super::tls_io::TlsFacts>>,
    /// When the head was complete (the access log's request time).
    pub started: std::time::Instant,
    /// A valid WebSocket upgrade request (only when the kind speaks
    /// WebSocket): what the app is offered and how to accept it.
    pub websocket: Option<Box<super::upgraded::WsOffer>>,
}

impl Job {
    /// The request came over https: TLS on this connection, or a trusted
    /// front-end said so (`secure_scheme_headers`, decided by the parser
    /// under `forwarded_allow_ips`). Shared by every executor kind.
    pub fn https(&self) -> bool {
        is_https(self.tls.is_some(), &self.head)
    }

    /// The client as the app sees it: the PROXY header's source when the
    /// header carried addresses, else the socket's peer (none for a unix
    /// socket).
    pub fn client(&self) -> Option<std::net::SocketAddr> {
        client_addr(self.peer, self.proxy.as_ref())
    }
}

/// See [`Job::https`].
pub fn is_https(tls: bool, head: &RequestHead) -> bool {
    tls || head.forwarded_https == Some(true)
}

/// See [`Job::client`].
pub fn client_addr(peer: Peer, proxy: Option<&ProxyInfo>) -> Option<std::net::SocketAddr> {
    if let Some((ip, port)) = proxy.and_then(|p| p.client.zip(p.proxy).map(|(c, _)| c)) {
        return Some(std::net::SocketAddr::new(ip, port));
    }
    match peer {
        Peer::Tcp(a) => Some(a),
        Peer::Unix => None,
    }
}

/// Work for an executor (or for the loop thread running the app itself).
pub enum Task {
    /// A new request (boxed: a task moves from the parser through the
    /// connection's state and the dispatcher to the thread that runs it,
    /// and a pointer moves cheaper than the request head).
    Serve(Box<Job>),
    /// A response that paused on a full output window, to go on with (the
    /// executor kind that paused it knows its type).
    Resume(Box<dyn Paused>),
}

impl Task {
    /// Where the task's connection lives in the loop.
    pub fn notice(&self) -> super::exchange::Notice {
        match self {
            Task::Serve(job) => job.exchange.notice,
            Task::Resume(paused) => paused.notice(),
        }
    }

    /// The exchange of the request this task belongs to.
    pub fn exchange(&self) -> Arc<Exchange> {
        match self {
            Task::Serve(job) => job.exchange.clone(),
            Task::Resume(paused) => paused.exchange(),
        }
    }
}

/// A response that paused on a full output window. The loop keeps it (in
/// its exchange, or as a task) until the client catches up or leaves, then
/// hands it back to the executor kind, which takes its own type back with
/// `into_any`.
pub trait Paused: Send {
    /// The exchange of the paused request.
    fn exchange(&self) -> Arc<Exchange>;
    /// Where the paused request's connection lives in the loop.
    fn notice(&self) -> Notice;
    /// The concrete value, for the executor kind that made it.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// Runs a task on the calling thread: the loop's, when the worker has one
/// executor and it is idle (`relay`). Implemented by the executor kind.
pub trait RunInline: Send + Sync {
    /// Run `task` to its end (or its pause), count it done in the worker's
    /// in-flight count, and return its connection's notice for the loop.
    /// Called with the GIL released and the loop released.
    fn run_inline(&self, task: Task) -> Notice;
}

/// How the core reaches an executor kind whose thread neither blocks on the
/// task channel nor on an exchange's condition variable, but waits on a
/// descriptor of its own (the ASGI event loop, gevent's hub). Both calls
/// come from the I/O thread and must not block; the kind coalesces them
/// into one wake-up per batch.
pub trait Bell: Send + Sync {
    /// Tasks were queued on the channel.
    fn tasks(&self);
    /// The request the kind registered under `key` (`ExchangeState::bell_key`)
    /// may go on: body bytes arrived, its output window drained, or its
    /// client went away (rung only while the request's app side waits:
    /// `ExchangeState::executor_waiting`).
    fn request(&self, key: u64);
    /// How long the loop may sleep at most while the kind works through
    /// what it was handed: a kind that holds back its wake-ups of the loop
    /// (`worker::held_wakes`) bounds how long a finished response can wait
    /// for them. None: no bound.
    fn sleep_bound(&self) -> Option<std::time::Duration> {
        None
    }
}

/// How a kind's capacity (`LoopConfig::threads` requests at once) fills,
/// which decides when the worker stops taking new connections and how a
/// sibling's room is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Threads that each run one request: with every one held, the worker
    /// stops accepting once the oldest request has run `STUCK_MS` (a worker
    /// saturated by quick requests keeps its clients). A sibling's room is
    /// its idle threads in the scoreboard.
    Threads,
    /// Slots taken by concurrent requests (greenlets, up to
    /// `--worker-connections`): a request waiting on I/O holds its slot
    /// without holding the worker, so the worker is full only when every
    /// slot is taken, and then at once. A sibling's room is its capacity
    /// less the requests it has in flight (`Load::in_flight`, which such a
    /// worker keeps current in its slot).
    Slots,
}
