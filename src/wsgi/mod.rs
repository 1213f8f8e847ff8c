//! WSGI (PEP 3333) on top of the worker: loading the app, the environ,
//! `start_response`, `wsgi.input`, `wsgi.errors`, `wsgi.file_wrapper`, and
//! the driver that runs one request through the app.
//!
//! Everything here runs with the GIL held, on executor threads (or on the
//! worker's main thread while it loads the app).

pub mod app;
pub mod environ;
pub mod errors;
pub mod executor;
pub mod file_wrapper;
pub mod input;
pub mod recycle;
pub mod response;
pub mod start_response;
pub mod wait;

use pyo3::prelude::*;

/// What every request of a worker shares: the app and the environ base.
pub struct AppContext {
    /// The WSGI callable.
    pub app: Py<PyAny>,
    /// The prebuilt part of every environ.
    pub base: environ::EnvironBase,
    /// The worker's scoreboard slot: a retiring worker answers with
    /// `Connection: close`.
    pub slot: crate::scoreboard::SlotHandle,
    /// The `worker` object for `pre_request` / `post_request`, when either
    /// hook is set.
    pub hook_worker: Option<Py<PyAny>>,
    /// The hooks themselves.
    pub cfg_objects: std::sync::Arc<crate::config::PyObjects>,
}
