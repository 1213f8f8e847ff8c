//! rsgi: a pre-fork WSGI HTTP server written in Rust, with gunicorn's
//! interface.
//!
//! `python -m rsgi` (or the `rsgi` console script) hands `sys.argv` to
//! [`main`]; from there Rust owns everything.
//!
//! # Layout
//!
//! - [`cli`] and [`config`]: the command line, environment variables and the
//!   settings table, merged into a frozen `Config`.
//! - [`listen`]: binding `--bind` addresses in the master.
//! - [`master`]: the arbiter loop (signals, reaping, worker count) and the
//!   fork protocol (`master::spawn`).
//! - [`worker`]: a worker process: the mio I/O loop that owns every socket
//!   and never takes the GIL (`io_loop`, `conn`), the executor threads that
//!   run the app (`executor`), and the hand-off between them (`exchange`).
//! - [`http`]: pure HTTP/1.1: parsing, framing, response heads; no I/O.
//! - [`wsgi`]: PEP 3333: app loading, environ, `start_response`,
//!   `wsgi.input`, the response driver.
//! - [`log`] and [`signals`]: the error log and the self-pipe for signals.

pub mod cli;
pub mod config;
pub mod http;
pub mod listen;
pub mod log;
pub mod master;
pub mod proctitle;
pub mod scoreboard;
pub mod signals;
pub mod worker;
pub mod wsgi;

use pyo3::prelude::*;
use pyo3::types::PyList;

use config::{ConfigError, Overrides, Values};

/// Exit status for command-line mistakes (argparse's).
const USAGE_ERROR: i32 = 2;
/// Exit status for invalid configuration values (gunicorn's).
const CONFIG_ERROR: i32 = 1;

/// Parse one environment variable of extra arguments.
fn env_overrides(var: &str) -> Result<(Option<String>, Overrides), ConfigError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            let words = cli::split_shell_words(&v)
                .map_err(|e| ConfigError::Usage(format!("{var}: {e}")))?;
            let parsed = cli::parse(&words, true).map_err(|e| ConfigError::Usage(format!("{var}: {e}")))?;
            Ok((parsed.app, parsed.overrides))
        }
        _ => Ok((None, Overrides::new())),
    }
}

/// Print a configuration error as one line and give its exit status.
fn report(err: ConfigError) -> i32 {
    match err {
        ConfigError::Usage(msg) => {
            eprintln!("rsgi: error: {msg} (see 'rsgi --help')");
            USAGE_ERROR
        }
        e @ ConfigError::Invalid { .. } => {
            eprintln!("Error: {e}");
            CONFIG_ERROR
        }
    }
}

/// Apply `--chdir` and `--pythonpath` to the interpreter, as gunicorn does
/// before loading the app. Called in the master.
fn prepare_python(py: Python<'_>, cfg: &config::Config) -> Result<(), String> {
    std::env::set_current_dir(&cfg.chdir).map_err(|e| format!("can't chdir to {:?}: {e}", cfg.chdir))?;
    let sys = py.import("sys").map_err(|e| e.to_string())?;
    let path = sys.getattr("path").and_then(|p| p.cast_into::<PyList>().map_err(Into::into)).map_err(|e| e.to_string())?;
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

/// The entry point: `rsgi [OPTIONS] APP_MODULE`. Returns the exit status.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = argv.get(1..).unwrap_or_default();
    let cli = match cli::parse(args, true) {
        Ok(c) => c,
        Err(e) => return report(e),
    };
    if cli.help {
        print!("{}", cli::help_text());
        return 0;
    }
    if cli.version {
        println!("rsgi (version {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let (gunicorn_app, gunicorn_env) = match env_overrides("GUNICORN_CMD_ARGS") {
        Ok(v) => v,
        Err(e) => return report(e),
    };
    let (rsgi_app, rsgi_env) = match env_overrides("RSGI_CMD_ARGS") {
        Ok(v) => v,
        Err(e) => return report(e),
    };
    let Some(app) = cli.app.clone().or(rsgi_app).or(gunicorn_app) else {
        return report(ConfigError::Usage("No application module specified.".into()));
    };
    let values = match Values::merge(&[&gunicorn_env, &rsgi_env, &cli.overrides]) {
        Ok(v) => v,
        Err(e) => return report(e),
    };
    let cfg = match config::Config::new(app, values) {
        Ok(c) => c,
        Err(e) => return report(e),
    };
    let start_dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "/".into());
    // SAFETY: umask only sets this process's file creation mask.
    unsafe { libc::umask(cfg.umask as libc::mode_t) };
    if let Err(e) = log::init(log::Level::parse(&cfg.loglevel), &cfg.errorlog) {
        eprintln!("Error: cannot open error log {:?}: {e}", cfg.errorlog);
        return CONFIG_ERROR;
    }
    // Python's own SIGINT handler would turn INT into KeyboardInterrupt
    // (and a death by SIGINT) after the master returns: the master's
    // handlers take over INT.
    let _ = py.run(c"import signal\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n", None, None);
    // What workers use to load the app and report errors, imported before
    // they fork: a worker running as --user may not be able to read the
    // standard library's files.
    let _ = py.run(c"import ast, importlib, traceback, faulthandler\n", None, None);
    if let Err(e) = prepare_python(py, &cfg) {
        eprintln!("Error: {e}");
        return CONFIG_ERROR;
    }
    if cfg.daemon {
        if let Err(e) = master::spawn::daemonize() {
            eprintln!("Error: cannot daemonize: {e}");
            return CONFIG_ERROR;
        }
    }
    master::run(py, cfg, start_dir)
}

/// The private extension module behind the `rsgi` package.
#[pymodule]
fn _rsgi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_class::<wsgi::file_wrapper::FileWrapper>()?;
    m.add_class::<wsgi::input::Input>()?;
    m.add_class::<wsgi::errors::ErrorStream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
