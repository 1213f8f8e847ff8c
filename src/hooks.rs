//! Server hooks from the configuration file (`on_starting`, `when_ready`,
//! `pre_fork`, `post_fork`, `post_worker_init`, `worker_int`, `pre_request`,
//! `post_request`, `child_exit`, `worker_exit`, `nworkers_changed`,
//! `on_exit`, `on_reload`, `pre_exec`), called where gunicorn calls them,
//! with `server` / `worker` / `req` / `resp` objects built by
//! `rsgi._hooks`. A hook that raises is logged and the server goes on.
//!
//! Called in the master (attaching to Python around the call) and in
//! workers (main thread or executor threads, GIL held).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::config::{Config, Value};

/// True when the configuration file set hook `name`.
pub fn has(cfg: &Config, name: &str) -> bool {
    cfg.objects.get(name).is_some()
}

/// Call hook `name` with `args`, logging (not raising) its exception.
pub fn call<'py>(py: Python<'py>, cfg: &Config, name: &str, args: Bound<'py, PyTuple>) {
    call_in(py, &cfg.objects, name, args)
}

/// [`call`] with the hook table alone (executor threads hold only that).
pub fn call_in<'py>(py: Python<'py>, objects: &crate::config::PyObjects, name: &str, args: Bound<'py, PyTuple>) {
    let Some(hook) = objects.get(name) else { return };
    if let Err(err) = hook.bind(py).call1(args) {
        let (_, traceback) = crate::wsgi::app::describe_exception(py, &err);
        crate::error!("Exception in {name} hook\n{traceback}");
    }
}

fn value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Int(n) => n.into_pyobject(py)?.into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::List(items) => PyList::new(py, items)?.into_any(),
        Value::Dict(pairs) => {
            let d = PyDict::new(py);
            for (k, v) in pairs {
                d.set_item(k, v)?;
            }
            d.into_any()
        }
        Value::None => py.None().into_bound(py),
    })
}

/// `server.cfg` / `worker.cfg`: every setting by name.
pub fn config_view<'py>(py: Python<'py>, cfg: &Config) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    for s in crate::config::settings::SETTINGS {
        match cfg.objects.get(s.name) {
            Some(obj) => d.set_item(s.name, obj.bind(py))?,
            None => d.set_item(s.name, value(py, cfg.values.get(s.name))?)?,
        }
    }
    d.set_item("workers", cfg.workers)?;
    d.set_item("proc_name", &cfg.proc_name)?;
    // gunicorn's cfg.user / cfg.group are the ids it switches to.
    d.set_item("user", cfg.user.as_ref().map(|u| u.0).unwrap_or_else(crate::config::effective_uid))?;
    d.set_item("group", cfg.group.unwrap_or_else(crate::config::effective_gid))?;
    py.import("rsgi._hooks")?.getattr("Config")?.call1((d,))
}

/// The `server` argument (the master). `master_pid` is the master's pid
/// (hooks that run in a worker still see the master's).
pub fn server<'py>(py: Python<'py>, cfg: &Config, num_workers: u32, master_pid: u32) -> PyResult<Bound<'py, PyAny>> {
    let view = config_view(py, cfg)?;
    py.import("rsgi._hooks")?
        .getattr("Server")?
        .call1((view, master_pid, num_workers, &cfg.proc_name, &cfg.app))
}

/// A `worker` argument. `pid` is `None` before the fork (`pre_fork`).
pub fn worker<'py>(py: Python<'py>, cfg: &Config, pid: Option<i32>, ppid: i32, age: u64) -> PyResult<Bound<'py, PyAny>> {
    let view = config_view(py, cfg)?;
    py.import("rsgi._hooks")?.getattr("Worker")?.call1((view, pid, ppid, age, &cfg.app))
}

/// Call a master-side hook with `(server, *extra)`: attaches to Python for
/// the call. Called in the master with the GIL released.
pub fn master_call(cfg: &Config, name: &str, num_workers: u32, extra: impl for<'py> FnOnce(Python<'py>) -> Vec<Bound<'py, PyAny>>) {
    if !has(cfg, name) {
        return;
    }
    Python::attach(|py| {
        let server = match server(py, cfg, num_workers, std::process::id()) {
            Ok(s) => s,
            Err(e) => {
                crate::error!("Cannot build the server object for the {name} hook: {e}");
                return;
            }
        };
        let mut args = vec![server];
        args.extend(extra(py));
        match PyTuple::new(py, args) {
            Ok(t) => call(py, cfg, name, t),
            Err(e) => crate::error!("Cannot call the {name} hook: {e}"),
        }
    });
}

/// `rsgi._rsgi._log(level, message)`: how hook objects write to the error
/// log.
#[pyfunction]
pub fn _log(level: i32, message: &str) {
    let level = match level {
        l if l >= 50 => crate::log::Level::Critical,
        l if l >= 40 => crate::log::Level::Error,
        l if l >= 30 => crate::log::Level::Warning,
        l if l >= 20 => crate::log::Level::Info,
        _ => crate::log::Level::Debug,
    };
    crate::log::log(level, message);
}

/// The `req` object for `pre_request` / `post_request` (both executor
/// kinds).
pub fn request_object<'py>(
    py: Python<'py>,
    head: &crate::http::RequestHead,
    peer: crate::worker::conn::Peer,
    scheme: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let headers: Vec<(String, String)> =
        head.headers.iter().map(|(n, v)| (n.to_string(), v.iter().map(|&b| b as char).collect())).collect();
    let remote = match peer {
        crate::worker::conn::Peer::Tcp(a) => (a.ip().to_string(), a.port()).into_pyobject(py)?.into_any(),
        crate::worker::conn::Peer::Unix => "".into_pyobject(py)?.into_any(),
    };
    py.import("rsgi._hooks")?.getattr("Request")?.call1((
        &head.method,
        &head.target,
        head.path(),
        head.query(),
        head.fragment(),
        (head.version.major, head.version.minor),
        headers,
        remote,
        scheme,
    ))
}

/// The response headers as (name, value) pairs, from their encoding.
pub fn header_pairs(encoded: &[u8]) -> Vec<(String, String)> {
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

/// The `environ` `post_request` receives from the ASGI kind: the CGI keys
/// gunicorn's ASGI worker builds for it (there is no WSGI environ).
pub fn request_environ<'py>(
    py: Python<'py>,
    head: &crate::http::RequestHead,
    client: Option<std::net::SocketAddr>,
    https: bool,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let env = pyo3::types::PyDict::new(py);
    env.set_item("REQUEST_METHOD", &*head.method)?;
    env.set_item("RAW_URI", &head.target)?;
    env.set_item("PATH_INFO", String::from_utf8_lossy(&crate::http::target::percent_decode(head.path())).into_owned())?;
    env.set_item("QUERY_STRING", head.query())?;
    env.set_item("SERVER_PROTOCOL", format!("HTTP/{}.{}", head.version.major, head.version.minor))?;
    env.set_item("wsgi.url_scheme", if https { "https" } else { "http" })?;
    env.set_item("REMOTE_ADDR", client.map(|a| a.ip().to_string()).unwrap_or_default())?;
    Ok(env)
}
