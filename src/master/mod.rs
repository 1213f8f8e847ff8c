//! The arbiter: binds the listeners, forks the workers and keeps their
//! number right, and turns signals into actions with gunicorn's semantics.
//! The loop is one `match` per signal plus an idle arm that reaps, murders
//! and maintains (STYLE 6).
//!
//! Runs in the master process, single-threaded, with the GIL released
//! except around forks.

pub mod spawn;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::config::Config;
use crate::listen::{self, Listener};
use crate::signals::{Signal, SignalPipe};
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};

/// The signals the master handles.
const MASTER_SIGNALS: [Signal; 10] = [
    Signal::Hup, Signal::Int, Signal::Quit, Signal::Term, Signal::Ttin,
    Signal::Ttou, Signal::Usr1, Signal::Usr2, Signal::Winch, Signal::Chld,
];

/// How long the idle arm sleeps when no signal arrives.
const IDLE_WAIT_MS: i32 = 1000;

/// What the master knows of one worker.
#[derive(Debug, Clone)]
struct WorkerInfo {
    /// Spawn order: the oldest worker is retired first (TTOU).
    age: u64,
    /// Already told to stop; no longer counted toward the worker number.
    retiring: bool,
}

/// Why the master stops, and with which exit status.
struct Halt {
    reason: Option<&'static str>,
    code: i32,
}

pub struct Arbiter {
    cfg: Config,
    listeners: Vec<Listener>,
    signals: SignalPipe,
    workers: BTreeMap<i32, WorkerInfo>,
    /// The target number of workers (TTIN/TTOU move it).
    num_workers: u32,
    /// Counter behind `WorkerInfo::age`.
    worker_age: u64,
}

/// Run the server: bind, fork, supervise. Returns the process exit status.
/// Called from `main` in the master with the GIL held.
pub fn run(py: Python<'_>, cfg: Config) -> i32 {
    let pid = std::process::id();
    crate::info!("Starting rsgi {}", env!("CARGO_PKG_VERSION"));
    let mut listeners = Vec::new();
    for spec in &cfg.bind {
        match listen::bind(spec, cfg.backlog) {
            Ok(l) => listeners.push(l),
            Err(msg) => {
                crate::error!("{msg}");
                for l in &listeners {
                    l.unlink();
                }
                return 1;
            }
        }
    }
    for l in &listeners {
        crate::info!("Listening at: {} ({pid})", l.url());
    }
    crate::info!("Using worker: {}", if cfg.threads > 1 { "gthread" } else { "sync" });
    let signals = match SignalPipe::install(&MASTER_SIGNALS) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("Cannot install signal handlers: {e}");
            return 1;
        }
    };
    let num_workers = cfg.workers;
    let mut arbiter = Arbiter { cfg, listeners, signals, workers: BTreeMap::new(), num_workers, worker_age: 0 };
    py.detach(|| arbiter.run_loop())
}

impl Arbiter {
    fn run_loop(&mut self) -> i32 {
        if let Err(halt) = self.manage_workers() {
            return self.halt(halt);
        }
        loop {
            for sig in self.signals.wait(IDLE_WAIT_MS) {
                if sig != Signal::Chld {
                    crate::info!("Handling signal: {}", sig.name());
                }
                match sig {
                    Signal::Chld => {}
                    Signal::Term => return self.halt_with(true, None, 0),
                    Signal::Int | Signal::Quit => return self.halt_with(false, None, 0),
                    Signal::Hup => self.reload(),
                    Signal::Ttin => self.num_workers += 1,
                    Signal::Ttou => self.num_workers = self.num_workers.saturating_sub(1).max(1),
                    Signal::Usr1 => {
                        crate::log::reopen();
                        self.kill_workers(libc::SIGUSR1);
                    }
                    Signal::Usr2 => crate::warn!("USR2 (re-exec a new master) is not supported yet"),
                    Signal::Winch => crate::info!("SIGWINCH ignored. Not daemonized"),
                    Signal::Abrt => {}
                }
            }
            if let Err(halt) = self.reap_workers() {
                return self.halt(halt);
            }
            if let Err(halt) = self.manage_workers() {
                return self.halt(halt);
            }
        }
    }

    /// HUP: start fresh workers, then gracefully stop the old ones.
    fn reload(&mut self) {
        let old: Vec<i32> = self.workers.iter().filter(|(_, w)| !w.retiring).map(|(p, _)| *p).collect();
        for _ in 0..self.num_workers {
            if self.spawn_worker().is_err() {
                break;
            }
        }
        for pid in old {
            self.retire(pid);
        }
    }

    fn spawn_worker(&mut self) -> std::io::Result<i32> {
        self.worker_age += 1;
        let pid = spawn::spawn_worker(&self.cfg, &self.listeners, &mut self.signals)?;
        self.workers.insert(pid, WorkerInfo { age: self.worker_age, retiring: false });
        Ok(pid)
    }

    /// Ask one worker to stop gracefully.
    fn retire(&mut self, pid: i32) {
        if let Some(w) = self.workers.get_mut(&pid) {
            w.retiring = true;
        }
        kill(pid, libc::SIGTERM);
    }

    /// Keep the number of serving workers at `num_workers`: spawn the
    /// missing ones, retire the oldest extra ones.
    fn manage_workers(&mut self) -> Result<(), Halt> {
        let active = |a: &Arbiter| a.workers.values().filter(|w| !w.retiring).count() as u32;
        while active(self) > self.num_workers {
            let oldest = self.workers.iter().filter(|(_, w)| !w.retiring).min_by_key(|(_, w)| w.age).map(|(p, _)| *p);
            match oldest {
                Some(pid) => self.retire(pid),
                None => break,
            }
        }
        while active(self) < self.num_workers {
            if let Err(e) = self.spawn_worker() {
                crate::error!("Unable to fork a worker: {e}");
                return Err(Halt { reason: Some("Worker failed to boot."), code: WORKER_BOOT_ERROR });
            }
        }
        Ok(())
    }

    /// Collect exited workers. A worker that could not boot or load the app
    /// stops the master (no respawn loop).
    fn reap_workers(&mut self) -> Result<(), Halt> {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on any child, non-blocking, into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return Ok(());
            }
            let Some(_) = self.workers.remove(&pid) else { continue };
            if libc::WIFEXITED(status) {
                let code = libc::WEXITSTATUS(status);
                if code == WORKER_BOOT_ERROR {
                    crate::error!("Worker (pid:{pid}) exited with code {code}.");
                    return Err(Halt { reason: Some("Worker failed to boot."), code: WORKER_BOOT_ERROR });
                }
                if code == APP_LOAD_ERROR {
                    crate::error!("Worker (pid:{pid}) exited with code {code}.");
                    return Err(Halt { reason: Some("App failed to load."), code: APP_LOAD_ERROR });
                }
                if code != 0 {
                    crate::error!("Worker (pid:{pid}) exited with code {code}.");
                }
            } else if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                if sig == libc::SIGKILL {
                    crate::error!("Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?");
                } else if sig != libc::SIGTERM {
                    crate::error!("Worker (pid:{pid}) was sent {}!", signal_name(sig));
                }
            }
        }
    }

    fn kill_workers(&self, sig: i32) {
        for pid in self.workers.keys() {
            kill(*pid, sig);
        }
    }

    fn halt(&mut self, halt: Halt) -> i32 {
        self.halt_with(false, halt.reason, halt.code)
    }

    /// Stop every worker (TERM for a graceful stop, QUIT for a fast one),
    /// wait up to the graceful timeout, SIGKILL the rest, and leave.
    fn halt_with(&mut self, graceful: bool, reason: Option<&str>, code: i32) -> i32 {
        for l in &self.listeners {
            l.unlink();
        }
        self.listeners.clear();
        self.kill_workers(if graceful { libc::SIGTERM } else { libc::SIGQUIT });
        let limit = Instant::now() + Duration::from_secs(self.cfg.graceful_timeout);
        while !self.workers.is_empty() && Instant::now() < limit {
            let _ = self.reap_workers();
            if self.workers.is_empty() {
                break;
            }
            let _ = self.signals.wait(100);
        }
        self.kill_workers(libc::SIGKILL);
        while !self.workers.is_empty() {
            let _ = self.reap_workers();
            if !self.workers.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        crate::info!("Shutting down: Master");
        if let Some(reason) = reason {
            crate::info!("Reason: {reason}");
        }
        code
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a child we spawned.
    unsafe { libc::kill(pid, sig) };
}

fn signal_name(sig: i32) -> String {
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
