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
    let Job { head, exchange, peer, server, proxy } = job;
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
        let result = ctx.app.bind(py).call1((env, sr))?;
        let sent = send_iterable(py, sr, &result);
        // close() on every path, even when iteration failed.
        let closed = if result.hasattr("close").unwrap_or(false) { result.call_method0("close").map(|_| ()) } else { Ok(()) };
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
        if !guard.writer.write_body(py, bytes.as_bytes())? {
            // The client is gone: stop iterating (close() still runs).
            break;
        }
    }
    Ok(())
}
