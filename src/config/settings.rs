//! The settings table: every setting rsgi knows, declared once with
//! gunicorn's name, its CLI flags, its default, how its value is validated and
//! its help text. The CLI parser, `--help`, the configuration merge and the
//! settings list in docs/settings.md all read this table (STYLE 8).
//!
//! Each entry is `Key = s("name", ...)`: the `table!` macro makes the
//! [`Key`] enum and the [`SETTINGS`] array from the same list, so a setting
//! is added in one place and code reads it by key (`values.int(Key::Backlog)`;
//! a misspelt key does not compile).
//!
//! Pure data and validators; read in the master before anything starts.

/// How a setting's value is read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-negative integer (gunicorn `validate_pos_int`).
    PosInt,
    /// A string.
    Str,
    /// A flag that takes no value on the command line (`store_true`).
    Flag,
    /// A flag that stores false (`--no-sendfile`, gunicorn's `store_const`).
    FlagFalse,
    /// Repeatable option; each use appends one string (`append`).
    List,
    /// A comma-separated list of strings.
    CommaList,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A comma-separated list of IP addresses / networks, or `*`.
    AddrList,
    /// A mapping of header name to value (config file only).
    Dict,
    /// An integer in any base Python's `int(x, 0)` reads (`0o22`, `0x12`),
    /// or octal with a leading zero (`022`), as umasks are written.
    AutoInt,
    /// A server hook: a Python callable from the configuration file.
    Hook,
    /// Any Python value from the configuration file (e.g. `logconfig_dict`).
    PyObject,
    /// A non-negative number of seconds, whole or not (uvicorn's floats).
    Seconds,
    /// A value that may be omitted after the flag, meaning `const`.
    OptionalChoice { choices: &'static [&'static str], implied: &'static str },
}

/// Where a setting's default comes from.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A literal (lists: comma-separated; dicts: `NAME=value` comma-separated).
    Literal(&'static str),
    /// `workers`: `$WEB_CONCURRENCY`, else 1 (as gunicorn).
    WebConcurrency,
    /// `chdir`: the directory rsgi started in.
    CurrentDir,
    /// No value.
    None,
}

/// One setting: gunicorn's name and everything needed to read it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The key code reads the setting by (set by `table!`).
    pub key: Key,
    /// gunicorn's setting name (also the config-file variable).
    pub name: &'static str,
    /// Command-line flags, short first; empty when config-file only.
    pub flags: &'static [&'static str],
    /// The value's placeholder in `--help`.
    pub meta: &'static str,
    pub kind: Kind,
    pub default: Default,
    /// The section of `--help` and of the list in docs/settings.md.
    pub section: &'static str,
    /// One-line help.
    pub help: &'static str,
    /// True when the setting is rsgi's own (gunicorn has no such setting).
    pub rsgi_only: bool,
    /// What rsgi does with the setting.
    pub support: Support,
}

/// How far rsgi honours a gunicorn setting. Every gunicorn setting is in
/// the table; none is silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Works as in gunicorn.
    Full,
    /// Accepted; a value other than the default logs one warning saying
    /// what rsgi does instead.
    Ignored(&'static str),
    /// A value other than the default stops rsgi with one line saying why.
    Refused(&'static str),
}

const fn s(
    name: &'static str,
    flags: &'static [&'static str],
    meta: &'static str,
    kind: Kind,
    default: Default,
    section: &'static str,
    help: &'static str,
) -> Setting {
    // `key` is a placeholder here: `table!` puts each entry's own key in.
    Setting { key: Key::Config, name, flags, meta, kind, default, section, help, rsgi_only: false, support: Support::Full }
}

const fn own(mut setting: Setting) -> Setting {
    setting.rsgi_only = true;
    setting
}

/// A gunicorn setting rsgi accepts without acting on it.
const fn ignored(mut setting: Setting, instead: &'static str) -> Setting {
    setting.support = Support::Ignored(instead);
    setting
}

/// A gunicorn setting rsgi cannot honour: a non-default value is refused.
const fn refused(mut setting: Setting, why: &'static str) -> Setting {
    setting.support = Support::Refused(why);
    setting
}

const RUSTLS_CONTEXT: &str = "rsgi's TLS is rustls, built from --certfile, --keyfile, --ca-certs and --cert-reqs; a Python ssl context cannot apply";
const NO_H2: &str = "rsgi speaks HTTP/1.1 only";
const NO_DIRTY: &str = "rsgi has no dirty arbiters; the setting has no effect";

/// Declares [`Key`] and [`SETTINGS`] from one list of `Key = setting`
/// entries, in `--help` order; `SETTINGS[key as usize]` is the key's entry.
macro_rules! table {
    ($($key:ident = $setting:expr,)*) => {
        /// A setting, as code names it: one variant per entry of the table,
        /// the CamelCase of its gunicorn name (a unit test checks this).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Key {
            $($key,)*
        }

        impl Key {
            /// Every key, in table order.
            pub const ALL: &'static [Key] = &[$(Key::$key,)*];
        }

        /// Every setting, in `--help` order (the order of [`Key`]).
        pub static SETTINGS: &[Setting] = &[$(Setting { key: Key::$key, ..$setting },)*];
    };
}

impl Key {
    /// The key's entry in the table.
    pub fn setting(self) -> &'static Setting {
        &SETTINGS[self as usize]
    }

    /// gunicorn's name for the setting.
    pub fn name(self) -> &'static str {
        self.setting().name
    }
}

use self::Default::Literal;
use Kind::*;

table! {
    Config = s("config", &["-c", "--config"], "CONFIG", Str, Literal("./gunicorn.conf.py"), "Config File",
      "The Python configuration file (or python:module.name) to load; ./gunicorn.conf.py or ./rsgi.conf.py by default."),
    WsgiApp = s("wsgi_app", &[], "", Str, Default::None, "Config File",
      "The WSGI app (module:callable), when the command line gives none."),
    Bind = s("bind", &["-b", "--bind"], "ADDRESS", List, Literal("127.0.0.1:8000"), "Server Socket",
      "The socket to bind: HOST, HOST:PORT, [IPv6]:PORT, unix:PATH or fd://FD. Repeat to bind several."),
    Backlog = s("backlog", &["--backlog"], "INT", PosInt, Literal("2048"), "Server Socket",
      "The maximum number of pending connections."),
    Workers = s("workers", &["-w", "--workers"], "INT", PosInt, Default::WebConcurrency, "Worker Processes",
      "The number of worker processes for handling requests (default: $WEB_CONCURRENCY or 1)."),
    WorkerClass = s("worker_class", &["-k", "--worker-class"], "STRING", Str, Literal("sync"), "Worker Processes",
      "The worker type, by name, dotted path or class: sync and gthread (and their subclasses) run rsgi's threaded worker; gevent (gevent_wsgi, gevent_pywsgi and subclasses) runs each request in a greenlet; asgi and uvicorn's workers run rsgi's ASGI worker."),
    Threads = s("threads", &["--threads"], "INT", PosInt, Literal("1"), "Worker Processes",
      "The number of Python executor threads per worker (at most 256)."),
    WorkerConnections = s("worker_connections", &["--worker-connections"], "INT", PosInt, Literal("1000"), "Worker Processes",
      "The maximum number of simultaneous connections per worker."),
    Timeout = s("timeout", &["-t", "--timeout"], "INT", PosInt, Literal("30"), "Worker Processes",
      "Seconds a worker may be silent before it is killed and restarted (0 disables)."),
    GracefulTimeout = s("graceful_timeout", &["--graceful-timeout"], "INT", PosInt, Literal("30"), "Worker Processes",
      "Seconds workers get to finish in-flight requests after a graceful stop before they are killed."),
    MaxRequests = s("max_requests", &["--max-requests"], "INT", PosInt, Literal("0"), "Worker Processes",
      "Restart a worker after it has served this many requests (0 disables)."),
    MaxRequestsJitter = s("max_requests_jitter", &["--max-requests-jitter"], "INT", PosInt, Literal("0"), "Worker Processes",
      "Add a random 0..N to each worker's --max-requests, so workers do not restart together."),
    MaxWorkerMemory = own(s("max_worker_memory", &["--max-worker-memory"], "MIB", PosInt, Literal("0"), "Worker Processes",
      "Restart a worker gracefully once its resident memory passes this many MiB (0 disables).")),
    Keepalive = s("keepalive", &["--keep-alive"], "INT", PosInt, Literal("2"), "Worker Processes",
      "Seconds to wait for the next request on a keep-alive connection."),
    LimitRequestLine = s("limit_request_line", &["--limit-request-line"], "INT", PosInt, Literal("4094"), "Security",
      "The maximum size of the HTTP request line in bytes (0 = unlimited, at most 8190)."),
    LimitRequestFields = s("limit_request_fields", &["--limit-request-fields"], "INT", PosInt, Literal("100"), "Security",
      "The maximum number of HTTP header fields in a request (at most 32768)."),
    LimitRequestFieldSize = s("limit_request_field_size", &["--limit-request-field_size"], "INT", PosInt, Literal("8190"), "Security",
      "The maximum size of one HTTP request header field in bytes (0 = 8190)."),
    LimitRequestBody = own(s("limit_request_body", &["--limit-request-body"], "INT", PosInt, Literal("0"), "Security",
      "The maximum size of a request body in bytes; larger bodies get 413 (0 = unlimited).")),
    Reload = s("reload", &["--reload"], "", Flag, Literal("false"), "Debugging",
      "Replace the workers gracefully when the app's code changes, once the new code loads (development)."),
    ReloadEngine = s("reload_engine", &["--reload-engine"], "STRING", Choice(&["auto", "poll", "inotify"]), Literal("auto"),
      "Debugging", "How --reload notices changes: inotify, poll (modification times, each second), or auto (inotify, else poll)."),
    ReloadExtraFiles = s("reload_extra_files", &["--reload-extra-file"], "FILES", List, Literal(""), "Debugging",
      "Another file (or glob pattern) whose change triggers --reload; repeatable."),
    Spew = ignored(s("spew", &["--spew"], "", Flag, Literal("false"), "Debugging",
      "Trace every executed line (extremely slow)."), "line tracing is not available"),
    CheckConfig = s("check_config", &["--check-config"], "", Flag, Literal("false"), "Debugging",
      "Check the configuration and the app, then exit (0 if good)."),
    PrintConfig = s("print_config", &["--print-config"], "", Flag, Literal("false"), "Debugging",
      "Print the configuration as name = value lines, then exit."),
    PreloadApp = s("preload_app", &["--preload"], "", Flag, Literal("false"), "Server Mechanics",
      "Load the app in the master before forking the workers."),
    Sendfile = ignored(s("sendfile", &["--no-sendfile"], "", FlagFalse, Default::None, "Server Mechanics",
      "Disable sendfile() for wsgi.file_wrapper."), "rsgi always uses sendfile for real files"),
    ReusePort = s("reuse_port", &["--reuse-port"], "", Flag, Literal("false"), "Server Mechanics",
      "Set SO_REUSEPORT on the listening sockets, so another server can bind the same port (the workers share the master's sockets)."),
    Chdir = s("chdir", &["--chdir"], "DIR", Str, Default::CurrentDir, "Server Mechanics",
      "Change to this directory before loading the app."),
    Daemon = s("daemon", &["-D", "--daemon"], "", Flag, Literal("false"), "Server Mechanics",
      "Detach from the terminal and run in the background."),
    RawEnv = s("raw_env", &["-e", "--env"], "ENV", List, Literal(""), "Server Mechanics",
      "Set an environment variable (NAME=VALUE) in the server and the app; repeatable."),
    Pidfile = s("pidfile", &["-p", "--pid"], "FILE", Str, Default::None, "Server Mechanics",
      "A file to write the master's PID to; rsgi refuses to start over a live one."),
    WorkerTmpDir = s("worker_tmp_dir", &["--worker-tmp-dir"], "DIR", Str, Default::None, "Server Mechanics",
      "Accepted for compatibility: rsgi keeps worker heartbeats in shared memory, not in files."),
    User = s("user", &["-u", "--user"], "USER", Str, Default::None, "Server Mechanics",
      "Switch worker processes to run as this user (name or uid)."),
    Group = s("group", &["-g", "--group"], "GROUP", Str, Default::None, "Server Mechanics",
      "Switch worker processes to run as this group (name or gid)."),
    Umask = s("umask", &["-m", "--umask"], "INT", AutoInt, Literal("0"), "Server Mechanics",
      "The umask unix socket files are created under (e.g. 0o007); the processes keep their own."),
    Initgroups = s("initgroups", &["--initgroups"], "", Flag, Literal("false"), "Server Mechanics",
      "Also set the worker's supplementary groups from the user's group memberships."),
    TmpUploadDir = ignored(s("tmp_upload_dir", &[], "", Str, Default::None, "Server Mechanics",
      "Where large request bodies are spooled."), "request bodies stream through memory, never to disk"),
    Pythonpath = s("pythonpath", &["--pythonpath"], "STRING", Str, Default::None, "Server Mechanics",
      "Comma-separated directories to add to the Python path, e.g. '/home/djangoprojects/myproject'."),
    StaticMap = own(s("static_map", &["--static-map"], "PREFIX=DIR", List, Literal(""), "Static Files",
      "Serve the files under DIR at URL PREFIX from the I/O loop, e.g. /static=./staticfiles; repeatable. A missing file is 404 (the app never sees the prefix).")),
    Loglevel = s("loglevel", &["--log-level"], "LEVEL", Str,
      Literal("info"), "Logging", "The granularity of error log output: debug, info, warning, error or critical (any case; as gunicorn, another word means info)."),
    ProcName = s("proc_name", &["-n", "--name", "--proc-name"], "STRING", Str, Default::None, "Logging",
      "The base of the process titles (master [NAME] / worker [NAME]); defaults to the app."),
    DefaultProcName = ignored(s("default_proc_name", &[], "", Str, Literal("gunicorn"), "Process Naming",
      "Internal: the process title used when no other is known."), "titles default to the app name"),
    Accesslog = s("accesslog", &["--access-logfile"], "FILE", Str, Default::None, "Logging",
      "The access log file ('-' is stdout); no access log by default."),
    DisableRedirectAccessToSyslog = s("disable_redirect_access_to_syslog", &["--disable-redirect-access-to-syslog"], "", Flag, Literal("false"),
      "Logging", "Keep access lines out of syslog."),
    AccessLogFormat = s("access_log_format", &["--access-logformat"], "STRING", Str,
      Literal("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""), "Logging",
      "The access log line, with gunicorn's atoms (h l u t r m U q H s B b f a T D M L p, {header}i, {header}o, {var}e)."),
    Errorlog = s("errorlog", &["--error-logfile", "--log-file"], "FILE", Str, Literal("-"), "Logging",
      "The error log file to write to ('-' is stderr)."),
    CaptureOutput = s("capture_output", &["--capture-output"], "", Flag, Literal("false"), "Logging",
      "Send the app's stdout/stderr to the error log (when it is a file)."),
    LoggerClass = s("logger_class", &["--logger-class"], "STRING", Str, Literal("gunicorn.glogging.Logger"), "Logging",
      "A Python logger class quacking like gunicorn.glogging.Logger; a custom one gets every error and access line."),
    Logconfig = s("logconfig", &["--log-config"], "FILE", Str, Default::None, "Logging",
      "A logging.config ini file: log through Python's logging (gunicorn.error, gunicorn.access)."),
    LogconfigDict = s("logconfig_dict", &[], "", PyObject, Default::None, "Logging",
      "A logging.config dictionary (config file only): log through Python's logging."),
    LogconfigJson = s("logconfig_json", &["--log-config-json"], "FILE", Str, Default::None, "Logging",
      "A JSON logging.config file: log through Python's logging."),
    SyslogAddr = s("syslog_addr", &["--log-syslog-to"], "SYSLOG_ADDR", Str, Literal("udp://localhost:514"), "Logging",
      "Where syslog lines go: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH[#dgram|#stream]."),
    Syslog = s("syslog", &["--log-syslog"], "", Flag, Literal("false"), "Logging",
      "Also send the error log (and the access log) to syslog."),
    SyslogPrefix = s("syslog_prefix", &["--log-syslog-prefix"], "SYSLOG_PREFIX", Str, Default::None, "Logging",
      "The program name in syslog lines (gunicorn.PREFIX.error); defaults to the process name."),
    SyslogFacility = s("syslog_facility", &["--log-syslog-facility"], "SYSLOG_FACILITY", Str, Literal("user"), "Logging",
      "The syslog facility name."),
    EnableStdioInheritance = ignored(s("enable_stdio_inheritance", &["-R", "--enable-stdio-inheritance"], "", Flag, Literal("false"), "Logging",
      "Keep stdio open in daemon mode."), "stdio is redirected to /dev/null in daemon mode"),
    StatsdHost = s("statsd_host", &["--statsd-host"], "STATSD_ADDR", Str, Default::None, "Logging",
      "host:port (or unix:PATH) of a statsd server; metrics use gunicorn's names."),
    DogstatsdTags = s("dogstatsd_tags", &["--dogstatsd-tags"], "DOGSTATSD_TAGS", Str, Literal(""), "Logging",
      "Comma-separated DogStatsD tags added to every metric."),
    StatsdPrefix = s("statsd_prefix", &["--statsd-prefix"], "STATSD_PREFIX", Str, Literal(""), "Logging",
      "Prefix for statsd metric names."),
    EnableBacklogMetric = s("enable_backlog_metric", &["--enable-backlog-metric"], "", Flag, Literal("false"), "Logging",
      "Send the listen backlog (connections waiting to be accepted, from TCP_INFO) to statsd as gunicorn.backlog."),
    MetricsBind = own(s("metrics_bind", &["--metrics-bind"], "ADDRESS", Str, Default::None, "Logging",
      "Serve Prometheus metrics at http://HOST:PORT/metrics from the master (no Python involved); off by default.")),
    Paste = s("paste", &["--paste", "--paster"], "STRING", Str, Default::None, "Server Mechanics",
      "Load the app from a PasteDeploy .ini file (FILE[#name]) instead of APP_MODULE."),
    RawPasteGlobalConf = s("raw_paste_global_conf", &["--paste-global"], "CONF", List, Literal(""), "Server Mechanics",
      "NAME=VALUE defaults for the PasteDeploy configuration; repeatable."),
    HeaderMap = s("header_map", &["--header-map"], "STRING", Choice(&["drop", "refuse", "dangerous"]), Literal("drop"),
      "Server Mechanics", "What to do with request header names containing '_': drop, refuse or dangerous (keep)."),
    StripHeaderSpaces = s("strip_header_spaces", &["--strip-header-spaces"], "", Flag, Literal("false"), "Server Mechanics",
      "Strip spaces between a header name and its ':' (dangerous; off by default)."),
    PermitUnconventionalHttpMethod = s("permit_unconventional_http_method", &["--permit-unconventional-http-method"], "", Flag, Literal("false"),
      "Server Mechanics", "Accept methods with lowercase letters or outside 3-20 characters."),
    PermitUnconventionalHttpVersion = s("permit_unconventional_http_version", &["--permit-unconventional-http-version"], "", Flag, Literal("false"),
      "Server Mechanics", "Accept HTTP versions other than 1.0 and 1.x."),
    CasefoldHttpMethod = s("casefold_http_method", &["--casefold-http-method"], "", Flag, Literal("false"), "Server Mechanics",
      "Uppercase the request method before the app sees it."),
    PermitObsoleteFolding = s("permit_obsolete_folding", &["--permit-obsolete-folding"], "", Flag, Literal("false"), "Server Mechanics",
      "Accept obsolete header line folding (joined with one space)."),
    ForwardedAllowIps = s("forwarded_allow_ips", &["--forwarded-allow-ips"], "STRING", AddrList, Literal("127.0.0.1,::1"),
      "Server Mechanics", "Front-end addresses trusted to set secure-scheme and forwarder headers ('*' trusts all)."),
    SecureSchemeHeaders = s("secure_scheme_headers", &[], "", Dict,
      Literal("X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on"), "Server Mechanics",
      "Headers (and values) a trusted front-end sets to say the request came over https."),
    ForwarderHeaders = s("forwarder_headers", &["--forwarder-headers"], "STRING", CommaList, Literal("SCRIPT_NAME,PATH_INFO"),
      "Server Mechanics", "Header names containing '_' that a trusted front-end may set (e.g. SCRIPT_NAME)."),
    ProxyProtocol = s("proxy_protocol", &["--proxy-protocol"], "MODE",
      OptionalChoice { choices: &["off", "v1", "v2", "auto"], implied: "auto" }, Literal("off"), "Server Mechanics",
      "Accept the PROXY protocol: off, v1, v2 or auto (the flag alone means auto)."),
    ProxyAllowIps = s("proxy_allow_ips", &["--proxy-allow-from"], "STRING", AddrList, Literal("127.0.0.1,::1"), "Server Mechanics",
      "Front-end addresses allowed to send a PROXY protocol header ('*' allows all)."),
    Protocol = refused(s("protocol", &["--protocol"], "STRING", Str, Literal("http"), "Server Mechanics",
      "The wire protocol: http (uwsgi is gunicorn's other choice)."), "rsgi speaks HTTP only"),
    UwsgiAllowIps = ignored(s("uwsgi_allow_ips", &["--uwsgi-allow-from"], "STRING", AddrList, Literal("127.0.0.1,::1"), "Server Mechanics",
      "Peers allowed to speak the uwsgi protocol."), "rsgi speaks HTTP only"),
    RootPath = s("root_path", &["--root-path"], "STRING", Str, Literal(""), "Server Mechanics",
      "The ASGI scope's root_path: where the app is mounted behind a proxy (e.g. /api)."),
    Keyfile = s("keyfile", &["--keyfile"], "FILE", Str, Default::None, "SSL",
      "The TLS private key (PEM); by default it is read from --certfile."),
    Certfile = s("certfile", &["--certfile"], "FILE", Str, Default::None, "SSL",
      "The TLS certificate chain (PEM): TCP binds speak TLS (rustls; ALPN http/1.1). Re-read on HUP."),
    SslVersion = s("ssl_version", &["--ssl-version"], "", Str, Literal("2"), "SSL",
      "The TLS versions: TLS (2, the default: 1.2 and 1.3) or TLSv1_2 (5); older ones are refused."),
    CertReqs = s("cert_reqs", &["--cert-reqs"], "", PosInt, Literal("0"), "SSL",
      "Client certificates: 0 none, 1 optional, 2 required (checked against --ca-certs)."),
    CaCerts = s("ca_certs", &["--ca-certs"], "FILE", Str, Default::None, "SSL", "The CA certificates (PEM) client certificates are checked against."),
    SuppressRaggedEofs = s("suppress_ragged_eofs", &["--suppress-ragged-eofs"], "", Flag, Literal("true"), "SSL",
      "Treat a TLS connection closed without close_notify as an ordinary end of stream."),
    DoHandshakeOnConnect = s("do_handshake_on_connect", &["--do-handshake-on-connect"], "", Flag, Literal("false"), "SSL",
      "Accepted: rsgi's I/O loop always runs the handshake as soon as the client sends, never on an app thread."),
    Ciphers = s("ciphers", &["--ciphers"], "", Str, Default::None, "SSL",
      "An OpenSSL cipher list: refused when set, since rustls chooses its own suites."),
    SslContext = refused(s("ssl_context", &[], "", Hook, Default::None, "Server Hooks",
      "ssl_context(config, default_ssl_context_factory): build the TLS context."), RUSTLS_CONTEXT),
    HttpProtocols = refused(s("http_protocols", &["--http-protocols"], "STRING", CommaList, Literal("h1"), "HTTP/2",
      "Protocols to offer: h1, h2."), NO_H2),
    Http2Cleartext = ignored(s("http2_cleartext", &["--http2-cleartext"], "STRING", Str, Literal("off"), "HTTP/2", "HTTP/2 without TLS."), NO_H2),
    Http2MaxConcurrentStreams = ignored(s("http2_max_concurrent_streams", &["--http2-max-concurrent-streams"], "INT", PosInt, Literal("100"), "HTTP/2",
      "HTTP/2 stream limit."), NO_H2),
    Http2InitialWindowSize = ignored(s("http2_initial_window_size", &["--http2-initial-window-size"], "INT", PosInt, Literal("65535"), "HTTP/2",
      "HTTP/2 flow-control window."), NO_H2),
    Http2MaxFrameSize = ignored(s("http2_max_frame_size", &["--http2-max-frame-size"], "INT", PosInt, Literal("16384"), "HTTP/2",
      "HTTP/2 frame size."), NO_H2),
    Http2MaxHeaderListSize = ignored(s("http2_max_header_list_size", &["--http2-max-header-list-size"], "INT", PosInt, Literal("65536"), "HTTP/2",
      "HTTP/2 header list size."), NO_H2),
    AsgiLoop = s("asgi_loop", &["--asgi-loop"], "STRING", Choice(&["auto", "asyncio", "uvloop"]), Literal("auto"), "Worker Processes",
      "The ASGI worker's event loop: asyncio, uvloop, or auto (uvloop when it is installed)."),
    AsgiLifespan = s("asgi_lifespan", &["--asgi-lifespan"], "STRING", Choice(&["auto", "on", "off"]), Literal("auto"), "Worker Processes",
      "ASGI lifespan events: on (the app must support them), off, or auto (used when the app does not refuse them)."),
    AsgiDisconnectGracePeriod = s("asgi_disconnect_grace_period", &["--asgi-disconnect-grace-period"], "INT", PosInt, Literal("3"),
      "Worker Processes", "Seconds an ASGI app still runs after its client left before its request is cancelled (0: at once)."),
    WebsocketMaxMessageSize = s("websocket_max_message_size", &["--websocket-max-message-size"], "INT", PosInt, Literal("16777216"),
      "Worker Processes", "Largest WebSocket message, in bytes (0: no limit)."),
    WebsocketMaxQueue = own(s("websocket_max_queue", &["--websocket-max-queue", "--ws-max-queue"], "INT", PosInt, Literal("32"),
      "Worker Processes", "WebSocket messages (at most 1 MiB of them) queued for an app that is not receiving before the worker stops reading from its client (uvicorn's --ws-max-queue).")),
    WebsocketPingInterval = own(s("websocket_ping_interval", &["--websocket-ping-interval", "--ws-ping-interval"], "SECONDS", Seconds, Literal("20"),
      "Worker Processes", "Seconds between the worker's keep-alive pings on an open WebSocket (0: none; as uvicorn's --ws-ping-interval, checked every half second).")),
    WebsocketPingTimeout = own(s("websocket_ping_timeout", &["--websocket-ping-timeout", "--ws-ping-timeout"], "SECONDS", Seconds, Literal("20"),
      "Worker Processes", "Seconds a keep-alive ping waits for its pong before the WebSocket is closed with 1011 (0: for ever).")),
    HttpParser = ignored(s("http_parser", &["--http-parser"], "STRING", Choice(&["auto", "fast", "python"]), Literal("auto"),
      "Worker Processes", "gunicorn's parser choice."), "rsgi always parses HTTP in Rust"),
    DirtyApps = ignored(s("dirty_apps", &["--dirty-app"], "STRING", List, Literal(""), "Dirty Arbiters", "Dirty arbiter apps."), NO_DIRTY),
    DirtyWorkers = ignored(s("dirty_workers", &["--dirty-workers"], "INT", PosInt, Literal("0"), "Dirty Arbiters", "Dirty workers."), NO_DIRTY),
    DirtyTimeout = ignored(s("dirty_timeout", &["--dirty-timeout"], "INT", PosInt, Literal("300"), "Dirty Arbiters", "Dirty timeout."), NO_DIRTY),
    DirtyThreads = ignored(s("dirty_threads", &["--dirty-threads"], "INT", PosInt, Literal("1"), "Dirty Arbiters", "Dirty threads."), NO_DIRTY),
    DirtyGracefulTimeout = ignored(s("dirty_graceful_timeout", &["--dirty-graceful-timeout"], "INT", PosInt, Literal("30"), "Dirty Arbiters",
      "Dirty graceful timeout."), NO_DIRTY),
    OnDirtyStarting = ignored(s("on_dirty_starting", &[], "", Hook, Default::None, "Dirty Arbiter Hooks", "Dirty arbiter hook."), NO_DIRTY),
    DirtyPostFork = ignored(s("dirty_post_fork", &[], "", Hook, Default::None, "Dirty Arbiter Hooks", "Dirty arbiter hook."), NO_DIRTY),
    DirtyWorkerInit = ignored(s("dirty_worker_init", &[], "", Hook, Default::None, "Dirty Arbiter Hooks", "Dirty arbiter hook."), NO_DIRTY),
    DirtyWorkerExit = ignored(s("dirty_worker_exit", &[], "", Hook, Default::None, "Dirty Arbiter Hooks", "Dirty arbiter hook."), NO_DIRTY),
    ControlSocket = ignored(s("control_socket", &["--control-socket"], "PATH", Str, Literal("~/.gunicorn/gunicorn.ctl"), "Control",
      "gunicorn's control socket."), "there is no control socket; use signals (SIGNALS.md)"),
    ControlSocketMode = ignored(s("control_socket_mode", &["--control-socket-mode"], "INT", AutoInt, Literal("384"), "Control",
      "Control socket permissions."), "there is no control socket; use signals (SIGNALS.md)"),
    ControlSocketDisable = ignored(s("control_socket_disable", &["--no-control-socket"], "", Flag, Literal("false"), "Control",
      "Disable the control socket."), "there is no control socket"),
    OnStarting = s("on_starting", &[], "", Hook, Default::None, "Server Hooks", "on_starting(server): before the master starts."),
    OnReload = s("on_reload", &[], "", Hook, Default::None, "Server Hooks", "on_reload(server): on HUP, before new workers start."),
    WhenReady = s("when_ready", &[], "", Hook, Default::None, "Server Hooks", "when_ready(server): once the server is listening."),
    PreFork = s("pre_fork", &[], "", Hook, Default::None, "Server Hooks", "pre_fork(server, worker): in the master, before a fork."),
    PostFork = s("post_fork", &[], "", Hook, Default::None, "Server Hooks", "post_fork(server, worker): in the new worker."),
    PostWorkerInit = s("post_worker_init", &[], "", Hook, Default::None, "Server Hooks", "post_worker_init(worker): once the app is loaded."),
    WorkerInt = s("worker_int", &[], "", Hook, Default::None, "Server Hooks", "worker_int(worker): a worker got INT or QUIT."),
    WorkerAbort = s("worker_abort", &[], "", Hook, Default::None, "Server Hooks",
      "worker_abort(worker): a worker timed out (SIGABRT), after its tracebacks are logged."),
    PreExec = s("pre_exec", &[], "", Hook, Default::None, "Server Hooks", "pre_exec(server): before a new master is executed (USR2)."),
    PreRequest = s("pre_request", &[], "", Hook, Default::None, "Server Hooks", "pre_request(worker, req): before each request."),
    PostRequest = s("post_request", &[], "", Hook, Default::None, "Server Hooks",
      "post_request(worker, req, environ, resp): after each request."),
    ChildExit = s("child_exit", &[], "", Hook, Default::None, "Server Hooks", "child_exit(server, worker): in the master, a worker exited."),
    WorkerExit = s("worker_exit", &[], "", Hook, Default::None, "Server Hooks", "worker_exit(server, worker): in the worker, as it exits."),
    NworkersChanged = s("nworkers_changed", &[], "", Hook, Default::None, "Server Hooks",
      "nworkers_changed(server, new_value, old_value): the worker count changed."),
    OnExit = s("on_exit", &[], "", Hook, Default::None, "Server Hooks", "on_exit(server): before the master exits."),
}

/// The name gunicorn prints (`<Class.hook()>`) for a hook left at its
/// default.
pub fn default_hook_name(hook: Key) -> String {
    let class = match hook {
        Key::NworkersChanged => "NumWorkersChanged".to_owned(),
        Key::PostFork => "Postfork".to_owned(),
        Key::PreFork => "Prefork".to_owned(),
        Key::SslContext => "NewSSLContext".to_owned(),
        other => format!("{other:?}"),
    };
    format!("{class}.{}", hook.name())
}

/// The setting named `name` (names from outside: a flag's, a
/// configuration file's).
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The setting that owns CLI flag `flag` (exact match).
pub fn by_flag(flag: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.flags.contains(&flag))
}

/// Every long flag, for prefix matching (argparse's abbreviations).
pub fn long_flags() -> impl Iterator<Item = (&'static str, &'static Setting)> {
    SETTINGS
        .iter()
        .flat_map(|s| s.flags.iter().filter(|f| f.starts_with("--")).map(move |f| (*f, s)))
}

/// The settings list for docs/settings.md, generated from this table so the two
/// cannot drift (a test compares them).
pub fn markdown_table() -> String {
    let mut out = String::from("| Setting | Flags | Default | Meaning | In rsgi |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        let flags = if s.flags.is_empty() {
            "(config file only)".to_owned()
        } else {
            s.flags.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        };
        let default = match s.default {
            Literal(v) => format!("`{v}`"),
            Default::WebConcurrency => "`$WEB_CONCURRENCY` or `1`".to_owned(),
            Default::CurrentDir => "the current directory".to_owned(),
            Default::None => "none".to_owned(),
        };
        let support = match (s.rsgi_only, s.support) {
            (true, _) => "rsgi's own".to_owned(),
            (false, Support::Full) => "as gunicorn".to_owned(),
            (false, Support::Ignored(why)) => format!("accepted, with a warning: {why}"),
            (false, Support::Refused(why)) => format!("refused unless default: {why}"),
        };
        out.push_str(&format!("| `{}` | {flags} | {default} | {} | {support} |\n", s.name, s.help.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags_are_unique() {
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
        let mut flags: Vec<_> = SETTINGS.iter().flat_map(|s| s.flags.iter()).collect();
        let n = flags.len();
        flags.sort();
        flags.dedup();
        assert_eq!(flags.len(), n);
    }

    #[test]
    fn keys_are_the_table() {
        assert_eq!(Key::ALL.len(), SETTINGS.len());
        for (i, (key, setting)) in Key::ALL.iter().zip(SETTINGS).enumerate() {
            assert_eq!(*key as usize, i);
            assert_eq!(setting.key, *key);
            let camel: String = setting
                .name
                .split('_')
                .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                .collect();
            assert_eq!(format!("{key:?}"), camel, "the key of {}", setting.name);
        }
        assert_eq!(Key::LimitRequestLine.name(), "limit_request_line");
        assert_eq!(Key::Workers.setting().flags, &["-w", "--workers"]);
    }

    #[test]
    fn lookups() {
        assert_eq!(by_flag("-w").unwrap().name, "workers");
        assert_eq!(by_flag("--log-file").unwrap().name, "errorlog");
        assert_eq!(find("keepalive").unwrap().flags, &["--keep-alive"]);
        assert!(long_flags().any(|(f, _)| f == "--bind"));
    }
}
