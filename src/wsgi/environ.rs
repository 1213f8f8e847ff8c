//! Build the PEP 3333 `environ` for a request: every CGI key gunicorn sets,
//! the `wsgi.*` keys, `HTTP_*` headers (repeats joined), the
//! `SCRIPT_NAME`/`PATH_INFO` split and the PROXY-protocol addresses.
//!
//! Runs on an executor thread with the GIL held. Keys are interned; the
//! constant part is a prebuilt dict copied per request; nothing comes from
//! `os.environ` except the worker's `SCRIPT_NAME` default.


use crate::http::target::percent_decode;
use crate::worker::conn::Peer;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple};

use super::errors::ErrorStream;
use super::file_wrapper::FileWrapper;
use crate::http::proxy::ProxyInfo;
use crate::http::{HttpError, RequestHead};

/// Per-worker constants every environ starts from.
pub struct EnvironBase {
    /// The prebuilt dict copied for each request.
    pub dict: Py<PyDict>,
    /// `SCRIPT_NAME` from the worker's process environment.
    pub script_name: String,
}

impl EnvironBase {
    /// Build the constant part once per worker.
    pub fn new(py: Python<'_>, multithread: bool, multiprocess: bool) -> PyResult<EnvironBase> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
        d.set_item(intern!(py, "wsgi.errors"), Py::new(py, ErrorStream)?)?;
        d.set_item(intern!(py, "wsgi.multithread"), PyBool::new(py, multithread))?;
        d.set_item(intern!(py, "wsgi.multiprocess"), PyBool::new(py, multiprocess))?;
        d.set_item(intern!(py, "wsgi.run_once"), false)?;
        d.set_item(intern!(py, "wsgi.file_wrapper"), py.get_type::<FileWrapper>())?;
        d.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        d.set_item(intern!(py, "SERVER_SOFTWARE"), crate::http::response::server_software())?;
        reserve_room(py, &d)?;
        let script_name = std::env::var("SCRIPT_NAME").unwrap_or_default();
        Ok(EnvironBase { dict: d.unbind(), script_name })
    }
}

/// Keys every request sets (or, for the last two, removes): they stand in
/// the base dict with `None` until [`build`] gives them the request's value.
const PER_REQUEST_KEYS: [&str; 13] = [
    "wsgi.input",
    "REQUEST_METHOD",
    "QUERY_STRING",
    "RAW_URI",
    "SERVER_PROTOCOL",
    "wsgi.url_scheme",
    "REMOTE_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "PATH_INFO",
    "SCRIPT_NAME",
    // Removed when the peer is a unix socket.
    "REMOTE_PORT",
    // Removed when the request has no Host header.
    "HTTP_HOST",
];

/// Insertions that make CPython grow a dict's table to 64 slots (room for
/// 42 entries): a table is full at two thirds, and grows to three times
/// its entries, so the 22nd insertion takes 32 slots to 64.
const ROOM_INSERTIONS: usize = 22;

/// Give the base dict its per-request keys and a table with room for a
/// browser's headers on top, so that a request's environ (a copy, which
/// keeps the table's size and kind) never grows. The table is grown by
/// inserting `str` keys, which keeps it of the kind CPython keeps for
/// str-only keys (3.11+): smaller entries, a faster lookup, and small
/// enough for the allocator's per-thread cache (a presized dict gets the
/// general kind, over a kilobyte, and a trip through malloc's slow path
/// per request). Spare keys added for the growth are removed again: the
/// copy stays the fast table clone as long as at most a third of the
/// entries are removed ones.
fn reserve_room(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<()> {
    for key in PER_REQUEST_KEYS {
        d.set_item(PyString::intern(py, key), py.None())?;
    }
    let spares: Vec<String> = (d.len()..ROOM_INSERTIONS).map(|i| format!("rsgi.spare.{i}")).collect();
    for key in &spares {
        d.set_item(key, py.None())?;
    }
    for key in &spares {
        d.del_item(key)?;
    }
    Ok(())
}

/// A Python `str` from bytes read as latin-1 (WSGI's "bytes as str").
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8.
        return PyString::new(py, std::str::from_utf8(bytes).unwrap_or_default());
    }
    // SAFETY: PyUnicode_DecodeLatin1 reads `len` bytes from `ptr` and returns
    // a new reference (latin-1 decoding cannot fail except on memory).
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(bytes.as_ptr() as *const _, bytes.len() as ffi::Py_ssize_t, std::ptr::null());
        if ptr.is_null() {
            PyErr::fetch(py);
            return PyString::new(py, "");
        }
        Bound::from_owned_ptr(py, ptr).cast_into_unchecked()
    }
}


/// The `HTTP_*` key for a header name (already uppercase).
fn header_key(name: &str) -> String {
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| if c == '-' { '_' } else { c }));
    key
}

/// Most `HTTP_*` keys kept per executor thread: the common headers repeat
/// on every request, and a cached (interned) key saves building and hashing
/// a new string each time.
const KEY_CACHE_MAX: usize = 256;

/// FNV-1a for the key cache: header names are short, and with the cache
/// bounded (`KEY_CACHE_MAX`) names chosen to collide cost little, so the
/// default hasher's flooding resistance is not needed here.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type KeyCache = std::collections::HashMap<String, Py<PyString>, std::hash::BuildHasherDefault<Fnv>>;

thread_local! {
    static KEY_CACHE: std::cell::RefCell<KeyCache> = std::cell::RefCell::new(KeyCache::default());
}

/// True when two (uppercased) header names give the same environ key.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y || (x == b'-' && y == b'_') || (x == b'_' && y == b'-'))
}

/// The Python string for a header's `HTTP_*` key, from the thread's cache
/// (keyed by the header name as it came, uppercased).
fn header_key_string<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
    KEY_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(k) = cache.get(name) {
            return k.bind(py).clone();
        }
        let key = header_key(name);
        if cache.len() >= KEY_CACHE_MAX {
            // A client inventing header names must not grow the cache (or
            // the interpreter's interned strings).
            return PyString::new(py, &key);
        }
        let k = PyString::intern(py, &key);
        cache.insert(name.to_owned(), k.clone().unbind());
        k
    })
}

/// `REMOTE_ADDR` as a Python string; the thread keeps the last one, since
/// consecutive requests mostly come from the same address.
fn remote_addr_string<'py>(py: Python<'py>, ip: std::net::IpAddr) -> Bound<'py, PyString> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::net::IpAddr, Py<PyString>)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((cached, s)) = last.as_ref() {
            if *cached == ip {
                return s.bind(py).clone();
            }
        }
        let s = PyString::new(py, &ip.to_string());
        *last = Some((ip, s.clone().unbind()));
        s
    })
}

/// `REQUEST_METHOD`: the common methods as shared (interned) strings.
fn method_string<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    let known = match method {
        "GET" => intern!(py, "GET"),
        "POST" => intern!(py, "POST"),
        "HEAD" => intern!(py, "HEAD"),
        "PUT" => intern!(py, "PUT"),
        "DELETE" => intern!(py, "DELETE"),
        "PATCH" => intern!(py, "PATCH"),
        "OPTIONS" => intern!(py, "OPTIONS"),
        _ => return PyString::new(py, method),
    };
    known.clone()
}

/// `SERVER_NAME` and `SERVER_PORT` of a listener as Python strings; the
/// thread keeps the last pair (a worker mostly serves one listener).
fn server_strings<'py>(py: Python<'py>, name: &str, port: &str) -> (Bound<'py, PyString>, Bound<'py, PyString>) {
    type Entry = (String, String, Py<PyString>, Py<PyString>);
    thread_local! {
        static LAST: std::cell::RefCell<Option<Entry>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((n, p, name_s, port_s)) = last.as_ref() {
            if n == name && p == port {
                return (name_s.bind(py).clone(), port_s.bind(py).clone());
            }
        }
        let (name_s, port_s) = (PyString::new(py, name), PyString::new(py, port));
        *last = Some((name.to_owned(), port.to_owned(), name_s.clone().unbind(), port_s.clone().unbind()));
        (name_s, port_s)
    })
}

/// Decimal digits of `n`, written into `buf`.
fn itoa_u16(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// What the environ needs to know about the connection.
pub struct ConnFacts<'a> {
    pub peer: Peer,
    /// The listener's address as (SERVER_NAME, SERVER_PORT); `None` for unix.
    pub server: Option<&'a (String, String)>,
    pub proxy: Option<&'a ProxyInfo>,
    /// The connection itself is TLS: the client certificate, if any.
    pub tls: Option<&'a crate::worker::tls_io::TlsFacts>,
}

/// Build the environ for `head`. `input` becomes `wsgi.input`.
pub fn build<'py>(
    py: Python<'py>,
    base: &EnvironBase,
    head: &RequestHead,
    conn: &ConnFacts<'_>,
    input: Bound<'py, PyAny>,
) -> PyResult<Result<Bound<'py, PyDict>, HttpError>> {
    let env = base.dict.bind(py).copy()?;
    env.set_item(intern!(py, "wsgi.input"), input)?;
    env.set_item(intern!(py, "REQUEST_METHOD"), method_string(py, &head.method))?;
    let query = if head.query().is_empty() { intern!(py, "").clone() } else { PyString::new(py, head.query()) };
    env.set_item(intern!(py, "QUERY_STRING"), query)?;
    let raw_uri = PyString::new(py, &head.target);
    env.set_item(intern!(py, "RAW_URI"), &raw_uri)?;
    let protocol = match (head.version.major, head.version.minor) {
        (1, 1) => intern!(py, "HTTP/1.1").clone(),
        (1, 0) => intern!(py, "HTTP/1.0").clone(),
        (a, b) => PyString::new(py, &format!("HTTP/{a}.{b}")),
    };
    env.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;

    let mut host: Option<&[u8]> = None;
    let mut script_name: Option<String> = None;
    // Names that map to the same key (repeats, or `X-A` and `X_A` under
    // header_map=dangerous) are joined as gunicorn joins them: ","
    // (cookies: "; "). Most requests have none, and take the direct path.
    let repeated = head.headers.iter().enumerate().any(|(i, (a, _))| {
        head.headers[..i].iter().any(|(b, _)| same_key(a, b))
    });
    let mut joined: Vec<(&str, Vec<u8>)> = Vec::new();
    for (name, value) in &head.headers {
        match name.as_ref() {
            "CONTENT-TYPE" => {
                env.set_item(intern!(py, "CONTENT_TYPE"), latin1(py, value))?;
                continue;
            }
            "CONTENT-LENGTH" => {
                env.set_item(intern!(py, "CONTENT_LENGTH"), latin1(py, value))?;
                continue;
            }
            "HOST" => host = Some(value),
            "SCRIPT_NAME" => script_name = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        if !repeated {
            env.set_item(header_key_string(py, name), latin1(py, value))?;
            continue;
        }
        match joined.iter_mut().find(|(k, _)| same_key(k, name)) {
            Some((k, so_far)) => {
                so_far.extend_from_slice(if *k == "COOKIE" { b"; " } else { b"," });
                so_far.extend_from_slice(value);
            }
            None => joined.push((name, value.clone())),
        }
    }
    for (name, value) in joined {
        env.set_item(header_key_string(py, name), latin1(py, &value))?;
    }

    let https = crate::worker::task::is_https(conn.tls.is_some(), head);
    let scheme = if https { intern!(py, "https") } else { intern!(py, "http") };
    env.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
    if let Some(cert) = conn.tls.and_then(|t| t.client_cert.as_deref()) {
        // rsgi's own (gunicorn shows no client certificate): as Apache's
        // mod_ssl and uWSGI name it.
        env.set_item(intern!(py, "SSL_CLIENT_CERT"), PyString::new(py, cert))?;
    }

    match conn.peer {
        Peer::Tcp(addr) => {
            env.set_item(intern!(py, "REMOTE_ADDR"), remote_addr_string(py, addr.ip()))?;
            env.set_item(intern!(py, "REMOTE_PORT"), PyString::new(py, itoa_u16(addr.port(), &mut [0; 5])))?;
        }
        Peer::Unix => {
            env.set_item(intern!(py, "REMOTE_ADDR"), intern!(py, ""))?;
            env.del_item(intern!(py, "REMOTE_PORT"))?;
        }
    }
    if host.is_none() {
        env.del_item(intern!(py, "HTTP_HOST"))?;
    }

    match conn.server {
        Some((n, p)) => {
            let (name, port) = server_strings(py, n, p);
            env.set_item(intern!(py, "SERVER_NAME"), name)?;
            env.set_item(intern!(py, "SERVER_PORT"), port)?;
        }
        None => {
            let (name, port) = match host {
                Some(h) => {
                    let h = String::from_utf8_lossy(h).into_owned();
                    match h.split_once(':') {
                        Some((n, p)) => (n.to_owned(), p.to_owned()),
                        None => (h, if https { "443".into() } else { "80".into() }),
                    }
                }
                None => (String::new(), String::new()),
            };
            env.set_item(intern!(py, "SERVER_NAME"), name)?;
            env.set_item(intern!(py, "SERVER_PORT"), port)?;
        }
    }

    let script_name: &str = script_name.as_deref().unwrap_or(&base.script_name);
    let mut path = head.path();
    if !script_name.is_empty() {
        match path.strip_prefix(script_name) {
            Some(rest) => path = rest,
            None => {
                return Ok(Err(HttpError::ScriptNameMismatch { path: path.to_owned(), script_name: script_name.to_owned() }));
            }
        }
    }
    let path_info = if path.contains('%') {
        latin1(py, &percent_decode(path))
    } else if path == head.target && path.is_ascii() {
        // The whole target is the path (no query, no prefix, no escapes;
        // ASCII, where UTF-8 and latin-1 agree): one string object serves
        // both keys.
        raw_uri
    } else {
        latin1(py, path.as_bytes())
    };
    env.set_item(intern!(py, "PATH_INFO"), path_info)?;
    if script_name.is_empty() {
        env.set_item(intern!(py, "SCRIPT_NAME"), intern!(py, ""))?;
    } else {
        env.set_item(intern!(py, "SCRIPT_NAME"), script_name)?;
    }

    if let Some(p) = conn.proxy {
        // A LOCAL or UNSPEC header carries no addresses: keep the socket's.
        env.set_item(intern!(py, "PROXY_PROTOCOL"), p.protocol)?;
        if let (Some((cip, cport)), Some((pip, pport))) = (p.client, p.proxy) {
            env.set_item(intern!(py, "REMOTE_ADDR"), cip.to_string())?;
            env.set_item(intern!(py, "REMOTE_PORT"), cport.to_string())?;
            env.set_item(intern!(py, "PROXY_ADDR"), pip.to_string())?;
            env.set_item(intern!(py, "PROXY_PORT"), pport.to_string())?;
        }
    }
    Ok(Ok(env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/caf%C3%A9"), b"/caf\xc3\xa9");
        assert_eq!(percent_decode("/a%2Fb%2f"), b"/a/b/");
        assert_eq!(percent_decode("/100%"), b"/100%");
        assert_eq!(percent_decode("/%zz%4"), b"/%zz%4");
        assert_eq!(percent_decode("%41"), b"A");
    }

    #[test]
    fn port_digits() {
        assert_eq!(itoa_u16(0, &mut [0; 5]), "0");
        assert_eq!(itoa_u16(8, &mut [0; 5]), "8");
        assert_eq!(itoa_u16(443, &mut [0; 5]), "443");
        assert_eq!(itoa_u16(65535, &mut [0; 5]), "65535");
    }

    #[test]
    fn keys_that_collide() {
        assert!(same_key("X-A", "X_A"));
        assert!(same_key("COOKIE", "COOKIE"));
        assert!(!same_key("X-A", "X-B"));
        assert!(!same_key("X-A", "X-AB"));
    }

    #[test]
    fn header_keys() {
        assert_eq!(header_key("X-FORWARDED-FOR"), "HTTP_X_FORWARDED_FOR");
        assert_eq!(header_key("SCRIPT_NAME"), "HTTP_SCRIPT_NAME");
    }
}
