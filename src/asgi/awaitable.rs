//! The awaitables behind the app's `receive()` and `send()`: plain
//! iterators implemented in Rust, so an event that is ready costs no
//! Python coroutine frame. `await receive()` gets the next event at once
//! when it is there; otherwise the iterator yields a future of the event
//! loop (marked as awaited, as `Future.__await__` does), which the feed's
//! wake-up resolves (`Request::poke`), and looks again when resumed.
//! `send()` does its work when called and returns an [`Awaitable`] of
//! nothing (one shared instance) or of room (the output window is full).
//! Both kinds of ASGI connection, an HTTP request and a WebSocket, are
//! awaited through the same two types ([`Source`], [`Events`]).
//!
//! A cancellation thrown into the app's coroutine while it waits is
//! raised at its `await` (these iterators have no `throw`, PEP 380).
//! Runs on the ASGI thread with the GIL held.

use pyo3::exceptions::{PyStopIteration, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::request::Request;
use super::websocket::WsRequest;

/// How the event loop runs a connection's app: the futures it awaits (in
/// `receive`, or in `send` for room), resolved by the next wake-up for its
/// connection, and what the Python driver keeps there (the app's task, the
/// disconnect grace period's timer).
pub(super) struct Waiters {
    /// The event loop (its futures are what a waiting app awaits).
    event_loop: Py<PyAny>,
    futures: Vec<Py<PyAny>>,
    /// The task running the app (the grace period cancels it).
    pub(super) task: Option<Py<PyAny>>,
    /// The grace period's timer, once the client left mid-response (a
    /// WebSocket has none: its app is told with `websocket.disconnect`).
    pub(super) grace: Option<Py<PyAny>>,
}

impl Waiters {
    pub(super) fn new(py: Python<'_>, event_loop: &Py<PyAny>) -> Waiters {
        Waiters { event_loop: event_loop.clone_ref(py), futures: Vec::new(), task: None, grace: None }
    }

    /// A future of the event loop for the app to wait on, marked as
    /// awaited (what `Future.__await__` does before yielding it).
    pub(super) fn wait(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let fut = self.event_loop.bind(py).call_method0(intern!(py, "create_future"))?;
        fut.setattr(intern!(py, "_asyncio_future_blocking"), true)?;
        self.futures.push(fut.clone().unbind());
        Ok(fut.unbind())
    }

    /// The connection's exchange changed: resolve every future waited on.
    pub(super) fn wake(&mut self, py: Python<'_>) -> PyResult<()> {
        for fut in std::mem::take(&mut self.futures) {
            let fut = fut.bind(py);
            if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
                fut.call_method1(intern!(py, "set_result"), (py.None(),))?;
            }
        }
        Ok(())
    }

    /// The connection ended: nothing is waited on any more.
    pub(super) fn clear(&mut self) {
        self.futures.clear();
    }
}

/// The `type` of a message the app sent.
pub(super) fn message_type<'py>(message: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyString>> {
    let kind = message
        .get_item(intern!(message.py(), "type"))?
        .ok_or_else(|| PyValueError::new_err("ASGI message without a 'type'"))?;
    kind.cast_into::<PyString>().map_err(|_| PyTypeError::new_err("ASGI message 'type' must be a str"))
}

/// What the awaitables need of a connection.
pub(super) trait Events {
    /// The next event for `receive()`, when one is there.
    fn next_event<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>>;
    /// The output window has room again (or the client left).
    fn writable(&self) -> bool;
    /// The futures the app waits on.
    fn waiters(&mut self) -> &mut Waiters;
    /// `pre_request(worker, req)`, when set.
    fn pre_request(&self, py: Python<'_>) -> PyResult<()>;
    /// The app returned (`error` None), raised `error`, or was cancelled.
    fn end(&mut self, py: Python<'_>, error: Option<Bound<'_, PyAny>>, cancelled: bool);
}

/// The connection an awaitable belongs to.
pub(super) enum Source {
    Http(Py<Request>),
    WebSocket(Py<WsRequest>),
}

impl Source {
    /// `receive()`: an awaitable of the connection's next event.
    pub(super) fn receive(self, py: Python<'_>) -> PyResult<Py<Awaitable>> {
        Py::new(py, Awaitable { wants: Wants::Event(self) })
    }

    /// What `send()` returns once it has sent: the shared awaitable of nothing (`done`),
    /// or, while the output window is `full`, an awaitable of room in it.
    pub(super) fn after_send(self, py: Python<'_>, full: bool, done: &Py<PyAny>) -> PyResult<Py<PyAny>> {
        if full {
            return Ok(Py::new(py, Awaitable { wants: Wants::Room(self) })?.into_any());
        }
        Ok(done.clone_ref(py))
    }

    /// The scope, handed over once (the connection keeps no reference).
    pub(super) fn hand_over(py: Python<'_>, scope: &mut Option<Py<PyDict>>) -> Py<PyAny> {
        match scope.take() {
            Some(s) => s.into_any(),
            None => py.None(),
        }
    }

    pub(super) fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&mut dyn Events) -> R) -> R {
        match self {
            Source::Http(r) => f(&mut *r.borrow_mut(py)),
            Source::WebSocket(r) => f(&mut *r.borrow_mut(py)),
        }
    }
}

/// What an awaitable waits for.
enum Wants {
    /// `await receive()`: the connection's next event.
    Event(Source),
    /// `await send(...)` when the output window is full: room in it.
    Room(Source),
    /// `await send(...)` otherwise: nothing (one shared instance).
    Nothing,
}

/// `await receive()` and `await send(...)`.
#[pyclass(module = "rsgi", name = "AsgiAwaitable")]
pub struct Awaitable {
    wants: Wants,
}

impl Awaitable {
    /// The awaitable `send()` returns when there is nothing to wait for.
    pub fn done() -> Awaitable {
        Awaitable { wants: Wants::Nothing }
    }
}

#[pymethods]
impl Awaitable {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `None` ends the iteration with no value and no exception set (what
    /// `await send(...)` gets); an event ends it with `StopIteration(event)`.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match &self.wants {
            Wants::Event(source) => source.with(py, |conn| match conn.next_event(py)? {
                Some(event) => Err(PyStopIteration::new_err(event.into_any().unbind())),
                None => conn.waiters().wait(py).map(Some),
            }),
            Wants::Room(source) => source.with(py, |conn| if conn.writable() { Ok(None) } else { conn.waiters().wait(py).map(Some) }),
            Wants::Nothing => Ok(None),
        }
    }

    /// The coroutine protocol's `send` (the task resumes with `None`).
    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match self.__next__(py)? {
            Some(fut) => Ok(fut),
            None => Err(PyStopIteration::new_err(())),
        }
    }
}

/// The Python driver's methods of both kinds of ASGI connection (an HTTP
/// request, a WebSocket), written once: `scope` (handed over once),
/// `receive()`, `send(message)` (sends at once; the awaitable waits only
/// while the output window is full) and `poke()` (the exchange changed:
/// wake what the app waits on), the driver's `task` and `grace`
/// attributes, and `run(app, live)` (the app's run for its task), followed
/// by the kind's own methods. The type has `scope`, `key`, `waiters` and
/// `ctx` fields and `send_event`, `pre_request` and `end` methods;
/// `$variant` is its [`Source`]. Also implements [`Events`] from the
/// type's `next_event` and `writable` and its `waiters`.
macro_rules! connection_methods {
    ($ty:ident, $variant:ident, { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            #[getter]
            fn scope(&mut self, py: Python<'_>) -> Py<PyAny> {
                Source::hand_over(py, &mut self.scope)
            }

            fn receive(slf: Bound<'_, Self>) -> PyResult<Py<Awaitable>> {
                Source::$variant(slf.clone().unbind()).receive(slf.py())
            }

            fn send(slf: Bound<'_, Self>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
                let full = slf.borrow_mut().send_event(message)?;
                let done = slf.borrow().ctx.done.clone_ref(slf.py());
                Source::$variant(slf.clone().unbind()).after_send(slf.py(), full, &done)
            }

            /// The app's run for its task (`run::Run`), the connection
            /// entered in `live` under its key until the run ends.
            fn run(slf: Bound<'_, Self>, app: Py<PyAny>, live: Bound<'_, PyDict>) -> PyResult<super::run::Run> {
                let key = slf.borrow().key;
                live.set_item(key, &slf)?;
                Ok(super::run::Run::new(Source::$variant(slf.unbind()), key, app, live.unbind()))
            }

            fn poke(&mut self, py: Python<'_>) -> PyResult<()> {
                self.waiters.wake(py)
            }

            #[getter]
            fn task(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                self.waiters.task.as_ref().map(|t| t.clone_ref(py))
            }

            #[setter]
            fn set_task(&mut self, task: Option<Py<PyAny>>) {
                self.waiters.task = task;
            }

            #[getter]
            fn grace(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                self.waiters.grace.as_ref().map(|t| t.clone_ref(py))
            }

            #[setter]
            fn set_grace(&mut self, grace: Option<Py<PyAny>>) {
                self.waiters.grace = grace;
            }

            $($own)*
        }

        impl Events for $ty {
            fn next_event<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
                $ty::next_event(self, py)
            }

            fn writable(&self) -> bool {
                $ty::writable(self)
            }

            fn waiters(&mut self) -> &mut Waiters {
                &mut self.waiters
            }

            fn pre_request(&self, py: Python<'_>) -> PyResult<()> {
                $ty::pre_request(self, py)
            }

            fn end(&mut self, py: Python<'_>, error: Option<Bound<'_, PyAny>>, cancelled: bool) {
                $ty::end(self, py, error, cancelled)
            }
        }
    };
}
pub(super) use connection_methods;
