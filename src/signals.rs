//! Signals as data: a handler only writes the signal's number to a pipe
//! (the self-pipe trick), and the master loop or the worker's I/O loop reads
//! them back as [`Signal`] values in its own time (STYLE 6).
//!
//! Installed by the master at startup and again by each worker after fork.
//! The one exception to "signals as data": while a worker boots
//! ([`stop_ends_at_once`]), a stop signal ends it from the handler.

use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stop signal (TERM, INT, QUIT) ends the process from its handler
/// instead of reaching the pipe. See [`stop_ends_at_once`].
static STOP_ENDS_AT_ONCE: AtomicBool = AtomicBool::new(false);

/// Whether a stop signal ends this process at once (exit status 0), from
/// the handler, or reaches the pipe. A worker sets it while it boots
/// (runs `post_fork`, imports the app, ASGI lifespan startup): it has no
/// request to finish, and its main thread may be held in the app's import
/// for as long as the import takes, so a graceful stop would otherwise wait
/// for the import (or the master's `--graceful-timeout`). Cleared before
/// `post_worker_init` (WSGI) or after lifespan startup (ASGI), so a signal
/// after those reaches the loop and its hooks; the master never sets it.
pub fn stop_ends_at_once(on: bool) {
    STOP_ENDS_AT_ONCE.store(on, Ordering::SeqCst);
}

/// The signals rsgi acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hup,
    Int,
    Quit,
    Term,
    Ttin,
    Ttou,
    Usr1,
    Usr2,
    Winch,
    Chld,
    Abrt,
}

impl Signal {
    pub fn from_raw(n: i32) -> Option<Signal> {
        Some(match n {
            libc::SIGHUP => Signal::Hup,
            libc::SIGINT => Signal::Int,
            libc::SIGQUIT => Signal::Quit,
            libc::SIGTERM => Signal::Term,
            libc::SIGTTIN => Signal::Ttin,
            libc::SIGTTOU => Signal::Ttou,
            libc::SIGUSR1 => Signal::Usr1,
            libc::SIGUSR2 => Signal::Usr2,
            libc::SIGWINCH => Signal::Winch,
            libc::SIGCHLD => Signal::Chld,
            libc::SIGABRT => Signal::Abrt,
            _ => return None,
        })
    }

    pub fn raw(self) -> i32 {
        match self {
            Signal::Hup => libc::SIGHUP,
            Signal::Int => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Term => libc::SIGTERM,
            Signal::Ttin => libc::SIGTTIN,
            Signal::Ttou => libc::SIGTTOU,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
            Signal::Winch => libc::SIGWINCH,
            Signal::Chld => libc::SIGCHLD,
            Signal::Abrt => libc::SIGABRT,
        }
    }

    /// The lowercase name gunicorn logs (`Handling signal: term`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "hup",
            Signal::Int => "int",
            Signal::Quit => "quit",
            Signal::Term => "term",
            Signal::Ttin => "ttin",
            Signal::Ttou => "ttou",
            Signal::Usr1 => "usr1",
            Signal::Usr2 => "usr2",
            Signal::Winch => "winch",
            Signal::Chld => "chld",
            Signal::Abrt => "abrt",
        }
    }
}

/// The read end of a self-pipe that signal handlers write to.
pub struct SignalPipe {
    /// Non-blocking read end.
    read_fd: RawFd,
    /// Non-blocking write end, written only by the handlers.
    write_fd: RawFd,
    /// Handler registrations, so they can be removed.
    ids: Vec<signal_hook::SigId>,
}

fn pipe_nonblocking() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

impl SignalPipe {
    /// Route `signals` to a new self-pipe.
    pub fn install(signals: &[Signal]) -> std::io::Result<SignalPipe> {
        let (read_fd, write_fd) = pipe_nonblocking()?;
        let mut ids = Vec::new();
        for sig in signals {
            let byte = sig.raw() as u8;
            let stop = matches!(sig, Signal::Term | Signal::Int | Signal::Quit);
            // SAFETY: the handler only loads an atomic and calls _exit(2) or
            // write(2), which are async-signal-safe, the latter on a
            // descriptor that outlives it (the pipe is closed only after the
            // handler is unregistered in Drop).
            let id = unsafe {
                signal_hook::low_level::register(sig.raw(), move || {
                    if stop && STOP_ENDS_AT_ONCE.load(Ordering::SeqCst) {
                        libc::_exit(0);
                    }
                    let b = [byte];
                    libc::write(write_fd, b.as_ptr() as *const libc::c_void, 1);
                })
            }?;
            ids.push(id);
        }
        Ok(SignalPipe { read_fd, write_fd, ids })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// Every signal received since the last call, in arrival order.
    pub fn drain(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a local buffer from our own pipe.
            let n = unsafe { libc::read(self.read_fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend(buf[..n as usize].iter().filter_map(|&b| Signal::from_raw(b as i32)));
        }
        out
    }

    /// Wait up to `timeout_ms` for a signal; returns the signals received
    /// (none when the time ran out). Used by the master loop while it stops.
    pub fn wait(&self, timeout_ms: i32) -> Vec<Signal> {
        self.wait_with(timeout_ms, &mut [])
    }

    /// Wait up to `timeout_ms` for a signal or for one of `extra` to be
    /// ready (its `revents` is set); returns the signals received. Used by
    /// the master loop (metrics scrapes, file changes).
    pub fn wait_with(&self, timeout_ms: i32, extra: &mut [libc::pollfd]) -> Vec<Signal> {
        let mut fds = Vec::with_capacity(extra.len() + 1);
        fds.push(libc::pollfd { fd: self.read_fd, events: libc::POLLIN, revents: 0 });
        fds.extend(extra.iter().map(|p| libc::pollfd { revents: 0, ..*p }));
        // SAFETY: polls descriptors in a local array of `fds.len()` entries.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        for (p, polled) in extra.iter_mut().zip(&fds[1..]) {
            p.revents = if ready > 0 { polled.revents } else { 0 };
        }
        self.drain()
    }

    /// Drop the handlers and the pipe in a forked child, which must not
    /// write to its parent's pipe. Called in the child right after fork.
    pub fn release_in_child(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        // SAFETY: closing the child's copies of descriptors this struct owns.
        unsafe {
            libc::close(self.read_fd);
            libc::close(self.write_fd);
        }
        self.read_fd = -1;
        self.write_fd = -1;
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        if self.read_fd >= 0 {
            // SAFETY: closing descriptors this struct owns.
            unsafe {
                libc::close(self.read_fd);
                libc::close(self.write_fd);
            }
        }
    }
}

/// How gunicorn names a signal that ended a worker (`Worker (pid:N) was
/// sent SIGABRT!`).
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [Signal::Hup, Signal::Term, Signal::Ttin, Signal::Usr2, Signal::Chld] {
            assert_eq!(Signal::from_raw(s.raw()), Some(s));
        }
        assert_eq!(Signal::Term.name(), "term");
    }
}
