//! Executor threads: each attaches to Python once and stays attached, takes
//! complete requests from the loop's bounded channel, and runs them through
//! the app. The GIL is released while a thread waits for work, for body
//! bytes, or for the client to take output.
//!
//! Runs in a worker process; started after the app is loaded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use pyo3::prelude::*;

use super::exchange::Exchange;
use crate::scoreboard::SlotHandle;
use crate::http::proxy::ProxyInfo;
use crate::http::RequestHead;
use crate::wsgi::environ::Peer;
use crate::wsgi::AppContext;

/// One request, handed from the loop to an executor.
pub struct Job {
    /// The parsed head.
    pub head: RequestHead,
    /// The body in, the response out.
    pub exchange: Arc<Exchange>,
    /// The client.
    pub peer: Peer,
    /// The listener's SERVER_NAME / SERVER_PORT (none for unix sockets).
    pub server: Option<Arc<(String, String)>>,
    /// What a PROXY protocol header said, if one came.
    pub proxy: Option<ProxyInfo>,
    /// The connection is TLS: what the environ shows of it.
    pub tls: Option<std::sync::Arc<super::tls_io::TlsFacts>>,
    /// When the head was complete (the access log's request time).
    pub started: std::time::Instant,
}

/// Work for an executor (or for the loop thread running the app itself).
pub enum Task {
    /// A new request (boxed: a task moves from the parser through the
    /// connection's state and the dispatcher to the thread that runs it,
    /// and a pointer moves cheaper than the request head).
    Serve(Box<Job>),
    /// A response that paused on a full output window, to go on with.
    Resume(Box<crate::wsgi::response::Parked>),
}

impl Task {
    /// Where the task's connection lives in the loop.
    pub fn notice(&self) -> super::exchange::Notice {
        match self {
            Task::Serve(job) => job.exchange.notice,
            Task::Resume(parked) => parked.notice(),
        }
    }

    /// The exchange of the request this task belongs to.
    pub fn exchange(&self) -> Arc<Exchange> {
        match self {
            Task::Serve(job) => job.exchange.clone(),
            Task::Resume(parked) => parked.exchange(),
        }
    }
}

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
/// it started in the scoreboard. A response that pauses is left in its
/// exchange for the loop to hand back. A bug in rsgi costs the request,
/// never the thread.
fn serve_task(py: Python<'_>, ctx: &AppContext, slot: SlotHandle, index: usize, task: Task) {
    let exchange = task.exchange();
    slot.set_busy(index, true);
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut paused = match task {
            Task::Serve(job) => crate::wsgi::response::serve(py, ctx, *job),
            Task::Resume(parked) => crate::wsgi::response::resume(py, ctx, parked),
        };
        while let Some(parked) = paused.take() {
            let mut st = exchange.lock();
            if st.window_full() {
                // The loop hands it back once the client catches up (or
                // goes away): both are decided under this lock.
                st.parked = Some(parked);
            } else {
                // The client caught up (or left) meanwhile: go on now.
                drop(st);
                paused = crate::wsgi::response::resume(py, ctx, parked);
            }
        }
    }));
    slot.set_busy(index, false);
    if served.is_err() {
        crate::error!("Internal error while serving a request; closing its connection");
        exchange.finish(super::exchange::Finish::Close);
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

    /// Serve `task` now, on this thread, as executor 0 (the only one) in
    /// the scoreboard, then count it done. Called with the GIL released,
    /// by the thread that held the loop when the loop asked for the call
    /// (the loop is released meanwhile: `relay`). Returns the notice of
    /// the task's connection, for the loop to step it.
    pub fn serve(&self, task: Task) -> super::exchange::Notice {
        let exchange = task.exchange();
        Python::attach(|py| serve_task(py, &self.ctx, self.slot, 0, task));
        exchange.lock().inline = None;
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        exchange.notice
    }
}
