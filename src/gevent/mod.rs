//! The gevent executor kind (`-k gevent`): the worker's main thread runs
//! gevent's hub, and each request runs in a greenlet of its own, up to
//! `--worker-connections` at once per worker. The I/O loop (the worker core)
//! still owns every socket and all of HTTP, on a thread of its own; it hands
//! requests over the same bounded channel as to the WSGI threads, and rings
//! a [`bell::HubBell`] (an eventfd the hub watches) instead of waking a
//! thread. Waits of a request for its body or for room in its output window
//! are cooperative (`wsgi::wait`), and the WSGI driver (environ,
//! `start_response`, response) is the WSGI kind's own (`wsgi::executor::run_task`).
//!
//! `hub` is the Python-facing side (patching, the dispatcher's bridge);
//! `bell` is what the loop thread touches; `frames` keeps greenlets'
//! frame chunks off mmap(2). Runs in a worker process.

pub mod bell;
pub mod frames;
pub mod hub;

/// Say which worker runs, and what the gevent worker makes of settings
/// meant for others. Called in the master at start.
pub fn announce(cfg: &crate::config::Config) {
    crate::info!("Using worker: gevent");
    if cfg.threads > 1 {
        // gunicorn's gevent worker ignores threads too.
        crate::info!(
            "threads = {} is not used by the gevent worker: each request runs in a greenlet, up to --worker-connections ({}) at once per worker",
            cfg.threads,
            cfg.worker_connections
        );
    }
    if cfg.preload_app {
        crate::warn!(
            "--preload with the gevent worker: the app is imported in the master, before each worker patches the standard library; modules it imported keep unpatched references (blocking sockets, locks). Patch at the top of the app's module, or drop --preload"
        );
    }
}
