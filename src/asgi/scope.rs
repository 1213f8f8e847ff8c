//! The ASGI HTTP connection scope, built in Rust from the parsed head: the
//! header list (lower-cased names, order kept), the percent-decoded path
//! under `--root-path`, `client` and `scheme` under gunicorn's proxy rules
//! (shared with the WSGI environ through `worker::task::Job`), and the
//! lifespan state, copied.
//!
//! Runs on the ASGI thread with the GIL held.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::target::percent_decode;
use crate::worker::task::Job;

/// The ASGI spec version rsgi implements (`http.disconnect` after the
/// response, `OSError` from `send` once the client is gone).
pub const SPEC_VERSION: &str = "2.4";

/// The constant parts of every scope.
pub struct Consts {
    /// `{"version": "3.0", "spec_version": ...}`.
    asgi: Py<PyDict>,
    /// The extensions rsgi implements: `http.response.pathsend`,
    /// `http.response.trailers`.
    extensions: Py<PyDict>,
}

impl Consts {
    pub fn new(py: Python<'_>) -> PyResult<Consts> {
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", SPEC_VERSION)?;
        let extensions = PyDict::new(py);
        extensions.set_item("http.response.pathsend", PyDict::new(py))?;
        extensions.set_item("http.response.trailers", PyDict::new(py))?;
        Ok(Consts { asgi: asgi.unbind(), extensions: extensions.unbind() })
    }
}

/// A lower-cased header name as a `bytes` object; the common names are
/// interned (`intern!` keeps one `str` per call site; the bytes are made
/// from it without a lowercase pass).
fn header_name<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyBytes> {
    let mut buf = [0u8; 64];
    if name.len() <= buf.len() {
        for (d, s) in buf.iter_mut().zip(name.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        PyBytes::new(py, &buf[..name.len()])
    } else {
        PyBytes::new(py, name.to_ascii_lowercase().as_bytes())
    }
}

/// Build the scope for `job`.
pub fn build<'py>(py: Python<'py>, consts: &Consts, root_path: &str, state: Option<&Py<PyDict>>, job: &Job) -> PyResult<Bound<'py, PyDict>> {
    let head = &job.head;
    let scope = PyDict::new(py);
    scope.set_item(intern!(py, "type"), intern!(py, "http"))?;
    scope.set_item(intern!(py, "asgi"), consts.asgi.bind(py))?;
    let version = match (head.version.major, head.version.minor) {
        (1, 1) => intern!(py, "1.1").clone(),
        (1, 0) => intern!(py, "1.0").clone(),
        (a, b) => PyString::new(py, &format!("{a}.{b}")),
    };
    scope.set_item(intern!(py, "http_version"), version)?;
    scope.set_item(intern!(py, "method"), PyString::new(py, &head.method))?;
    scope.set_item(intern!(py, "scheme"), if job.https() { intern!(py, "https") } else { intern!(py, "http") })?;
    // As uvicorn: `path` and `raw_path` include the root path.
    let raw = head.path();
    let decoded = if raw.contains('%') { String::from_utf8_lossy(&percent_decode(raw)).into_owned() } else { raw.to_owned() };
    let (path, raw_path) = if root_path.is_empty() {
        (decoded, raw.as_bytes().to_vec())
    } else {
        (format!("{root_path}{decoded}"), [root_path.as_bytes(), raw.as_bytes()].concat())
    };
    scope.set_item(intern!(py, "path"), path)?;
    scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, &raw_path))?;
    scope.set_item(intern!(py, "query_string"), PyBytes::new(py, head.query().as_bytes()))?;
    scope.set_item(intern!(py, "root_path"), PyString::new(py, root_path))?;
    let headers = PyList::empty(py);
    for (name, value) in &head.headers {
        let pair = PyTuple::new(py, [header_name(py, name).into_any(), PyBytes::new(py, value).into_any()])?;
        headers.append(pair)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    match job.client() {
        Some(addr) => scope.set_item(intern!(py, "client"), (addr.ip().to_string(), addr.port()))?,
        None => scope.set_item(intern!(py, "client"), py.None())?,
    }
    match job.server.as_deref() {
        Some((name, port)) => scope.set_item(intern!(py, "server"), (name.as_str(), port.parse::<u16>().unwrap_or(0)))?,
        None => scope.set_item(intern!(py, "server"), py.None())?,
    }
    scope.set_item(intern!(py, "extensions"), consts.extensions.bind(py).copy()?)?;
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.bind(py).copy()?)?;
    }
    Ok(scope)
}
