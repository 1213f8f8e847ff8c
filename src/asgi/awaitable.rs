//! The awaitables behind the app's `receive()` and `send()`: plain
//! iterators implemented in Rust, so an event that is ready costs no
//! Python coroutine frame. `await receive()` gets the next event at once
//! when it is there; otherwise the iterator yields a future of the event
//! loop (marked as awaited, as `Future.__await__` does), which the feed's
//! wake-up resolves (`Request::poke`), and looks again when resumed.
//! `send()` does its work when called and returns [`Done`] (nothing to
//! wait for) or [`Drain`] (the output window is full: wait for room).
//!
//! A cancellation thrown into the app's coroutine while it waits is
//! raised at its `await` (these iterators have no `throw`, PEP 380).
//! Runs on the ASGI thread with the GIL held.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

use super::request::Request;

/// `await receive()`.
#[pyclass(module = "rsgi", name = "AsgiReceive")]
pub struct Receive {
    pub(super) req: Py<Request>,
}

#[pymethods]
impl Receive {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut req = self.req.borrow_mut(py);
        match req.next_event(py)? {
            Some(event) => Err(PyStopIteration::new_err((event.unbind(),))),
            None => req.wait(py),
        }
    }

    /// The coroutine protocol's `send` (the task resumes with `None`).
    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.__next__(py)
    }
}

/// `await send(...)` when the output window is full.
#[pyclass(module = "rsgi", name = "AsgiDrain")]
pub struct Drain {
    pub(super) req: Py<Request>,
}

#[pymethods]
impl Drain {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut req = self.req.borrow_mut(py);
        if req.writable() {
            return Err(PyStopIteration::new_err(()));
        }
        req.wait(py)
    }

    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.__next__(py)
    }
}

/// `await send(...)` with nothing to wait for (one shared instance).
#[pyclass(module = "rsgi", name = "AsgiDone")]
pub struct Done;

#[pymethods]
impl Done {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self) -> PyResult<()> {
        Err(PyStopIteration::new_err(()))
    }

    fn send(&self, _value: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyStopIteration::new_err(()))
    }
}
