//! The wake-up path between the worker's I/O loop and the ASGI event loop:
//! an eventfd the event loop watches (`loop.add_reader`; a
//! `worker::eventfd`), written at most once per batch (the `rung` flag),
//! and the [`Feed`] the event loop drains when it fires:
//! new requests from the loop's task channel, and the keys of requests
//! whose exchange changed (body bytes, room for output, client gone).
//!
//! The I/O thread only touches [`Bell`] (atomics, a mutex held for a push,
//! one `write(2)`); the event loop thread holds the GIL in [`Feed`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::request::Request;
use super::AsgiContext;
use crate::worker::eventfd::EventFd;
use crate::worker::task::Task;

/// The eventfd and what is waiting behind it.
pub struct Bell {
    /// The eventfd the event loop watches, and the keys of requests whose
    /// exchange changed.
    efd: EventFd,
    /// A write is pending that the event loop has not drained yet: further
    /// signals need no system call.
    rung: AtomicBool,
    /// The event loop was handed work and holds back its wake-ups of the
    /// I/O loop until it has run it (`Feed::take` to `Feed::release`).
    holding: AtomicBool,
    /// The worker is stopping: the event loop finishes its work and ends.
    stopping: AtomicBool,
}

/// How long the I/O loop sleeps at most while the event loop holds its
/// wake-ups: a response finished early in a batch whose later step runs
/// long is written within this, not after that step (on a worker with a
/// core of its own for each thread, the loop then writes it meanwhile).
const HELD_BOUND: std::time::Duration = std::time::Duration::from_millis(1);

impl Bell {
    pub fn new() -> std::io::Result<Arc<Bell>> {
        Ok(Arc::new(Bell { efd: EventFd::new()?, rung: AtomicBool::new(false), holding: AtomicBool::new(false), stopping: AtomicBool::new(false) }))
    }

    /// Wake the event loop unless a wake-up is already on its way.
    fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.efd.write();
        }
    }

    /// Consume the pending wake-up, before looking at the queues. The
    /// eventfd is read first and the flag cleared after: clearing it first
    /// would let a ring that comes in between write the eventfd, have that
    /// write consumed by this read, and leave the flag set with nothing to
    /// wake the loop again. Cleared after, a ring in between finds the flag
    /// still set and writes nothing; its request is already queued, and the
    /// swap (acquiring what the ring released) makes it visible to the
    /// look at the queues that follows.
    fn drain(&self) {
        self.efd.clear();
        self.rung.swap(false, Ordering::AcqRel);
    }

    /// Ask the event loop to finish (the I/O loop is over).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.ring();
    }
}

impl crate::worker::task::Bell for Bell {
    fn tasks(&self) {
        // Set before the loop sleeps, so that sleep is bounded already:
        // the event loop will hold its wake-ups while it runs these.
        self.holding.store(true, Ordering::Release);
        self.ring();
    }

    fn sleep_bound(&self) -> Option<std::time::Duration> {
        self.holding.load(Ordering::Acquire).then_some(HELD_BOUND)
    }

    fn request(&self, key: u64) {
        self.efd.push(key);
        self.ring();
    }
}

/// How the event loop thread tells the worker's main thread that lifespan
/// startup is over: `Ok` to serve, `Err(message)` to stop.
pub type Started = Sender<Result<(), String>>;

/// What the event loop drains: the Python side of [`Bell`].
#[pyclass(module = "rsgi", name = "AsgiFeed")]
pub struct Feed {
    pub(super) bell: Arc<Bell>,
    pub(super) jobs: Receiver<Task>,
    pub(super) ctx: Arc<AsgiContext>,
    pub(super) started: Mutex<Option<Started>>,
    pub(super) next_key: std::sync::atomic::AtomicU64,
    /// The event loop requests create their futures on (`bind_loop`).
    pub(super) event_loop: std::sync::OnceLock<Py<PyAny>>,
}

#[pymethods]
impl Feed {
    /// The eventfd to watch.
    #[getter]
    fn fd(&self) -> i32 {
        self.bell.efd.fd()
    }

    /// The event loop that serves the requests.
    fn bind_loop(&self, event_loop: Py<PyAny>) {
        let _ = self.event_loop.set(event_loop);
    }

    /// `(new requests, keys of woken requests, stopping)`.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, Vec<u64>, bool)> {
        // The responses of what is taken now wake the loop once, at
        // `release` (which the driver schedules after the tasks' steps);
        // the loop sleeps at most `HELD_BOUND` meanwhile.
        self.bell.holding.store(true, Ordering::Release);
        crate::worker::held_wakes::hold();
        self.bell.drain();
        let event_loop = self.event_loop.get().ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("no event loop bound"))?;
        let woken = self.bell.efd.take();
        let news = PyList::empty(py);
        loop {
            match self.jobs.try_recv() {
                Ok(Task::Serve(job)) => {
                    let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                    if job.websocket.is_some() {
                        news.append(super::websocket::WsRequest::start(py, &self.ctx, *job, key, event_loop)?)?;
                    } else {
                        let req = Request::start(py, &self.ctx, *job, key, event_loop)?;
                        news.append(req)?;
                    }
                }
                Ok(Task::Resume(_)) => {
                    // The ASGI kind never pauses a response through the loop.
                    debug_assert!(false, "a paused response handed to the ASGI kind");
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        Ok((news, woken, self.bell.stopping.load(Ordering::Acquire)))
    }

    /// Wake the loop once for the responses queued since `take`
    /// (`worker::held_wakes`).
    fn release(&self) {
        self.bell.holding.store(false, Ordering::Release);
        crate::worker::held_wakes::release();
    }

    /// The event loop is alive: refresh its mark in the scoreboard, so the
    /// master's `--timeout` kills a worker whose loop stopped turning.
    fn beat(&self) {
        self.ctx.slot.set_busy(0, true);
    }

    /// Lifespan startup is over: `None` to serve, else why the worker stops.
    /// `state` is the lifespan state request scopes copy.
    fn started(&self, py: Python<'_>, failure: Option<String>, state: Option<Bound<'_, pyo3::types::PyDict>>) {
        if let Some(state) = state {
            let _ = self.ctx.state.set(state.unbind());
        }
        let _ = py;
        if let Some(tx) = self.started.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(match failure {
                None => Ok(()),
                Some(m) => Err(m),
            });
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::task::Bell as _;

    fn pending(bell: &Bell) -> u64 {
        crate::worker::eventfd::tests::pending(&bell.efd)
    }

    #[test]
    fn a_ring_after_a_drain_writes_again() {
        let bell = Bell::new().unwrap();
        bell.tasks();
        // The event loop wakes and drains; a ring that lands after the
        // drain must write again (the flag is clear), so the loop wakes.
        bell.drain();
        bell.request(3);
        assert_eq!(pending(&bell), 1);
        bell.drain();
        assert!(!bell.rung.load(Ordering::Acquire));
    }

    #[test]
    fn one_write_per_batch_until_drained() {
        let bell = Bell::new().unwrap();
        bell.tasks();
        bell.request(7);
        bell.request(9);
        // Three signals, one write.
        assert_eq!(pending(&bell), 1);
        bell.drain();
        bell.tasks();
        assert_eq!(pending(&bell), 1);
        assert_eq!(bell.efd.take(), vec![7, 9]);
        assert!(!bell.stopping.load(Ordering::Acquire));
        bell.drain();
        bell.stop();
        assert!(bell.stopping.load(Ordering::Acquire));
        assert_eq!(pending(&bell), 1);
    }
}
