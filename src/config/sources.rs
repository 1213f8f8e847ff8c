//! Where the configuration comes from and how it meets the interpreter:
//! resolving every source in gunicorn's precedence (command line,
//! `RSGI_CMD_ARGS`, `GUNICORN_CMD_ARGS`, the configuration file, the
//! defaults; or the keyword arguments of `rsgi.run`), checking the settings
//! rsgi does not fully honour, and applying `--chdir`, `--pythonpath` and
//! `-e` to Python.
//!
//! Runs in the master at startup and on HUP, with the GIL held.

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::compat::{self, WorkerKind};
use super::settings::{Key, Kind, Support, SETTINGS};
use super::{default_raw, pyfile, validate, Config, ConfigError, Overrides, PyObjects, Value, Values};

/// What `rsgi.run(app_or_uri, **settings)` passed: the settings (read
/// instead of a configuration file and the `*_CMD_ARGS` variables) and the
/// app object, when it was one. Set once, before `main` runs.
pub struct Programmatic {
    pub settings: Py<PyDict>,
    pub app: Option<Py<PyAny>>,
}

static PROGRAMMATIC: OnceLock<Programmatic> = OnceLock::new();

/// Record what `rsgi.run` was given. Only the first call counts.
pub fn set_programmatic(p: Programmatic) {
    let _ = PROGRAMMATIC.set(p);
}

/// Check the settings rsgi does not fully honour: a non-default value of an
/// ignored setting gives a warning (returned), of a refused one an error.
pub fn check_support(values: &Values, objects: &PyObjects) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for setting in SETTINGS {
        let set = if matches!(setting.kind, Kind::Hook | Kind::PyObject) {
            objects.get(setting.key).is_some()
        } else {
            let default = default_raw(setting).map(|raw| validate(setting, &raw)).transpose()?.unwrap_or(Value::None);
            *values.get(setting.key) != default
        };
        if !set {
            continue;
        }
        match setting.support {
            Support::Full => {}
            Support::Ignored(instead) => warnings.push(format!("Setting {} is not supported: {instead}.", setting.name)),
            Support::Refused(why) => {
                return Err(ConfigError::Invalid {
                    name: setting.name,
                    value: match values.get(setting.key) {
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
    /// Lines for the log at INFO (systemd's sockets taken over).
    pub notes: Vec<String>,
    /// Lines for the debug log (names in the configuration file that are
    /// not settings).
    pub debug: Vec<String>,
    /// Serve, or only check or print the configuration.
    pub run: Run,
}

/// What the resolved configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Serve,
    /// `--check-config`: load the app, then exit.
    CheckConfig,
    /// `--print-config` (wins over `--check-config`): print the settings,
    /// load the app, then exit.
    PrintConfig,
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
    // gunicorn: the launch directory is importable before the file runs.
    compat::prepare(py)?;
    let programmatic = PROGRAMMATIC.get();
    let ((gunicorn_app, gunicorn_env), (rsgi_app, rsgi_env)) = if programmatic.is_some() {
        ((None, Overrides::new()), (None, Overrides::new()))
    } else {
        (env_overrides("GUNICORN_CMD_ARGS")?, env_overrides("RSGI_CMD_ARGS")?)
    };
    let given = match programmatic {
        Some(p) => Some(pyfile::read_namespace(p.settings.bind(py), true)?),
        None => None,
    };
    // -c from the command line or the environment variables (or rsgi.run's
    // config=), else ./gunicorn.conf.py or ./rsgi.conf.py if present.
    let config_spec = [&cli.overrides, &rsgi_env, &gunicorn_env, given.as_ref().map(|g| &g.overrides).unwrap_or(&Overrides::new())]
        .iter()
        .find_map(|o| o.get(&Key::Config).and_then(|v| v.last()).cloned());
    let mut file = match (&given, &config_spec) {
        (Some(_), None) => pyfile::FileConfig::default(),
        _ => pyfile::load(py, config_spec.as_deref())?,
    };
    if let Some(given) = given {
        file.overrides.extend(given.overrides);
        file.objects.extend(given.objects);
    }
    let file_app = file.overrides.get(&Key::WsgiApp).and_then(|v| v.last()).cloned();
    // --paste FILE[#name] names a PasteDeploy app instead of module:callable.
    let paste = [&cli.overrides, &rsgi_env, &gunicorn_env, &file.overrides]
        .iter()
        .find_map(|o| o.get(&Key::Paste).and_then(|v| v.last()).cloned());
    let paste_app = match paste {
        Some(p) => {
            let (file, name) = p.split_once('#').map(|(f, n)| (f.to_owned(), Some(n.to_owned()))).unwrap_or((p.clone(), None));
            let abs = std::fs::canonicalize(&file).map_err(|_| ConfigError::Invalid {
                name: Key::Paste.name(),
                value: p.clone(),
                reason: "not found".into(),
            })?;
            Some(format!("config:{}{}", abs.display(), name.map(|n| format!("#{n}")).unwrap_or_default()))
        }
        None => None,
    };
    let app_object = programmatic.and_then(|p| p.app.as_ref()).map(|a| a.clone_ref(py));
    let object_name = app_object.as_ref().map(|a| describe_app(a.bind(py)));
    let from_command_line = paste_app.is_none() && (cli.app.is_some() || object_name.is_some());
    let app = paste_app
        .or(object_name)
        .or(cli.app.clone())
        .or(rsgi_app)
        .or(gunicorn_app)
        .or(file_app)
        .ok_or_else(|| ConfigError::Usage("No application module specified.".into()))?;
    let sources = [&file.overrides, &gunicorn_env, &rsgi_env, &cli.overrides];
    let mut values = Values::merge(&sources)?;
    let mut objects = PyObjects { map: file.objects };
    let mut warnings = check_support(&values, &objects)?;
    let print_config = values.flag(Key::PrintConfig);
    let run = if print_config {
        Run::PrintConfig
    } else if values.flag(Key::CheckConfig) {
        Run::CheckConfig
    } else {
        Run::Serve
    };
    let reuse_port = values.flag(Key::ReusePort);
    let worker = compat::worker_choice(py, &values, &objects)?;
    match worker.kind {
        WorkerKind::Sync | WorkerKind::Gthread | WorkerKind::Asgi => {}
        WorkerKind::Legacy => warnings.push(format!(
            "Worker class {} is no longer maintained; rsgi's own worker serves the app instead.",
            worker.name
        )),
        // --print-config shows what gunicorn would run; serving (and
        // --check-config) stops here.
        _ if print_config => {}
        WorkerKind::Gevent => crate::gevent::hub::check_installed(py).map_err(|reason| ConfigError::Invalid {
            name: Key::WorkerClass.name(),
            value: worker.name.clone(),
            reason: format!("the gevent worker needs the gevent package, which cannot be imported ({reason}): pip install 'rsgi[gevent]'"),
        })?,
        WorkerKind::Foreign | WorkerKind::Custom => {
            return Err(ConfigError::Invalid {
                name: Key::WorkerClass.name(),
                value: worker.name.clone(),
                reason: format!("{} workers run their own server loop, which rsgi cannot run", worker.kind.label()),
            })
        }
    }
    if !worker.ignored.is_empty() {
        warnings.push(format!("Worker class {}: CONFIG_KWARGS not used by rsgi: {}.", worker.name, worker.ignored.join(", ")));
    }
    if !worker.settings.is_empty() && !print_config {
        // uvicorn's worker lets its CONFIG_KWARGS win over the settings.
        let kwargs = compat::worker_overrides(&worker);
        values = Values::merge(&[&file.overrides, &gunicorn_env, &rsgi_env, &cli.overrides, &kwargs])?;
    }
    let logger_class = compat::logger_class(py, &values, &objects)?;
    if logger_class.is_some() && !print_config {
        compat::chain_access_hook(py, &mut objects)?;
    }
    let debug = if file.unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!("Ignoring names in the configuration file that are not settings: {}", file.unknown.join(", "))]
    };
    let mut cfg = Config::new(app, values)?;
    crate::listen::set_options(reuse_port, cfg.umask);
    cfg.app_from_command_line = from_command_line;
    cfg.gthread = worker.kind == WorkerKind::Gthread;
    cfg.worker = worker;
    cfg.logger_class = logger_class;
    cfg.objects = std::sync::Arc::new(objects);
    // As gunicorn: sockets from systemd socket activation replace --bind.
    let mut notes = Vec::new();
    let activated = crate::listen::systemd_activation().map_err(|reason| ConfigError::Invalid {
        name: Key::Bind.name(),
        value: "LISTEN_FDS".into(),
        reason,
    })?;
    {
        use pyo3::prelude::*;
        // listen:: removed systemd's variables (and a USR2 predecessor's
        // note of systemd's descriptors) from the process environment;
        // Python's copy (os.environ, what the app reads) loses them too,
        // as in gunicorn.
        if let Ok(environ) = py.import("os").and_then(|os| os.getattr("environ")) {
            let consumed = activated.is_some().then_some(["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]);
            for k in consumed.into_iter().flatten().chain([crate::listen::SYSTEMD_FDS_ENV]) {
                let _ = environ.call_method1("pop", (k, py.None()));
            }
        }
    }
    if let Some(a) = activated {
        cfg.bind = a.binds();
        for (fd, name) in &a.fds {
            notes.push(format!("Socket activation: fd {fd} ({name}) from systemd"));
        }
    }
    if let Some(app) = app_object {
        // An app object exists in the master already: every worker shares it.
        cfg.preload_app = true;
        cfg.preloaded_app = Some(app);
    }
    Ok(Resolved { cfg, warnings, notes, debug, run })
}

/// How an app object passed to `rsgi.run` is named (`module:name`).
fn describe_app(app: &Bound<'_, PyAny>) -> String {
    let attr = |name: &str| app.getattr(name).ok().and_then(|v| v.extract::<String>().ok());
    let module = attr("__module__").unwrap_or_else(|| "__main__".into());
    let name = attr("__qualname__").or_else(|| attr("__name__")).unwrap_or_else(|| "app".into());
    format!("{module}:{name}")
}

/// Apply `--chdir`, `--pythonpath` and `-e` to the interpreter, as gunicorn
/// does before loading the app. Called in the master (at startup and on
/// HUP) with the GIL held.
pub fn apply_to_python(py: pyo3::Python<'_>, cfg: &Config) -> Result<(), String> {
    // gunicorn reads a relative --chdir from the launch directory and puts
    // the absolute path on sys.path.
    let base = compat::launch_dir();
    let target = if std::path::Path::new(&cfg.chdir).is_absolute() { cfg.chdir.clone() } else { format!("{base}/{}", cfg.chdir) };
    std::env::set_current_dir(&cfg.chdir).map_err(|e| format!("can't chdir to {:?}: {e}", cfg.chdir))?;
    let os = py.import("os").map_err(|e| e.to_string())?;
    let environ = os.getattr("environ").map_err(|e| e.to_string())?;
    for (k, v) in &cfg.raw_env {
        environ.set_item(k, v).map_err(|e| format!("cannot set {k} in the environment: {e}"))?;
    }
    // The launch directory stays; the --chdir directory and then each
    // --pythonpath entry go first, as gunicorn orders them.
    compat::apply_paths(py, &target, &cfg.pythonpath)
}
