//! Where the configuration comes from and how it meets the interpreter:
//! resolving every source in gunicorn's precedence (command line,
//! `RSGI_CMD_ARGS`, `GUNICORN_CMD_ARGS`, the configuration file, the
//! defaults), checking the settings rsgi does not fully honour, and applying
//! `--chdir`, `--pythonpath` and `-e` to Python.
//!
//! Runs in the master at startup and on HUP, with the GIL held.

use super::settings::{Kind, Support, SETTINGS};
use super::{default_raw, pyfile, validate, Config, ConfigError, Overrides, PyObjects, Value, Values};

/// The worker classes rsgi's worker stands in for.
const WORKER_CLASSES: [&str; 4] =
    ["sync", "gthread", "gunicorn.workers.sync.SyncWorker", "gunicorn.workers.gthread.ThreadWorker"];

/// Check the settings rsgi does not fully honour: a non-default value of an
/// ignored setting gives a warning (returned), of a refused one an error.
pub fn check_support(values: &Values, objects: &PyObjects) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for setting in SETTINGS {
        let set = if matches!(setting.kind, Kind::Hook | Kind::PyObject) {
            objects.get(setting.name).is_some()
        } else {
            let default = default_raw(setting).map(|raw| validate(setting, &raw)).transpose()?.unwrap_or(Value::None);
            *values.get(setting.name) != default
        };
        if !set {
            continue;
        }
        if setting.name == "worker_class" {
            if let Value::Str(class) = values.get("worker_class") {
                if WORKER_CLASSES.contains(&class.as_str()) {
                    continue;
                }
                return Err(ConfigError::Invalid {
                    name: "worker_class",
                    value: class.clone(),
                    reason: "rsgi's worker serves WSGI with threads; only sync and gthread are available".into(),
                });
            }
        }
        match setting.support {
            Support::Full => {}
            Support::Ignored(instead) => warnings.push(format!("Setting {} is not supported: {instead}.", setting.name)),
            Support::Refused(why) => {
                return Err(ConfigError::Invalid {
                    name: setting.name,
                    value: match values.get(setting.name) {
                        Value::Str(s) => s.clone(),
                        other => format!("{other:?}"),
                    },
                    reason: why.to_owned(),
                })
            }
        }
    }
    Ok(warnings)
}

/// The configuration as resolved from every source.
pub struct Resolved {
    pub cfg: Config,
    /// One line per unsupported setting given a value.
    pub warnings: Vec<String>,
    pub print_config: bool,
    pub check_config: bool,
}

/// Parse one environment variable of extra arguments (`GUNICORN_CMD_ARGS`,
/// `RSGI_CMD_ARGS`).
fn env_overrides(var: &str) -> Result<(Option<String>, Overrides), ConfigError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            let words = crate::cli::split_shell_words(&v).map_err(|e| ConfigError::Usage(format!("{var}: {e}")))?;
            let parsed = crate::cli::parse(&words).map_err(|e| ConfigError::Usage(format!("{var}: {e}")))?;
            Ok((parsed.app, parsed.overrides))
        }
        _ => Ok((None, Overrides::new())),
    }
}

/// Resolve the configuration from every source, in gunicorn's precedence:
/// the command line, `RSGI_CMD_ARGS`, `GUNICORN_CMD_ARGS`, the
/// configuration file, the defaults. Called in the master at startup and
/// again on HUP, with the GIL held.
pub fn resolve(py: pyo3::Python<'_>, cli: &crate::cli::Cli) -> Result<Resolved, ConfigError> {
    let (gunicorn_app, gunicorn_env) = env_overrides("GUNICORN_CMD_ARGS")?;
    let (rsgi_app, rsgi_env) = env_overrides("RSGI_CMD_ARGS")?;
    // -c from the command line or the environment variables, else
    // ./gunicorn.conf.py or ./rsgi.conf.py if present.
    let config_spec = [&cli.overrides, &rsgi_env, &gunicorn_env]
        .iter()
        .find_map(|o| o.get("config").and_then(|v| v.last()).cloned());
    let file = pyfile::load(py, config_spec.as_deref())?;
    let file_app = file.overrides.get("wsgi_app").and_then(|v| v.last()).cloned();
    // --paste FILE[#name] names a PasteDeploy app instead of module:callable.
    let paste = [&cli.overrides, &rsgi_env, &gunicorn_env, &file.overrides]
        .iter()
        .find_map(|o| o.get("paste").and_then(|v| v.last()).cloned());
    let paste_app = match paste {
        Some(p) => {
            let (file, name) = p.split_once('#').map(|(f, n)| (f.to_owned(), Some(n.to_owned()))).unwrap_or((p.clone(), None));
            let abs = std::fs::canonicalize(&file).map_err(|_| ConfigError::Invalid {
                name: "paste",
                value: p.clone(),
                reason: "not found".into(),
            })?;
            Some(format!("config:{}{}", abs.display(), name.map(|n| format!("#{n}")).unwrap_or_default()))
        }
        None => None,
    };
    let from_command_line = paste_app.is_none() && cli.app.is_some();
    let app = paste_app
        .or(cli.app.clone())
        .or(rsgi_app)
        .or(gunicorn_app)
        .or(file_app)
        .ok_or_else(|| ConfigError::Usage("No application module specified.".into()))?;
    let values = Values::merge(&[&file.overrides, &gunicorn_env, &rsgi_env, &cli.overrides])?;
    let objects = PyObjects { map: file.objects };
    let warnings = check_support(&values, &objects)?;
    let print_config = matches!(values.get("print_config"), Value::Bool(true));
    let check_config = matches!(values.get("check_config"), Value::Bool(true));
    let mut cfg = Config::new(app, values)?;
    cfg.app_from_command_line = from_command_line;
    cfg.objects = std::sync::Arc::new(objects);
    Ok(Resolved { cfg, warnings, print_config, check_config })
}

/// Apply `--chdir`, `--pythonpath` and `-e` to the interpreter, as gunicorn
/// does before loading the app. Called in the master (at startup and on
/// HUP) with the GIL held.
pub fn apply_to_python(py: pyo3::Python<'_>, cfg: &Config) -> Result<(), String> {
    use pyo3::prelude::*;
    std::env::set_current_dir(&cfg.chdir).map_err(|e| format!("can't chdir to {:?}: {e}", cfg.chdir))?;
    let os = py.import("os").map_err(|e| e.to_string())?;
    let environ = os.getattr("environ").map_err(|e| e.to_string())?;
    for (k, v) in &cfg.raw_env {
        environ.set_item(k, v).map_err(|e| format!("cannot set {k} in the environment: {e}"))?;
    }
    let sys = py.import("sys").map_err(|e| e.to_string())?;
    let path = sys
        .getattr("path")
        .and_then(|p| p.cast_into::<pyo3::types::PyList>().map_err(Into::into))
        .map_err(|e| e.to_string())?;
    let chdir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| cfg.chdir.clone());
    if !path.contains(&chdir).unwrap_or(false) {
        path.insert(0, &chdir).map_err(|e| e.to_string())?;
    }
    for p in cfg.pythonpath.iter().rev() {
        if !path.contains(p).unwrap_or(false) {
            path.insert(0, p).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
