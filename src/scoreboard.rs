//! The scoreboard: one page of shared memory, mapped by the master before
//! it forks, with a slot per worker. A worker publishes its heartbeat, its
//! lifecycle state and, per executor thread, when the request it is running
//! started; the master reads them to find stuck workers (`--timeout`) and
//! retiring ones (which it replaces at once).
//!
//! Workers read each other's slots too: a worker whose executors are all
//! held by long requests looks here for a sibling with a free one to pass
//! waiting connections to (`worker::handoff`).
//!
//! Each slot also holds the worker's traffic counters (requests by status
//! class, bytes in and out, a request-duration histogram), the load it last
//! published (connections open, waiting and paused, requests in flight) and why it
//! retired: the master folds the counters into its own totals when it reaps
//! the worker and serves them all as Prometheus metrics (`master::metrics`).
//!
//! Written by workers (I/O thread: heartbeat, state, load, bytes; executor
//! threads: busy times, request counts), read by the master and by sibling
//! workers. Lock-free: every field is an atomic.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

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

/// Why a worker retired on its own, as stored in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Retirement {
    /// Not retiring on its own (still serving, or stopped by the master).
    None = 0,
    /// `--max-requests` reached.
    MaxRequests = 1,
    /// `--max-worker-memory` passed.
    Memory = 2,
    /// The master went away.
    ParentGone = 3,
}

/// Upper bounds (µs) of the request-duration histogram's buckets, from
/// 5 ms to 10 s; a last, unbounded bucket (`+Inf`) follows them.
pub const DURATION_BOUNDS_US: [u64; 11] =
    [5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000];

/// A worker's traffic counters: only ever increased by the worker, read
/// (and, once the worker is reaped, folded into its totals and cleared) by
/// the master.
#[repr(C)]
pub struct Traffic {
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub by_class: [AtomicU64; 5],
    /// Bytes read from clients' connections.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients' connections.
    pub bytes_out: AtomicU64,
    /// Requests that reached the app, by duration: one count per bucket
    /// of `DURATION_BOUNDS_US`, then the `+Inf` bucket (not cumulative).
    pub duration: [AtomicU64; DURATION_BOUNDS_US.len() + 1],
    /// Sum of those durations in µs.
    pub duration_sum_us: AtomicU64,
}

impl Traffic {
    /// Count a finished response: its status class and, for one the app
    /// produced, its duration. Two or three relaxed adds.
    pub fn count(&self, status: u16, duration: Option<std::time::Duration>) {
        if let Some(c) = self.by_class.get((status / 100).wrapping_sub(1) as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(d) = duration {
            let us = d.as_micros().min(u64::MAX as u128) as u64;
            let bucket = DURATION_BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(DURATION_BOUNDS_US.len());
            self.duration[bucket].fetch_add(1, Ordering::Relaxed);
            self.duration_sum_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    /// Every counter, in a fixed order (see [`Totals`]).
    fn each(&self) -> impl Iterator<Item = &AtomicU64> {
        self.by_class.iter().chain([&self.bytes_in, &self.bytes_out]).chain(self.duration.iter()).chain([&self.duration_sum_us])
    }

    fn clear(&self) {
        for c in self.each() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Plain sums of [`Traffic`] counters (the master's totals of reaped
/// workers, or a snapshot of live ones), in `Traffic::each` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals(pub Vec<u64>);

impl Totals {
    /// Add a slot's counters.
    pub fn add(&mut self, t: &Traffic) {
        let n = t.each().count();
        self.0.resize(n, 0);
        for (sum, c) in self.0.iter_mut().zip(t.each()) {
            *sum = sum.wrapping_add(c.load(Ordering::Relaxed));
        }
    }

    fn at(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// Responses of status class `n`xx (1..=5).
    pub fn class(&self, n: usize) -> u64 {
        self.at(n - 1)
    }
    pub fn bytes_in(&self) -> u64 {
        self.at(5)
    }
    pub fn bytes_out(&self) -> u64 {
        self.at(6)
    }
    /// Requests in histogram bucket `i` (not cumulative; the last is `+Inf`).
    pub fn bucket(&self, i: usize) -> u64 {
        self.at(7 + i)
    }
    pub fn duration_sum_us(&self) -> u64 {
        self.at(7 + DURATION_BOUNDS_US.len() + 1)
    }
}

/// A worker's connections, counted by its I/O loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Client connections open.
    pub open: u64,
    /// Connections with a request waiting for a free executor.
    pub waiting: u64,
    /// Requests read and not yet fully answered.
    pub in_flight: u64,
    /// Responses paused until a slow client takes what is queued.
    pub parked: u64,
}

/// What a worker last published of its `Census` (each I/O loop tick).
#[repr(C)]
pub struct Load {
    pub conns_open: AtomicU64,
    pub conns_waiting: AtomicU64,
    pub in_flight: AtomicU64,
    pub parked: AtomicU64,
}

/// One worker's slot.
#[repr(C)]
pub struct Slot {
    /// The worker's pid (0 when free).
    pub pid: AtomicI32,
    /// The pid of the worker this slot held before (0 if none): what that
    /// worker handed to a sibling just before it exited may still be queued
    /// there, and is still taken (`worker::handoff`).
    pub previous_pid: AtomicI32,
    /// A `SlotState`.
    state: AtomicU32,
    /// Last sign of life from the worker's I/O loop (monotonic ms).
    pub heartbeat_ms: AtomicU64,
    /// Requests completed by the worker.
    pub requests: AtomicU64,
    /// Per executor thread: when its current request started (monotonic
    /// ms), or 0 when idle.
    pub busy_since_ms: [AtomicU64; MAX_THREADS],
    /// A `Retirement`.
    retirement: AtomicU32,
    /// Requests, bytes and durations.
    pub traffic: Traffic,
    /// Connections and requests the worker holds.
    pub load: Load,
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

    /// Retire on its own, saying why.
    pub fn retire(&self, why: Retirement) {
        self.retirement.store(why as u32, Ordering::Relaxed);
        self.set_state(SlotState::Retiring);
    }

    /// Why the worker retired on its own, if it did.
    pub fn retirement(&self) -> Retirement {
        match self.retirement.load(Ordering::Relaxed) {
            1 => Retirement::MaxRequests,
            2 => Retirement::Memory,
            3 => Retirement::ParentGone,
            _ => Retirement::None,
        }
    }

    /// Publish the worker's load. Called by its I/O loop on each tick.
    pub fn publish_load(&self, c: &Census) {
        self.load.conns_open.store(c.open, Ordering::Relaxed);
        self.load.conns_waiting.store(c.waiting, Ordering::Relaxed);
        self.load.in_flight.store(c.in_flight, Ordering::Relaxed);
        self.load.parked.store(c.parked, Ordering::Relaxed);
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

    /// How many of the first `threads` executors are idle.
    pub fn free_executors(&self, threads: usize) -> usize {
        self.busy_since_ms.iter().take(threads.max(1)).filter(|t| t.load(Ordering::Relaxed) == 0).count()
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
        self.retirement.store(Retirement::None as u32, Ordering::Relaxed);
        self.traffic.clear();
        self.publish_load(&Census::default());
    }

    /// Free the slot of reaped worker `pid`, remembering that it held it.
    /// Called by the master.
    pub fn release(&self, pid: i32) {
        self.set_state(SlotState::Free);
        self.previous_pid.store(pid, Ordering::Relaxed);
        // Release: a sibling that sees the slot free sees `previous_pid`.
        self.pid.store(0, Ordering::Release);
    }

    /// Move the traffic counters of a reaped worker into `totals` and clear
    /// them. Called by the master.
    pub fn fold_into(&self, totals: &mut Totals) {
        totals.add(&self.traffic);
        self.traffic.clear();
        self.publish_load(&Census::default());
    }
}

/// This process's own slot, in a worker (unset in the master): lets the
/// socket I/O count bytes without threading the slot through every call.
static OWN_SLOT: OnceLock<SlotHandle> = OnceLock::new();

/// Remember this worker's slot. Called once in the worker after fork.
pub fn set_own(slot: SlotHandle) {
    let _ = OWN_SLOT.set(slot);
}

/// Count bytes read from a client (one relaxed add; nothing in the master).
pub fn count_in(n: usize) {
    if let Some(s) = OWN_SLOT.get() {
        s.traffic.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Count bytes written to a client.
pub fn count_out(n: usize) {
    if let Some(s) = OWN_SLOT.get() {
        s.traffic.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
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
    /// A random number drawn when the board is made: it names this
    /// master's hand-off sockets, so two masters (or an old and a new one
    /// during USR2) never reach each other's workers.
    nonce: u64,
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
        let mut buf = [0u8; 8];
        // SAFETY: getrandom fills the local buffer; a short or failed read
        // leaves zeros, and the pid below still tells masters apart.
        unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        let nonce = u64::from_ne_bytes(buf) ^ ((std::process::id() as u64) << 32);
        Ok(Scoreboard { ptr: ptr as *mut Slot, nonce })
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
        SlotHandle { slot: self.slot(i) as *const Slot, base: self.ptr, index: i.min(MAX_WORKERS - 1), nonce: self.nonce }
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
    /// The whole board, to look at sibling workers.
    base: *const Slot,
    /// This slot's index.
    pub index: usize,
    /// The board's nonce (see `Scoreboard::nonce`).
    pub nonce: u64,
}

impl SlotHandle {
    /// Every other slot in use, with its index.
    pub fn siblings(&self) -> impl Iterator<Item = (usize, &Slot)> + '_ {
        (0..MAX_WORKERS).filter(move |&i| i != self.index).filter_map(move |i| {
            // SAFETY: in bounds of the mapping, which outlives the worker.
            let slot = unsafe { &*self.base.add(i) };
            (slot.pid.load(Ordering::Relaxed) > 0).then_some((i, slot))
        })
    }

    /// Whether `pid` is a sibling worker's, or was one that has exited
    /// since (the latest of each other slot's former workers).
    pub fn is_or_was_sibling(&self, pid: i32) -> bool {
        pid > 0
            && (0..MAX_WORKERS).filter(|&i| i != self.index).any(|i| {
                // SAFETY: in bounds of the mapping, which outlives the worker.
                let slot = unsafe { &*self.base.add(i) };
                slot.pid.load(Ordering::Acquire) == pid || slot.previous_pid.load(Ordering::Relaxed) == pid
            })
    }
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

    #[test]
    fn traffic_folds_into_totals() {
        let sb = Scoreboard::new().unwrap();
        let s = sb.slot(2);
        s.reset(7);
        s.traffic.count(200, Some(std::time::Duration::from_millis(3)));
        s.traffic.count(404, None);
        s.traffic.count(503, Some(std::time::Duration::from_secs(60)));
        s.traffic.count(0, None);
        s.retire(Retirement::Memory);
        assert_eq!(s.retirement(), Retirement::Memory);
        let mut totals = Totals::default();
        s.fold_into(&mut totals);
        assert_eq!((totals.class(2), totals.class(4), totals.class(5), totals.class(1)), (1, 1, 1, 0));
        assert_eq!(totals.bucket(0), 1);
        assert_eq!(totals.bucket(DURATION_BOUNDS_US.len()), 1);
        assert_eq!(totals.duration_sum_us(), 3_000 + 60_000_000);
        let mut again = Totals::default();
        again.add(&s.traffic);
        assert_eq!(again.class(2), 0);
        s.reset(8);
        assert_eq!(s.retirement(), Retirement::None);
    }

    /// Every executor of a worker with as many threads as the configuration
    /// accepts publishes its request's start, so `--timeout` sees it (it
    /// did not from index 64 on).
    #[test]
    fn every_accepted_thread_count_is_tracked() {
        use crate::config::{Config, Key, Overrides, Values};
        let with_threads = |n: usize| {
            let mut o = Overrides::new();
            o.insert(Key::Threads, vec![n.to_string()]);
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
