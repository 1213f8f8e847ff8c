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
//! - [`listen`]: binding `--bind` addresses in the master;
//!   [`stop_filter`]: the filter that makes a stopping server's listeners
//!   refuse new connections while it serves the queued ones.
//! - [`master`]: the arbiter loop (signals, reaping, worker count) and the
//!   fork protocol (`master::spawn`); what its loop polls besides signals
//!   (`master::events`): the Prometheus endpoint (`master::metrics`, served
//!   by `master::exporter`) and `--reload`'s file watch and trial imports
//!   (`master::watch`).
//! - [`process`]: a worker process's life after fork: load the app, start
//!   the executor kind, run the worker core, drain, exit.
//! - [`worker`]: the worker core, which knows no executor kind: the mio I/O
//!   loop that owns every socket (`io_loop`, with each connection's
//!   request/response cycle in `cycle` and its state in `conn`; accepting
//!   and passing connections between sibling workers in `intake` and
//!   `handoff`; draining, retiring and the periodic checks in
//!   `lifecycle`), the relay that keeps the loop going while the loop
//!   thread runs a long app call (`relay`), the exchange of each request
//!   with the thread that runs it (`exchange`), the seam to executor kinds
//!   (`task`: what is handed over, and the traits a kind implements),
//!   static files answered by the loop itself (`static_serve`, for
//!   `--static-map`), and TLS connections' I/O through rustls (`tls_io`).
//! - [`tls`]: the TLS settings turned into a rustls server configuration.
//! - [`static_files`]: the pure rules for static files: path mapping and
//!   traversal refusal, content types, validators and 304, ranges,
//!   precompressed siblings, `Cache-Control`.
//! - [`scoreboard`]: the shared page of worker heartbeats and request start
//!   times the master uses for `--timeout` and recycling, and of each
//!   worker's traffic counters and load for the metrics.
//! - [`hooks`]: gunicorn's server hooks; [`access_log`], [`syslog`],
//!   [`statsd`] and [`pylog`]: the other outputs besides the error log;
//!   [`proctitle`]: process titles.
//! - [`http`]: pure HTTP/1.1: parsing, framing, response heads; no I/O.
//! - [`websocket`]: pure WebSockets (RFC 6455, permessage-deflate): the
//!   handshake, frames, messages; no I/O.
//! - [`wsgi`]: PEP 3333: app loading, environ, `start_response`,
//!   `wsgi.input`, the response driver, and the WSGI executor kind
//!   (`wsgi::executor`: attached Python threads, and the loop-thread runner).
//! - [`gevent`]: the gevent executor kind: gevent's hub on the worker's
//!   main thread, a greenlet per request, woken by an eventfd the loop
//!   rings.
//! - [`log`] and [`signals`]: the error log and the self-pipe for signals.

pub mod access_log;
pub mod asgi;
pub mod cli;
pub mod config;
pub mod gevent;
pub mod hooks;
pub mod http;
pub mod listen;
pub mod log;
pub mod master;
pub mod process;
pub mod proctitle;
pub mod pylog;
pub mod scoreboard;
pub mod signals;
pub mod static_files;
pub mod statsd;
pub mod stop_filter;
pub mod syslog;
pub mod tls;
pub mod websocket;
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
    use config::Key;
    let mut settings: Vec<&config::settings::Setting> = config::settings::SETTINGS.iter().filter(|s| !s.rsgi_only).collect();
    settings.sort_unstable_by_key(|s| s.name);
    let width = settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for setting in settings {
        let (key, name) = (setting.key, setting.name);
        let value = if let Some(obj) = cfg.objects.get(key) {
            // gunicorn prints callables (hooks, classes) by qualified name.
            Python::attach(|py| {
                let obj = obj.bind(py);
                match obj.getattr("__qualname__") {
                    Ok(q) if obj.is_callable() => format!("<{q}()>"),
                    _ => obj.str().map(|s| s.to_string()).unwrap_or_default(),
                }
            })
        } else if matches!(setting.kind, config::settings::Kind::Hook | config::settings::Kind::PyObject) {
            if setting.kind == config::settings::Kind::PyObject {
                "{}".into()
            } else {
                format!("<{}()>", config::settings::default_hook_name(key))
            }
        } else {
            match key {
                // gunicorn prints the ids it will switch to (its own by default).
                Key::User => cfg.user.as_ref().map(|u| u.0).unwrap_or_else(config::effective_uid).to_string(),
                Key::Group => cfg.group.unwrap_or_else(config::effective_gid).to_string(),
                Key::DefaultProcName => if cfg.app_from_command_line { cfg.app.clone() } else { "gunicorn".to_owned() },
                Key::StatsdHost => match &cfg.statsd_host {
                    // gunicorn keeps the address as a (host, port) tuple.
                    Some(h) if !h.starts_with("unix:") => match h.rsplit_once(':') {
                        Some((host, port)) => format!("('{}', {port})", host.trim_matches(|c| c == '[' || c == ']')),
                        None => format!("('{h}', 8125)"),
                    },
                    Some(h) => h.trim_start_matches("unix:").to_owned(),
                    None => "None".to_owned(),
                },
                Key::ControlSocket => control_socket_text(cfg),
                _ => cfg.values.python_str(key),
            }
        };
        out.push_str(&format!("{name:width$} = {value}\n"));
    }
    out
}

/// `--version`: rsgi's version, the pyo3 it was built with (from
/// Cargo.lock, by build.rs) and the interpreter running it.
fn version_line(py: Python<'_>) -> String {
    let v = py.version_info();
    let implementation = py
        .import("sys")
        .and_then(|sys| sys.getattr("implementation")?.getattr("name")?.extract::<String>())
        .map(|n| if n == "cpython" { "CPython".to_owned() } else { n })
        .unwrap_or_else(|_| "Python".into());
    format!(
        "rsgi (version {}), pyo3 {}, {implementation} {}.{}.{}",
        env!("CARGO_PKG_VERSION"),
        env!("RSGI_PYO3_VERSION"),
        v.major,
        v.minor,
        v.patch
    )
}

/// `control_socket` as gunicorn prints it: its default is
/// `$XDG_RUNTIME_DIR/gunicorn.ctl` when that directory exists, else
/// `~/.gunicorn/gunicorn.ctl` with the home directory expanded; a value
/// given is printed as given.
fn control_socket_text(cfg: &config::Config) -> String {
    let given = cfg.values.python_str(config::Key::ControlSocket);
    let default = match config::Key::ControlSocket.setting().default {
        config::settings::Default::Literal(d) => d,
        _ => "",
    };
    if given != default {
        return given;
    }
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(dir) if !dir.is_empty() && std::path::Path::new(&dir).is_dir() => format!("{}/gunicorn.ctl", dir.trim_end_matches('/')),
        _ => given.replacen('~', &std::env::var("HOME").unwrap_or_default(), 1),
    }
}

/// `rsgi.run(app_or_uri, **settings)`: serve `app` (an app object, or a
/// `module:callable` string) with `settings` (setting names as keywords)
/// instead of a command line, configuration file and `*_CMD_ARGS`. Returns
/// the exit status.
#[pyfunction]
fn serve(py: Python<'_>, app: Bound<'_, PyAny>, settings: Bound<'_, pyo3::types::PyDict>) -> i32 {
    let mut argv = vec!["rsgi".to_owned()];
    let object = match app.extract::<String>() {
        Ok(uri) => {
            argv.push(uri);
            None
        }
        Err(_) => Some(app.unbind()),
    };
    config::set_programmatic(config::Programmatic { settings: settings.unbind(), app: object });
    main(py, argv)
}

/// The entry point: `rsgi [OPTIONS] APP_MODULE`. Returns the exit status.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = argv.get(1..).unwrap_or_default();
    let cli = match cli::parse(args) {
        Ok(c) => c,
        Err(e) => return report(e),
    };
    match cli.action {
        cli::Action::Help => {
            print!("{}", cli::help_text());
            return 0;
        }
        cli::Action::Version => {
            println!("{}", version_line(py));
            return 0;
        }
        cli::Action::Run => {}
    }
    let start_dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "/".into());
    let config::Resolved { mut cfg, warnings, notes, debug, run } = match config::resolve(py, &cli) {
        Ok(r) => r,
        Err(e) => return report(e),
    };
    if let Some((header, software)) = config::compat::server_names(py) {
        http::response::set_server_names(header, software);
    }
    if run == config::Run::PrintConfig {
        print!("{}", print_config_text(&cfg));
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    // --chdir, --pythonpath and -e before the logs and the app, as gunicorn
    // (a logconfig_dict may name a formatter class from the project).
    if let Err(e) = config::apply_to_python(py, &cfg) {
        eprintln!("Error: {e}");
        return CONFIG_ERROR;
    }
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
    for n in &notes {
        crate::info!("{n}");
    }
    for d in &debug {
        crate::debug!("{d}");
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
            // As gunicorn: a statsd server that is not there yet (a sidecar
            // starting later) does not stop the server.
            crate::warn!("Cannot reach statsd at {host}: {e}; metrics are not sent.");
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
    // A custom logger_class writes the access log itself (its access()).
    if (cfg.accesslog.is_some() || syslog_access || pylog::enabled()) && !pylog::custom() {
        if let Err(e) = access_log::init(cfg.accesslog.as_deref(), &cfg.access_log_format) {
            eprintln!("Error: cannot open access log {:?}: {e}", cfg.accesslog);
            return CONFIG_ERROR;
        }
    }
    // --check-config and --print-config load the app and stop there, as
    // gunicorn does; --preload keeps it for the workers.
    let load_only = run != config::Run::Serve;
    if load_only && cfg.preloaded_app.is_some() {
        return 0;
    }
    if (load_only || cfg.preload_app) && cfg.preloaded_app.is_none() {
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
        // As gunicorn's daemonize: a daemon creates its files under 022
        // (--umask applies to unix socket files only, in listen::bind).
        // SAFETY: umask only sets this process's file creation mask.
        unsafe { libc::umask(0o022) };
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
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add_function(wrap_pyfunction!(hooks::_log, m)?)?;
    m.add_function(wrap_pyfunction!(settings_table, m)?)?;
    m.add_class::<wsgi::file_wrapper::FileWrapper>()?;
    m.add_class::<wsgi::input::Input>()?;
    m.add_class::<wsgi::errors::ErrorStream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("__pyo3_version__", env!("RSGI_PYO3_VERSION"))?;
    Ok(())
}
