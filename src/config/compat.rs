//! gunicorn compatibility while the configuration is read, through
//! `rsgi._compat`: gunicorn's `sys.path` rules (the launch directory before
//! the configuration file, `--chdir` and `--pythonpath` after), the
//! `gunicorn` stand-in package when the real one is not installed, worker
//! classes (every spelling, subclasses by their base) mapped to a worker
//! kind, a custom `logger_class`, and the `Server` header a configuration
//! sets through `gunicorn.SERVER_SOFTWARE`.
//!
//! Runs in the master with the GIL held, at startup and on HUP.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::{ConfigError, Key, Overrides, PyObjects, Value, Values};

/// The kind of worker a `worker_class` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerKind {
    /// gunicorn's sync worker: rsgi's worker.
    #[default]
    Sync,
    /// gunicorn's gthread worker: rsgi's worker with `--threads`.
    Gthread,
    /// An abandoned third-party WSGI worker (meinheld, eventlet, tornado):
    /// rsgi's worker, with a warning.
    Legacy,
    /// gevent's workers: rsgi's gevent worker (`gevent`), which needs
    /// gevent installed.
    Gevent,
    /// ASGI workers (uvicorn's, gunicorn's `asgi`): rsgi's ASGI worker.
    Asgi,
    /// A worker for apps that are neither WSGI nor ASGI (aiohttp's).
    Foreign,
    /// A worker class of the project's own, deriving from none of the above.
    Custom,
}

impl WorkerKind {
    fn parse(s: &str) -> WorkerKind {
        match s {
            "gthread" => WorkerKind::Gthread,
            "legacy" => WorkerKind::Legacy,
            "gevent" => WorkerKind::Gevent,
            "asgi" => WorkerKind::Asgi,
            "foreign" => WorkerKind::Foreign,
            "custom" => WorkerKind::Custom,
            _ => WorkerKind::Sync,
        }
    }

    /// The name used in messages.
    pub fn label(self) -> &'static str {
        match self {
            WorkerKind::Sync => "sync",
            WorkerKind::Gthread => "gthread",
            WorkerKind::Legacy => "legacy WSGI",
            WorkerKind::Gevent => "gevent",
            WorkerKind::Asgi => "ASGI",
            WorkerKind::Foreign => "aiohttp",
            WorkerKind::Custom => "custom",
        }
    }
}

/// What `worker_class` resolved to.
#[derive(Debug, Clone, Default)]
pub struct WorkerChoice {
    pub kind: WorkerKind,
    /// The class as `module.QualName` (or the name given).
    pub name: String,
    /// Settings a uvicorn worker's `CONFIG_KWARGS` set (as text).
    pub settings: Vec<(String, String)>,
    /// `CONFIG_KWARGS` entries with no rsgi setting (`key=value`).
    pub ignored: Vec<String>,
}

fn compat(py: Python<'_>) -> Result<Bound<'_, PyModule>, ConfigError> {
    py.import("rsgi._compat").map_err(|e| ConfigError::Usage(format!("cannot load rsgi._compat: {e}")))
}

fn py_error(py: Python<'_>, name: &'static str, value: &str, e: &PyErr) -> ConfigError {
    let (line, _) = crate::wsgi::app::describe_exception(py, e);
    ConfigError::Invalid { name, value: value.to_owned(), reason: line }
}

/// The directory rsgi was started in, as gunicorn's `util.getcwd` reads it:
/// `$PWD` when it names the current directory (keeping symlinks), else the
/// real path.
pub fn launch_dir() -> String {
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| ".".into());
    match std::env::var("PWD") {
        Ok(pwd) if same_file(&pwd, &cwd) => pwd,
        _ => cwd,
    }
}

fn same_file(a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Before the configuration file runs: the launch directory first on
/// `sys.path`, and the `gunicorn` stand-in last when gunicorn is missing.
pub fn prepare(py: Python<'_>) -> Result<(), ConfigError> {
    compat(py)?.call_method1("prepare", (launch_dir(),)).map_err(|e| ConfigError::Usage(format!("cannot prepare sys.path: {e}")))?;
    Ok(())
}

/// After every source: the `--chdir` directory and the `--pythonpath`
/// entries on `sys.path`, in gunicorn's order.
pub fn apply_paths(py: Python<'_>, chdir: &str, pythonpath: &[String]) -> Result<(), String> {
    compat(py)
        .map_err(|e| e.to_string())?
        .call_method1("apply_paths", (chdir, pythonpath.to_vec()))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Classify `worker_class` (the class object from the configuration file
/// when there is one, else the name).
pub fn worker_choice(py: Python<'_>, values: &Values, objects: &PyObjects) -> Result<WorkerChoice, ConfigError> {
    let text = match values.get(Key::WorkerClass) {
        Value::Str(s) => s.clone(),
        _ => "sync".to_owned(),
    };
    let arg: Bound<'_, PyAny> = match objects.get(Key::WorkerClass) {
        Some(obj) => obj.bind(py).clone(),
        None => text.clone().into_pyobject(py).map_err(|e| ConfigError::Usage(e.to_string()))?.into_any(),
    };
    let found = compat(py)?.call_method1("worker_kind", (arg,)).map_err(|e| py_error(py, "worker_class", &text, &e))?;
    let (kind, name, settings, ignored): (String, String, Bound<'_, PyDict>, Bound<'_, PyList>) =
        found.extract().map_err(|e| py_error(py, "worker_class", &text, &e))?;
    Ok(WorkerChoice {
        kind: WorkerKind::parse(&kind),
        name,
        settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ignored: ignored.iter().map(|i| i.to_string()).collect(),
    })
}

/// The `CONFIG_KWARGS` settings as an override source.
pub fn worker_overrides(choice: &WorkerChoice) -> Overrides {
    let mut out = Overrides::new();
    for (name, value) in &choice.settings {
        if let Some(setting) = super::settings::find(name) {
            out.insert(setting.key, vec![value.clone()]);
        }
    }
    out
}

/// The custom `logger_class`, imported, or None for gunicorn's own logger
/// (whose work rsgi's logs do).
pub fn logger_class(py: Python<'_>, values: &Values, objects: &PyObjects) -> Result<Option<Py<PyAny>>, ConfigError> {
    let text = match values.get(Key::LoggerClass) {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    };
    let arg: Bound<'_, PyAny> = match objects.get(Key::LoggerClass) {
        Some(obj) => obj.bind(py).clone(),
        None => text.clone().into_pyobject(py).map_err(|e| ConfigError::Usage(e.to_string()))?.into_any(),
    };
    let m = compat(py)?;
    let default: bool = m
        .call_method1("is_default_logger", (&arg,))
        .and_then(|b| b.extract())
        .map_err(|e| py_error(py, "logger_class", &text, &e))?;
    if default {
        return Ok(None);
    }
    let class = m.call_method1("logger_class", (&arg,)).map_err(|e| py_error(py, "logger_class", &text, &e))?;
    Ok(Some(class.unbind()))
}

/// With a custom logger, `post_request` also calls its `access()` (before
/// the configuration's own hook, as gunicorn orders them).
pub fn chain_access_hook(py: Python<'_>, objects: &mut PyObjects) -> Result<(), ConfigError> {
    let user = objects.get(Key::PostRequest).map(|h| h.clone_ref(py));
    let hook = py
        .import("rsgi._logging")
        .and_then(|m| m.call_method1("access_hook", (user,)))
        .map_err(|e| ConfigError::Usage(format!("cannot set up the access log: {e}")))?;
    objects.map.insert(Key::PostRequest, hook.unbind());
    Ok(())
}

/// `(Server header, SERVER_SOFTWARE)` when the configuration set
/// `gunicorn.SERVER_SOFTWARE` or `gunicorn.SERVER`.
pub fn server_names(py: Python<'_>) -> Option<(String, String)> {
    compat(py).ok()?.call_method0("server_header").ok()?.extract().ok()?
}
