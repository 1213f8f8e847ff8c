//! The ASGI HTTP connection scope, built in Rust from the parsed head: the
//! header list (lower-cased names, order kept), the percent-decoded path
//! under `--root-path`, `client` and `scheme` under gunicorn's proxy rules
//! (shared with the WSGI environ through `worker::task::Job`), and the
//! lifespan state, copied.
//!
//! Runs on the ASGI thread with the GIL held.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::http::target::percent_decode;
use crate::worker::task::Job;

/// The ASGI spec version rsgi implements (`http.disconnect` after the
/// response, `OSError` from `send` once the client is gone).
pub const SPEC_VERSION: &str = "2.4";

/// A listener's `(host, port)` and its `scope["server"]` tuple.
type ServerEntry = (Arc<(String, String)>, Py<PyTuple>);

/// The constant parts of every scope.
pub struct Consts {
    /// The extensions rsgi implements: `http.response.pathsend`,
    /// `http.response.trailers`.
    extensions: Py<PyDict>,
    /// Every key of an HTTP scope, in the order the scope has them, with the
    /// constant values in place: a request's scope starts as a copy of it
    /// (one allocation of a table of the right size, where inserting the
    /// keys one by one grew the table twice) and sets the rest.
    /// (`asgi` is `{"version": "3.0", "spec_version": ...}`, one dict for
    /// every scope.)
    template: Py<PyDict>,
    /// `scope["server"]` of each listener, made once: `(host, port)` is the
    /// listener's, shared by all its requests (a tuple is immutable). Keyed
    /// by the listener's `Arc`, which the entry keeps alive so its address
    /// is never another's. Only the ASGI thread reads it, with the GIL.
    servers: std::sync::Mutex<Vec<ServerEntry>>,
    /// `--root-path`, which `path` and `raw_path` start with.
    root_path: String,
}

impl Consts {
    pub fn new(py: Python<'_>, root_path: &str) -> PyResult<Consts> {
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", SPEC_VERSION)?;
        let extensions = PyDict::new(py);
        extensions.set_item("http.response.pathsend", PyDict::new(py))?;
        extensions.set_item("http.response.trailers", PyDict::new(py))?;
        let template = PyDict::new(py);
        for (key, value) in [
            ("type", intern!(py, "http").clone().into_any()),
            ("asgi", asgi.into_any()),
            ("http_version", intern!(py, "1.1").clone().into_any()),
            ("method", intern!(py, "GET").clone().into_any()),
            ("scheme", intern!(py, "http").clone().into_any()),
            ("path", py.None().into_bound(py)),
            ("raw_path", py.None().into_bound(py)),
            ("query_string", py.None().into_bound(py)),
            ("root_path", PyString::new(py, root_path).into_any()),
            ("headers", py.None().into_bound(py)),
            ("client", py.None().into_bound(py)),
            ("server", py.None().into_bound(py)),
            ("extensions", py.None().into_bound(py)),
        ] {
            template.set_item(PyString::intern(py, key), value)?;
        }
        Ok(Consts {
            extensions: extensions.unbind(),
            template: template.unbind(),
            servers: std::sync::Mutex::new(Vec::new()),
            root_path: root_path.to_owned(),
        })
    }
}

impl Consts {
    /// `scope["server"]` for the listener `server`.
    fn server<'py>(&self, py: Python<'py>, server: &Arc<(String, String)>) -> PyResult<Bound<'py, PyTuple>> {
        let mut known = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tuple)) = known.iter().find(|(s, _)| Arc::ptr_eq(s, server)) {
            return Ok(tuple.bind(py).clone());
        }
        let (name, port) = &**server;
        let tuple = PyTuple::new(py, [name.as_str().into_pyobject(py)?.into_any(), port.parse::<u16>().unwrap_or(0).into_pyobject(py)?.into_any()])?;
        known.push((server.clone(), tuple.clone().unbind()));
        Ok(tuple)
    }
}

/// The text of a client's address, as `str(ip)` gives it. IPv4 by hand:
/// `to_string` goes through the formatting machinery, a few hundred
/// nanoseconds per request.
fn ip_text<'py>(py: Python<'py>, ip: std::net::IpAddr) -> Bound<'py, PyString> {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    buf[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    buf[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                buf[len] = b'0' + octet % 10;
                len += 1;
            }
            // The buffer holds ASCII digits and dots only.
            PyString::new(py, std::str::from_utf8(&buf[..len]).unwrap_or_default())
        }
        std::net::IpAddr::V6(v6) => PyString::new(py, &v6.to_string()),
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
pub fn build<'py>(py: Python<'py>, consts: &Consts, state: Option<&Py<PyDict>>, job: &Job) -> PyResult<Bound<'py, PyDict>> {
    let root_path = consts.root_path.as_str();
    let head = &job.head;
    let scope = consts.template.bind(py).copy()?;
    match (head.version.major, head.version.minor) {
        (1, 1) => {}
        (1, 0) => scope.set_item(intern!(py, "http_version"), intern!(py, "1.0"))?,
        (a, b) => scope.set_item(intern!(py, "http_version"), PyString::new(py, &format!("{a}.{b}")))?,
    }
    let method = match &*head.method {
        "GET" => None,
        "POST" => Some(intern!(py, "POST").clone()),
        other => Some(PyString::new(py, other)),
    };
    if let Some(method) = method {
        scope.set_item(intern!(py, "method"), method)?;
    }
    if job.https() {
        scope.set_item(intern!(py, "scheme"), intern!(py, "https"))?;
    }
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
    let headers = PyList::empty(py);
    for (name, value) in &head.headers {
        let pair = PyTuple::new(py, [header_name(py, name).into_any(), PyBytes::new(py, value).into_any()])?;
        headers.append(pair)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    if let Some(addr) = job.client() {
        scope.set_item(intern!(py, "client"), (ip_text(py, addr.ip()), addr.port()))?;
    }
    if let Some(server) = &job.server {
        scope.set_item(intern!(py, "server"), consts.server(py, server)?)?;
    }
    scope.set_item(intern!(py, "extensions"), consts.extensions.bind(py).copy()?)?;
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.bind(py).copy()?)?;
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_read_as_python_writes_them() {
        Python::attach(|py| {
            for text in ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.3.40", "::1", "2001:db8::8a2e:370:7334"] {
                let ip: std::net::IpAddr = text.parse().unwrap();
                assert_eq!(ip_text(py, ip).to_str().unwrap(), text);
            }
        });
    }
}
