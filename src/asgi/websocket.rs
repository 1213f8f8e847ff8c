//! One ASGI WebSocket connection as the event loop holds it (the
//! `websocket` scope): `websocket.connect`, then `websocket.accept` (with
//! the app's subprotocol and headers) or a denial (`websocket.close`
//! before accepting is a 403; the `websocket.http.response` extension
//! sends the app's own response), then `websocket.receive` /
//! `websocket.send` / `websocket.close` and one `websocket.disconnect`
//! with its code.
//!
//! The frames themselves are the worker core's (`worker::upgraded`, on
//! `websocket::Session`): accepting puts the session in the exchange,
//! `send` encodes (and compresses) with the kind's own sender, outside the
//! exchange's lock, and queues the frame while the session is open into the
//! output queue, whose window pauses the app as for HTTP; `receive` takes
//! what the loop queued. Same interface as `request::Request` (`receive`
//! and `send` return the same awaitables implemented in Rust,
//! `awaitable::Receive` and `awaitable::Drain`, which wait on a future of the event loop only when they
//! must), so `rsgi._asgi` drives both alike. Runs on the ASGI thread with
//! the GIL held; never waits.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::awaitable::{connection_methods, message_type, Awaitable, Events, Source, Waiters};
use super::request::{ClientDisconnected, JobFacts};
use super::respond::{Stage, Writer};
use super::AsgiContext;
use crate::http::response::RequestFacts;
use crate::websocket::{close, DataKind, ToApp};
use crate::worker::exchange::{Exchange, Finish, OutChunk};
use crate::worker::task::Job;
use crate::worker::upgraded::WsOffer;

/// Where the handshake and the connection stand, for the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WsStage {
    /// `websocket.connect` not received yet.
    New,
    /// Connected, neither accepted nor denied.
    Connecting,
    /// Denied with the app's own HTTP response (`websocket.http.response`).
    Response,
    /// Accepted: messages flow.
    Accepted,
    /// The app closed with this code (or denied with `websocket.close`).
    Closed(u16),
}

/// One WebSocket connection, for the event loop.
#[pyclass(module = "rsgi", name = "AsgiWebSocket")]
pub struct WsRequest {
    ctx: Arc<AsgiContext>,
    #[pyo3(get)]
    key: u64,
    scope: Option<Py<PyDict>>,
    exchange: Arc<Exchange>,
    offer: Box<WsOffer>,
    stage: WsStage,
    /// The denial's HTTP response.
    writer: Writer,
    /// Encodes the app's messages once accepted (the kind's own, so the
    /// work is done outside the exchange's lock).
    sender: Option<crate::websocket::Sender>,
    /// The disconnect the app was told, repeated to later receives.
    gone: Option<(u16, String)>,
    /// The head, the hooks' `req`: what the end reports.
    job: JobFacts,
    /// The 101's header lines, for the access log and `post_request`.
    accepted_headers: Vec<u8>,
    /// Bytes of the app's message frames queued after the 101 (the access
    /// log's body bytes).
    sent: u64,
    ended: bool,
    /// The app's task and the futures it awaits.
    waiters: Waiters,
}

impl WsRequest {
    /// Take `job` (a valid upgrade request) on, as `Request::start` does.
    pub fn start(py: Python<'_>, ctx: &Arc<AsgiContext>, mut job: Job, key: u64, event_loop: &Py<PyAny>) -> PyResult<Py<WsRequest>> {
        let offer = job.websocket.take().expect("a WebSocket job");
        {
            let mut st = job.exchange.lock();
            st.bell_key = Some(key);
            st.executor_waiting = true;
        }
        let scope = super::scope::build(py, &ctx.consts, ctx.state.get(), &job)?;
        scope.set_item(intern!(py, "type"), intern!(py, "websocket"))?;
        scope.set_item(intern!(py, "scheme"), if job.https() { intern!(py, "wss") } else { intern!(py, "ws") })?;
        scope.del_item(intern!(py, "method"))?;
        scope.set_item(intern!(py, "subprotocols"), PyList::new(py, &offer.upgrade.subprotocols)?)?;
        let extensions = PyDict::new(py);
        extensions.set_item("websocket.http.response", PyDict::new(py))?;
        scope.set_item(intern!(py, "extensions"), extensions)?;
        let facts = RequestFacts { version: job.head.version, is_head: false, close: true };
        let writer = Writer::new(job.exchange.clone(), facts, ctx.slot);
        let exchange = job.exchange.clone();
        let job = JobFacts::new(py, ctx, job)?;
        Py::new(
            py,
            WsRequest {
                ctx: ctx.clone(),
                key,
                scope: Some(scope.unbind()),
                exchange,
                offer,
                stage: WsStage::New,
                writer,
                sender: None,
                gone: None,
                job,
                accepted_headers: Vec::new(),
                sent: 0,
                ended: false,
                waiters: Waiters::new(py, event_loop),
            },
        )
    }

    fn writable(&self) -> bool {
        !self.exchange.lock().window_full()
    }

    fn event<'py>(py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "type"), kind)?;
        Ok(d)
    }

    /// `websocket.disconnect` with `code` and `reason`, remembered.
    fn disconnect<'py>(&mut self, py: Python<'py>, code: u16, reason: String) -> PyResult<Bound<'py, PyDict>> {
        let (code, reason) = self.gone.get_or_insert((code, reason)).clone();
        let d = Self::event(py, "websocket.disconnect")?;
        d.set_item(intern!(py, "code"), code)?;
        d.set_item(intern!(py, "reason"), reason)?;
        Ok(d)
    }

    /// Queue frames the session made; returns whether the window is full.
    fn push(&self, st: &mut crate::worker::exchange::ExchangeState, bytes: Vec<u8>) -> bool {
        if !bytes.is_empty() {
            st.out_pending += bytes.len();
            st.out.push_back(OutChunk::Bytes(bytes));
        }
        st.window_full()
    }

    fn accept(&mut self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let subprotocol: Option<String> = match message.get_item(intern!(py, "subprotocol"))? {
            Some(v) if !v.is_none() => Some(v.extract().map_err(|_| PyTypeError::new_err("'subprotocol' must be a str"))?),
            _ => None,
        };
        let mut headers = Vec::new();
        if let Some(list) = message.get_item(intern!(py, "headers"))? {
            for item in list.try_iter()? {
                let item = item?;
                let mut pair = item.try_iter()?;
                let (Some(name), Some(value)) = (pair.next(), pair.next()) else {
                    return Err(PyTypeError::new_err("headers must be [name, value] pairs"));
                };
                let latin1 = |o: Bound<'_, PyAny>| -> PyResult<String> {
                    let b = o.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("header names and values must be bytes"))?;
                    Ok(b.as_bytes().iter().map(|&c| c as char).collect())
                };
                headers.push((latin1(name?)?, latin1(value?)?));
            }
        }
        let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let (head, link, sender) = self.offer.accept(subprotocol.as_deref(), pairs).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut st = self.exchange.lock();
        if st.client_gone {
            return Err(ClientDisconnected::new_err("client disconnected"));
        }
        st.websocket = Some(Box::new(link));
        self.sender = Some(sender);
        // The header lines: after the status line, before the blank line.
        let lines = head.iter().position(|&b| b == b'\n').map_or(&head[..0], |i| &head[i + 1..]);
        self.accepted_headers = lines.strip_suffix(b"\r\n").unwrap_or(lines).to_vec();
        self.stage = WsStage::Accepted;
        let full = self.push(&mut st, head);
        self.notify(st);
        Ok(full)
    }

    /// Tell the loop to look at the exchange (after unlocking).
    fn notify(&self, mut st: std::sync::MutexGuard<'_, crate::worker::exchange::ExchangeState>) {
        let send = self.exchange.notify_loop(&mut st);
        drop(st);
        if send {
            self.exchange.send_notice();
        }
    }

    fn send_message(&mut self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let text = message.get_item(intern!(py, "text"))?.filter(|v| !v.is_none());
        let bytes = message.get_item(intern!(py, "bytes"))?.filter(|v| !v.is_none());
        let open = |st: &crate::worker::exchange::ExchangeState| {
            !st.client_gone && st.websocket.as_ref().is_some_and(|w| w.session.is_open())
        };
        if !open(&self.exchange.lock()) {
            return Err(ClientDisconnected::new_err("the WebSocket is closed"));
        }
        // Encode (and compress) without the exchange's lock, which the
        // loop takes to step this connection.
        let Some(sender) = self.sender.as_mut() else { return Err(PyRuntimeError::new_err("no WebSocket session")) };
        let mut out = Vec::new();
        match (text, bytes) {
            (Some(t), None) => {
                let t = t.cast::<PyString>().map_err(|_| PyTypeError::new_err("'text' must be a str"))?;
                sender.message(DataKind::Text, t.to_str()?.as_bytes(), &mut out);
            }
            (None, Some(b)) => {
                let b = b.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("'bytes' must be bytes"))?;
                sender.message(DataKind::Binary, b.as_bytes(), &mut out);
            }
            _ => return Err(PyValueError::new_err("'websocket.send' needs exactly one of 'text' and 'bytes'")),
        }
        let mut st = self.exchange.lock();
        // The peer may have closed meanwhile: nothing goes after a close.
        if !open(&st) {
            return Err(ClientDisconnected::new_err("the WebSocket is closed"));
        }
        self.sent += out.len() as u64;
        let full = self.push(&mut st, out);
        self.notify(st);
        Ok(full)
    }

    /// Close an accepted connection with `code` (no-op once closing).
    fn close_session(&mut self, code: u16, reason: &str) -> PyResult<bool> {
        let mut st = self.exchange.lock();
        let Some(ws) = st.websocket.as_mut() else { return Ok(false) };
        let mut out = Vec::new();
        match ws.session.close(code, reason, &mut out) {
            Err(crate::websocket::session::Refused::BadCode(c)) => {
                return Err(PyValueError::new_err(format!("invalid WebSocket close code {c}")));
            }
            Err(crate::websocket::session::Refused::Closed) | Ok(()) => {}
        }
        if !matches!(self.stage, WsStage::Closed(_)) {
            self.stage = WsStage::Closed(code);
        }
        let full = self.push(&mut st, out);
        self.notify(st);
        Ok(full)
    }
}

impl WsRequest {
    /// The next event, or `None` when the app must wait for one.
    fn next_event<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if let Some((code, reason)) = self.gone.clone() {
            return self.disconnect(py, code, reason).map(Some);
        }
        match self.stage {
            WsStage::New => {
                self.stage = WsStage::Connecting;
                return Self::event(py, "websocket.connect").map(Some);
            }
            WsStage::Connecting | WsStage::Response => {
                let st = self.exchange.lock();
                let gone = st.client_gone || st.peer_closed;
                drop(st);
                return if gone { self.disconnect(py, close::ABNORMAL, String::new()).map(Some) } else { Ok(None) };
            }
            WsStage::Accepted | WsStage::Closed(_) => {}
        }
        let mut st = self.exchange.lock();
        let client_gone = st.client_gone;
        let Some(ws) = st.websocket.as_mut() else {
            drop(st);
            return self.disconnect(py, close::ABNORMAL, String::new()).map(Some);
        };
        let was_full = ws.inbox.is_full();
        let next = ws.inbox.pop();
        let app_closed = match self.stage {
            WsStage::Closed(code) => Some(code),
            _ => None,
        };
        if was_full && next.is_some() {
            // The loop stopped reading for want of room.
            self.notify(st);
        } else {
            drop(st);
        }
        match next {
            Some(ToApp::Text(t)) => {
                let d = Self::event(py, "websocket.receive")?;
                d.set_item(intern!(py, "text"), t)?;
                Ok(Some(d))
            }
            Some(ToApp::Binary(b)) => {
                let d = Self::event(py, "websocket.receive")?;
                d.set_item(intern!(py, "bytes"), PyBytes::new(py, &b))?;
                Ok(Some(d))
            }
            Some(ToApp::Disconnect { code, reason }) => self.disconnect(py, code, reason).map(Some),
            // The app closed: nothing more will come; it hears its code.
            None => match app_closed {
                Some(code) => self.disconnect(py, code, String::new()).map(Some),
                None if client_gone => self.disconnect(py, close::ABNORMAL, String::new()).map(Some),
                None => Ok(None),
            },
        }
    }


    /// Send one event. Returns true when the output window is full.
    fn send_event(&mut self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let kind = message_type(message)?;
        let before_accept = matches!(self.stage, WsStage::New | WsStage::Connecting);
        match (kind.to_str()?, self.stage) {
            ("websocket.accept", _) if before_accept => self.accept(message),
            ("websocket.send", WsStage::Accepted) => self.send_message(message),
            ("websocket.close", _) if before_accept => {
                // Denied: 403, as uvicorn answers.
                self.stage = WsStage::Closed(close::NORMAL);
                self.writer.fail(403);
                Ok(false)
            }
            ("websocket.close", WsStage::Accepted | WsStage::Closed(_)) => {
                let code = match message.get_item(intern!(py, "code"))? {
                    Some(c) if !c.is_none() => c.extract::<u16>().map_err(|_| PyValueError::new_err("invalid WebSocket close code"))?,
                    _ => close::NORMAL,
                };
                let reason: String = match message.get_item(intern!(py, "reason"))? {
                    Some(r) if !r.is_none() => r.extract()?,
                    _ => String::new(),
                };
                self.close_session(code, &reason)
            }
            ("websocket.http.response.start", _) if before_accept => {
                let code: u16 = message
                    .get_item(intern!(py, "status"))?
                    .ok_or_else(|| PyValueError::new_err("'websocket.http.response.start' without a status"))?
                    .extract()?;
                let headers = super::request::app_headers(message.get_item(intern!(py, "headers"))?)?;
                self.stage = WsStage::Response;
                self.writer.start(code, headers, false).map_err(PyRuntimeError::new_err)?;
                Ok(false)
            }
            ("websocket.http.response.body", WsStage::Response) => {
                let more = match message.get_item(intern!(py, "more_body"))? {
                    Some(v) => v.is_truthy()?,
                    None => false,
                };
                let body = match message.get_item(intern!(py, "body"))? {
                    Some(b) => b.cast::<PyBytes>().map_err(|_| PyTypeError::new_err("'body' must be bytes"))?.as_bytes().to_vec(),
                    None => Vec::new(),
                };
                self.writer.body(&body, more).map_err(PyRuntimeError::new_err)
            }
            (other, stage) => {
                if matches!(stage, WsStage::Closed(_)) && other == "websocket.send" {
                    return Err(ClientDisconnected::new_err("the WebSocket is closed"));
                }
                Err(PyRuntimeError::new_err(format!("Unexpected ASGI message '{other}' sent, in WebSocket state {stage:?}.")))
            }
        }
    }

}

connection_methods!(WsRequest, WebSocket, {
    /// A WebSocket app is never cancelled for its client leaving: it is
    /// told with `websocket.disconnect`.
    fn abandoned(&self) -> bool {
        false
    }

    /// `pre_request(worker, req)`, when set, as for an HTTP request.
    fn pre_request(&self, py: Python<'_>) -> PyResult<()> {
        self.job.pre_request(py, &self.ctx)
    }

    /// The app returned or raised: close what it left open (1000, or 1011
    /// after an error; a 500 before the handshake was answered).
    #[pyo3(signature = (error=None, cancelled=false))]
    fn end(&mut self, py: Python<'_>, error: Option<Bound<'_, PyAny>>, cancelled: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let target = self.job.head.target.clone();
        if let Some(e) = &error {
            let err = PyErr::from_value(e.clone());
            if !err.is_instance_of::<ClientDisconnected>(py) {
                let (_, tb) = crate::wsgi::app::describe_exception(py, &err);
                crate::error!("Exception in ASGI application (WebSocket {target})\n{tb}");
            }
        }
        let failed = error.is_some() || cancelled;
        match self.stage {
            WsStage::New | WsStage::Connecting => {
                if !failed {
                    crate::error!("ASGI callable returned without sending handshake (WebSocket {target})");
                }
                self.writer.fail(500);
            }
            WsStage::Response => {
                if self.writer.stage != Stage::Done {
                    self.writer.fail(500);
                }
            }
            WsStage::Accepted | WsStage::Closed(_) => {
                let _ = self.close_session(if failed { close::INTERNAL_ERROR } else { close::NORMAL }, "");
                self.exchange.finish(Finish::Close);
            }
        }
        // One access-log line (and `post_request`, statsd) per connection,
        // when it ends: 101 and the connection's length once accepted,
        // else the denial's (or the error's) response.
        if self.exchange.lock().websocket.is_some() {
            self.job.report(py, &self.ctx, 101, &self.accepted_headers, self.sent);
        } else {
            let code = self.writer.final_code();
            self.job.report(py, &self.ctx, code, &self.writer.headers.encoded, self.writer.sent);
        }
        {
            let mut st = self.exchange.lock();
            st.executor_waiting = false;
            st.bell_key = None;
        }
        self.ctx.request_done(&self.exchange);
    }
});
