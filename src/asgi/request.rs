//! One ASGI HTTP request as the event loop holds it: its scope, the
//! `receive` side (body bytes from the exchange as `http.request` events,
//! then `http.disconnect`), the `send` side (response events through
//! `respond::Writer`), and its end: the error answer, `post_request`,
//! statsd and the access log, and counting it out of the loop's work.
//!
//! `receive` and `send` never wait: they answer `None` / "window full",
//! and the Python side (`rsgi._asgi`) awaits a future that the feed's
//! wake-up resolves. Runs on the ASGI thread with the GIL held.

use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::awaitable::{connection_methods, message_type, Awaitable, Events, Source, Waiters};
use super::respond::{Stage, Writer};
use super::AsgiContext;
use crate::http::response::{push_app_header_bytes, AppHeaders, RequestFacts};
use crate::http::HttpError;
use crate::worker::exchange::BodyState;
use crate::worker::task::Job;

pyo3::create_exception!(rsgi, ClientDisconnected, PyOSError, "The client went away; the response cannot be sent.");

/// Where the request body stands, as the app has received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// More `http.request` events are to come.
    Body,
    /// The last one went out (or the body failed).
    Done,
}

/// One request, for the event loop.
#[pyclass(module = "rsgi", name = "AsgiRequest")]
pub struct Request {
    ctx: Arc<AsgiContext>,
    /// The key the exchange wakes the event loop with.
    #[pyo3(get)]
    key: u64,
    /// The scope (taken by the first `scope` read).
    scope: Option<Py<PyDict>>,
    delivery: Delivery,
    /// The body turned out malformed or too large while the app read it.
    body_error: Option<HttpError>,
    writer: Writer,
    job: JobFacts,
    ended: bool,
    /// The app's task, its grace timer and the futures it awaits.
    waiters: Waiters,
}

/// What the end of a request (or of a WebSocket connection) reports, and
/// the hooks' `req` object.
pub(super) struct JobFacts {
    pub(super) head: crate::http::RequestHead,
    client: Option<std::net::SocketAddr>,
    https: bool,
    started: std::time::Instant,
    /// The `req` object of `pre_request` / `post_request`.
    hook_req: Option<Py<PyAny>>,
}

impl JobFacts {
    /// Take the facts of `job` (its head is moved here).
    pub(super) fn new(py: Python<'_>, ctx: &AsgiContext, job: Job) -> PyResult<JobFacts> {
        let hook_req = match &ctx.hook_worker {
            Some(_) => {
                let scheme = PyString::new(py, if job.https() { "https" } else { "http" }).into_any();
                Some(crate::hooks::request_object(py, &job.head, job.peer, Some(scheme))?.unbind())
            }
            None => None,
        };
        Ok(JobFacts { client: job.client(), https: job.https(), started: job.started, head: job.head, hook_req })
    }

    /// `pre_request(worker, req)`, when set.
    pub(super) fn pre_request(&self, py: Python<'_>, ctx: &AsgiContext) -> PyResult<()> {
        if let (Some(w), Some(req), Some(hook)) = (&ctx.hook_worker, &self.hook_req, ctx.cfg_objects.get(crate::config::Key::PreRequest)) {
            if let Err(err) = hook.bind(py).call1((w.bind(py), req.bind(py))) {
                let (_, tb) = crate::wsgi::app::describe_exception(py, &err);
                crate::error!("Exception in pre_request hook\n{tb}");
                return Err(err);
            }
        }
        Ok(())
    }

    /// `post_request`, statsd and the access log for a response of `code`
    /// with `response_headers` (encoded lines) and `sent` body bytes. A
    /// WebSocket connection (101) is reported when it ends, with its whole
    /// length as the access log's duration, but its length is no request
    /// latency: statsd and the duration histogram leave it out.
    pub(super) fn report(&mut self, py: Python<'_>, ctx: &AsgiContext, code: u16, response_headers: &[u8], sent: u64) {
        let elapsed = self.started.elapsed();
        let latency = (code != 101).then_some(elapsed);
        ctx.slot.traffic.count(code, latency);
        let status = match code {
            0 => std::borrow::Cow::Borrowed(""),
            c => super::respond::status_text(c),
        };
        if let (Some(w), Some(req)) = (&ctx.hook_worker, self.hook_req.take()) {
            let headers = crate::hooks::header_pairs(response_headers);
            let env = crate::hooks::request_environ(py, &self.head, self.client, self.https);
            let resp = py.import("rsgi._hooks").and_then(|m| m.getattr("Response")).and_then(|c| c.call1((status.clone(), headers, sent)));
            if let (Ok(resp), Ok(env)) = (resp, env) {
                if let Ok(args) = pyo3::types::PyTuple::new(py, [w.bind(py).clone(), req.into_bound(py), env.into_any(), resp]) {
                    crate::hooks::call_in(py, &ctx.cfg_objects, crate::hooks::Hook::PostRequest, args);
                }
            }
        }
        if crate::statsd::enabled() {
            py.detach(|| crate::statsd::request(code, latency));
        }
        if let Some(log) = crate::access_log::get() {
            let head = &self.head;
            let remote = self.client.map(|a| a.ip().to_string()).unwrap_or_default();
            py.detach(|| {
                let outcome = crate::access_log::Outcome { status: &status, sent, response_headers, environ: &[], duration: elapsed };
                log.write_request(&remote, head, outcome)
            });
        }
    }
}

impl Request {
    /// Take `job` on: register with its exchange (wake-ups come through
    /// the feed from now on) and build the scope.
    pub fn start(py: Python<'_>, ctx: &Arc<AsgiContext>, job: Job, key: u64, event_loop: &Py<PyAny>) -> PyResult<Py<Request>> {
        {
            let mut st = job.exchange.lock();
            st.bell_key = Some(key);
            // Every change to the exchange wakes the event loop: it may be
            // waiting in `receive`, in `send`, or for the disconnect grace.
            st.executor_waiting = true;
        }
        let scope = super::scope::build(py, &ctx.consts, ctx.state.get(), &job)?;
        let facts = RequestFacts { version: job.head.version, is_head: job.head.is_head(), close: job.head.close };
        let writer = Writer::new(job.exchange.clone(), facts, ctx.slot);
        let facts = JobFacts::new(py, ctx, job)?;
        Py::new(
            py,
            Request {
                ctx: ctx.clone(),
                key,
                scope: Some(scope.unbind()),
                delivery: Delivery::Body,
                body_error: None,
                writer,
                job: facts,
                ended: false,
                waiters: Waiters::new(py, event_loop),
            },
        )
    }

    /// The output window has room again (or the client left).
    pub(super) fn writable(&self) -> bool {
        !self.writer.exchange.lock().window_full()
    }

    /// `{"type": "http.disconnect"}`.
    fn disconnect<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
        Ok(d)
    }
}

/// Read `headers` (an iterable of `[name, value]` byte pairs) into an
/// encoded header block, with the WSGI response's validation. A list of
/// tuples (what apps send) is read by index, without iterators.
pub(super) fn app_headers(headers: Option<Bound<'_, PyAny>>) -> PyResult<AppHeaders> {
    let mut out = AppHeaders { encoded: Vec::with_capacity(256), ..AppHeaders::default() };
    let Some(headers) = headers else { return Ok(out) };
    if let Ok(list) = headers.cast::<PyList>() {
        for item in list.iter() {
            app_header(&mut out, &item)?;
        }
    } else {
        for item in headers.try_iter()? {
            app_header(&mut out, &item?)?;
        }
    }
    Ok(out)
}

/// One `[name, value]` pair of [`app_headers`].
fn app_header(out: &mut AppHeaders, item: &Bound<'_, PyAny>) -> PyResult<()> {
    let pair_error = || PyTypeError::new_err("response headers must be [name, value] pairs");
    let (name, value) = match item.cast::<PyTuple>() {
        Ok(t) if t.len() >= 2 => (t.get_item(0)?, t.get_item(1)?),
        Ok(_) => return Err(pair_error()),
        Err(_) => {
            let mut pair = item.try_iter()?;
            let (Some(name), Some(value)) = (pair.next(), pair.next()) else { return Err(pair_error()) };
            (name?, value?)
        }
    };
    let name = name.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("response header names must be bytes"))?;
    let value = value.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("response header values must be bytes"))?;
    push_app_header_bytes(out, name.as_bytes(), value.as_bytes()).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn get_opt<'py>(message: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    message.get_item(key)
}

fn flag(message: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<bool> {
    Ok(match message.get_item(key)? {
        Some(v) => v.is_truthy()?,
        None => false,
    })
}

connection_methods!(Request, Http, {
    /// The client left before the response was complete: the disconnect
    /// grace period applies.
    fn abandoned(&self) -> bool {
        if self.writer.stage == Stage::Done {
            return false;
        }
        let st = self.writer.exchange.lock();
        st.client_gone || st.peer_closed
    }

    /// `pre_request(worker, req)`, when set.
    fn pre_request(&self, py: Python<'_>) -> PyResult<()> {
        self.job.pre_request(py, &self.ctx)
    }

    /// The app returned (`error` None), raised `error`, or was cancelled
    /// after its client left (`cancelled`). Answers what is still owed and
    /// reports the request. Idempotent.
    #[pyo3(signature = (error=None, cancelled=false))]
    fn end(&mut self, py: Python<'_>, error: Option<Bound<'_, PyAny>>, cancelled: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        // "METHOD target" for the log lines of the failing cases only.
        let head = &self.job.head;
        let what = || format!("{} {}", head.method, head.target);
        let gone = self.writer.client_gone || self.writer.exchange.lock().client_gone;
        match (&error, self.writer.stage) {
            _ if cancelled => {
                crate::debug!("Request cancelled after its client left: {}", what());
                self.writer.fail(500);
            }
            (Some(e), stage) => {
                if gone {
                    crate::debug!("Client went away during {}", what());
                } else if let Some(body) = &self.body_error {
                    crate::warn!("Invalid request body for {}: {body}", what());
                } else {
                    let err = PyErr::from_value(e.clone());
                    let (_, tb) = crate::wsgi::app::describe_exception(py, &err);
                    crate::error!("Exception in ASGI application ({})\n{tb}", what());
                }
                if stage != Stage::Done {
                    self.writer.fail(self.body_error.as_ref().map_or(500, |b| b.status()));
                }
            }
            (None, Stage::Done) => {}
            (None, Stage::Idle) => {
                if let Some(body) = &self.body_error {
                    self.writer.fail(body.status());
                } else {
                    if !gone {
                        crate::error!("ASGI callable returned without starting response ({})", what());
                    }
                    self.writer.fail(500);
                }
            }
            (None, _) => {
                if !gone {
                    crate::error!("ASGI callable returned without completing response ({}); closing the connection", what());
                }
                self.writer.fail(500);
            }
        }
        self.report(py);
        {
            let mut st = self.writer.exchange.lock();
            st.executor_waiting = false;
            st.bell_key = None;
        }
        self.waiters.clear();
        self.ctx.request_done(&self.writer.exchange);
    }
});

impl Request {
    /// The next `receive` event, or `None` when the app must wait for one.
    pub(super) fn next_event<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let exchange = self.writer.exchange.clone();
        let mut st = exchange.lock();
        if self.delivery == Delivery::Body {
            let failed = match &st.body_state {
                BodyState::Failed(e) => Some(e.clone()),
                _ => None,
            };
            if let Some(e) = failed {
                self.body_error = Some(e);
                self.delivery = Delivery::Done;
                return Ok(Some(Self::disconnect(py)?));
            }
            let complete = st.body_state == BodyState::Complete;
            if !st.body.is_empty() || complete {
                let body = std::mem::take(&mut st.body);
                if complete {
                    self.delivery = Delivery::Done;
                } else if exchange.notify_loop(&mut st) {
                    // The loop may have stopped reading for lack of room.
                    drop(st);
                    exchange.send_notice();
                }
                let d = PyDict::new(py);
                d.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
                d.set_item(intern!(py, "body"), PyBytes::new(py, &body))?;
                d.set_item(intern!(py, "more_body"), !complete)?;
                return Ok(Some(d));
            }
            if st.client_gone {
                self.delivery = Delivery::Done;
                return Ok(Some(Self::disconnect(py)?));
            }
            return Ok(None);
        }
        if self.writer.stage == Stage::Done || st.client_gone || st.peer_closed {
            return Ok(Some(Self::disconnect(py)?));
        }
        Ok(None)
    }

    /// Send one response event. Returns true when the output window is
    /// full: the app waits for room before `send` returns.
    fn send_event(&mut self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let kind = message_type(message)?;
        if self.writer.client_gone || self.writer.exchange.lock().client_gone {
            self.writer.client_gone = true;
            if self.writer.stage != Stage::Done {
                return Err(ClientDisconnected::new_err("client disconnected"));
            }
        }
        let result = match kind.to_str()? {
            "http.response.start" => {
                let status = get_opt(message, intern!(py, "status"))?.ok_or_else(|| PyValueError::new_err("'http.response.start' without a status"))?;
                let code: u16 = status.extract().map_err(|_| PyTypeError::new_err("'status' must be an int"))?;
                let headers = app_headers(get_opt(message, intern!(py, "headers"))?)?;
                let trailers = flag(message, intern!(py, "trailers"))?;
                self.writer.start(code, headers, trailers).map(|_| false)
            }
            "http.response.body" => {
                let more = flag(message, intern!(py, "more_body"))?;
                match get_opt(message, intern!(py, "body"))? {
                    Some(b) => {
                        let b = b.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("'body' must be bytes"))?;
                        self.writer.body(b.as_bytes(), more)
                    }
                    None => self.writer.body(b"", more),
                }
            }
            "http.response.trailers" => {
                let headers = app_headers(get_opt(message, intern!(py, "headers"))?)?;
                let more = flag(message, intern!(py, "more_trailers"))?;
                self.writer.trailers(headers, more)
            }
            "http.response.pathsend" => {
                let path = get_opt(message, intern!(py, "path"))?.ok_or_else(|| PyValueError::new_err("'http.response.pathsend' without a path"))?;
                let path: String = path.str()?.to_string();
                self.writer.pathsend(&path)
            }
            other => Err(format!("Unexpected ASGI message '{other}' sent.")),
        };
        result.map_err(PyRuntimeError::new_err)
    }
}

impl Request {
    /// `post_request`, statsd and the access log.
    fn report(&mut self, py: Python<'_>) {
        let code = self.writer.final_code();
        self.job.report(py, &self.ctx, code, &self.writer.headers.encoded, self.writer.sent);
    }
}
