//! The Python objects a request hands the app (`start_response` with its
//! `write` method, `wsgi.early_hints`, `wsgi.input`), reused by the same
//! thread's next request when the app kept no reference to any of them.
//! Allocating and freeing four objects per request is a visible share of a
//! small request's cost (bench/PROFILE.md).
//!
//! Runs with the GIL held. Reuse is decided by reference counts, which only
//! change under the GIL: an object that nothing but this cache holds can
//! never be reached by the app again, so giving it a fresh state is the
//! same, to the app, as making a new one.

use std::cell::RefCell;

use pyo3::prelude::*;

use super::input::Input;
use super::start_response::{ResponseWriter, StartResponse};

/// The app-facing objects of one request.
pub struct RequestObjects {
    pub start_response: Py<StartResponse>,
    /// `start_response.early_hints`, bound (the environ's `wsgi.early_hints`).
    pub early_hints: Py<PyAny>,
    pub input: Py<Input>,
}

/// References to `obj`, a live object the caller holds.
pub fn refcount<T>(obj: &Bound<'_, T>) -> isize {
    // SAFETY: the object is alive (the caller holds a reference) and the
    // GIL is held (a `Bound` proves it), so its count is stable while read.
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

thread_local! {
    /// The objects of this thread's last finished request.
    static SPARE: RefCell<Option<RequestObjects>> = const { RefCell::new(None) };
}

impl RequestObjects {
    /// Objects for a new request with `writer` and `input` as their state:
    /// the thread's spare ones when nothing else holds them, else new ones.
    pub fn get(py: Python<'_>, writer: ResponseWriter, input: Input) -> PyResult<RequestObjects> {
        if let Some(spare) = SPARE.with(|s| s.borrow_mut().take()) {
            if spare.unshared(py) {
                spare.start_response.bind(py).borrow_mut().reset(writer);
                *spare.input.bind(py).borrow_mut() = input;
                return Ok(spare);
            }
        }
        let start_response = Py::new(py, StartResponse::new(writer))?;
        let early_hints = start_response.bind(py).getattr(pyo3::intern!(py, "early_hints"))?.unbind();
        let input = Py::new(py, input)?;
        Ok(RequestObjects { start_response, early_hints, input })
    }

    /// Nothing but `self` (directly, or through the bound methods' own
    /// reference to their object) holds any of the objects.
    fn unshared(&self, py: Python<'_>) -> bool {
        let sr = self.start_response.bind(py);
        // Read before borrowing: a borrow holds a reference of its own.
        let sr_count = refcount(sr);
        // Borrowed elsewhere (an app thread inside a kept `write()`, which
        // waits with the GIL released): shared, by definition.
        let Ok(this) = sr.try_borrow() else { return false };
        let write_count = this.write_method_refcnt(py);
        drop(this);
        // This cache, `early_hints`' object, and `write`'s when it exists.
        let expected = 2 + isize::from(write_count.is_some());
        sr_count == expected
            && write_count.is_none_or(|n| n == 1)
            && refcount(self.early_hints.bind(py)) == 1
            && refcount(self.input.bind(py)) == 1
    }

    /// Keep the objects for this thread's next request (without the body
    /// bytes the app left unread).
    pub fn keep(self, py: Python<'_>) {
        if let Ok(mut input) = self.input.bind(py).try_borrow_mut() {
            input.release();
        }
        SPARE.with(|s| *s.borrow_mut() = Some(self));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::http::response::RequestFacts;
    use crate::worker::exchange::{Exchange, ExchangeState, LoopHandle, Notice};

    /// A scoreboard and the loop's handle (its poller kept alive).
    fn rig() -> (crate::scoreboard::Scoreboard, Arc<LoopHandle>, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (notices, _) = crossbeam_channel::unbounded();
        let handle = Arc::new(LoopHandle { notices, waker, sleeping: Arc::new(AtomicBool::new(false)), bell: None });
        (crate::scoreboard::Scoreboard::new().unwrap(), handle, poll)
    }

    /// Fresh request state, as `wsgi::response` makes it for each request.
    fn state(board: &crate::scoreboard::Scoreboard, handle: &Arc<LoopHandle>) -> (ResponseWriter, Input) {
        let exchange = Exchange::new(Notice { token: 0, serial: 0 }, handle.clone(), ExchangeState::default());
        let facts = RequestFacts { version: crate::http::Version { major: 1, minor: 1 }, is_head: false, close: false };
        (ResponseWriter::new(exchange.clone(), facts, board.handle(0)), Input::new(exchange))
    }

    fn ptrs(o: &RequestObjects) -> [*mut pyo3::ffi::PyObject; 3] {
        [o.start_response.as_ptr(), o.early_hints.as_ptr(), o.input.as_ptr()]
    }

    #[test]
    fn objects_nobody_kept_serve_the_next_request() {
        let (board, handle, _poll) = rig();
        Python::attach(|py| {
            let (w, i) = state(&board, &handle);
            let first = RequestObjects::get(py, w, i).unwrap();
            assert_eq!(refcount(first.input.bind(py)), 1, "only the cache holds it");
            let before = ptrs(&first);
            first.keep(py);
            let (w, i) = state(&board, &handle);
            let second = RequestObjects::get(py, w, i).unwrap();
            assert_eq!(ptrs(&second), before, "the same objects, with a fresh state");
            assert!(!second.start_response.bind(py).borrow().writer.started(), "the new writer's state");
        });
    }

    #[test]
    fn objects_the_app_kept_are_its_own() {
        let (board, handle, _poll) = rig();
        Python::attach(|py| {
            // The app kept `wsgi.input`, then `wsgi.early_hints`, then
            // `start_response`: each time, the next request gets new objects.
            for kept in 0..3 {
                let (w, i) = state(&board, &handle);
                let first = RequestObjects::get(py, w, i).unwrap();
                let held: Py<PyAny> = match kept {
                    0 => first.input.clone_ref(py).into_any(),
                    1 => first.early_hints.clone_ref(py),
                    _ => first.start_response.clone_ref(py).into_any(),
                };
                // What the app holds stays alive (a bound method holds its
                // object), so none of it may be handed out again.
                let mut alive = vec![held.as_ptr()];
                if let Ok(owner) = held.bind(py).getattr("__self__") {
                    alive.push(owner.as_ptr());
                }
                first.keep(py);
                let (w, i) = state(&board, &handle);
                let second = RequestObjects::get(py, w, i).unwrap();
                assert!(ptrs(&second).iter().all(|p| !alive.contains(p)), "kept {kept}: handed out again");
                drop(held);
            }
        });
    }
}
