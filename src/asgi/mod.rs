//! The ASGI executor kind (ASGI 3.0 HTTP and lifespan): one Python thread
//! per worker runs an asyncio (or uvloop) event loop that receives complete
//! request heads and body bytes from the Rust I/O loop and hands response
//! events back, woken through an eventfd (`feed`), never reading or writing
//! a socket itself. It sits on the core's seam (`worker::task`) as the WSGI
//! kind does; `process` selects it for `-k asgi` and uvicorn's workers.
//!
//! - `feed`: the eventfd and the queues behind it;
//! - `scope`: the HTTP scope, built in Rust from the parsed head;
//! - `request`: one request's `receive` / `send` and its end (access log,
//!   statsd, hooks); `awaitable`: what they return; `run`: the app run
//!   as a connection's task steps it (no Python frame of the server's);
//! - `respond`: response events to HTTP/1.1 bytes;
//! - `thread`: the event loop thread's life, lifespan included;
//! - `websocket`: one WebSocket connection's events (the frames are the
//!   worker core's, `worker::upgraded`).
//!
//! The event loop itself is Python (`rsgi._asgi`): it drives the app's
//! coroutines and waits on futures; everything per request that can be
//! done without the app is done here.

pub mod awaitable;
pub mod feed;
pub mod request;
pub mod respond;
pub mod run;
pub mod scope;
pub mod thread;
pub mod websocket;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What every request of a worker shares.
pub struct AsgiContext {
    /// The ASGI 3 callable.
    pub app: Py<PyAny>,
    /// The worker's scoreboard slot.
    pub slot: crate::scoreboard::SlotHandle,
    /// The lifespan state, once startup set one (copied into each scope).
    pub state: OnceLock<Py<PyDict>>,
    /// The `worker` object for `pre_request` / `post_request`, when set.
    pub hook_worker: Option<Py<PyAny>>,
    pub cfg_objects: Arc<crate::config::PyObjects>,
    /// Requests handed over by the loop and not ended yet (shared with it).
    pub in_flight: Arc<AtomicUsize>,
    /// The loop's capacity for concurrent requests (`LoopConfig::threads`).
    pub capacity: usize,
    /// Wakes the event loop (registered in each request's exchange).
    pub bell: Arc<feed::Bell>,
    /// The scope's constant parts, made once.
    pub consts: scope::Consts,
    /// What `send()` returns when there is nothing to wait for (shared).
    pub done: Py<PyAny>,
}

impl AsgiContext {
    /// One request ended: count it out, and wake the loop if it held work
    /// back for want of capacity.
    pub fn request_done(&self, exchange: &crate::worker::exchange::Exchange) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) >= self.capacity {
            exchange.handle.wake();
        }
    }
}

/// How an app object is called, by uvicorn's detection plus the arity that
/// tells a WSGI callable apart (`rsgi._asgi.interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// A coroutine function or an object with an async `__call__`.
    Asgi3,
    /// A plain callable of three arguments (returning a coroutine).
    Asgi3ByArity,
    /// A callable of one argument returning the ASGI 2 instance.
    Asgi2,
    /// `environ, start_response`.
    Wsgi,
    /// The signature cannot tell (`*args`, a C callable): each worker kind
    /// takes the app for its own.
    Unknown,
}

/// Classify `app`.
pub fn interface(py: Python<'_>, app: &Bound<'_, PyAny>) -> PyResult<Interface> {
    let kind: String = py.import("rsgi._interface")?.call_method1("interface", (app,))?.extract()?;
    Ok(match kind.as_str() {
        "asgi3" => Interface::Asgi3,
        "asgi3-arity" => Interface::Asgi3ByArity,
        "asgi2" => Interface::Asgi2,
        "wsgi" => Interface::Wsgi,
        _ => Interface::Unknown,
    })
}
