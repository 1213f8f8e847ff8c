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

use crate::config::{Config, Key, Value};

/// The hooks rsgi calls, each the setting of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnStarting,
    OnReload,
    WhenReady,
    PreFork,
    PostFork,
    PostWorkerInit,
    WorkerInt,
    WorkerAbort,
    PreExec,
    PreRequest,
    PostRequest,
    ChildExit,
    WorkerExit,
    NworkersChanged,
    OnExit,
}

impl Hook {
    /// The setting that holds the hook.
    pub const fn key(self) -> Key {
        match self {
            Hook::OnStarting => Key::OnStarting,
            Hook::OnReload => Key::OnReload,
            Hook::WhenReady => Key::WhenReady,
            Hook::PreFork => Key::PreFork,
            Hook::PostFork => Key::PostFork,
            Hook::PostWorkerInit => Key::PostWorkerInit,
            Hook::WorkerInt => Key::WorkerInt,
            Hook::WorkerAbort => Key::WorkerAbort,
            Hook::PreExec => Key::PreExec,
            Hook::PreRequest => Key::PreRequest,
            Hook::PostRequest => Key::PostRequest,
            Hook::ChildExit => Key::ChildExit,
            Hook::WorkerExit => Key::WorkerExit,
            Hook::NworkersChanged => Key::NworkersChanged,
            Hook::OnExit => Key::OnExit,
        }
    }
}

/// True when the configuration file set `hook`.
pub fn has(cfg: &Config, hook: Hook) -> bool {
    cfg.objects.get(hook.key()).is_some()
}

/// Call `hook` with `args`, logging (not raising) its exception.
pub fn call<'py>(py: Python<'py>, cfg: &Config, hook: Hook, args: Bound<'py, PyTuple>) {
    call_in(py, &cfg.objects, hook, args)
}

/// [`call`] with the hook table alone (executor threads hold only that).
pub fn call_in<'py>(py: Python<'py>, objects: &crate::config::PyObjects, hook: Hook, args: Bound<'py, PyTuple>) {
    let Some(callable) = objects.get(hook.key()) else { return };
    if let Err(err) = callable.bind(py).call1(args) {
        let (_, traceback) = crate::wsgi::app::describe_exception(py, &err);
        crate::error!("Exception in {} hook\n{traceback}", hook.key().name());
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
        match cfg.objects.get(s.key) {
            Some(obj) => d.set_item(s.name, obj.bind(py))?,
            None => d.set_item(s.name, value(py, cfg.values.get(s.key))?)?,
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
pub fn master_call(cfg: &Config, hook: Hook, num_workers: u32, extra: impl for<'py> FnOnce(Python<'py>) -> Vec<Bound<'py, PyAny>>) {
    if !has(cfg, hook) {
        return;
    }
    let name = hook.key().name();
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
            Ok(t) => call(py, cfg, hook, t),
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
