//! How the app side of a request waits for the I/O loop (body bytes to
//! arrive, the client to take output): on an executor thread, on the
//! exchange's condition variable with the GIL released; under the gevent
//! kind, in the request's greenlet, which gives the hub to the others until
//! the loop's bell (`worker::task::Bell`) wakes it. A worker process runs
//! one kind, so the choice is made once, when the gevent kind starts.
//!
//! Runs with the GIL held, on the thread that runs the app.

use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::worker::exchange::{Exchange, ExchangeState};

/// The gevent kind's `wait(key, timeout)`: blocks the calling greenlet
/// until the request with that key is woken, or the timeout passes.
static COOPERATIVE: OnceLock<Py<PyAny>> = OnceLock::new();

/// Make every wait of this process cooperative. Called once, by the gevent
/// kind before it serves anything.
pub fn set_cooperative(wait: Py<PyAny>) {
    let _ = COOPERATIVE.set(wait);
}

/// Waits are cooperative (the gevent kind): a wait that cannot release a
/// thread must not be made (the legacy `write()` waits through `until`).
pub fn cooperative() -> bool {
    COOPERATIVE.get().is_some()
}

/// Wait until `check` (called with the exchange locked) gives a value;
/// `slice` bounds each wait (a guard against a missed wake-up). Only the
/// cooperative wait can fail: an exception raised into the greenlet while it
/// waits (`gevent.Timeout`, `GreenletExit`) is the app's to see.
pub fn until<R: Send>(
    py: Python<'_>,
    exchange: &Exchange,
    slice: Duration,
    mut check: impl FnMut(&mut ExchangeState) -> Option<R> + Send,
) -> PyResult<R> {
    let Some(wait) = COOPERATIVE.get() else {
        return Ok(py.detach(|| {
            let mut st = exchange.lock();
            loop {
                if let Some(r) = check(&mut st) {
                    return r;
                }
                st = exchange.wait(st, slice);
            }
        }));
    };
    let key = exchange.notice.serial;
    loop {
        {
            let mut st = exchange.lock();
            if let Some(r) = check(&mut st) {
                st.executor_waiting = false;
                return Ok(r);
            }
            // The loop rings the bell for this request only while this is
            // set; it reads it under the same lock, so no wake-up is lost
            // between here and the greenlet's wait.
            st.executor_waiting = true;
            st.bell_key = Some(key);
        }
        if let Err(e) = wait.call1(py, (key, slice.as_secs_f64())) {
            exchange.lock().executor_waiting = false;
            return Err(e);
        }
    }
}
