//! What the master loop waits on besides signals: metrics scrapes
//! (`metrics`, `exporter`) and file changes for `--reload` (`watch`). All
//! of it is polled with the signal pipe in one poll(2) call on the master's
//! only thread, so the master never has a second thread when it forks; the
//! descriptors involved are closed in every child it forks.
//!
//! Used only by the master.

use std::os::unix::io::RawFd;

use super::metrics::Metrics;
use super::watch::Watch;
use super::Arbiter;
use crate::config::Config;
use crate::signals::Signal;

/// The master's observers: metrics, and the reloader.
pub(super) struct Observers {
    pub(super) metrics: Metrics,
    pub(super) watch: Option<Watch>,
}

impl Observers {
    /// Open the metrics endpoint and start watching files, as configured.
    /// `None` after logging one line when either cannot start. Called in
    /// the master before it binds the listeners.
    pub(super) fn open(cfg: &Config) -> Option<Observers> {
        let opened = Metrics::open(cfg).and_then(|metrics| Ok(Observers { metrics, watch: Watch::open(cfg)? }));
        match opened {
            Ok(o) => Some(o),
            Err(msg) => {
                crate::error!("{msg}");
                None
            }
        }
    }
}

impl Arbiter {
    /// Wait up to `timeout_ms` for signals, scrapes and file changes; serve
    /// the scrapes, act on the changes, and return the signals.
    pub(super) fn wait_events(&mut self, timeout_ms: i32) -> Vec<Signal> {
        let mut fds = Vec::new();
        if let Some(e) = &self.observers.metrics.exporter {
            e.pollfds(&mut fds);
        }
        let scrapes = fds.len();
        if let Some(p) = self.observers.watch.as_ref().and_then(Watch::pollfd) {
            fds.push(p);
        }
        let signals = self.signals.wait_with(timeout_ms, &mut fds);
        if let Some(mut exporter) = self.observers.metrics.exporter.take() {
            exporter.service(&fds[..scrapes], || self.render_metrics());
            self.observers.metrics.exporter = Some(exporter);
        }
        self.watch_step(fds.get(scrapes).is_some_and(|p| p.revents != 0));
        signals
    }

    /// The master's own descriptors, which no child keeps.
    pub(super) fn master_fds(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> = self.observers.metrics.exporter.iter().flat_map(|e| e.fds()).collect();
        if let Some(w) = &self.observers.watch {
            fds.extend(w.fds());
        }
        fds
    }

    /// A child that is not a worker (nor a USR2 master) exited.
    pub(super) fn other_child_exited(&mut self, pid: i32, status: i32) {
        let _ = self.trial_exited(pid, status);
    }
}
