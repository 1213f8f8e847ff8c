//! `wsgi.input`: the request body as a file-like object (`read`, `readline`,
//! `readlines`, iteration) over bytes the I/O loop has decoded, whatever the
//! framing (Content-Length or chunked).
//!
//! Runs on an executor thread with the GIL held; it releases the GIL while
//! it waits for the loop to deliver more body bytes (or, under the gevent
//! kind, lets other greenlets run: `wait`).

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyIOError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::worker::exchange::{BodyState, Exchange};

/// How long one wait for body bytes lasts before re-checking (the loop
/// signals arrivals; this only bounds a missed wake-up).
const WAIT_SLICE: Duration = Duration::from_millis(500);

/// What one wait for body bytes found.
enum Filled {
    /// Bytes were taken; `notify`: the loop must hear of the room made.
    Bytes { notify: bool },
    /// The body is complete.
    End,
}

/// The request body stream given to the app.
#[pyclass(module = "rsgi", name = "Input")]
pub struct Input {
    /// Where the loop puts body bytes.
    exchange: Arc<Exchange>,
    /// Bytes taken from the exchange, not yet returned to the app.
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    /// No more bytes will arrive.
    eof: bool,
}

impl Input {
    pub fn new(exchange: Arc<Exchange>) -> Input {
        Input { exchange, buf: Vec::new(), pos: 0, eof: false }
    }

    /// Free the bytes still buffered (the request is over).
    pub fn release(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Take more body bytes from the exchange, waiting for the loop if none
    /// are there yet. Returns false at the end of the body.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let exchange = &self.exchange;
        let buf = &mut self.buf;
        let outcome = super::wait::until(py, exchange, WAIT_SLICE, |st| {
            if !st.body.is_empty() {
                if buf.is_empty() {
                    *buf = std::mem::take(&mut st.body);
                } else {
                    buf.extend_from_slice(&st.body);
                    st.body.clear();
                }
                // The loop may have paused reading for lack of room.
                return Some(Ok(Filled::Bytes { notify: exchange.notify_loop(st) }));
            }
            match &st.body_state {
                BodyState::Failed(err) => Some(Err(err.to_string())),
                BodyState::Complete => Some(Ok(Filled::End)),
                BodyState::Receiving if st.client_gone => {
                    Some(Err("client disconnected before the request body was complete".to_owned()))
                }
                BodyState::Receiving => None,
            }
        })?;
        match outcome {
            Ok(Filled::Bytes { notify }) => {
                if notify {
                    exchange.send_notice();
                }
                Ok(true)
            }
            Ok(Filled::End) => {
                self.eof = true;
                Ok(false)
            }
            Err(msg) => Err(PyIOError::new_err(msg)),
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.pos;
        self.pos += n;
        &self.buf[start..start + n]
    }

    fn read_impl(&mut self, py: Python<'_>, size: Option<isize>) -> PyResult<Vec<u8>> {
        match size {
            Some(n) if n >= 0 => {
                let n = n as usize;
                while self.available() < n && self.fill(py)? {}
                let n = n.min(self.available());
                Ok(self.take(n).to_vec())
            }
            _ => {
                while self.fill(py)? {}
                let n = self.available();
                Ok(self.take(n).to_vec())
            }
        }
    }

    fn readline_impl(&mut self, py: Python<'_>, limit: Option<isize>) -> PyResult<Vec<u8>> {
        let limit = match limit {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let mut scanned = 0;
        loop {
            let window = &self.buf[self.pos..];
            if let Some(i) = memchr::memchr(b'\n', &window[scanned..]) {
                let n = (scanned + i + 1).min(limit);
                return Ok(self.take(n).to_vec());
            }
            scanned = window.len();
            if scanned >= limit {
                return Ok(self.take(limit).to_vec());
            }
            if !self.fill(py)? {
                let n = self.available().min(limit);
                return Ok(self.take(n).to_vec());
            }
        }
    }
}

#[pymethods]
impl Input {
    /// `read(size=-1)`: up to `size` bytes, or everything left.
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.read_impl(py, size)?;
        Ok(PyBytes::new(py, &data))
    }

    /// `readline(size=-1)`: one line including its `\n`, at most `size` bytes.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.readline_impl(py, size)?;
        Ok(PyBytes::new(py, &data))
    }

    /// `readlines(hint=-1)`: lines until their total size reaches `hint`.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&mut self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        let mut total = 0usize;
        loop {
            let line = self.readline_impl(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            list.append(PyBytes::new(py, &line))?;
            if let Some(h) = hint {
                if h > 0 && total >= h as usize {
                    break;
                }
            }
        }
        Ok(list)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline_impl(py, None)?;
        Ok(if line.is_empty() { None } else { Some(PyBytes::new(py, &line)) })
    }

    fn readable(&self) -> bool {
        true
    }

    fn close(&self) {}
}
