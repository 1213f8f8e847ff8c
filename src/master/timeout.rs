//! `--timeout` in the master: a worker whose heartbeat stopped, or whose
//! request has run too long, is sent SIGABRT (it logs every thread's
//! traceback and dies), then SIGKILL if it is still there after a grace.
//!
//! Runs in the master's loop, on its idle arm.

use crate::scoreboard::now_ms;

use super::{kill, Arbiter, WorkerState};

/// How long a worker sent SIGABRT for a timeout gets to dump its
/// tracebacks before it is sent SIGKILL.
const ABORT_GRACE_MS: u64 = 5000;

impl Arbiter {
    /// `--timeout`: a worker whose heartbeat stopped, or whose request has
    /// run too long, gets SIGABRT (it dumps every thread's traceback to the
    /// log and dies), then SIGKILL if it is still there after a grace.
    pub(super) fn murder_lazy_workers(&mut self) {
        if self.cfg.timeout == 0 {
            return;
        }
        let limit = self.cfg.timeout * 1000;
        let now = now_ms();
        let mut abort = Vec::new();
        let mut kill9 = Vec::new();
        for (pid, w) in self.workers.iter_mut() {
            if let WorkerState::Aborted { at } = w.state {
                if now.saturating_sub(at) > ABORT_GRACE_MS {
                    kill9.push(*pid);
                }
                continue;
            }
            let slot = self.scoreboard.slot(w.slot);
            let silent = now.saturating_sub(slot.heartbeat_ms.load(std::sync::atomic::Ordering::Relaxed)) > limit;
            let stuck = slot.oldest_busy_ms().is_some_and(|t| now.saturating_sub(t) > limit);
            if silent || stuck {
                w.state = WorkerState::Aborted { at: now };
                abort.push(*pid);
            }
        }
        for pid in abort {
            crate::critical!("WORKER TIMEOUT (pid:{pid})");
            kill(pid, libc::SIGABRT);
        }
        for pid in kill9 {
            kill(pid, libc::SIGKILL);
        }
    }

}
