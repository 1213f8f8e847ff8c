//! rsgi: a pre-fork WSGI HTTP server written in Rust, with gunicorn's
//! interface.
//!
//! `python -m rsgi` (or the `rsgi` console script) hands `sys.argv` to
//! [`main`]; from there Rust owns everything.
//!
//! # Layout
//!
//! - [`cli`] and [`config`]: the command line, environment variables, the
//!   Python configuration file and the settings table, merged into a frozen
//!   `Config`.
//! - [`listen`]: binding `--bind` addresses in the master.
//! - [`master`]: the arbiter loop (signals, reaping, worker count) and the
//!   fork protocol (`master::spawn`).
//! - [`worker`]: a worker process: the mio I/O loop that owns every socket
//!   and never takes the GIL (`io_loop`, with each connection's
//!   request/response cycle in `cycle` and its state in `conn`), the
//!   executor threads that run the app (`executor`), and the hand-off between
//!   them (`exchange`).
//! - [`scoreboard`]: the shared page of worker heartbeats and request start
//!   times the master uses for `--timeout` and recycling.
//! - [`hooks`]: gunicorn's server hooks; [`access_log`], [`syslog`],
//!   [`statsd`] and [`pylog`]: the other outputs besides the error log;
//!   [`proctitle`]: process titles.
//! - [`http`]: pure HTTP/1.1: parsing, framing, response heads; no I/O.
//! - [`wsgi`]: PEP 3333: app loading, environ, `start_response`,
//!   `wsgi.input`, the response driver.
//! - [`log`] and [`signals`]: the error log and the self-pipe for signals.

pub mod access_log;
pub mod cli;
pub mod config;
pub mod hooks;
pub mod http;
pub mod listen;
pub mod log;
pub mod master;
pub mod proctitle;
pub mod pylog;
pub mod scoreboard;
pub mod signals;
pub mod statsd;
pub mod syslog;
pub mod worker;
pub mod wsgi;

use pyo3::prelude::*;

use config::ConfigError;

/// Exit status for command-line mistakes (argparse's).
const USAGE_ERROR: i32 = 2;
/// Exit status for invalid configuration values (gunicorn's).
const CONFIG_ERROR: i32 = 1;

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

/// `--print-config`: every setting as `name = value`, sorted, aligned, as
/// gunicorn prints them.
fn print_config_text(cfg: &config::Config) -> String {
    let names: Vec<&str> = config::settings::SETTINGS.iter().filter(|s| !s.rsgi_only).map(|s| s.name).collect();
    let mut names = names;
    names.sort_unstable();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for name in names {
        let setting = config::settings::find(name).expect("listed above");
        let value = if matches!(setting.kind, config::settings::Kind::Hook | config::settings::Kind::PyObject) {
            match cfg.objects.get(name) {
                Some(obj) => Python::attach(|py| {
                    let obj = obj.bind(py);
                    match obj.getattr("__qualname__") {
                        Ok(q) => format!("<{q}()>"),
                        Err(_) => obj.str().map(|s| s.to_string()).unwrap_or_default(),
                    }
                }),
                None if setting.kind == config::settings::Kind::PyObject => "{}".into(),
                None => format!("<{}()>", config::settings::default_hook_name(name)),
            }
        } else {
            match name {
                // gunicorn prints the ids it will switch to (its own by default).
                // SAFETY: geteuid/getegid have no preconditions.
                "user" => cfg.user.as_ref().map(|u| u.0).unwrap_or_else(|| unsafe { libc::geteuid() }).to_string(),
                "group" => cfg.group.unwrap_or_else(|| unsafe { libc::getegid() }).to_string(),
                "default_proc_name" => if cfg.app_from_command_line { cfg.app.clone() } else { "gunicorn".to_owned() },
                "statsd_host" => match &cfg.statsd_host {
                    // gunicorn keeps the address as a (host, port) tuple.
                    Some(h) if !h.starts_with("unix:") => match h.rsplit_once(':') {
                        Some((host, port)) => format!("('{}', {port})", host.trim_matches(|c| c == '[' || c == ']')),
                        None => format!("('{h}', 8125)"),
                    },
                    Some(h) => h.trim_start_matches("unix:").to_owned(),
                    None => "None".to_owned(),
                },
                "control_socket" => cfg.values.python_str(name).replacen('~', &std::env::var("HOME").unwrap_or_default(), 1),
                _ => cfg.values.python_str(name),
            }
        };
        out.push_str(&format!("{name:width$} = {value}\n"));
    }
    out
}

/// The entry point: `rsgi [OPTIONS] APP_MODULE`. Returns the exit status.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = argv.get(1..).unwrap_or_default();
    let cli = match cli::parse(args) {
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
    let config::Resolved { mut cfg, warnings, print_config, check_config } = match config::resolve(py, &cli) {
        Ok(r) => r,
        Err(e) => return report(e),
    };
    if print_config {
        print!("{}", print_config_text(&cfg));
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
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
    // (Set directly: importing Python's `signal` module costs the master
    // memory for nothing.)
    // SAFETY: resetting one signal's disposition before any handler of
    // ours is installed.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    if cfg.user.is_some() || cfg.group.is_some() {
        // What workers use to load the app and report errors, imported
        // before they fork: a worker running as --user may not be able to
        // read the standard library's files. Otherwise each worker imports
        // them itself, and the master stays small.
        let _ = py.run(c"import ast, importlib, traceback, faulthandler\n", None, None);
    }
    for w in &warnings {
        crate::warn!("{w}");
    }
    if let Err(e) = pylog::configure(py, &cfg) {
        eprintln!("Error: cannot configure logging: {e}");
        return CONFIG_ERROR;
    }
    if cfg.syslog {
        let prefix = cfg.syslog_prefix.clone().unwrap_or_else(|| cfg.proc_name.replace(':', "."));
        if let Err(e) = syslog::init(&cfg.syslog_addr, &cfg.syslog_facility, &prefix, !cfg.disable_redirect_access_to_syslog) {
            eprintln!("Error: cannot log to syslog: {e}");
            return CONFIG_ERROR;
        }
    }
    if let Some(host) = &cfg.statsd_host {
        if let Err(e) = statsd::init(host, &cfg.statsd_prefix, &cfg.dogstatsd_tags) {
            eprintln!("Error: cannot reach statsd at {host:?}: {e}");
            return CONFIG_ERROR;
        }
    }
    if cfg.capture_output && cfg.errorlog != "-" {
        // The app's print() and stray writes go to the error log too.
        // SAFETY: duplicating the log's descriptor over stdout and stderr.
        unsafe {
            libc::dup2(log::fd(), 1);
            libc::dup2(log::fd(), 2);
        }
    }
    let syslog_access = cfg.syslog && !cfg.disable_redirect_access_to_syslog;
    if cfg.accesslog.is_some() || syslog_access || pylog::enabled() {
        if let Err(e) = access_log::init(cfg.accesslog.as_deref(), &cfg.access_log_format) {
            eprintln!("Error: cannot open access log {:?}: {e}", cfg.accesslog);
            return CONFIG_ERROR;
        }
    }
    if let Err(e) = config::apply_to_python(py, &cfg) {
        eprintln!("Error: {e}");
        return CONFIG_ERROR;
    }
    // --check-config and --print-config load the app and stop there, as
    // gunicorn does; --preload keeps it for the workers.
    let load_only = check_config || print_config;
    if load_only || cfg.preload_app {
        match wsgi::app::load_app_with(py, &cfg.app, &cfg.paste_global_conf) {
            Ok(app) if load_only => {
                drop(app);
                return 0;
            }
            Ok(app) => cfg.preloaded_app = Some(app),
            Err(e) => {
                eprintln!("Error while loading the application: {}", e.message);
                return if load_only { CONFIG_ERROR } else if e.import_failed { 3 } else { 4 };
            }
        }
    }
    if cfg.daemon {
        if let Err(e) = master::spawn::daemonize() {
            eprintln!("Error: cannot daemonize: {e}");
            return CONFIG_ERROR;
        }
    }
    master::run(py, cfg, start_dir, args.to_vec())
}

/// `rsgi._rsgi.settings_table()`: every setting as
/// `(name, flags, support, rsgi_only)`, where support is `full`,
/// `ignored: WHY` or `refused: WHY` (used by the test that checks the table
/// against gunicorn's own list).
#[pyfunction]
fn settings_table() -> Vec<(String, Vec<String>, String, bool)> {
    config::settings::SETTINGS
        .iter()
        .map(|s| {
            let support = match s.support {
                config::settings::Support::Full => "full".to_owned(),
                config::settings::Support::Ignored(why) => format!("ignored: {why}"),
                config::settings::Support::Refused(why) => format!("refused: {why}"),
            };
            (s.name.to_owned(), s.flags.iter().map(|f| f.to_string()).collect(), support, s.rsgi_only)
        })
        .collect()
}

/// The private extension module behind the `rsgi` package.
#[pymodule]
fn _rsgi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(hooks::_log, m)?)?;
    m.add_function(wrap_pyfunction!(settings_table, m)?)?;
    m.add_class::<wsgi::file_wrapper::FileWrapper>()?;
    m.add_class::<wsgi::input::Input>()?;
    m.add_class::<wsgi::errors::ErrorStream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
