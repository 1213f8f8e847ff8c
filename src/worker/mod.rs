//! The worker core: the I/O loop that owns every socket of a worker
//! process, its connections and their request/response cycle, the exchange
//! of each request with the thread that runs the app, and the passing of
//! connections between sibling workers, and WebSocket connections after
//! their upgrade (`upgraded`). It knows no executor kind: it moves
//! [`task::Task`]s, and a kind (WSGI threads, in `wsgi::executor`; the ASGI
//! event loop, in `asgi`; gevent's hub, in `gevent`) runs them. `process`
//! puts the two together after fork. `eventfd` is the descriptor through
//! which a kind that waits on one of its own is woken (each kind keeps its
//! own rule for when to write it); `held_wakes` lets an executor thread
//! hold back its wake-ups of the loop through a batch. `script` runs a connection's real
//! cycle on scripted bytes, for tests and fuzzing (built only for tests
//! and with the `script` feature, never in the extension).
//!
//! Runs in a worker process, on its I/O thread(s); never touches Python.

pub mod conn;
pub mod cycle;
#[cfg(test)]
mod cycle_tests;
pub mod dispatch;
pub mod eventfd;
pub mod exchange;
pub mod handoff;
pub mod held_wakes;
mod intake;
pub mod io_loop;
mod lifecycle;
mod pacing;
pub mod relay;
#[cfg(any(test, feature = "script"))]
pub mod script;
pub mod static_serve;
pub mod task;
pub mod tls_io;
pub mod upgraded;
