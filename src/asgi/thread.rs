//! The life of a worker's ASGI thread: it attaches to Python once, makes
//! the event loop (`rsgi._asgi.serve`), runs lifespan startup and reports
//! the outcome to the worker's main thread (which starts the I/O loop only
//! then), serves until the I/O loop is over, lets running requests finish
//! up to `--graceful-timeout`, and runs lifespan shutdown.
//!
//! Started by `process` after fork, once the app is loaded.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::feed::{Bell, Feed};
use super::AsgiContext;
use crate::worker::task::Task;

/// The ASGI settings the event loop reads.
pub struct Settings {
    /// `--asgi-loop`: auto, asyncio or uvloop.
    pub event_loop: String,
    /// `--asgi-lifespan`: auto, on or off.
    pub lifespan: String,
    /// `--asgi-disconnect-grace-period`.
    pub disconnect_grace: Duration,
    /// `--graceful-timeout`: how long running requests get at the end.
    pub graceful: Duration,
}

/// The running thread.
pub struct AsgiThread {
    handle: JoinHandle<()>,
    bell: Arc<Bell>,
}

impl AsgiThread {
    /// Start the thread. Returns it and the outcome of lifespan startup,
    /// to wait for before serving.
    pub fn start(ctx: Arc<AsgiContext>, jobs: Receiver<Task>, settings: Settings) -> std::io::Result<(AsgiThread, Receiver<Result<(), String>>)> {
        // The event loop's module (asyncio) is imported here, on the
        // worker's main thread, as the WSGI worker imports nothing of it.
        Python::attach(|py| py.import("rsgi._asgi").map(drop)).map_err(|e| std::io::Error::other(e.to_string()))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let bell = ctx.bell.clone();
        let handle = std::thread::Builder::new().name("rsgi-asgi".into()).spawn(move || {
            Python::attach(|py| {
                let app = ctx.app.clone_ref(py);
                let feed = Feed {
                    bell: ctx.bell.clone(),
                    jobs,
                    ctx,
                    started: std::sync::Mutex::new(Some(tx.clone())),
                    next_key: std::sync::atomic::AtomicU64::new(1),
                    event_loop: std::sync::OnceLock::new(),
                };
                let outcome = (|| -> PyResult<()> {
                    let feed = Py::new(py, feed)?;
                    let s = PyDict::new(py);
                    s.set_item("loop", &settings.event_loop)?;
                    s.set_item("lifespan", &settings.lifespan)?;
                    s.set_item("disconnect_grace", settings.disconnect_grace.as_secs_f64())?;
                    s.set_item("graceful", settings.graceful.as_secs_f64())?;
                    py.import("rsgi._asgi")?.call_method1("serve", (feed, app, s))?;
                    Ok(())
                })();
                if let Err(e) = outcome {
                    let (line, tb) = crate::wsgi::app::describe_exception(py, &e);
                    crate::error!("Exception in the ASGI event loop\n{tb}");
                    let _ = tx.send(Err(line));
                }
            });
        })?;
        Ok((AsgiThread { handle, bell }, rx))
    }

    /// The I/O loop is over: let the event loop finish (running requests,
    /// then lifespan shutdown) and wait for it. Called with the GIL
    /// released.
    pub fn stop(self) {
        self.bell.stop();
        let _ = self.handle.join();
    }
}
