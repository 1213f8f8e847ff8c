//! A worker's own decisions about taking and giving up work: when it is
//! stuck (every app thread held too long), the drain on TERM or retirement
//! (with a stopping worker's last accepts), the periodic tick (heartbeat,
//! connection deadlines, the parent, the memory ceiling, `--max-requests`),
//! and the timeout thread's request to evacuate before the worker dies.
//!
//! Runs on the worker's I/O thread (the loop); never touches Python.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::io_loop::IoLoop;
use super::task::Admission;
use crate::scoreboard::Retirement;

/// How long a worker told to stop (TERM) goes on accepting: the master has
/// stopped new clients from getting in (`stop_filter`), so what arrives
/// now are connections the kernel had already taken (queued, or finishing
/// their handshake), each of which is served rather than reset.
const ACCEPT_LINGER: Duration = Duration::from_millis(100);

/// Why a worker drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drain {
    /// TERM: the worker (or the whole server) stops; it accepts what the
    /// kernel already queued, then no more.
    Stop,
    /// The worker retires on its own (`--max-requests`, the memory
    /// ceiling, a lost parent) while a replacement takes its place.
    Retire(Retirement),
}

/// A drain under way.
#[derive(Debug, Clone, Copy)]
pub(super) struct Draining {
    pub why: Drain,
    /// When it must be over (`--graceful-timeout` after it began).
    pub deadline: Instant,
}

impl Draining {
    /// Until when connections between requests wait for a sibling to take
    /// them over: a worker retiring for `--max-requests` or its memory
    /// ceiling has a replacement starting, which `pass_on` gives them to
    /// once it serves; a stopping worker's siblings stop too, and a worker
    /// whose parent is gone gets no replacement, so theirs close when their
    /// keep-alive time runs out (`None`).
    pub fn handover_until(&self, can_hand_over: bool) -> Option<Instant> {
        match self.why {
            Drain::Retire(Retirement::MaxRequests | Retirement::Memory) if can_hand_over => Some(self.deadline),
            _ => None,
        }
    }
}

/// A request running longer than this on every executor makes the worker
/// "stuck": it stops accepting new connections, and passes connections
/// waiting for an app thread to a sibling worker with a free one. Short
/// enough that a waiting request hardly notices; long enough that a worker
/// saturated by quick requests keeps its own clients.
pub const STUCK_MS: u64 = 10;

/// A request from outside the loop (the timeout thread) to pass every
/// connection it can to siblings before the worker dies.
pub struct Evacuation {
    requested: std::sync::atomic::AtomicBool,
    done: std::sync::Mutex<bool>,
    finished: std::sync::Condvar,
    pub(super) waker: std::sync::OnceLock<Arc<mio::Waker>>,
}

impl Evacuation {
    pub fn new() -> Arc<Evacuation> {
        Arc::new(Evacuation {
            requested: std::sync::atomic::AtomicBool::new(false),
            done: std::sync::Mutex::new(false),
            finished: std::sync::Condvar::new(),
            waker: std::sync::OnceLock::new(),
        })
    }

    /// Ask the loop to evacuate and wait (at most `limit`) until it has.
    /// Called by the timeout thread before the worker dies.
    pub fn run(&self, limit: Duration) {
        self.requested.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.get() {
            let _ = w.wake();
        }
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.finished.wait_timeout_while(done, limit, |d| !*d);
    }

    pub(super) fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    pub(super) fn complete(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.finished.notify_all();
    }
}

impl IoLoop {
    /// Stop accepting and let connections finish (TERM, max-requests, the
    /// memory ceiling, a lost parent). Connections between requests go to
    /// a sibling that is still serving, if there is one (`pass_on`); the
    /// others stay until their keep-alive time runs out, and any request
    /// that arrives on them meanwhile is answered with `Connection: close`,
    /// so a client never has a kept-alive connection shut under its next
    /// request.
    pub(super) fn begin_drain(&mut self, why: Drain) {
        if self.drain.is_some() {
            return;
        }
        self.cfg.slot.retire(if let Drain::Retire(why) = why { why } else { Retirement::None });
        let now = Instant::now();
        self.drain = Some(Draining { why, deadline: now + self.cfg.graceful_timeout });
        if why == Drain::Stop {
            self.accept_until = Some(now + ACCEPT_LINGER.min(self.cfg.graceful_timeout));
            self.accept_all();
        }
        self.keep_listening();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        self.ready.extend(keys);
    }

    /// Periodic work: the heartbeat, timeouts, connections' own timers,
    /// re-trying paused work, the parent and memory checks.
    pub(super) fn tick(&mut self, now: Instant) {
        self.cfg.slot.beat();
        self.cfg.slot.publish_load(&super::conn::census(self.conns.iter().map(|(_, c)| c)));
        if self.drain.is_none() {
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != self.cfg.master_pid {
                crate::info!("Parent changed, shutting down: {}", std::process::id());
                self.begin_drain(Drain::Retire(Retirement::ParentGone));
            } else if self.cfg.max_memory > 0 {
                let rss = resident_bytes();
                if rss > self.cfg.max_memory {
                    crate::info!(
                        "Worker (pid:{}) uses {} MiB, over --max-worker-memory {} MiB: restarting after current requests.",
                        std::process::id(),
                        rss >> 20,
                        self.cfg.max_memory >> 20
                    );
                    self.begin_drain(Drain::Retire(Retirement::Memory));
                }
            }
        }
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            if !self.is_elsewhere(key) {
                self.close(key);
            }
        }
        // Timers of their own (keep-alive pings): stepped at the time the
        // steps read (`self.now`).
        let at = self.now;
        let due = self.conns.iter().filter(|(_, c)| c.wake_at.is_some_and(|w| w <= at)).map(|(k, _)| k);
        self.ready.extend(due);
        if self.accept_paused {
            self.accept_all();
        }
    }

    /// True when this worker should take new connections: an executor is
    /// free, or every busy executor started its request only just now. A
    /// worker whose executors are all held by slow or stuck requests leaves
    /// new connections to the other workers (and takes them again as soon
    /// as a request finishes: paused accepts are retried first thing after
    /// every wake-up), while a worker that is merely saturated with quick
    /// requests keeps accepting, so a new client is answered promptly.
    /// A worker at its connection limit takes none either: listening on,
    /// it could be the one the kernel wakes for a new client, which would
    /// then wait in the queue while a sibling has room.
    pub(super) fn has_capacity(&self) -> bool {
        !self.is_stuck() && self.conns.len() < self.cfg.worker_connections
    }

    /// The kind cannot start another request soon: every executor held,
    /// the oldest for `STUCK_MS` or more; or every slot taken (`Admission`).
    pub(super) fn is_stuck(&self) -> bool {
        if self.cfg.in_flight.load(Ordering::Acquire) < self.cfg.threads {
            return false;
        }
        match self.cfg.admission {
            Admission::Slots => true,
            Admission::Threads => match self.cfg.slot.oldest_busy_ms() {
                Some(since) => crate::scoreboard::now_ms().saturating_sub(since) >= STUCK_MS,
                None => false,
            },
        }
    }

    /// A kind that fills slots keeps its requests in flight current in its
    /// scoreboard slot: siblings judge its room by it (`Handoff::pick`).
    pub(super) fn publish_room(&self) {
        if self.cfg.admission == Admission::Slots {
            self.cfg.slot.load.in_flight.store(self.cfg.in_flight.load(Ordering::Acquire) as u64, Ordering::Relaxed);
        }
    }

    /// After a request completes: retire at `--max-requests`.
    pub(super) fn check_max_requests(&mut self) {
        if self.requests_left.get() == 0 && self.drain.is_none() {
            crate::info!("Autorestarting worker after current request.");
            self.begin_drain(Drain::Retire(Retirement::MaxRequests));
        }
    }
}

/// The worker's resident memory in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_retirement_with_a_replacement_coming_keeps_idle_connections() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let drain = |why| Draining { why, deadline };
        assert_eq!(drain(Drain::Retire(Retirement::MaxRequests)).handover_until(true), Some(deadline));
        assert_eq!(drain(Drain::Retire(Retirement::Memory)).handover_until(true), Some(deadline));
        assert_eq!(drain(Drain::Retire(Retirement::MaxRequests)).handover_until(false), None, "no hand-off socket");
        assert_eq!(drain(Drain::Retire(Retirement::ParentGone)).handover_until(true), None, "no replacement comes");
        assert_eq!(drain(Drain::Stop).handover_until(true), None, "the siblings stop too");
    }
}
