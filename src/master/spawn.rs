//! The fork protocol, and the only place rsgi forks: `PyOS_BeforeFork`,
//! `fork()`, then `PyOS_AfterFork_Child` first thing in the child (before
//! it drops the master's signal actions) or `PyOS_AfterFork_Parent` in the
//! master. Skipping any of these breaks CPython 3.13+.
//!
//! Called in the master, with no other thread alive in it.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::config::Config;
use crate::listen::Listener;
use crate::signals::SignalPipe;

/// Fork one worker. Returns the child's pid in the master; in the child it
/// runs the worker and never returns. Called in the master with the GIL
/// released; attaches only around the fork.
pub fn spawn_worker(cfg: &Config, listeners: &[Listener], master_signals: &mut SignalPipe) -> std::io::Result<i32> {
    let master_pid = std::process::id() as i32;
    Python::attach(|py| {
        // Output buffered in the master would otherwise be written twice.
        let _ = py.run(c"import sys\nfor s in (sys.stdout, sys.stderr):\n    try:\n        s.flush()\n    except Exception:\n        pass\n", None, None);
        // SAFETY: called with the GIL held and no other thread in the
        // master, as the fork protocol requires.
        unsafe { ffi::PyOS_BeforeFork() };
        // SAFETY: plain fork; each side runs its after-fork hook next.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: first thing in the child, GIL held.
            unsafe { ffi::PyOS_AfterFork_Child() };
            // Drop the master's signal actions: the worker installs its own.
            master_signals.release_in_child();
            crate::worker::run(py, cfg, listeners, master_pid);
        }
        // SAFETY: in the parent, GIL held, after fork.
        unsafe { ffi::PyOS_AfterFork_Parent() };
        if pid < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(pid)
        }
    })
}
