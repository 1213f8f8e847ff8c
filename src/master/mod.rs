//! The arbiter: binds the listeners, forks the workers and keeps their
//! number right, and turns signals into actions with gunicorn's semantics.
//! The loop is one `match` per signal plus an idle arm that reaps, murders
//! and maintains (STYLE 6). Its wait also serves metrics scrapes and
//! notices file changes for `--reload` (`events`, `metrics`, `watch`);
//! `notify` tells systemd the master is ready.
//!
//! Runs in the master process, single-threaded, with the GIL released
//! except around forks.

mod events;
mod exporter;
mod metrics;
mod notify;
pub mod pidfile;
pub mod reexec;
pub mod spawn;
mod timeout;
mod watch;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::config::Config;
use crate::hooks::Hook;
use crate::listen::{self, Listener};
use crate::scoreboard::{Scoreboard, SlotState};
use crate::signals::{Signal, SignalPipe};
use crate::process::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use pidfile::Pidfile;

/// The signals the master handles.
const MASTER_SIGNALS: [Signal; 10] = [
    Signal::Hup, Signal::Int, Signal::Quit, Signal::Term, Signal::Ttin,
    Signal::Ttou, Signal::Usr1, Signal::Usr2, Signal::Winch, Signal::Chld,
];

/// How long the idle arm sleeps when no signal arrives.
const IDLE_WAIT_MS: i32 = 1000;


/// What the master knows of one worker.
#[derive(Debug, Clone)]
pub(super) struct WorkerInfo {
    /// Spawn order: the oldest worker is retired first (TTOU).
    age: u64,
    /// Its slot in the scoreboard.
    slot: usize,
    state: WorkerState,
}

/// Where a worker stands, as the master sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkerState {
    /// Counted toward the worker number.
    Serving,
    /// Told to stop (or stopping on its own); no longer counted.
    Retiring,
    /// Sent SIGABRT for a timeout at `at` (monotonic ms); SIGKILL follows.
    Aborted { at: u64 },
}

/// How the master stops its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// TERM: finish what they hold.
    Graceful,
    /// QUIT: stop now.
    Fast,
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
    /// Heartbeats and states shared with the workers.
    scoreboard: Scoreboard,
    workers: BTreeMap<i32, WorkerInfo>,
    /// The target number of workers (TTIN/TTOU/WINCH move it).
    num_workers: u32,
    /// Counter behind `WorkerInfo::age`.
    worker_age: u64,
    pidfile: Option<Pidfile>,
    /// This master's place in a USR2 hand-over.
    lineage: reexec::Lineage,
    /// The directory rsgi was started in (a re-exec starts there).
    start_dir: String,
    /// The command-line arguments, to resolve the configuration again on HUP.
    args: Vec<String>,
    /// Metrics (`--metrics-bind`, reaped workers' totals), `--reload`.
    observers: events::Observers,
}

/// Run the server: bind (or inherit) the listeners, fork, supervise.
/// Returns the process exit status. Called from `main` in the master with
/// the GIL held.
pub fn run(py: Python<'_>, cfg: Config, start_dir: String, args: Vec<String>) -> i32 {
    let pid = std::process::id();
    crate::info!("Starting rsgi {}", env!("CARGO_PKG_VERSION"));
    let lineage = reexec::Lineage::at_start();
    let heir = matches!(lineage, reexec::Lineage::Heir { .. });
    // gunicorn's arbiter sets its worker count (old value None) first.
    crate::hooks::master_call(&cfg, Hook::NworkersChanged, cfg.workers, |py| {
        vec![cfg.workers.into_pyobject(py).map(|v| v.into_any()).unwrap_or_else(|_| py.None().into_bound(py)), py.None().into_bound(py)]
    });
    crate::hooks::master_call(&cfg, Hook::OnStarting, cfg.workers, |_| Vec::new());
    let Some(observers) = events::Observers::open(&cfg) else { return 1 };
    let mut listeners = Vec::new();
    if let Some(fds) = reexec::inherited_fds() {
        for fd in fds {
            match listen::adopt(fd) {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    crate::error!("Cannot use inherited socket fd {fd}: {e}");
                    return 1;
                }
            }
        }
    } else {
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
    }
    crate::stop_filter::clear_all(&listeners);
    // Unix sockets belong to the workers' user and group, as in gunicorn.
    if cfg.user.is_some() || cfg.group.is_some() {
        for l in &listeners {
            l.chown(cfg.user.as_ref().map(|u| u.0), cfg.group);
        }
    }
    let pidfile = match &cfg.pidfile {
        Some(path) => {
            let name = if heir { format!("{path}.2") } else { path.clone() };
            match Pidfile::create(&name) {
                Ok(p) => Some(p),
                Err(msg) => {
                    crate::error!("{msg}");
                    return 1;
                }
            }
        }
        None => None,
    };
    for l in &listeners {
        crate::info!("Listening at: {} ({pid})", l.url_for(cfg.tls.is_some()));
    }
    match cfg.worker.kind {
        crate::config::compat::WorkerKind::Gevent => crate::gevent::announce(&cfg),
        crate::config::compat::WorkerKind::Asgi => crate::info!("Using worker: asgi"),
        _ => crate::info!("Using worker: {}", if cfg.threads > 1 || cfg.gthread { "gthread" } else { "sync" }),
    }
    notify::ready();
    let suffix = if heir { ".2" } else { "" };
    crate::proctitle::set(&format!("rsgi: master [{}{suffix}]", cfg.proc_name));
    let signals = match SignalPipe::install(&MASTER_SIGNALS) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("Cannot install signal handlers: {e}");
            return 1;
        }
    };
    let scoreboard = match Scoreboard::new() {
        Ok(s) => s,
        Err(e) => {
            crate::error!("Cannot map the worker scoreboard: {e}");
            return 1;
        }
    };
    crate::hooks::master_call(&cfg, Hook::WhenReady, cfg.workers, |_| Vec::new());
    let num_workers = cfg.workers;
    let mut arbiter = Arbiter {
        cfg,
        listeners,
        signals,
        scoreboard,
        workers: BTreeMap::new(),
        num_workers,
        worker_age: 0,
        pidfile,
        lineage,
        start_dir,
        args,
        observers,
    };
    py.detach(|| arbiter.run_loop())
}

impl Arbiter {
    fn run_loop(&mut self) -> i32 {
        if let Err(halt) = self.manage_workers() {
            return self.halt(halt);
        }
        // Start-up (configuration, the settings table, hooks) is done: give
        // the heap's free memory back, the master is long-lived and small.
        // SAFETY: malloc_trim only releases free memory of this process.
        unsafe { libc::malloc_trim(0) };
        loop {
            for sig in self.wait_events(IDLE_WAIT_MS) {
                if sig != Signal::Chld {
                    crate::info!("Handling signal: {}", sig.name());
                }
                match sig {
                    Signal::Chld => {}
                    Signal::Term => return self.halt_with(Stop::Graceful, None, 0),
                    Signal::Int | Signal::Quit => return self.halt_with(Stop::Fast, None, 0),
                    Signal::Hup => self.reload(),
                    Signal::Ttin => self.set_num_workers(self.num_workers + 1),
                    Signal::Ttou => self.set_num_workers(self.num_workers.saturating_sub(1).max(1)),
                    Signal::Usr1 => {
                        crate::log::reopen();
                        crate::access_log::reopen();
                        self.kill_workers(libc::SIGUSR1);
                    }
                    Signal::Usr2 => self.reexec(),
                    Signal::Winch => {
                        if self.cfg.daemon {
                            crate::info!("graceful stop of workers");
                            self.set_num_workers(0);
                            self.kill_workers(libc::SIGTERM);
                        } else {
                            crate::debug!("SIGWINCH ignored. Not daemonized");
                        }
                    }
                    Signal::Abrt => {}
                }
            }
            if let Err(halt) = self.reap_workers() {
                return self.halt(halt);
            }
            self.maybe_promote_master();
            self.murder_lazy_workers();
            self.send_gauges();
            if let Err(halt) = self.manage_workers() {
                return self.halt(halt);
            }
        }
    }

    /// USR2: start a new master (a child of this one) from the same command
    /// line, handing it the listening sockets.
    fn reexec(&mut self) {
        match self.lineage {
            reexec::Lineage::Sole => {}
            reexec::Lineage::Parent { .. } => {
                crate::warn!("USR2 signal ignored. Child exists.");
                return;
            }
            reexec::Lineage::Heir { .. } => {
                crate::warn!("USR2 signal ignored. Parent exists.");
                return;
            }
        }
        let plan = match reexec::ExecPlan::new(&self.listeners, &self.start_dir) {
            Ok(p) => p,
            Err(e) => {
                crate::error!("Cannot re-exec: {e}");
                return;
            }
        };
        // gunicorn calls pre_exec in the forked child; rsgi's child may only
        // exec, so the hook runs here, just before the fork.
        crate::hooks::master_call(&self.cfg, Hook::PreExec, self.num_workers, |_| Vec::new());
        match spawn::fork_exec(&plan) {
            Ok(child) => self.lineage = reexec::Lineage::Parent { child },
            Err(e) => crate::error!("Cannot re-exec: {e}"),
        }
    }

    /// A master started by USR2 becomes the master once the old one exits.
    fn maybe_promote_master(&mut self) {
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() };
        match self.lineage {
            reexec::Lineage::Heir { parent } if parent != ppid => {}
            _ => return,
        }
        crate::info!("Master has been promoted.");
        self.lineage = reexec::Lineage::Sole;
        std::env::remove_var(reexec::MASTER_PID_ENV);
        if let (Some(p), Some(path)) = (self.pidfile.as_mut(), self.cfg.pidfile.as_deref()) {
            p.rename(path);
        }
        crate::proctitle::set(&format!("rsgi: master [{}]", self.cfg.proc_name));
    }

    /// Resolve the configuration again; on error keep the old one.
    fn reload_config(&mut self) {
        let cli = match crate::cli::parse(&self.args) {
            Ok(c) => c,
            Err(e) => {
                crate::error!("Reload failed, keeping the old configuration: {e}");
                return;
            }
        };
        let start_dir = self.start_dir.clone();
        let resolved = Python::attach(|py| {
            let _ = std::env::set_current_dir(&start_dir);
            let r = crate::config::resolve(py, &cli).map_err(|e| e.to_string());
            let r = r.and_then(|r| crate::config::apply_to_python(py, &r.cfg).map(|()| r));
            if r.is_err() {
                // Back to the old configuration's directory and sys.path.
                let _ = crate::config::apply_to_python(py, &self.cfg);
            }
            r
        });
        let mut new = match resolved {
            Ok(r) => {
                for w in &r.warnings {
                    crate::warn!("{w}");
                }
                r.cfg
            }
            Err(e) => {
                crate::error!("Reload failed, keeping the old configuration: {e}");
                return;
            }
        };
        if self.cfg.preload_app {
            // As gunicorn: a preloaded app is not imported again on HUP.
            new.preloaded_app = self.cfg.preloaded_app.take();
        }
        let _ = crate::log::init(crate::log::Level::parse(&new.loglevel), &new.errorlog);
        if new.bind != self.cfg.bind {
            // Keep the sockets of addresses still wanted, bind the new ones,
            // close the rest; on a failure, change nothing.
            let mut old: Vec<(String, Listener)> = self.cfg.bind.iter().cloned().zip(self.listeners.drain(..)).collect();
            let mut next: Vec<(String, Listener, bool)> = Vec::new();
            let mut failed = None;
            for spec in &new.bind {
                if let Some(i) = old.iter().position(|(s, _)| s == spec) {
                    let (s, l) = old.remove(i);
                    next.push((s, l, false));
                    continue;
                }
                match listen::bind(spec, new.backlog) {
                    Ok(l) => next.push((spec.clone(), l, true)),
                    Err(msg) => {
                        failed = Some(msg);
                        break;
                    }
                }
            }
            if let Some(msg) = failed {
                crate::error!("Reload failed, keeping the old addresses: {msg}");
                for (s, l, fresh) in next {
                    if fresh {
                        l.unlink();
                    } else {
                        old.push((s, l));
                    }
                }
                for spec in &self.cfg.bind {
                    if let Some(i) = old.iter().position(|(s, _)| s == spec) {
                        self.listeners.push(old.remove(i).1);
                    }
                }
                new.bind = self.cfg.bind.clone();
            } else {
                for (_, l) in &old {
                    l.unlink();
                }
                for (_, l, fresh) in next {
                    if fresh {
                        crate::info!("Listening at: {} ({})", l.url_for(self.cfg.tls.is_some()), std::process::id());
                    }
                    self.listeners.push(l);
                }
            }
        }
        let workers = new.workers;
        self.cfg = new;
        self.set_num_workers(workers);
    }

    /// Change the target worker count, telling `nworkers_changed`.
    fn set_num_workers(&mut self, n: u32) {
        let old = self.num_workers;
        self.num_workers = n;
        {
            crate::hooks::master_call(&self.cfg, Hook::NworkersChanged, n, |py| {
                vec![n.into_pyobject(py).map(|v| v.into_any()).unwrap_or_else(|_| py.None().into_bound(py)),
                     old.into_pyobject(py).map(|v| v.into_any()).unwrap_or_else(|_| py.None().into_bound(py))]
            });
        }
    }

    /// HUP: read the configuration again (file, environment, command
    /// line), rebind if the addresses changed, start fresh workers with the
    /// new settings, then gracefully stop the old ones.
    fn reload(&mut self) {
        crate::hooks::master_call(&self.cfg, Hook::OnReload, self.num_workers, |_| Vec::new());
        self.reload_config();
        self.replace_workers();
    }

    fn spawn_worker(&mut self) -> std::io::Result<i32> {
        let slot = self
            .scoreboard
            .free_slot()
            .ok_or_else(|| std::io::Error::other("no free scoreboard slot"))?;
        self.worker_age += 1;
        let age = self.worker_age;
        let cfg = &self.cfg;
        crate::hooks::master_call(cfg, Hook::PreFork, self.num_workers, |py| {
            vec![crate::hooks::worker(py, cfg, None, std::process::id() as i32, age).unwrap_or_else(|_| py.None().into_bound(py))]
        });
        // Claimed before the fork so the child starts with a fresh heartbeat.
        self.scoreboard.slot(slot).reset(-1);
        let handle = self.scoreboard.handle(slot);
        let fds = self.master_fds();
        let pid = match spawn::spawn_worker(&self.cfg, &self.listeners, &mut self.signals, &fds, handle, age) {
            Ok(pid) => pid,
            Err(e) => {
                self.scoreboard.slot(slot).pid.store(0, std::sync::atomic::Ordering::Relaxed);
                return Err(e);
            }
        };
        self.scoreboard.slot(slot).pid.store(pid, std::sync::atomic::Ordering::Relaxed);
        self.workers.insert(pid, WorkerInfo { age: self.worker_age, slot, state: WorkerState::Serving });
        Ok(pid)
    }

    /// Ask one worker to stop gracefully.
    fn retire(&mut self, pid: i32) {
        if let Some(w) = self.workers.get_mut(&pid) {
            if w.state == WorkerState::Serving {
                w.state = WorkerState::Retiring;
            }
        }
        kill(pid, libc::SIGTERM);
    }

    /// Keep the number of serving workers at `num_workers`: spawn the
    /// missing ones, retire the oldest extra ones.
    fn manage_workers(&mut self) -> Result<(), Halt> {
        // A worker that retires on its own (max-requests, memory) says so
        // in the scoreboard: its replacement starts now, while it drains.
        for w in self.workers.values_mut() {
            if w.state == WorkerState::Serving && self.scoreboard.slot(w.slot).state() == SlotState::Retiring {
                w.state = WorkerState::Retiring;
            }
        }
        let active = |a: &Arbiter| a.workers.values().filter(|w| w.state == WorkerState::Serving).count() as u32;
        while active(self) > self.num_workers {
            let oldest = self.workers.iter().filter(|(_, w)| w.state == WorkerState::Serving).min_by_key(|(_, w)| w.age).map(|(p, _)| *p);
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
            if self.lineage == (reexec::Lineage::Parent { child: pid }) {
                self.lineage = reexec::Lineage::Sole;
                continue;
            }
            let Some(info) = self.workers.remove(&pid) else { self.other_child_exited(pid, status); continue };
            self.count_exit(&info, status);
            let cfg = &self.cfg;
            crate::hooks::master_call(cfg, Hook::ChildExit, self.num_workers, |py| {
                vec![crate::hooks::worker(py, cfg, Some(pid), std::process::id() as i32, info.age)
                    .unwrap_or_else(|_| py.None().into_bound(py))]
            });
            self.scoreboard.slot(info.slot).release(pid);
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
                    crate::error!("Worker (pid:{pid}) was sent {}!", crate::signals::signal_name(sig));
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
        self.halt_with(Stop::Fast, halt.reason, halt.code)
    }

    /// Stop every worker (TERM for a graceful stop, QUIT for a fast one),
    /// wait up to the graceful timeout, SIGKILL the rest, and leave.
    fn halt_with(&mut self, stop: Stop, reason: Option<&str>, code: i32) -> i32 {
        // The sockets stay (on disk, and open to new clients) while a
        // re-executed master uses them; else no new client gets in, and on a
        // graceful stop the workers serve every connection already queued
        // (`stop_filter`).
        if self.lineage == reexec::Lineage::Sole {
            for l in &self.listeners {
                l.unlink();
            }
            crate::stop_filter::refuse_all(&self.listeners);
        }
        self.listeners.clear();
        self.kill_workers(match stop {
            Stop::Graceful => libc::SIGTERM,
            Stop::Fast => libc::SIGQUIT,
        });
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
        let level = if code == 0 { crate::log::Level::Info } else { crate::log::Level::Error };
        crate::log::log(level, &format!("Shutting down: {}", self.lineage.master_name()));
        if let Some(reason) = reason {
            crate::log::log(level, &format!("Reason: {reason}"));
        }
        if let Some(p) = &self.pidfile {
            p.unlink();
        }
        crate::hooks::master_call(&self.cfg, Hook::OnExit, self.num_workers, |_| Vec::new());
        code
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a child we spawned.
    unsafe { libc::kill(pid, sig) };
}
