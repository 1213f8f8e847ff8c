//! The settings table: every setting rsgi knows, declared once with
//! gunicorn's name, its CLI flags, its default, how its value is validated and
//! its help text. The CLI parser, `--help`, the configuration merge and the
//! README's settings list all read this table (STYLE 8).
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
    /// gunicorn's setting name (also the config-file variable).
    pub name: &'static str,
    /// Command-line flags, short first; empty when config-file only.
    pub flags: &'static [&'static str],
    /// The value's placeholder in `--help`.
    pub meta: &'static str,
    pub kind: Kind,
    pub default: Default,
    /// The section of `--help` and of the README list.
    pub section: &'static str,
    /// One-line help.
    pub help: &'static str,
    /// True when the setting is rsgi's own (gunicorn has no such setting).
    pub rsgi_only: bool,
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
    Setting { name, flags, meta, kind, default, section, help, rsgi_only: false }
}

const fn own(mut setting: Setting) -> Setting {
    setting.rsgi_only = true;
    setting
}

use self::Default::Literal;
use Kind::*;

/// Every setting, in `--help` order.
pub static SETTINGS: &[Setting] = &[
    s("bind", &["-b", "--bind"], "ADDRESS", List, Literal("127.0.0.1:8000"), "Server Socket",
      "The socket to bind: HOST, HOST:PORT, [IPv6]:PORT, unix:PATH or fd://FD. Repeat to bind several."),
    s("backlog", &["--backlog"], "INT", PosInt, Literal("2048"), "Server Socket",
      "The maximum number of pending connections."),
    s("workers", &["-w", "--workers"], "INT", PosInt, Default::WebConcurrency, "Worker Processes",
      "The number of worker processes for handling requests (default: $WEB_CONCURRENCY or 1)."),
    s("threads", &["--threads"], "INT", PosInt, Literal("1"), "Worker Processes",
      "The number of Python executor threads per worker."),
    s("worker_connections", &["--worker-connections"], "INT", PosInt, Literal("1000"), "Worker Processes",
      "The maximum number of simultaneous connections per worker."),
    s("timeout", &["-t", "--timeout"], "INT", PosInt, Literal("30"), "Worker Processes",
      "Seconds a worker may be silent before it is killed and restarted (0 disables)."),
    s("graceful_timeout", &["--graceful-timeout"], "INT", PosInt, Literal("30"), "Worker Processes",
      "Seconds workers get to finish in-flight requests after a graceful stop before they are killed."),
    s("max_requests", &["--max-requests"], "INT", PosInt, Literal("0"), "Worker Processes",
      "Restart a worker after it has served this many requests (0 disables)."),
    s("max_requests_jitter", &["--max-requests-jitter"], "INT", PosInt, Literal("0"), "Worker Processes",
      "Add a random 0..N to each worker's --max-requests, so workers do not restart together."),
    own(s("max_worker_memory", &["--max-worker-memory"], "MIB", PosInt, Literal("0"), "Worker Processes",
      "Restart a worker gracefully once its resident memory passes this many MiB (0 disables).")),
    s("keepalive", &["--keep-alive"], "INT", PosInt, Literal("2"), "Worker Processes",
      "Seconds to wait for the next request on a keep-alive connection."),
    s("limit_request_line", &["--limit-request-line"], "INT", PosInt, Literal("4094"), "Security",
      "The maximum size of the HTTP request line in bytes (0 = unlimited, at most 8190)."),
    s("limit_request_fields", &["--limit-request-fields"], "INT", PosInt, Literal("100"), "Security",
      "The maximum number of HTTP header fields in a request (at most 32768)."),
    s("limit_request_field_size", &["--limit-request-field_size"], "INT", PosInt, Literal("8190"), "Security",
      "The maximum size of one HTTP request header field in bytes (0 = 8190)."),
    own(s("limit_request_body", &["--limit-request-body"], "INT", PosInt, Literal("0"), "Security",
      "The maximum size of a request body in bytes; larger bodies get 413 (0 = unlimited).")),
    s("chdir", &["--chdir"], "DIR", Str, Default::CurrentDir, "Server Mechanics",
      "Change to this directory before loading the app."),
    s("daemon", &["-D", "--daemon"], "", Flag, Literal("false"), "Server Mechanics",
      "Detach from the terminal and run in the background."),
    s("pidfile", &["-p", "--pid"], "FILE", Str, Default::None, "Server Mechanics",
      "A file to write the master's PID to; rsgi refuses to start over a live one."),
    s("worker_tmp_dir", &["--worker-tmp-dir"], "DIR", Str, Default::None, "Server Mechanics",
      "Accepted for compatibility: rsgi keeps worker heartbeats in shared memory, not in files."),
    s("user", &["-u", "--user"], "USER", Str, Default::None, "Server Mechanics",
      "Switch worker processes to run as this user (name or uid)."),
    s("group", &["-g", "--group"], "GROUP", Str, Default::None, "Server Mechanics",
      "Switch worker processes to run as this group (name or gid)."),
    s("umask", &["-m", "--umask"], "INT", AutoInt, Literal("0"), "Server Mechanics",
      "The file mode creation mask of the server processes (e.g. 0o022)."),
    s("initgroups", &["--initgroups"], "", Flag, Literal("false"), "Server Mechanics",
      "Also set the worker's supplementary groups from the user's group memberships."),
    s("pythonpath", &["--pythonpath"], "STRING", Str, Default::None, "Server Mechanics",
      "Comma-separated directories to add to the Python path, e.g. '/home/djangoprojects/myproject'."),
    s("loglevel", &["--log-level"], "LEVEL", Choice(&["debug", "info", "warning", "error", "critical"]),
      Literal("info"), "Logging", "The granularity of error log output."),
    s("proc_name", &["-n", "--name", "--proc-name"], "STRING", Str, Default::None, "Logging",
      "The base of the process titles (master [NAME] / worker [NAME]); defaults to the app."),
    s("errorlog", &["--error-logfile", "--log-file"], "FILE", Str, Literal("-"), "Logging",
      "The error log file to write to ('-' is stderr)."),
    s("header_map", &["--header-map"], "STRING", Choice(&["drop", "refuse", "dangerous"]), Literal("drop"),
      "Server Mechanics", "What to do with request header names containing '_': drop, refuse or dangerous (keep)."),
    s("strip_header_spaces", &["--strip-header-spaces"], "", Flag, Literal("false"), "Server Mechanics",
      "Strip spaces between a header name and its ':' (dangerous; off by default)."),
    s("permit_unconventional_http_method", &["--permit-unconventional-http-method"], "", Flag, Literal("false"),
      "Server Mechanics", "Accept methods with lowercase letters or outside 3-20 characters."),
    s("permit_unconventional_http_version", &["--permit-unconventional-http-version"], "", Flag, Literal("false"),
      "Server Mechanics", "Accept HTTP versions other than 1.0 and 1.x."),
    s("casefold_http_method", &["--casefold-http-method"], "", Flag, Literal("false"), "Server Mechanics",
      "Uppercase the request method before the app sees it."),
    s("permit_obsolete_folding", &["--permit-obsolete-folding"], "", Flag, Literal("false"), "Server Mechanics",
      "Accept obsolete header line folding (joined with one space)."),
    s("forwarded_allow_ips", &["--forwarded-allow-ips"], "STRING", AddrList, Literal("127.0.0.1,::1"),
      "Server Mechanics", "Front-end addresses trusted to set secure-scheme and forwarder headers ('*' trusts all)."),
    s("secure_scheme_headers", &[], "", Dict,
      Literal("X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on"), "Server Mechanics",
      "Headers (and values) a trusted front-end sets to say the request came over https."),
    s("forwarder_headers", &["--forwarder-headers"], "STRING", CommaList, Literal("SCRIPT_NAME,PATH_INFO"),
      "Server Mechanics", "Header names containing '_' that a trusted front-end may set (e.g. SCRIPT_NAME)."),
    s("proxy_protocol", &["--proxy-protocol"], "MODE",
      OptionalChoice { choices: &["off", "v1", "v2", "auto"], implied: "auto" }, Literal("off"), "Server Mechanics",
      "Accept the PROXY protocol: off, v1, v2 or auto (the flag alone means auto)."),
    s("proxy_allow_ips", &["--proxy-allow-from"], "STRING", AddrList, Literal("127.0.0.1,::1"), "Server Mechanics",
      "Front-end addresses allowed to send a PROXY protocol header ('*' allows all)."),
];

/// The setting named `name`.
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

/// The settings list for the README, generated from this table so the two
/// cannot drift (a test compares them).
pub fn markdown_table() -> String {
    let mut out = String::from("| Setting | Flags | Default | Meaning |\n|---|---|---|---|\n");
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
        let own = if s.rsgi_only { " *(rsgi only)*" } else { "" };
        out.push_str(&format!("| `{}` | {flags} | {default} | {}{own} |\n", s.name, s.help.replace('|', "\\|")));
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
    fn lookups() {
        assert_eq!(by_flag("-w").unwrap().name, "workers");
        assert_eq!(by_flag("--log-file").unwrap().name, "errorlog");
        assert_eq!(find("keepalive").unwrap().flags, &["--keep-alive"]);
        assert!(long_flags().any(|(f, _)| f == "--bind"));
    }
}
