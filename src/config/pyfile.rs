//! The Python configuration file (`-c FILE`, `-c python:module.name`, or the
//! default `./gunicorn.conf.py` / `./rsgi.conf.py`), executed by the
//! interpreter as gunicorn executes it. Every variable named like a setting
//! is read; hooks and other Python objects are kept as objects, everything
//! else becomes the same text a command-line flag would give.
//!
//! Runs in the master, with the GIL held, before anything is bound.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};

use super::settings::{self, Kind};
use super::{ConfigError, Overrides};

/// What a configuration file set.
#[derive(Default)]
pub struct FileConfig {
    /// Settings as text, like command-line values.
    pub overrides: Overrides,
    /// Hooks and other Python objects, by setting name.
    pub objects: BTreeMap<&'static str, Py<PyAny>>,
    /// Where they came from (for messages).
    pub source: Option<String>,
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
    let name = setting.name;
    if v.is_none() {
        return Ok(());
    }
    let raw: Vec<String> = match setting.kind {
        Kind::Hook => {
            if !v.is_callable() {
                return Err(invalid(name, v, "not callable"));
            }
            out.objects.insert(name, v.clone().unbind());
            return Ok(());
        }
        Kind::PyObject => {
            out.objects.insert(name, v.clone().unbind());
            return Ok(());
        }
        Kind::Flag | Kind::FlagFalse => {
            if let Ok(b) = v.cast::<PyBool>() {
                vec![b.is_true().to_string()]
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
        Kind::Str | Kind::Choice(_) | Kind::OptionalChoice { .. } => {
            if v.is_instance_of::<PyString>() {
                vec![text(name, v)?]
            } else if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() && matches!(name, "user" | "group") {
                // A uid or gid.
                vec![v.to_string()]
            } else if setting.support != settings::Support::Full || name == "ssl_version" {
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
    out.overrides.insert(name, raw);
    Ok(())
}

/// Run a configuration source and read its settings. `spec` is the value of
/// `-c` (or `None` to try the default files).
pub fn load(py: Python<'_>, spec: Option<&str>) -> Result<FileConfig, ConfigError> {
    let source = match spec {
        Some(s) => s.to_owned(),
        None => match DEFAULT_FILES.iter().find(|f| std::path::Path::new(f).is_file()) {
            Some(f) => f.to_string(),
            None => return Ok(FileConfig::default()),
        },
    };
    let source = source.strip_prefix("file:").map(str::to_owned).unwrap_or(source);
    let namespace = if let Some(module) = source.strip_prefix("python:") {
        // As gunicorn: the current directory is importable.
        if let Ok(cwd) = std::env::current_dir() {
            let _ = py
                .import("sys")
                .and_then(|sys| sys.getattr("path"))
                .and_then(|p| p.call_method1("insert", (0, cwd.display().to_string())));
        }
        py.import("importlib")
            .and_then(|m| m.call_method1("import_module", (module,)))
            .and_then(|m| m.getattr("__dict__"))
            .map_err(|e| load_error(py, &source, &e))?
    } else {
        if !std::path::Path::new(&source).exists() {
            return Err(ConfigError::Invalid {
                name: "config",
                value: source.clone(),
                reason: "the file does not exist".into(),
            });
        }
        py.import("runpy")
            .and_then(|m| m.call_method1("run_path", (source.as_str(),)))
            .map_err(|e| load_error(py, &source, &e))?
    };
    let dict = namespace.cast::<PyDict>().map_err(|_| ConfigError::Usage(format!("{source}: not a module")))?;
    let mut out = FileConfig { source: Some(source), ..FileConfig::default() };
    for (key, value) in dict.iter() {
        let Ok(key) = key.extract::<String>() else { continue };
        // Like gunicorn: names that are not settings are the file's own.
        let Some(setting) = settings::find(&key.to_ascii_lowercase()) else { continue };
        convert(setting, &value, &mut out)?;
    }
    Ok(out)
}

fn load_error(py: Python<'_>, source: &str, err: &PyErr) -> ConfigError {
    let (line, _) = crate::wsgi::app::describe_exception(py, err);
    ConfigError::Invalid { name: "config", value: source.to_owned(), reason: format!("failed to read it: {line}") }
}
