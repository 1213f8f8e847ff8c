//! Keeps the I/O loop running while the app runs on the loop's own thread
//! (a worker with one executor, where the loop thread runs the app itself
//! to save two thread hand-offs per request).
//!
//! Two threads can hold the loop: the worker's main thread and a standby.
//! Whichever holds it runs turns; when a turn asks for an app call, the
//! holder publishes that a call is running, releases the loop and runs the
//! app. Most calls end within microseconds and the holder takes the loop
//! back (no lock is contended, no thread woken). If a call is still running
//! after `STUCK_MS`, the standby takes the loop over: the loop keeps reading,
//! accepts nothing, and passes waiting connections to siblings with a free
//! app thread (`intake::pass_on`). The thread whose call ran long becomes
//! the standby once its call ends. This is how a runtime hands a processor
//! away from a thread blocked in a system call; at most one app call runs at
//! a time either way (the loop dispatches only to a free executor).
//!
//! The standby checks on running calls every `STUCK_MS` while calls are
//! being made, and sleeps without a timeout once a whole check found no
//! new call and the loop asleep in its poll (the loop wakes it when it
//! starts the next call). So a worker under load wakes its standby about
//! once per `STUCK_MS`, not once per request, and an idle one not at all.
//!
//! Runs in a worker process, on its main thread and the `rsgi-relay` thread,
//! with the GIL released (the executor kind takes it inside `run_inline`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use super::exchange::LoopHandle;
use super::task::RunInline;
use super::io_loop::{IoLoop, LoopExit, Turn, STUCK_MS};

/// No app call is running on a thread that left the loop.
const IDLE: u8 = 0;
/// The loop's holder runs an app call; the loop is free.
const CALLING: u8 = 1;
/// The standby took the loop during the current call.
const TAKEN: u8 = 2;

pub struct Relay {
    /// The loop (taken out when the worker ends).
    io: Mutex<Option<IoLoop>>,
    /// `IDLE`, `CALLING` or `TAKEN`.
    call: AtomicU8,
    /// Counts calls, so the standby takes over the call it timed, not a
    /// later one.
    calls: AtomicU64,
    /// When the current call started (coarse monotonic ms).
    call_started: AtomicU64,
    /// The standby sleeps without a timeout (the next call must wake it).
    standby_parked: AtomicBool,
    /// The two threads, by role index (0: main, 1: relay thread).
    threads: [OnceLock<Thread>; 2],
    /// Set when the loop ended, with how.
    exit: Mutex<Option<LoopExit>>,
    /// Set while the loop sleeps in its poll (the loop's own flag).
    loop_sleeping: Arc<AtomicBool>,
    /// The loop's notices and waker, for a call that ends after the
    /// standby took the loop.
    handle: Arc<LoopHandle>,
    /// Runs the app (the executor kind's side of the seam).
    inline: Box<dyn RunInline>,
}

/// How a thread's spell as the loop's holder ended.
enum Spell {
    Exit(LoopExit),
    /// The standby took the loop during this thread's app call.
    Lost,
}

impl Relay {
    pub fn new(io: IoLoop, inline: Box<dyn RunInline>) -> Arc<Relay> {
        let handle = io.handle().clone();
        let loop_sleeping = handle.sleeping.clone();
        Arc::new(Relay {
            io: Mutex::new(Some(io)),
            call: AtomicU8::new(IDLE),
            calls: AtomicU64::new(0),
            call_started: AtomicU64::new(0),
            standby_parked: AtomicBool::new(false),
            threads: [OnceLock::new(), OnceLock::new()],
            exit: Mutex::new(None),
            loop_sleeping,
            handle,
            inline,
        })
    }

    /// Start the standby thread (which attaches to Python once, so its app
    /// calls reuse one thread state). Called in the worker before `run`.
    pub fn start_standby(self: &Arc<Relay>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let relay = self.clone();
        std::thread::Builder::new().name("rsgi-relay".into()).spawn(move || {
            pyo3::Python::attach(|py| {
                py.detach(|| {
                    relay.run(1, false);
                })
            })
        })
    }

    /// The loop, for the worker's end (closing the executors' channel).
    pub fn take_loop(&self) -> Option<IoLoop> {
        self.lock_io().take()
    }

    fn lock_io(&self) -> MutexGuard<'_, Option<IoLoop>> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exit(&self) -> Option<LoopExit> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self, role: usize) {
        if let Some(t) = self.threads[role].get() {
            t.unpark();
        }
    }

    /// Serve as thread `role` (0: the worker's main thread, which starts
    /// as the loop's holder; 1: the standby) until the loop ends.
    pub fn run(&self, role: usize, mut holder: bool) -> LoopExit {
        let _ = self.threads[role].set(std::thread::current());
        loop {
            if holder {
                match self.hold(role) {
                    Spell::Exit(how) => return how,
                    Spell::Lost => holder = false,
                }
            } else {
                match self.stand_by() {
                    Some(how) => return how,
                    None => holder = true,
                }
            }
        }
    }

    /// Run the loop until it ends or is taken over during an app call.
    fn hold(&self, role: usize) -> Spell {
        let mut guard = self.lock_io();
        loop {
            let Some(io) = guard.as_mut() else {
                return Spell::Exit(self.exit().unwrap_or(LoopExit::Fast));
            };
            match io.turn() {
                Turn::Again => {}
                Turn::Exit(how) => {
                    *self.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
                    self.wake(1 - role);
                    return Spell::Exit(how);
                }
                Turn::RunApp(task) => {
                    let notice = task.notice();
                    io.app_continues_elsewhere(notice);
                    self.calls.fetch_add(1, Ordering::Relaxed);
                    self.call_started.store(crate::scoreboard::now_ms(), Ordering::Relaxed);
                    self.call.store(CALLING, Ordering::SeqCst);
                    if self.standby_parked.swap(false, Ordering::SeqCst) {
                        self.wake(1 - role);
                    }
                    drop(guard);
                    let notice = self.inline.run_inline(task);
                    if self.call.compare_exchange(CALLING, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        guard = self.lock_io();
                        if let Some(io) = guard.as_mut() {
                            io.app_returned(notice);
                        }
                    } else {
                        // The standby holds the loop now: its notice tells
                        // it the call is over, and this thread stands by.
                        let _ = self.handle.notices.send(notice);
                        self.handle.wake();
                        return Spell::Lost;
                    }
                }
            }
        }
    }

    /// Watch the holder's app calls; take the loop over when one runs past
    /// `STUCK_MS`. Returns how the loop ended, or `None` once this thread
    /// holds the loop.
    fn stand_by(&self) -> Option<LoopExit> {
        // The call count at the last look: a change means calls are being
        // made, and the standby stays on its timed checks.
        let mut seen = self.calls.load(Ordering::Relaxed);
        loop {
            if let Some(how) = self.exit() {
                return Some(how);
            }
            let calls = self.calls.load(Ordering::Relaxed);
            let active = calls != seen;
            seen = calls;
            if self.call.load(Ordering::SeqCst) == CALLING {
                let call = self.calls.load(Ordering::Relaxed);
                let age = crate::scoreboard::now_ms().saturating_sub(self.call_started.load(Ordering::Relaxed));
                if age >= STUCK_MS {
                    if self.calls.load(Ordering::Relaxed) == call
                        && self.call.compare_exchange(CALLING, TAKEN, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                    {
                        return None;
                    }
                    continue;
                }
                std::thread::park_timeout(Duration::from_millis(STUCK_MS - age));
            } else if self.loop_sleeping.load(Ordering::SeqCst) && !active {
                // No call since the last look and the loop asleep: nothing
                // to watch until the loop wakes and starts a call. (While
                // calls keep coming the standby stays on its timed checks
                // instead: parked here, the holder would have to wake it
                // at the start of every call that follows a sleep of the
                // loop, one wake-up and two context switches per request
                // under light load, and on a worker pinned to one core the
                // woken standby interrupts the app call: bench/PROFILE.md,
                // "In-app slowdown".)
                self.standby_parked.store(true, Ordering::SeqCst);
                if self.call.load(Ordering::SeqCst) == CALLING || self.exit().is_some() {
                    self.standby_parked.store(false, Ordering::SeqCst);
                    continue;
                }
                std::thread::park();
                self.standby_parked.store(false, Ordering::SeqCst);
            } else {
                std::thread::park_timeout(Duration::from_millis(STUCK_MS));
            }
        }
    }
}
