//! `start_response` and its `write` callable (PEP 3333), and the
//! [`ResponseWriter`] behind them: validates the status and headers, decides
//! the framing and keep-alive, encodes the head with the first body bytes,
//! truncates to Content-Length, and hands output to the I/O loop.
//!
//! Runs on an executor thread with the GIL held; releases it whenever it
//! waits for the client to take output.

use std::sync::Arc;

use pyo3::exceptions::{PyAssertionError, PyIOError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::http::date::{http_date, with_http_date};
use crate::scoreboard::{SlotHandle, SlotState};
use crate::http::response::{self, AppHeaders, BodyFraming, RequestFacts};
use crate::worker::exchange::{Exchange, Finish, OutChunk, PyBytesRef, OUT_HIGH_WATER};

/// Body items at least this large are written from the Python object
/// itself instead of being copied (below it, one copy with the head is
/// cheaper than another system call).
const ZERO_COPY_MIN: usize = 64 * 1024;

/// Bytes reserved for the app's encoded headers: a typical app's few
/// headers fit without the buffer growing.
const HEADERS_ROOM: usize = 256;

/// How long one cooperative wait of `write()` for room lasts before it
/// looks again (the loop's bell wakes it; this bounds a missed wake-up).
const WRITE_WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(500);

/// A header name or value from the app: a `str`, borrowed without a copy.
fn borrow_str<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, str>> {
    match obj.cast::<pyo3::types::PyString>() {
        Ok(s) => s.to_cow(),
        Err(_) => Err(PyTypeError::new_err(format!("{} is not a string", obj.repr().map(|r| r.to_string()).unwrap_or_default()))),
    }
}

/// Where a response stands, from nothing through `start_response` to a
/// head handed to the loop (the app's, or an error page in its place).
enum Head {
    /// `start_response` has not been called.
    Unset,
    /// `start_response` gave this status (its code parsed); `exc_info` may
    /// still replace it until the head is sent.
    Given { status: String, code: u16 },
    /// The app's head went to the loop: status and headers are final.
    Sent { status: String },
    /// An error page went out instead of the app's response.
    ErrorPage { status: String },
}

/// The connection's output window as the last push left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Room,
    /// Full right after the last push: an iterable pauses before its next
    /// item.
    Full,
    /// The client went away; nothing more is sent.
    ClientGone,
}

/// What a write does when the window is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pacing {
    /// Queue and return (an iterable's items: the sender pauses instead).
    Pause,
    /// Wait for the client, GIL released (the `write()` callable).
    Wait,
}

/// The state of one response, from `start_response` to the last byte.
pub struct ResponseWriter {
    /// Where output goes.
    pub exchange: Arc<Exchange>,
    /// What the request says about framing.
    facts: RequestFacts,
    /// The status line, and whether the head went out.
    head: Head,
    /// The app's headers, validated and encoded.
    pub headers: AppHeaders,
    framing: BodyFraming,
    /// The connection closes after this response.
    close: bool,
    /// Body bytes sent so far (after truncation).
    pub sent: u64,
    /// The output window after the last push.
    window: Window,
    /// The worker's slot: once it retires, responses close the connection.
    slot: SlotHandle,
    /// Whether writes wait for the client.
    pacing: Pacing,
    /// An exception raised into the greenlet while `write()` waited for
    /// room (`gevent.Timeout`, `GreenletExit`): `write()` raises it.
    interrupted: Option<PyErr>,
}

impl ResponseWriter {
    pub fn new(exchange: Arc<Exchange>, facts: RequestFacts, slot: SlotHandle) -> Self {
        ResponseWriter {
            exchange,
            facts,
            head: Head::Unset,
            headers: AppHeaders::default(),
            framing: BodyFraming::None,
            close: facts.close,
            sent: 0,
            window: Window::Room,
            slot,
            pacing: Pacing::Pause,
            interrupted: None,
        }
    }

    /// The output window was full after the last push (and the client still
    /// there): an iterable pauses before its next item. The loop only ever
    /// drains the window, so a stale "full" costs at most a pause that the
    /// executor lifts at once (it looks again under the lock), and a stale
    /// "not full" cannot happen.
    pub fn window_full(&self) -> bool {
        self.window == Window::Full
    }

    /// The window has room again (the response is being resumed).
    pub fn window_drained(&mut self) {
        if self.window == Window::Full {
            self.window = Window::Room;
        }
    }

    /// The client went away; nothing more is sent.
    pub fn client_gone(&self) -> bool {
        self.window == Window::ClientGone
    }

    /// A head went to the loop (the app's or an error page).
    fn head_sent(&self) -> bool {
        matches!(self.head, Head::Sent { .. } | Head::ErrorPage { .. })
    }

    /// `start_response` ran (or an error page replaced the response).
    pub fn started(&self) -> bool {
        !matches!(self.head, Head::Unset)
    }

    /// The status line that went out (for the access log, hooks and
    /// statsd): an error page's, else the app's once its head was sent
    /// (it cannot change after that), else empty.
    pub fn final_status(&self) -> &str {
        match &self.head {
            Head::Sent { status } | Head::ErrorPage { status } => status,
            Head::Unset | Head::Given { .. } => "",
        }
    }

    /// `start_response(status, headers, exc_info=None)`.
    pub fn start(&mut self, status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>, exc_info: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(info) = exc_info.filter(|e| !e.is_none()) {
            if self.head_sent() {
                let value = info.get_item(1)?;
                return Err(PyErr::from_value(value));
            }
        } else if self.started() {
            return Err(PyAssertionError::new_err("Response headers already set!"));
        }
        let status: String = status
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("{} is not a string", status.repr().map(|r| r.to_string()).unwrap_or_default())))?;
        let code = response::parse_status(&status).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut app_headers = AppHeaders { encoded: Vec::with_capacity(HEADERS_ROOM), ..AppHeaders::default() };
        for item in headers.try_iter()? {
            let item = item?;
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract().map_err(|_| {
                PyTypeError::new_err("headers must be a list of (name, value) tuples")
            })?;
            let name = borrow_str(&name)?;
            let value = borrow_str(&value)?;
            response::push_app_header(&mut app_headers, &name, &value).map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        self.head = Head::Given { status, code };
        self.headers = app_headers;
        Ok(())
    }

    /// Hand bytes to the loop; for the `write()` callable, first wait (GIL
    /// released) while the client is behind. Returns false when the client
    /// is gone.
    fn push(&mut self, py: Python<'_>, chunk: OutChunk) -> bool {
        if self.client_gone() {
            return false;
        }
        let exchange = &self.exchange;
        let pushed = match self.pacing {
            Pacing::Wait if super::wait::cooperative() => {
                // A greenlet waits for room without holding the hub.
                let room = super::wait::until(py, exchange, WRITE_WAIT_SLICE, |st| {
                    (st.out_pending < OUT_HIGH_WATER || st.client_gone).then_some(())
                });
                match room {
                    Ok(()) => exchange.push_output(chunk, false),
                    Err(e) => {
                        self.interrupted = Some(e);
                        None
                    }
                }
            }
            Pacing::Wait => py.detach(|| exchange.push_output(chunk, true)),
            Pacing::Pause => exchange.push_output(chunk, false),
        };
        self.window = match pushed {
            Some(true) => Window::Full,
            Some(false) => Window::Room,
            None => Window::ClientGone,
        };
        self.window != Window::ClientGone
    }

    /// Encode the head (once) into `out`.
    fn head_into(&mut self, out: &mut Vec<u8>) -> PyResult<()> {
        let (status, code) = match &self.head {
            Head::Unset => return Err(PyAssertionError::new_err("write() before start_response()")),
            Head::Given { status, code } => (status, *code),
            Head::Sent { .. } | Head::ErrorPage { .. } => return Ok(()),
        };
        let retiring = self.slot.state() == SlotState::Retiring;
        let (framing, close) = response::decide(self.facts, code, self.headers.content_length);
        let close = close || retiring;
        self.framing = framing;
        self.close = self.close || close;
        let (version, close) = (self.facts.version, self.close);
        with_http_date(|date| response::encode_head(out, version, status, date, close, framing, &self.headers, code));
        if let Head::Given { status, .. } = std::mem::replace(&mut self.head, Head::Unset) {
            self.head = Head::Sent { status };
        }
        Ok(())
    }

    /// `wsgi.early_hints(headers)`: a `103 Early Hints` interim response,
    /// only to HTTP/1.1 clients and only before the final response starts
    /// (silently ignored otherwise, as gunicorn does).
    pub fn early_hints(&mut self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut out = b"HTTP/1.1 103 Early Hints\r\n".to_vec();
        for item in headers.try_iter()? {
            let (name, value): (String, String) = item?.extract()?;
            let (value, printable) = response::check_app_header(&name, &value).map_err(|e| PyValueError::new_err(e.to_string()))?;
            response::encode_app_header(&mut out, &name, value, printable);
        }
        out.extend_from_slice(b"\r\n");
        if self.head_sent() || !self.facts.version.at_least_11() {
            return Ok(());
        }
        self.push(py, OutChunk::Bytes(out));
        Ok(())
    }

    /// Write a `bytes` object from the app: large ones are sent from the
    /// object's own memory (no copy), small ones go through `write_body`.
    /// Returns false when the client is gone.
    pub fn write_object(&mut self, py: Python<'_>, obj: &Bound<'_, PyBytes>) -> PyResult<bool> {
        let data = obj.as_bytes();
        if data.len() < ZERO_COPY_MIN {
            return self.write_body(py, data);
        }
        let mut out = Vec::new();
        self.head_into(&mut out)?;
        let take = match self.framing {
            BodyFraming::None => 0,
            BodyFraming::Length(n) => n.saturating_sub(self.sent).min(data.len() as u64) as usize,
            BodyFraming::Chunked | BodyFraming::UntilClose => data.len(),
        };
        if take > 0 && self.framing == BodyFraming::Chunked {
            response::chunk_header(take, &mut out);
        }
        if !out.is_empty() && !self.push(py, OutChunk::Bytes(out)) {
            return Ok(false);
        }
        if take == 0 {
            return Ok(!self.client_gone());
        }
        if !self.push(py, OutChunk::Python(PyBytesRef::new(obj, take))) {
            return Ok(false);
        }
        self.sent += take as u64;
        if self.framing == BodyFraming::Chunked && !self.push(py, OutChunk::Bytes(b"\r\n".to_vec())) {
            return Ok(false);
        }
        Ok(true)
    }

    /// Write body bytes (sending the head first if needed). Returns false
    /// when the client is gone.
    pub fn write_body(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<bool> {
        let first = !self.head_sent();
        // The head (when first), the chunk framing and the data, in one
        // allocation.
        let mut out = Vec::with_capacity(data.len() + if first { 160 + self.headers.encoded.len() } else { 16 });
        self.head_into(&mut out)?;
        let data = match self.framing {
            BodyFraming::None => &data[..0],
            BodyFraming::Length(n) => &data[..(n.saturating_sub(self.sent)).min(data.len() as u64) as usize],
            BodyFraming::Chunked | BodyFraming::UntilClose => data,
        };
        if data.is_empty() && !first {
            return Ok(!self.client_gone());
        }
        self.framing.append(data, &mut out);
        self.sent += data.len() as u64;
        if out.is_empty() {
            return Ok(!self.client_gone());
        }
        Ok(self.push(py, OutChunk::Bytes(out)))
    }

    /// Send `count` bytes of the file `fd` from `offset` with sendfile (the
    /// loop does the sending from a duplicate of the descriptor).
    pub fn send_file(&mut self, py: Python<'_>, fd: i32, offset: u64) -> PyResult<bool> {
        let mut head = Vec::new();
        self.head_into(&mut head)?;
        // SAFETY: fstat on the app's descriptor into a local struct.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                return Err(PyIOError::new_err("fstat failed on wsgi.file_wrapper file"));
            }
            st.st_size as u64
        };
        let available = size.saturating_sub(offset);
        let count = match self.framing {
            BodyFraming::None => 0,
            BodyFraming::Length(n) => n.saturating_sub(self.sent).min(available),
            _ => available,
        };
        if self.framing == BodyFraming::Chunked && count > 0 {
            response::chunk_header(count as usize, &mut head);
        }
        if !head.is_empty() && !self.push(py, OutChunk::Bytes(head)) {
            return Ok(false);
        }
        if count > 0 {
            // SAFETY: dup(2) gives the loop its own descriptor, so the app
            // may close its file as soon as the response returns.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(PyIOError::new_err("cannot duplicate the file descriptor"));
            }
            use std::os::unix::io::FromRawFd;
            // SAFETY: `dup` is a fresh descriptor we own.
            let file = unsafe { std::fs::File::from_raw_fd(dup) };
            if !self.push(py, OutChunk::File { file, offset, remaining: count }) {
                return Ok(false);
            }
            self.sent += count;
            if self.framing == BodyFraming::Chunked && !self.push(py, OutChunk::Bytes(b"\r\n".to_vec())) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The app is done: send what is still owed and tell the loop whether
    /// the connection can be reused.
    pub fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        if !self.head_sent() {
            self.write_body(py, b"")?;
        }
        match self.framing {
            BodyFraming::Chunked => {
                self.push(py, OutChunk::Bytes(response::LAST_CHUNK.to_vec()));
            }
            BodyFraming::Length(n) if self.sent < n => {
                // Short body: the client would wait forever for the rest.
                self.close = true;
            }
            _ => {}
        }
        self.exchange.finish(if self.close || self.client_gone() { Finish::Close } else { Finish::KeepAlive });
        Ok(())
    }

    /// Abandon the response after an error: a complete error page if nothing
    /// was sent yet, otherwise just close the connection.
    pub fn fail(&mut self, py: Python<'_>, code: u16, mesg: &str) {
        if !self.head_sent() {
            let page = response::error_response(code, mesg, &http_date(), !self.facts.is_head);
            self.head = Head::ErrorPage { status: format!("{code} {}", response::reason_phrase(code)) };
            self.headers = AppHeaders::default();
            self.push(py, OutChunk::Bytes(page));
        }
        self.exchange.finish(Finish::Close);
    }
}

/// The `start_response` callable handed to the app.
#[pyclass(module = "rsgi", name = "StartResponse")]
pub struct StartResponse {
    pub writer: ResponseWriter,
    /// The bound `write` method `start_response` returns, made once per
    /// object (objects are reused: `wsgi::recycle`). It refers back to this
    /// object; the garbage collector breaks that cycle (`__traverse__`,
    /// `__clear__`) once nothing else holds either.
    write: Option<Py<PyAny>>,
}

impl StartResponse {
    pub fn new(writer: ResponseWriter) -> StartResponse {
        StartResponse { writer, write: None }
    }

    /// Start over for another request.
    pub fn reset(&mut self, writer: ResponseWriter) {
        self.writer = writer;
    }

    /// References to the bound `write` method, once it exists.
    pub fn write_method_refcnt(&self, py: Python<'_>) -> Option<isize> {
        self.write.as_ref().map(|w| super::recycle::refcount(w.bind(py)))
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        this.writer.start(status, headers, exc_info)?;
        if let Some(write) = &this.write {
            return Ok(write.bind(py).clone());
        }
        drop(this);
        let write = slf.getattr(pyo3::intern!(py, "write"))?;
        slf.borrow_mut().write = Some(write.clone().unbind());
        Ok(write)
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Some(write) = &self.write {
            visit.call(write)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.write = None;
    }

    /// The `wsgi.early_hints` callable (gunicorn's environ key).
    fn early_hints(&mut self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        self.writer.early_hints(py, headers)
    }

    /// The legacy `write(data)` callable.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err(format!("{} is not a byte", data.repr().map(|r| r.to_string()).unwrap_or_default())))?;
        self.writer.pacing = Pacing::Wait;
        let written = self.writer.write_object(py, bytes);
        self.writer.pacing = Pacing::Pause;
        if let Some(e) = self.writer.interrupted.take() {
            return Err(e);
        }
        if !written? {
            return Err(PyIOError::new_err("client disconnected"));
        }
        Ok(())
    }
}
