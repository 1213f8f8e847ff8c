//! The WSGI executor kind: threads that each attach to Python once and stay
//! attached, take complete requests from the loop's bounded channel, and
//! run them through the app; and the same work on the loop's own thread
//! when the worker has one executor ([`Inline`]). The GIL is released while
//! a thread waits for work, for body bytes, or for the client to take
//! output.
//!
//! Runs in a worker process; started after the app is loaded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use pyo3::prelude::*;

use super::response::Parked;
use super::AppContext;
use crate::scoreboard::SlotHandle;
use crate::worker::exchange::{Finish, Notice};
use crate::worker::task::{RunInline, Task};

/// How long one cooperative wait for output room lasts before it looks
/// again (the loop's bell wakes it; this bounds a missed wake-up).
const ROOM_WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(500);

/// Start `count` executor threads serving jobs from `jobs`. Each publishes
/// when its current request started in the worker's scoreboard slot.
pub fn start(
    count: u32,
    jobs: Receiver<Task>,
    ctx: Arc<AppContext>,
    slot: SlotHandle,
    in_flight: Arc<AtomicUsize>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..count)
        .map(|i| {
            let jobs = jobs.clone();
            let ctx = ctx.clone();
            let in_flight = in_flight.clone();
            let threads = count as usize;
            std::thread::Builder::new()
                .name(format!("rsgi-executor-{i}"))
                .spawn(move || run(jobs, ctx, slot, i as usize, in_flight, threads))
        })
        .collect()
}

/// The body of one executor thread: attach once, then serve until the
/// channel closes.
fn run(jobs: Receiver<Task>, ctx: Arc<AppContext>, slot: SlotHandle, index: usize, in_flight: Arc<AtomicUsize>, threads: usize) {
    Python::attach(|py| loop {
        let job = py.detach(|| jobs.recv());
        match job {
            Ok(task) => {
                let exchange = task.exchange();
                serve_task(py, &ctx, slot, index, task);
                // The loop stops accepting while every executor is busy:
                // wake it when this one frees up.
                if in_flight.fetch_sub(1, Ordering::AcqRel) >= threads {
                    exchange.handle.wake();
                }
            }
            Err(_) => break,
        }
    });
}

/// Run one task on the calling thread (executor `index`), publishing when
/// it started in the scoreboard.
fn serve_task(py: Python<'_>, ctx: &AppContext, slot: SlotHandle, index: usize, task: Task) {
    slot.set_busy(index, true);
    run_task(py, ctx, task);
    slot.set_busy(index, false);
}

/// Run one task through the app on the calling thread (or greenlet): a
/// response that pauses is left in its exchange for the loop to hand back
/// (a greenlet waits for room instead: `wait::cooperative`).
/// A bug in rsgi costs the request, never the caller. Shared by every kind
/// that runs WSGI apps (threads here, greenlets in `gevent`).
pub fn run_task(py: Python<'_>, ctx: &AppContext, task: Task) {
    let exchange = task.exchange();
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut paused = match task {
            Task::Serve(job) => super::response::serve(py, ctx, *job),
            Task::Resume(paused) => match paused.into_any().downcast::<Parked>() {
                Ok(parked) => super::response::resume(py, ctx, parked),
                Err(_) => {
                    debug_assert!(false, "a paused response of another executor kind");
                    None
                }
            },
        };
        while let Some(parked) = paused.take() {
            if super::wait::cooperative() {
                // A greenlet waits for room itself, keeping its greenlet
                // (its locals and context) for the rest of the response;
                // its slot stays taken meanwhile, as a connection of
                // gevent's own server would. Interrupted (killed), it leaves
                // the rest to the loop like any paused response.
                let room = super::wait::until(py, &exchange, ROOM_WAIT_SLICE, |st| (!st.window_full()).then_some(()));
                if room.is_ok() {
                    paused = super::response::resume(py, ctx, parked);
                    continue;
                }
            }
            let mut st = exchange.lock();
            if st.window_full() {
                // The loop hands it back once the client catches up (or
                // goes away): both are decided under this lock.
                st.parked = Some(parked);
            } else {
                // The client caught up (or left) meanwhile: go on now.
                drop(st);
                paused = super::response::resume(py, ctx, parked);
            }
        }
    }));
    if served.is_err() {
        crate::error!("Internal error while serving a request; closing its connection");
        exchange.finish(Finish::Close);
    }
}

/// Runs the app on the I/O loop's own thread, for a worker with one
/// executor thread: a request whose body is complete is served right where
/// it was parsed, without the two thread hand-offs (loop to executor and
/// back) that otherwise cost more than the server's own work on a small
/// request (bench/PROFILE.md). Requests that must stream their body still
/// go to the executor thread.
pub struct Inline {
    ctx: Arc<AppContext>,
    slot: SlotHandle,
    /// The worker's count of app calls in flight (the loop counted this
    /// one when it handed it over).
    in_flight: Arc<AtomicUsize>,
}

impl Inline {
    pub fn new(ctx: Arc<AppContext>, slot: SlotHandle, in_flight: Arc<AtomicUsize>) -> Inline {
        Inline { ctx, slot, in_flight }
    }

}

impl RunInline for Inline {
    /// Serve `task` now, on this thread, as executor 0 (the only one) in
    /// the scoreboard, then count it done. Called with the GIL released,
    /// by the thread that held the loop when the loop asked for the call
    /// (the loop is released meanwhile: `worker::relay`).
    fn run_inline(&self, task: Task) -> Notice {
        let exchange = task.exchange();
        Python::attach(|py| serve_task(py, &self.ctx, self.slot, 0, task));
        exchange.lock().inline = None;
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        exchange.notice
    }
}
