//! One connection's app as its task runs it: `pre_request`, the call
//! `app(scope, receive, send)`, and the connection's end with how the app
//! finished (returned, raised, cancelled), then the driver's bookkeeping
//! (out of `live`, the task and the grace timer let go). A Rust object with
//! the coroutine protocol (`send`, `throw`, `close`, `__await__`), so the
//! task steps it as it would an `async def` wrapper, but a request costs
//! no Python frame or coroutine object of the server's own: each step
//! resumes the app's coroutine with `PyIter_Send` and passes on what it
//! yields. What the app raised is reported by the end and not raised
//! further (the task ends with `None`). Runs on the ASGI thread with the
//! GIL held.

use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use super::awaitable::Source;

/// Where the run stands.
enum Stage {
    /// Not stepped yet: the app is still to be called.
    Ready(Py<PyAny>),
    /// The app's coroutine (or its awaitable's iterator), suspended.
    Running(Py<PyAny>),
    /// The connection ended.
    Over,
}

/// How the app finished.
enum Outcome {
    Returned,
    Raised(PyErr),
    /// `asyncio.CancelledError` (the disconnect grace period, a stop).
    Cancelled,
}

/// What the task of one connection steps. Frozen, its stage behind a lock
/// held for no Python code: while the app runs inside a step, what
/// inspects the task's coroutine reads this object.
#[pyclass(module = "rsgi", name = "AsgiRun", frozen)]
pub struct Run {
    conn: Source,
    key: u64,
    /// The driver's connections by key (this one leaves it at the end).
    live: Py<PyDict>,
    stage: std::sync::Mutex<Stage>,
}

impl Run {
    pub(super) fn new(conn: Source, key: u64, app: Py<PyAny>, live: Py<PyDict>) -> Run {
        Run { conn, key, live, stage: std::sync::Mutex::new(Stage::Ready(app)) }
    }

    fn stage(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the stage, to act on with the lock released.
    fn current(&self, py: Python<'_>) -> Stage {
        match &*self.stage() {
            Stage::Ready(app) => Stage::Ready(app.clone_ref(py)),
            Stage::Running(coro) => Stage::Running(coro.clone_ref(py)),
            Stage::Over => Stage::Over,
        }
    }

    fn conn_obj<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.conn {
            Source::Http(r) => r.bind(py).clone().into_any(),
            Source::WebSocket(r) => r.bind(py).clone().into_any(),
        }
    }

    /// `pre_request`, then the app called: what `await` would iterate.
    fn start(&self, py: Python<'_>, app: &Py<PyAny>) -> PyResult<Py<PyAny>> {
        self.conn.with(py, |c| c.pre_request(py))?;
        let conn = self.conn_obj(py);
        let scope = conn.getattr(intern!(py, "scope"))?;
        let receive = conn.getattr(intern!(py, "receive"))?;
        let send = conn.getattr(intern!(py, "send"))?;
        let awaitable = app.bind(py).call1((scope, receive, send))?;
        // A coroutine is its own iterator; anything else awaitable gives
        // one by `__await__` (as the `await` expression does).
        // SAFETY: a type check of a live object, with the GIL held.
        if unsafe { pyo3::ffi::PyCoro_CheckExact(awaitable.as_ptr()) } != 0 {
            return Ok(awaitable.unbind());
        }
        match awaitable.getattr(intern!(py, "__await__")) {
            Ok(method) => Ok(method.call0()?.unbind()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "object {} can't be used in 'await' expression",
                awaitable.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))),
        }
    }

    /// Resume the app with `value`: `Some` is what it yields (a future the
    /// task waits on), `None` that it finished.
    fn step(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let coro = match self.current(py) {
            Stage::Running(coro) => coro,
            Stage::Ready(app) => match self.start(py, &app) {
                Ok(coro) => {
                    *self.stage() = Stage::Running(coro.clone_ref(py));
                    coro
                }
                Err(err) => {
                    self.finish(py, outcome_of(py, err));
                    return Ok(None);
                }
            },
            Stage::Over => return Err(PyRuntimeError::new_err("cannot reuse already awaited coroutine")),
        };
        let mut out = std::ptr::null_mut();
        // SAFETY: both objects are alive (owned here) and the GIL is held.
        let status = unsafe { pyo3::ffi::PyIter_Send(coro.as_ptr(), value.as_ptr(), &mut out) };
        if status == pyo3::ffi::PySendResult::PYGEN_ERROR {
            let err = PyErr::fetch(py);
            self.finish(py, outcome_of(py, err));
            return Ok(None);
        }
        // SAFETY: on NEXT and RETURN, `out` is a new reference, owned here.
        let out = unsafe { Bound::from_owned_ptr(py, out) };
        if status == pyo3::ffi::PySendResult::PYGEN_NEXT {
            return Ok(Some(out.unbind()));
        }
        drop(out);
        self.finish(py, Outcome::Returned);
        Ok(None)
    }

    /// The connection's end, then the driver's bookkeeping (what the
    /// Python wrapper's `finally` did).
    fn finish(&self, py: Python<'_>, outcome: Outcome) {
        *self.stage() = Stage::Over;
        let (error, cancelled) = match outcome {
            Outcome::Returned => (None, false),
            Outcome::Raised(err) => (Some(err.into_value(py).into_bound(py).into_any()), false),
            Outcome::Cancelled => (None, true),
        };
        let grace = self.conn.with(py, |c| {
            c.end(py, error, cancelled);
            let w = c.waiters();
            // The request <-> task cycle is broken here (the Rust object
            // is not tracked by the garbage collector).
            w.task = None;
            w.grace.take()
        });
        if let Err(err) = self.live.bind(py).del_item(self.key) {
            drop(err); // already out (a run ends once; `drain` may have cleared it)
        }
        if let Some(grace) = grace {
            if let Err(err) = grace.bind(py).call_method0(intern!(py, "cancel")) {
                err.print(py);
            }
        }
    }
}

impl Run {
    /// An attribute of the app's running coroutine.
    fn inner_attr<'py>(&self, py: Python<'py>, name: &Bound<'py, pyo3::types::PyString>) -> Option<Bound<'py, PyAny>> {
        match self.current(py) {
            Stage::Running(coro) => coro.into_bound(py).getattr(name).ok().filter(|v| !v.is_none()),
            Stage::Ready(_) | Stage::Over => None,
        }
    }
}

/// `asyncio.CancelledError` is a cancellation; anything else was raised.
fn outcome_of(py: Python<'_>, err: PyErr) -> Outcome {
    static CANCELLED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let cancelled = CANCELLED.get_or_try_init(py, || {
        py.import("asyncio")?.getattr("CancelledError")?.cast_into::<PyType>().map(Bound::unbind).map_err(PyErr::from)
    });
    match cancelled {
        Ok(t) if err.is_instance(py, t.bind(py)) => Outcome::Cancelled,
        _ => Outcome::Raised(err),
    }
}

#[pymethods]
impl Run {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// A step with `None` (how a task steps its coroutine): `None` here is
    /// the end of the iteration, a `StopIteration` without an object made.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.step(py, &py.None().into_bound(py))
    }

    fn send(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match self.step(py, &value)? {
            Some(yielded) => Ok(yielded),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// An exception thrown in at the app's `await` (the task's
    /// cancellation); thrown before the first step, it ends the run as if
    /// the app had raised it at once.
    #[pyo3(signature = (typ, val=None, tb=None))]
    fn throw(&self, py: Python<'_>, typ: Bound<'_, PyAny>, val: Option<Bound<'_, PyAny>>, tb: Option<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let coro = match self.current(py) {
            Stage::Running(coro) => coro,
            Stage::Ready(_) => {
                let err = match val {
                    Some(v) if !v.is_none() => PyErr::from_value(typ.call1((v,))?),
                    _ => PyErr::from_value(typ),
                };
                self.finish(py, outcome_of(py, err));
                return Err(PyStopIteration::new_err(()));
            }
            Stage::Over => return Err(PyErr::from_value(typ)),
        };
        let mut args = vec![typ];
        args.extend(val);
        args.extend(tb);
        match coro.bind(py).call_method1(intern!(py, "throw"), PyTuple::new(py, args)?) {
            Ok(yielded) => Ok(yielded.unbind()),
            Err(err) if err.is_instance_of::<PyStopIteration>(py) => {
                self.finish(py, Outcome::Returned);
                Err(PyStopIteration::new_err(()))
            }
            Err(err) => {
                self.finish(py, outcome_of(py, err));
                Err(PyStopIteration::new_err(()))
            }
        }
    }

    /// The app coroutine's `cr_running`, `cr_suspended`, `cr_frame`,
    /// `cr_await` and `cr_code`, for what inspects a task's coroutine
    /// (`inspect.getcoroutinestate(task.get_coro())`, as anyio does when
    /// it cancels a scope): `None` (`False` for the flags) before the app
    /// was called, after it finished, or when what it returned is not a
    /// coroutine.
    #[getter]
    fn cr_running(&self, py: Python<'_>) -> bool {
        self.inner_attr(py, intern!(py, "cr_running")).and_then(|v| v.is_truthy().ok()).unwrap_or(false)
    }

    #[getter]
    fn cr_suspended(&self, py: Python<'_>) -> bool {
        self.inner_attr(py, intern!(py, "cr_suspended")).and_then(|v| v.is_truthy().ok()).unwrap_or(false)
    }

    #[getter]
    fn cr_frame(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.inner_attr(py, intern!(py, "cr_frame")).map(Bound::unbind)
    }

    #[getter]
    fn cr_await(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.inner_attr(py, intern!(py, "cr_await")).map(Bound::unbind)
    }

    #[getter]
    fn cr_code(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.inner_attr(py, intern!(py, "cr_code")).map(Bound::unbind)
    }

    /// Close the app's coroutine; the connection ends as cancelled.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let closed = match self.current(py) {
            Stage::Running(coro) => coro.bind(py).call_method0(intern!(py, "close")).map(drop),
            Stage::Ready(_) => Ok(()),
            Stage::Over => return Ok(()),
        };
        self.finish(py, Outcome::Cancelled);
        closed
    }
}
