//! The scoreboard: one page of shared memory, mapped by the master before
//! it forks, with a slot per worker. A worker publishes its heartbeat, its
//! lifecycle state and, per executor thread, when the request it is running
//! started; the master reads them to find stuck workers (`--timeout`) and
//! retiring ones (which it replaces at once).
//!
//! Written by workers (I/O thread: heartbeat, state; executor threads: busy
//! times), read by the master. Lock-free: every field is an atomic.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Most worker processes the scoreboard has room for.
pub const MAX_WORKERS: usize = 1024;
/// Executor threads per worker whose request start times are tracked: the
/// most `--threads` accepts (`Config::new` refuses more with one line), so
/// `--timeout` sees every executor. 2 KiB per slot; far more threads than a
/// GIL-bound worker can use.
pub const MAX_THREADS: usize = 256;

/// Worker lifecycle states as stored in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    /// Unused slot.
    Free = 0,
    /// Forked, loading the app.
    Booting = 1,
    /// Accepting and serving.
    Serving = 2,
    /// Finishing in-flight requests before exiting (max-requests, memory
    /// ceiling, lost parent): the master starts a replacement at once.
    Retiring = 3,
}

/// One worker's slot.
#[repr(C)]
pub struct Slot {
    /// The worker's pid (0 when free).
    pub pid: AtomicI32,
    /// A `SlotState`.
    state: AtomicU32,
    /// Last sign of life from the worker's I/O loop (monotonic ms).
    pub heartbeat_ms: AtomicU64,
    /// Requests completed by the worker.
    pub requests: AtomicU64,
    /// Per executor thread: when its current request started (monotonic
    /// ms), or 0 when idle.
    pub busy_since_ms: [AtomicU64; MAX_THREADS],
}

impl Slot {
    pub fn state(&self) -> SlotState {
        match self.state.load(Ordering::Acquire) {
            1 => SlotState::Booting,
            2 => SlotState::Serving,
            3 => SlotState::Retiring,
            _ => SlotState::Free,
        }
    }

    pub fn set_state(&self, s: SlotState) {
        self.state.store(s as u32, Ordering::Release);
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Mark executor `thread` busy from now (or idle with `false`).
    pub fn set_busy(&self, thread: usize, busy: bool) {
        if let Some(t) = self.busy_since_ms.get(thread) {
            t.store(if busy { now_ms().max(1) } else { 0 }, Ordering::Relaxed);
        }
    }

    /// The oldest running request's start, if any.
    pub fn oldest_busy_ms(&self) -> Option<u64> {
        self.busy_since_ms.iter().map(|t| t.load(Ordering::Relaxed)).filter(|&t| t != 0).min()
    }

    /// Reset for a new worker. Called in the master before fork.
    pub fn reset(&self, pid: i32) {
        self.pid.store(pid, Ordering::Relaxed);
        self.set_state(SlotState::Booting);
        self.beat();
        self.requests.store(0, Ordering::Relaxed);
        for t in &self.busy_since_ms {
            t.store(0, Ordering::Relaxed);
        }
    }
}

/// Milliseconds on the system-wide monotonic clock (the same in every
/// process). Its coarse variant: a read of the last timer tick (a few ms
/// old at most, plenty for timeouts counted in seconds) instead of a
/// hardware clock read on every request.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The shared mapping. Created in the master before any fork; every worker
/// inherits the same pages.
pub struct Scoreboard {
    /// Start of the mapping: `MAX_WORKERS` slots.
    ptr: *mut Slot,
}

// SAFETY: the slots are only accessed through atomics.
unsafe impl Send for Scoreboard {}
// SAFETY: as above.
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    fn bytes() -> usize {
        std::mem::size_of::<Slot>() * MAX_WORKERS
    }

    /// Map the shared, zeroed slots. Called in the master.
    pub fn new() -> std::io::Result<Scoreboard> {
        // SAFETY: an anonymous shared mapping; zero pages are valid Slots
        // (all-zero atomics).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::bytes(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Scoreboard { ptr: ptr as *mut Slot })
    }

    /// Slot `i` (`i < MAX_WORKERS`).
    pub fn slot(&self, i: usize) -> &Slot {
        debug_assert!(i < MAX_WORKERS);
        // SAFETY: in bounds of the mapping, which lives as long as self.
        unsafe { &*self.ptr.add(i.min(MAX_WORKERS - 1)) }
    }

    /// A free slot for a new worker.
    pub fn free_slot(&self) -> Option<usize> {
        (0..MAX_WORKERS).find(|&i| self.slot(i).pid.load(Ordering::Relaxed) == 0)
    }

    /// A handle a worker can keep (and give to its threads).
    pub fn handle(&self, i: usize) -> SlotHandle {
        SlotHandle { slot: self.slot(i) as *const Slot }
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, Self::bytes()) };
    }
}

/// A worker's reference to its own slot, valid for the process's life (the
/// mapping is never unmapped in a worker).
#[derive(Clone, Copy)]
pub struct SlotHandle {
    slot: *const Slot,
}

// SAFETY: points into the shared mapping; accessed only through atomics.
unsafe impl Send for SlotHandle {}
// SAFETY: as above.
unsafe impl Sync for SlotHandle {}

impl std::ops::Deref for SlotHandle {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        // SAFETY: the mapping outlives every worker thread.
        unsafe { &*self.slot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_and_zeroed() {
        let sb = Scoreboard::new().unwrap();
        assert_eq!(sb.free_slot(), Some(0));
        sb.slot(0).reset(42);
        assert_eq!(sb.free_slot(), Some(1));
        assert_eq!(sb.slot(0).state(), SlotState::Booting);
        let h = sb.handle(0);
        h.set_busy(3, true);
        assert!(h.oldest_busy_ms().is_some());
        h.set_busy(3, false);
        assert_eq!(h.oldest_busy_ms(), None);
        h.set_state(SlotState::Retiring);
        assert_eq!(sb.slot(0).state(), SlotState::Retiring);
    }

    /// Every executor of a worker with as many threads as the configuration
    /// accepts publishes its request's start, so `--timeout` sees it (it
    /// did not from index 64 on).
    #[test]
    fn every_accepted_thread_count_is_tracked() {
        use crate::config::{Config, Overrides, Values};
        let with_threads = |n: usize| {
            let mut o = Overrides::new();
            o.insert("threads", vec![n.to_string()]);
            Config::new("a:b".into(), Values::merge(&[&o]).unwrap())
        };
        let sb = Scoreboard::new().unwrap();
        let h = sb.handle(0);
        for n in [65, MAX_THREADS] {
            let cfg = with_threads(n).unwrap();
            let last = cfg.threads as usize - 1;
            h.set_busy(last, true);
            assert!(h.oldest_busy_ms().is_some(), "executor {last} of {n}");
            h.set_busy(last, false);
        }
        let err = with_threads(MAX_THREADS + 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("threads") && err.contains(&MAX_THREADS.to_string()), "{err}");
    }
}
