//! Drive one request through the app: build the environ, call the app, send
//! the iterable it returns (or its file with sendfile), pause it when the
//! client falls behind and go on when it catches up, and call `close()` on
//! it on every path: success, app exception, client gone.
//!
//! Runs with the GIL held, on an executor thread or on the loop thread when
//! the worker has one executor.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::app::describe_exception;
use super::environ::{self, ConnFacts};
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::recycle::RequestObjects;
use super::start_response::{ResponseWriter, StartResponse};
use super::AppContext;
use crate::http::response::RequestFacts;
use crate::worker::exchange::BodyState;
use crate::worker::task::Job;

/// A response whose iterable is paused: the client is behind, so the
/// thread that ran the app went back to other work instead of waiting for
/// socket space. The loop hands it back (`Task::Resume`) once the client has
/// taken the queued output, or when the client is gone, so `close()` still
/// runs. Holds everything the end of the request needs.
pub struct Parked {
    state: RequestEnd,
    /// The app's return value (for `close()`) and the iterator over it.
    result: Py<PyAny>,
    iter: Py<PyAny>,
}

impl crate::worker::task::Paused for Parked {
    fn exchange(&self) -> std::sync::Arc<crate::worker::exchange::Exchange> {
        // The writer's exchange never changes; reading it needs no GIL.
        self.state.exchange.clone()
    }

    fn notice(&self) -> crate::worker::exchange::Notice {
        self.state.exchange.notice
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// What finishing a request needs: the response writer, and what the hooks,
/// statsd and the access log report.
struct RequestEnd {
    /// The request's exchange (also inside the writer).
    exchange: std::sync::Arc<crate::worker::exchange::Exchange>,
    head: crate::http::RequestHead,
    peer: crate::worker::conn::Peer,
    proxy: Option<crate::http::proxy::ProxyInfo>,
    started: std::time::Instant,
    /// `start_response`, `wsgi.early_hints` and `wsgi.input`, kept for the
    /// thread's next request when the app holds none of them.
    objects: RequestObjects,
    access_env: Vec<(String, String)>,
    hook_req: Option<(Py<PyAny>, Py<pyo3::types::PyDict>)>,
}

/// How far the app's response got.
enum Flow {
    /// Done, or failed before the app ran with this HTTP error.
    Done(Option<crate::http::HttpError>),
    /// The iterable paused with the output window full.
    Paused(Py<PyAny>, Py<PyAny>),
}

/// Serve `job` with the app. Never raises: every failure ends as an error
/// response or a closed connection, with the traceback in the error log.
/// Returns the paused response when the client fell behind while the app's
/// iterable was being sent (see [`Parked`]).
pub fn serve(py: Python<'_>, ctx: &AppContext, job: Job) -> Option<Box<Parked>> {
    let Job { head, exchange, peer, server, proxy, tls, started, websocket: _ } = job;
    let facts = RequestFacts { version: head.version, is_head: head.is_head(), close: head.close };
    let writer = ResponseWriter::new(exchange.clone(), facts, ctx.slot);
    let objects = match RequestObjects::get(py, writer, Input::new(exchange.clone())) {
        Ok(objects) => objects,
        Err(e) => {
            e.print(py);
            exchange.finish(crate::worker::exchange::Finish::Close);
            return None;
        }
    };
    let mut end = RequestEnd { exchange: exchange.clone(), head, peer, proxy, started, objects, access_env: Vec::new(), hook_req: None };
    let sr = end.objects.start_response.bind(py).clone();

    let outcome = (|| -> PyResult<Flow> {
        let input = end.objects.input.bind(py).clone().into_any();
        let conn = ConnFacts { peer, server: server.as_deref(), proxy: end.proxy.as_ref(), tls: tls.as_deref() };
        let env = match environ::build(py, &ctx.base, &end.head, &conn, input)? {
            Ok(env) => env,
            Err(http_err) => return Ok(Flow::Done(Some(http_err))),
        };
        env.set_item(pyo3::intern!(py, "wsgi.early_hints"), end.objects.early_hints.bind(py))?;
        if let Some(log) = crate::access_log::get() {
            // {var}e atoms match environ keys without regard to case.
            let wanted: Vec<String> = log.format.environ_vars().iter().map(|v| v.to_ascii_lowercase()).collect();
            if !wanted.is_empty() {
                for (k, v) in env.iter() {
                    let key = k.str().map(|s| s.to_string().to_ascii_lowercase()).unwrap_or_default();
                    if wanted.contains(&key) {
                        end.access_env.push((key, v.str().map(|s| s.to_string()).unwrap_or_default()));
                    }
                }
            }
        }
        if let Some(w) = &ctx.hook_worker {
            let req = crate::hooks::request_object(py, &end.head, peer, env.get_item("wsgi.url_scheme").ok().flatten())?;
            // post_request runs even when pre_request raises (gunicorn's
            // `finally`), and the exception fails the request.
            end.hook_req = Some((req.clone().unbind(), env.clone().unbind()));
            if let Some(hook) = ctx.cfg_objects.get(crate::hooks::Hook::PreRequest.key()) {
                if let Err(err) = hook.bind(py).call1((w.bind(py).clone(), req)) {
                    let (_, traceback) = describe_exception(py, &err);
                    crate::error!("Exception in pre_request hook\n{traceback}");
                    return Err(err);
                }
            }
        }
        let result = ctx.app.bind(py).call1((env, &sr))?;
        if send_file_wrapper(py, &sr, &result)? {
            close_iterable(py, &result)?;
            return Ok(Flow::Done(None));
        }
        let iter = match result.try_iter() {
            Ok(iter) => iter.into_any(),
            Err(e) => {
                let _ = close_iterable(py, &result);
                return Err(e);
            }
        };
        pump(py, &sr, result, iter)
    })();
    conclude(py, ctx, end, outcome)
}

/// Go on sending a paused response (called once the client has taken the
/// queued output, or is gone). Returns it again if the client falls behind
/// again.
pub fn resume(py: Python<'_>, ctx: &AppContext, parked: Box<Parked>) -> Option<Box<Parked>> {
    let Parked { state, result, iter } = *parked;
    let sr = state.objects.start_response.bind(py).clone();
    // Resumed only once the window has room (or the client is gone).
    sr.borrow_mut().writer.window_drained();
    let outcome = pump(py, &sr, result.into_bound(py), iter.into_bound(py));
    conclude(py, ctx, state, outcome)
}

/// Send the iterable's items until it ends, fails, the client goes away,
/// or the output window is full (then pause). `close()` is called on every
/// ending path.
fn pump<'py>(py: Python<'py>, sr: &Bound<'py, StartResponse>, result: Bound<'py, PyAny>, iter: Bound<'py, PyAny>) -> PyResult<Flow> {
    let sent = (|| -> PyResult<bool> {
        loop {
            if sr.borrow().writer.window_full() {
                return Ok(false);
            }
            // SAFETY: PyIter_Next on an iterator we hold; a new reference
            // or null (end, or an error then set).
            let next = unsafe { pyo3::ffi::PyIter_Next(iter.as_ptr()) };
            if next.is_null() {
                return match PyErr::take(py) {
                    Some(err) => Err(err),
                    None => Ok(true),
                };
            }
            // SAFETY: a new reference, from PyIter_Next.
            let item = unsafe { Bound::from_owned_ptr(py, next) };
            let bytes = item.cast::<PyBytes>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "response body items must be bytes, not {}",
                    item.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
            })?;
            if !sr.borrow_mut().writer.write_object(py, bytes)? {
                // The client is gone: stop iterating (close() still runs).
                return Ok(true);
            }
        }
    })();
    match sent {
        Ok(false) => Ok(Flow::Paused(result.unbind(), iter.unbind())),
        Ok(true) => {
            if has_close(&result) {
                // On the loop thread, the response goes out before close()
                // runs (a no-op on an executor: bench/PROFILE.md, "In-app
                // slowdown").
                let exchange = sr.borrow().writer.exchange.clone();
                if !exchange.try_flush_inline() {
                    py.detach(|| exchange.flush_inline());
                }
            }
            close_iterable(py, &result)?;
            Ok(Flow::Done(None))
        }
        Err(err) => {
            // close() on every path, even when iteration failed.
            let _ = close_iterable(py, &result);
            Err(err)
        }
    }
}

/// End the request (unless it paused): finish or fail the response, then
/// `post_request`, statsd and the access log.
fn conclude(py: Python<'_>, ctx: &AppContext, end: RequestEnd, outcome: PyResult<Flow>) -> Option<Box<Parked>> {
    let outcome = match outcome {
        Ok(Flow::Paused(result, iter)) => return Some(Box::new(Parked { state: end, result, iter })),
        Ok(Flow::Done(http_err)) => Ok(http_err),
        Err(err) => Err(err),
    };
    let RequestEnd { head, peer, proxy, started, objects, access_env, hook_req, .. } = end;
    let sr = objects.start_response.bind(py).clone();
    let mut sr = sr.borrow_mut();
    let w = &mut sr.writer;
    match outcome {
        Ok(None) => {
            if let Err(err) = w.finish(py) {
                report(py, &head.method, &head.target, &err, w);
            }
        }
        Ok(Some(http_err)) => {
            crate::error!("Error handling request {} {}: {}", head.method, head.target, http_err);
            w.fail(py, http_err.status(), &http_err.to_string());
        }
        Err(err) => report(py, &head.method, &head.target, &err, w),
    }
    if let (Some(hw), Some((req, env))) = (&ctx.hook_worker, hook_req) {
        let headers: Vec<(String, String)> = crate::hooks::header_pairs(&w.headers.encoded);
        let (status, sent) = (w.final_status().to_owned(), w.sent);
        let w = hw;
        let resp = py.import("rsgi._hooks").and_then(|m| m.getattr("Response")).and_then(|c| c.call1((status, headers, sent)));
        if let Ok(resp) = resp {
            if let Ok(args) = pyo3::types::PyTuple::new(py, [w.bind(py).clone(), req.into_bound(py), env.into_bound(py).into_any(), resp]) {
                crate::hooks::call_in(py, &ctx.cfg_objects, crate::hooks::Hook::PostRequest, args);
            }
        }
    }
    let code = w.final_status().split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let elapsed = started.elapsed();
    ctx.slot.traffic.count(code, Some(elapsed));
    if crate::statsd::enabled() {
        py.detach(|| crate::statsd::request(code, Some(elapsed)));
    }
    if let Some(log) = crate::access_log::get() {
        let remote = peer.remote_addr(proxy.as_ref());
        let (status, sent, response_headers) = (w.final_status().to_owned(), w.sent, w.headers.encoded.clone());
        let duration = started.elapsed();
        py.detach(|| {
            let outcome = crate::access_log::Outcome {
                status: &status,
                sent,
                response_headers: &response_headers,
                environ: &access_env,
                duration,
            };
            log.write_request(&remote, &head, outcome)
        });
    }
    drop(sr);
    objects.keep(py);
    None
}

/// Log an app failure and answer it: the body's own error status when the
/// request body was bad, 500 otherwise.
fn report(py: Python<'_>, method: &str, target: &str, err: &PyErr, w: &mut ResponseWriter) {
    let body_error = match &w.exchange.lock().body_state {
        BodyState::Failed(e) => Some(e.clone()),
        _ => None,
    };
    if w.client_gone() || w.exchange.lock().client_gone {
        crate::debug!("Client went away during {method} {target}");
        w.fail(py, 500, "");
        return;
    }
    match body_error {
        Some(e) => {
            crate::warn!("Invalid request body for {method} {target}: {e}");
            w.fail(py, e.status(), &e.to_string());
        }
        None => {
            let (_, traceback) = describe_exception(py, err);
            crate::error!("Error handling request {method} {target}\n{traceback}");
            w.fail(py, 500, "");
        }
    }
}

/// Call the iterable's `close()`, if it has one. A list or tuple (the
/// common answer of simple apps) has none: looking it up anyway would raise
/// and discard an AttributeError per request on Python before 3.13.
/// Whether `close()` may be there to call: a list or tuple has none.
fn has_close(result: &Bound<'_, PyAny>) -> bool {
    !(result.is_exact_instance_of::<pyo3::types::PyList>() || result.is_exact_instance_of::<pyo3::types::PyTuple>())
}

fn close_iterable(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    if !has_close(result) {
        return Ok(());
    }
    match result.getattr_opt(pyo3::intern!(py, "close"))? {
        Some(close) => close.call0().map(|_| ()),
        None => Ok(()),
    }
}

/// Send a `wsgi.file_wrapper` over a real file with sendfile; false when
/// `result` is anything else (then it is iterated).
fn send_file_wrapper(py: Python<'_>, sr: &Bound<'_, StartResponse>, result: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(wrapper) = result.cast::<FileWrapper>() {
        let fd = wrapper.borrow().fd_and_offset(py);
        if let Some((fd, offset)) = fd {
            let mut guard = sr.borrow_mut();
            if guard.writer.started() {
                guard.writer.send_file(py, fd, offset)?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}
