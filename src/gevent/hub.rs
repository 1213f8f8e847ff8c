//! The hub thread's side of the gevent kind: monkey-patching right after
//! fork, and the bridge the dispatcher greenlet (`rsgi._gevent.serve`)
//! drives: take requests from the loop's channel, spawn a greenlet for
//! each (which runs it through the WSGI driver with [`HubBridge::serve`];
//! the loop bounds them at `--worker-connections`),
//! wake greenlets waiting for their request's I/O, and wait on the bell's
//! descriptor when there is nothing to do.
//!
//! Runs in a worker process on its main thread (the hub's), with the GIL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::bell::{Closing, HubBell};
use crate::scoreboard::SlotHandle;
use crate::worker::task::Task;
use crate::wsgi::AppContext;

/// The scoreboard entry the hub's watchdog greenlet refreshes: the master's
/// `--timeout` sees it age when a greenlet holds the hub without yielding.
const HUB_ENTRY: usize = 0;

/// Can gevent be imported? Called in the master when `-k gevent` is read,
/// as gunicorn imports it there with its worker class. The error is the
/// reason, for the one refusal line.
pub fn check_installed(py: Python<'_>) -> Result<(), String> {
    py.import("gevent").map(|_| ()).map_err(|e| e.value(py).to_string())
}

/// Frame chunks from the C heap (`frames`), `gevent.monkey.patch_all()` and
/// a fresh hub for this process. Called in
/// the worker right after fork, before `post_fork` and before the app is
/// imported.
pub fn patch(py: Python<'_>) -> PyResult<()> {
    super::frames::install();
    py.import("rsgi._gevent")?.call_method0("patch")?;
    Ok(())
}

/// One request handed from the loop, for a greenlet to run.
#[pyclass(module = "rsgi", name = "GeventRequest")]
pub struct Request {
    task: Mutex<Option<Task>>,
}

/// The dispatcher's handle on the loop: its channel, its bell, and what a
/// greenlet needs to run a request.
#[pyclass(module = "rsgi", name = "GeventBridge")]
pub struct HubBridge {
    /// Tasks from the loop.
    pub jobs: Receiver<Task>,
    /// The wake-up descriptor and the requests to wake.
    pub bell: Arc<HubBell>,
    /// The app and the environ base.
    pub ctx: Arc<AppContext>,
    /// Requests handed over and not yet done (the loop counted them in).
    pub in_flight: Arc<AtomicUsize>,
    /// `--worker-connections`: the loop stops handing over at this many.
    pub capacity: usize,
    /// The worker's scoreboard slot (the hub watchdog's entry).
    pub slot: SlotHandle,
}

#[pymethods]
impl HubBridge {
    /// The descriptor to watch for reading.
    fn fileno(&self) -> i32 {
        self.bell.fd()
    }

    /// `(requests, woken, closed)`: the requests the loop handed over, the
    /// keys of waiting requests that may go on, and whether the loop ended
    /// (`None`, `"graceful"` or `"fast"`).
    fn take<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, Vec<u64>, Option<&'static str>)> {
        let rung = self.bell.take();
        let requests = PyList::empty(py);
        while let Ok(task) = self.jobs.try_recv() {
            requests.append(Py::new(py, Request { task: Mutex::new(Some(task)) })?)?;
        }
        let closed = rung.closed.map(|how| match how {
            Closing::Graceful => "graceful",
            Closing::Fast => "fast",
        });
        Ok((requests, rung.woken, closed))
    }

    /// About to wait on the descriptor: false if the dispatcher may, true
    /// if work came meanwhile.
    fn arm(&self) -> bool {
        self.bell.arm(|| !self.jobs.is_empty())
    }

    /// Run `request` through the app, in the calling greenlet.
    fn serve(&self, py: Python<'_>, request: &Request) -> PyResult<()> {
        let task = request.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let task = task.ok_or_else(|| PyRuntimeError::new_err("request already served"))?;
        let exchange = task.exchange();
        crate::wsgi::executor::run_task(py, &self.ctx, task);
        // The loop stops taking work while every slot is taken: wake it
        // when this one frees up.
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) >= self.capacity {
            exchange.handle.wake();
        }
        Ok(())
    }

    /// Requests handed over and not yet done.
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The hub is running: refresh the watchdog entry the master's
    /// `--timeout` reads.
    fn beat(&self) {
        self.slot.set_busy(HUB_ENTRY, true);
    }
}

/// Run the hub on this thread until the loop ends and the requests still
/// running are done (at most `graceful` seconds more; none with `fast`,
/// which the caller learns from the loop's exit once this returns).
/// Makes every wait of the process cooperative first.
pub fn serve(py: Python<'_>, bridge: HubBridge, timeout_secs: u64, graceful_secs: u64) -> PyResult<()> {
    let module = py.import("rsgi._gevent")?;
    crate::wsgi::wait::set_cooperative(module.getattr("wait")?.unbind());
    let capacity = bridge.capacity;
    module.call_method1("serve", (Py::new(py, bridge)?, capacity, timeout_secs, graceful_secs))?;
    Ok(())
}
