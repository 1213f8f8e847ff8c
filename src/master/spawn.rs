//! The fork protocol, and the only place rsgi forks: `PyOS_BeforeFork`,
//! `fork()`, then `PyOS_AfterFork_Child` first thing in the child (before
//! it drops the master's signal actions) or `PyOS_AfterFork_Parent` in the
//! master. Skipping any of these breaks CPython 3.13+.
//!
//! Besides workers, the master forks `--reload`'s trial imports
//! (`master::watch`) the same way, and new masters for USR2.
//!
//! Called in the master, with no other thread alive in it.

use pyo3::ffi;
use pyo3::prelude::*;

use super::reexec::ExecPlan;
use crate::config::Config;
use crate::listen::Listener;
use crate::scoreboard::SlotHandle;
use crate::signals::SignalPipe;

/// Fork one worker. Returns the child's pid in the master; in the child it
/// runs the worker and never returns. Called in the master with the GIL
/// released; attaches only around the fork.
pub fn spawn_worker(
    cfg: &Config,
    listeners: &[Listener],
    master_signals: &mut SignalPipe,
    master_fds: &[std::os::unix::io::RawFd],
    slot: SlotHandle,
    age: u64,
) -> std::io::Result<i32> {
    let master_pid = std::process::id() as i32;
    fork_child(master_signals, master_fds, |py| crate::process::run(py, cfg, listeners, master_pid, slot, age))
}

/// Fork a child of the master that runs `child` (which never returns):
/// the fork protocol, then the master's signal handlers and its own
/// descriptors (`master_fds`) dropped in the child. Returns the child's pid
/// in the master. Called with the GIL released.
pub fn fork_child(
    master_signals: &mut SignalPipe,
    master_fds: &[std::os::unix::io::RawFd],
    child: impl FnOnce(Python<'_>) -> std::convert::Infallible,
) -> std::io::Result<i32> {
    Python::attach(|py| {
        // Output buffered in the master would otherwise be written twice.
        crate::pylog::flush_stdio(py);
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
            for &fd in master_fds {
                // SAFETY: closing the child's copy of a master-only
                // descriptor (metrics, file watches), unused in the child.
                unsafe { libc::close(fd) };
            }
            match child(py) {}
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

/// Fork a child that execs a new master (USR2). Returns the child's pid.
/// Called in the master with the GIL released.
pub fn fork_exec(plan: &ExecPlan) -> std::io::Result<i32> {
    Python::attach(|py| {
        crate::pylog::flush_stdio(py);
        // SAFETY: GIL held, no other thread in the master.
        unsafe { ffi::PyOS_BeforeFork() };
        // SAFETY: the child only runs async-signal-safe code, then exec.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            plan.exec();
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

/// Detach into the background (`--daemon`), as gunicorn's `daemonize`:
/// fork (the parent exits), setsid, fork again, stdio to /dev/null.
/// Called in the master before anything is bound.
pub fn daemonize() -> std::io::Result<()> {
    Python::attach(|py| {
        crate::pylog::flush_stdio(py);
        for round in 0..2 {
            // SAFETY: fork protocol as in spawn_worker; the parent leaves
            // at once with _exit.
            unsafe {
                ffi::PyOS_BeforeFork();
                let pid = libc::fork();
                if pid < 0 {
                    ffi::PyOS_AfterFork_Parent();
                    return Err(std::io::Error::last_os_error());
                }
                if pid > 0 {
                    libc::_exit(0);
                }
                ffi::PyOS_AfterFork_Child();
                if round == 0 {
                    libc::setsid();
                }
            }
        }
        // SAFETY: redirecting our own standard descriptors.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
                if null > 2 {
                    libc::close(null);
                }
            }
        }
        Ok(())
    })
}
