//! The Python configuration file (`-c FILE`, `-c python:module.name`, or the
//! default `./gunicorn.conf.py` / `./rsgi.conf.py`), executed as gunicorn
//! executes it (as module `__config__`, see `rsgi._compat`), and the keyword
//! arguments of `rsgi.run`. Every variable named exactly like a setting is
//! read; hooks, classes and other Python objects are kept as objects,
//! everything else becomes the same text a command-line flag would give.
//! Plain values under other lowercase names are listed for a debug line.
//!
//! Runs in the master, with the GIL held, before anything is bound.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};

use super::settings::{self, Key, Kind};
use super::{ConfigError, Overrides};

/// What a configuration file set.
#[derive(Default)]
pub struct FileConfig {
    /// Settings as text, like command-line values.
    pub overrides: Overrides,
    /// Hooks and other Python objects, by setting.
    pub objects: BTreeMap<Key, Py<PyAny>>,
    /// Where they came from (for messages).
    pub source: Option<String>,
    /// Plain values named like settings that are not settings (`logfile`,
    /// `keep_alive`): ignored as gunicorn ignores them, named at debug level.
    pub unknown: Vec<String>,
}

/// The configuration files read when `-c` is not given, in order.
pub const DEFAULT_FILES: [&str; 2] = ["./gunicorn.conf.py", "./rsgi.conf.py"];

fn invalid(name: &'static str, value: &Bound<'_, PyAny>, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.repr().map(|r| r.to_string()).unwrap_or_default(),
        reason: reason.to_owned(),
    }
}

fn text(name: &'static str, v: &Bound<'_, PyAny>) -> Result<String, ConfigError> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.to_string());
    }
    Err(invalid(name, v, "not a string"))
}

fn strings(name: &'static str, v: &Bound<'_, PyAny>) -> Result<Vec<String>, ConfigError> {
    if v.is_instance_of::<PyString>() {
        return Ok(vec![text(name, v)?]);
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in v.try_iter().map_err(|_| invalid(name, v, "not a list"))? {
            let item = item.map_err(|_| invalid(name, v, "not a list"))?;
            out.push(text(name, &item)?);
        }
        return Ok(out);
    }
    Err(invalid(name, v, "not a list of strings"))
}

/// Turn one Python value into the text (or object) the setting takes.
fn convert(
    setting: &'static settings::Setting,
    v: &Bound<'_, PyAny>,
    out: &mut FileConfig,
) -> Result<(), ConfigError> {
    let (key, name) = (setting.key, setting.name);
    if v.is_none() {
        return Ok(());
    }
    let raw: Vec<String> = match setting.kind {
        Kind::Hook => {
            if !v.is_callable() {
                return Err(invalid(name, v, "not callable"));
            }
            out.objects.insert(key, v.clone().unbind());
            return Ok(());
        }
        Kind::PyObject => {
            out.objects.insert(key, v.clone().unbind());
            return Ok(());
        }
        Kind::Flag | Kind::FlagFalse => {
            if let Ok(b) = v.cast::<PyBool>() {
                vec![b.is_true().to_string()]
            } else {
                vec![text(name, v)?]
            }
        }
        Kind::Seconds => {
            if v.is_instance_of::<PyBool>() {
                return Err(invalid(name, v, "not a number"));
            }
            if v.is_instance_of::<PyInt>() || v.is_instance_of::<pyo3::types::PyFloat>() {
                vec![v.to_string()]
            } else {
                vec![text(name, v)?]
            }
        }
        Kind::PosInt | Kind::AutoInt => {
            if v.is_instance_of::<PyBool>() {
                return Err(invalid(name, v, "not an integer"));
            }
            if let Ok(i) = v.cast::<PyInt>() {
                vec![i.to_string()]
            } else {
                vec![text(name, v)?]
            }
        }
        Kind::OptionalChoice { implied, .. } if v.is_instance_of::<PyBool>() => {
            // gunicorn: proxy_protocol = True means auto, False means off.
            vec![if v.is_truthy().unwrap_or(false) { implied.to_owned() } else { "off".to_owned() }]
        }
        Kind::Str if matches!(key, Key::WorkerClass | Key::LoggerClass) && !v.is_instance_of::<PyString>() => {
            // A class (or a function returning one), as gunicorn accepts:
            // kept as an object, mapped to a worker kind or a logger later.
            out.objects.insert(key, v.clone().unbind());
            vec![v.str().map(|s| s.to_string()).unwrap_or_default()]
        }
        Kind::Str | Kind::Choice(_) | Kind::OptionalChoice { .. } => {
            if v.is_instance_of::<PyString>() {
                vec![text(name, v)?]
            } else if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() && matches!(key, Key::User | Key::Group) {
                // A uid or gid.
                vec![v.to_string()]
            } else if setting.support != settings::Support::Full || key == Key::SslVersion {
                // A setting rsgi does not act on (e.g. ssl_version =
                // ssl.PROTOCOL_TLS_CLIENT): keep its text for the warning.
                vec![v.str().map(|s| s.to_string()).unwrap_or_default()]
            } else {
                return Err(invalid(name, v, "not a string"));
            }
        }
        Kind::List => strings(name, v)?,
        Kind::CommaList | Kind::AddrList => vec![strings(name, v)?.join(",")],
        Kind::Dict => {
            let d = v.cast::<PyDict>().map_err(|_| invalid(name, v, "not a dict"))?;
            let mut pairs = Vec::new();
            for (k, val) in d.iter() {
                pairs.push(format!("{}={}", text(name, &k)?, text(name, &val)?));
            }
            vec![pairs.join(",")]
        }
    };
    out.overrides.insert(key, raw);
    Ok(())
}

/// Run a configuration source and read its settings. `spec` is the value of
/// `-c` (or `None` to try the default files). Files run as gunicorn runs
/// them: as module `__config__`, with the launch directory on `sys.path`.
pub fn load(py: Python<'_>, spec: Option<&str>) -> Result<FileConfig, ConfigError> {
    let source = match spec {
        Some(s) => s.to_owned(),
        None => match DEFAULT_FILES.iter().find(|f| std::path::Path::new(f).is_file()) {
            Some(f) => f.to_string(),
            None => return Ok(FileConfig::default()),
        },
    };
    let source = source.strip_prefix("file:").map(str::to_owned).unwrap_or(source);
    let compat = py.import("rsgi._compat").map_err(|e| load_error(py, &source, &e))?;
    let namespace = if let Some(module) = source.strip_prefix("python:") {
        compat.call_method1("load_config_module", (module,)).map_err(|e| load_error(py, &source, &e))?
    } else {
        if !std::path::Path::new(&source).exists() {
            return Err(ConfigError::Invalid {
                name: Key::Config.name(),
                value: source.clone(),
                reason: "the file does not exist".into(),
            });
        }
        compat.call_method1("load_config_file", (source.as_str(),)).map_err(|e| load_error(py, &source, &e))?
    };
    let dict = namespace.cast::<PyDict>().map_err(|_| ConfigError::Usage(format!("{source}: not a module")))?;
    let mut out = read_namespace(dict, false)?;
    out.source = Some(source);
    Ok(out)
}

/// Read settings from a namespace: a configuration file's globals, or the
/// keyword arguments of `rsgi.run` (`strict`: a name that is no setting is
/// an error there, a typo rather than a helper variable).
pub fn read_namespace(dict: &Bound<'_, PyDict>, strict: bool) -> Result<FileConfig, ConfigError> {
    let mut out = FileConfig::default();
    for (key, value) in dict.iter() {
        let Ok(key) = key.extract::<String>() else { continue };
        // Like gunicorn: only exact (lowercase) setting names count; the
        // other names are the file's own.
        match settings::find(&key) {
            Some(setting) => convert(setting, &value, &mut out)?,
            None if strict => {
                return Err(ConfigError::Usage(format!("unknown setting {key:?}")));
            }
            None if looks_like_a_setting(&key, &value) => out.unknown.push(key),
            None => {}
        }
    }
    out.unknown.sort();
    Ok(out)
}

/// A lowercase public name holding plain data (not a module, function or
/// class): what a mistyped or obsolete setting looks like.
fn looks_like_a_setting(key: &str, value: &Bound<'_, PyAny>) -> bool {
    if key.starts_with('_') || key.bytes().any(|b| b.is_ascii_uppercase()) {
        return false;
    }
    value.is_none()
        || value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyInt>()
        || value.is_instance_of::<pyo3::types::PyFloat>()
        || value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>()
        || value.is_instance_of::<PyDict>()
}

fn load_error(py: Python<'_>, source: &str, err: &PyErr) -> ConfigError {
    let (line, _) = crate::wsgi::app::describe_exception(py, err);
    ConfigError::Invalid { name: Key::Config.name(), value: source.to_owned(), reason: format!("failed to read it: {line}") }
}
