//! Drive one request through the app: build the environ, call the app, send
//! the iterable it returns (or its file with sendfile), and call `close()`
//! on it on every path: success, app exception, client gone.
//!
//! Runs on an executor thread with the GIL held.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::app::describe_exception;
use super::environ::{self, ConnFacts};
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::start_response::{ResponseWriter, StartResponse};
use super::AppContext;
use crate::http::response::RequestFacts;
use crate::worker::executor::Job;

/// Serve `job` with the app. Never raises: every failure ends as an error
/// response or a closed connection, with the traceback in the error log.
pub fn serve(py: Python<'_>, ctx: &AppContext, job: Job) {
    let Job { head, exchange, peer, server, proxy, started } = job;
    let mut access_env: Vec<(String, String)> = Vec::new();
    let mut hook_req: Option<(Py<PyAny>, Py<pyo3::types::PyDict>)> = None;
    let facts = RequestFacts { version: head.version, is_head: head.is_head(), close: head.close };
    let writer = ResponseWriter::new(exchange.clone(), facts, ctx.slot);
    let start_response = match Py::new(py, StartResponse { writer }) {
        Ok(s) => s,
        Err(e) => {
            e.print(py);
            exchange.finish(crate::worker::exchange::Finish::Close);
            return;
        }
    };
    let sr = start_response.bind(py);

    let outcome = (|| -> PyResult<Option<crate::http::HttpError>> {
        let input = Bound::new(py, Input::new(exchange.clone()))?.into_any();
        let conn = ConnFacts { peer, server: server.as_deref(), proxy: proxy.as_ref(), is_tls: false };
        let env = match environ::build(py, &ctx.base, &head, &conn, input)? {
            Ok(env) => env,
            Err(http_err) => return Ok(Some(http_err)),
        };
        env.set_item(pyo3::intern!(py, "wsgi.early_hints"), sr.getattr(pyo3::intern!(py, "early_hints"))?)?;
        if let Some(log) = crate::access_log::get() {
            // {var}e atoms match environ keys without regard to case.
            let wanted: Vec<String> = log.format.environ_vars().iter().map(|v| v.to_ascii_lowercase()).collect();
            if !wanted.is_empty() {
                for (k, v) in env.iter() {
                    let key = k.str().map(|s| s.to_string().to_ascii_lowercase()).unwrap_or_default();
                    if wanted.contains(&key) {
                        access_env.push((key, v.str().map(|s| s.to_string()).unwrap_or_default()));
                    }
                }
            }
        }
        if let Some(w) = &ctx.hook_worker {
            let req = hook_request(py, &head, peer, env.get_item("wsgi.url_scheme").ok().flatten())?;
            // post_request runs even when pre_request raises (gunicorn's
            // `finally`), and the exception fails the request.
            hook_req = Some((req.clone().unbind(), env.clone().unbind()));
            if let Some(hook) = ctx.cfg_objects.get("pre_request") {
                if let Err(err) = hook.bind(py).call1((w.bind(py).clone(), req)) {
                    let (_, traceback) = describe_exception(py, &err);
                    crate::error!("Exception in pre_request hook\n{traceback}");
                    return Err(err);
                }
            }
        }
        let result = ctx.app.bind(py).call1((env, sr))?;
        let sent = send_iterable(py, sr, &result);
        // close() on every path, even when iteration failed.
        let closed = close_iterable(py, &result);
        sent?;
        closed?;
        Ok(None)
    })();

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
        let headers: Vec<(String, String)> = w_headers(&w.headers.encoded);
        let (status, sent) = (w.final_status.clone(), w.sent);
        let w = hw;
        let resp = py.import("rsgi._hooks").and_then(|m| m.getattr("Response")).and_then(|c| c.call1((status, headers, sent)));
        if let Ok(resp) = resp {
            if let Ok(args) = pyo3::types::PyTuple::new(py, [w.bind(py).clone(), req.into_bound(py), env.into_bound(py).into_any(), resp]) {
                crate::hooks::call_in(py, &ctx.cfg_objects, "post_request", args);
            }
        }
    }
    if crate::statsd::enabled() {
        let code = w.final_status.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let elapsed = started.elapsed();
        py.detach(|| crate::statsd::request(code, elapsed));
    }
    if let Some(log) = crate::access_log::get() {
        let remote = match (&proxy, peer) {
            (Some(p), _) if p.client.is_some() => p.client.map(|(ip, _)| ip.to_string()).unwrap_or_default(),
            (_, environ::Peer::Tcp(a)) => a.ip().to_string(),
            (_, environ::Peer::Unix) => String::new(),
        };
        let path_info: String = environ::percent_decode(&head.path).iter().map(|&b| b as char).collect();
        let protocol = format!("HTTP/{}.{}", head.version.major, head.version.minor);
        let (status, sent, response_headers) = (w.final_status.clone(), w.sent, w.headers.encoded.clone());
        let duration = started.elapsed();
        py.detach(|| {
            log.write(&crate::access_log::Entry {
                remote_addr: &remote,
                method: &head.method,
                raw_uri: &head.target,
                protocol: &protocol,
                path_info: &path_info,
                query: &head.query,
                status: &status,
                sent,
                request_headers: &head.headers,
                response_headers: &response_headers,
                environ: &access_env,
                duration,
                time: &crate::access_log::now_atom(),
                pid: std::process::id(),
            })
        });
    }
}

/// Log an app failure and answer it: the body's own error status when the
/// request body was bad, 500 otherwise.
fn report(py: Python<'_>, method: &str, target: &str, err: &PyErr, w: &mut ResponseWriter) {
    let body_error = w.exchange.lock().body_error.clone();
    if w.client_gone || w.exchange.lock().client_gone {
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
fn close_iterable(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    if result.is_exact_instance_of::<pyo3::types::PyList>() || result.is_exact_instance_of::<pyo3::types::PyTuple>() {
        return Ok(());
    }
    match result.getattr_opt(pyo3::intern!(py, "close"))? {
        Some(close) => close.call0().map(|_| ()),
        None => Ok(()),
    }
}

/// Send the app's iterable: with sendfile when it is a `wsgi.file_wrapper`
/// over a real file, else item by item.
fn send_iterable(py: Python<'_>, sr: &Bound<'_, StartResponse>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(wrapper) = result.cast::<FileWrapper>() {
        let fd = wrapper.borrow().fd_and_offset(py);
        if let Some((fd, offset)) = fd {
            let mut guard = sr.borrow_mut();
            if guard.writer.headers_sent || guard.writer.code() != 0 {
                guard.writer.send_file(py, fd, offset)?;
                return Ok(());
            }
        }
    }
    for item in result.try_iter()? {
        let item = item?;
        let bytes = item.cast::<PyBytes>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "response body items must be bytes, not {}",
                item.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?;
        let mut guard = sr.borrow_mut();
        if !guard.writer.write_object(py, bytes)? {
            // The client is gone: stop iterating (close() still runs).
            break;
        }
    }
    Ok(())
}

/// The `req` object for `pre_request` / `post_request`.
fn hook_request<'py>(
    py: Python<'py>,
    head: &crate::http::RequestHead,
    peer: environ::Peer,
    scheme: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let headers: Vec<(String, String)> =
        head.headers.iter().map(|(n, v)| (n.clone(), v.iter().map(|&b| b as char).collect())).collect();
    let remote = match peer {
        environ::Peer::Tcp(a) => (a.ip().to_string(), a.port()).into_pyobject(py)?.into_any(),
        environ::Peer::Unix => "".into_pyobject(py)?.into_any(),
    };
    py.import("rsgi._hooks")?.getattr("Request")?.call1((
        &head.method,
        &head.target,
        &head.path,
        &head.query,
        &head.fragment,
        (head.version.major, head.version.minor),
        headers,
        remote,
        scheme,
    ))
}

/// The response headers as (name, value) pairs, from their encoding.
fn w_headers(encoded: &[u8]) -> Vec<(String, String)> {
    encoded
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let name: String = line[..colon].iter().map(|&b| b as char).collect();
            let value: String = line[colon + 1..].iter().map(|&b| b as char).collect();
            Some((name, value.trim().to_owned()))
        })
        .collect()
}
