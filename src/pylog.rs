//! Logging through Python's `logging` module, when the configuration sets
//! `logconfig`, `logconfig_dict` or `logconfig_json` (as gunicorn does):
//! error lines go to the `gunicorn.error` logger, access lines to
//! `gunicorn.access` (see `rsgi._logging`). With a custom `logger_class`,
//! an instance of it gets every error line (`info()`, `error()`...) and,
//! through `post_request`, every request (`access()`).
//!
//! In the master, a line is handed to Python directly (the master attaches
//! briefly). In a worker, lines travel over a channel to one forwarder
//! thread that holds a Python thread state, so the I/O thread never takes
//! the GIL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use pyo3::prelude::*;

use crate::config::{Config, Key};

/// Python logging is configured and receives every line.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// A custom `logger_class` instance receives the lines (and writes the
/// access log itself).
static CUSTOM: AtomicBool = AtomicBool::new(false);

/// One line for Python (or, with `reopen`, the custom logger's
/// `reopen_files()` to call).
struct Line {
    access: bool,
    /// Python's numeric level.
    level: i32,
    text: String,
    reopen: bool,
}

/// In a worker: the forwarder's channel and thread.
static FORWARDER: Mutex<Option<(Sender<Line>, JoinHandle<()>)>> = Mutex::new(None);

/// True when lines go to Python's logging.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// True when a custom `logger_class` writes the logs.
pub fn custom() -> bool {
    CUSTOM.load(Ordering::Relaxed)
}

/// Configure Python's logging from the settings, if any asks for it.
/// Called in the master with the GIL held.
pub fn configure(py: Python<'_>, cfg: &Config) -> Result<(), String> {
    if let Some(class) = &cfg.logger_class {
        // As gunicorn: the logger's constructor runs its setup(cfg).
        let view = crate::hooks::config_view(py, cfg).map_err(|e| crate::wsgi::app::describe_exception(py, &e).0)?;
        py.import("rsgi._logging")
            .and_then(|m| m.call_method1("install_logger", (class.bind(py), view)))
            .map_err(|e| crate::wsgi::app::describe_exception(py, &e).0)?;
        ENABLED.store(true, Ordering::Relaxed);
        CUSTOM.store(true, Ordering::Relaxed);
        return Ok(());
    }
    let dict = cfg.objects.get(Key::LogconfigDict).map(|d| d.clone_ref(py));
    let ini = cfg.logconfig.clone();
    let json = cfg.logconfig_json.clone();
    let accesslog = cfg.accesslog.clone();
    let errorlog = cfg.errorlog.clone();
    let has_dict = dict.as_ref().is_some_and(|d| d.bind(py).is_truthy().unwrap_or(false));
    if !has_dict && ini.is_none() && json.is_none() {
        return Ok(());
    }
    py.import("rsgi._logging")
        .and_then(|m| m.call_method1("configure", (ini, dict, json, accesslog, errorlog)))
        .map_err(|e| crate::wsgi::app::describe_exception(py, &e).0)?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

fn emit(py: Python<'_>, line: &Line) {
    let _ = py.import("rsgi._logging").and_then(|m| {
        if line.reopen {
            m.call_method0("reopen")
        } else {
            m.call_method1("emit", (line.access, line.level, &line.text))
        }
    });
}

/// Start the forwarder thread. Called in a worker after fork.
pub fn start_forwarder() {
    if !enabled() {
        return;
    }
    let (tx, rx): (Sender<Line>, Receiver<Line>) = crossbeam_channel::unbounded();
    let handle = std::thread::Builder::new().name("rsgi-log".into()).spawn(move || {
        Python::attach(|py| {
            while let Ok(line) = py.detach(|| rx.recv()) {
                emit(py, &line);
            }
        })
    });
    if let Ok(h) = handle {
        *FORWARDER.lock().unwrap_or_else(|e| e.into_inner()) = Some((tx, h));
    }
}

/// On USR1: Python's log files reopen (a custom logger's
/// `reopen_files()`, else the file handlers of the two loggers), through
/// the forwarder in a worker (the I/O thread never takes the GIL).
pub fn reopen() {
    if enabled() {
        send(Line { access: false, level: 0, text: String::new(), reopen: true });
    }
}

/// Hand a line to Python. Returns false when Python logging is off.
pub fn log(access: bool, level: i32, text: &str) -> bool {
    if !enabled() {
        return false;
    }
    send(Line { access, level, text: text.to_owned(), reopen: false });
    true
}

/// To the forwarder in a worker; directly in the master.
fn send(line: Line) {
    let guard = FORWARDER.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some((tx, _)) => {
            let _ = tx.send(line);
        }
        None => {
            drop(guard);
            Python::attach(|py| emit(py, &line));
        }
    }
}

/// Let the forwarder write what is queued, then stop it. Called in a worker
/// just before it exits, with the GIL released.
pub fn shutdown() {
    let taken = FORWARDER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((tx, handle)) = taken {
        drop(tx);
        let _ = handle.join();
    }
}

/// Flush Python's `sys.stdout` and `sys.stderr` (errors ignored): before a
/// fork, so buffered output is not written twice, and before a worker
/// leaves with `_exit`. Called with the GIL held.
pub fn flush_stdio(py: Python<'_>) {
    let _ = py.run(c"import sys\nfor s in (sys.stdout, sys.stderr):\n    try:\n        s.flush()\n    except Exception:\n        pass\n", None, None);
}
