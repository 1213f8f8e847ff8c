//! Configuration: merge the sources (CLI > `RSGI_CMD_ARGS` >
//! `GUNICORN_CMD_ARGS` > defaults), validate every value against the
//! settings table, and freeze the result into a typed [`Config`].
//!
//! Runs in the master before anything is bound or forked; pure apart from
//! reading the environment and the current directory for defaults.

pub mod compat;
mod files;
mod ids;
pub mod pyfile;
pub mod settings;
mod sources;

pub use ids::{effective_gid, effective_uid};
use ids::{lookup_group, lookup_user};
pub use sources::{apply_to_python, check_support, resolve, set_programmatic, Programmatic, Resolved};

use std::collections::BTreeMap;

use crate::http::proxy::ProxyMode;
use crate::http::trust::AllowList;
use crate::http::{HeaderMapPolicy, Limits};
use settings::{Kind, Setting, SETTINGS};

/// A configuration problem, shown to the operator as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A command-line mistake (argparse's exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A value that does not validate (gunicorn exits 1).
    #[error("Invalid value for {name}: {value:?}: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

/// A validated setting value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(u64),
    Str(String),
    Bool(bool),
    List(Vec<String>),
    Dict(Vec<(String, String)>),
    None,
}

/// Raw values from one source: setting name → the strings given for it
/// (several for repeatable options).
pub type Overrides = BTreeMap<&'static str, Vec<String>>;

/// Validate the raw strings given for `setting`.
pub fn validate(setting: &'static Setting, raw: &[String]) -> Result<Value, ConfigError> {
    let invalid = |value: &str, reason: &str| ConfigError::Invalid {
        name: setting.name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let last = raw.last().map(String::as_str).unwrap_or("");
    Ok(match setting.kind {
        Kind::PosInt => {
            let v: i64 = last.trim().parse().map_err(|_| invalid(last, "not an integer"))?;
            if v < 0 {
                return Err(invalid(last, "must be a positive integer"));
            }
            Value::Int(v as u64)
        }
        Kind::Str => Value::Str(last.to_owned()),
        Kind::AutoInt => Value::Int(parse_auto_int(last).ok_or_else(|| invalid(last, "not an integer"))?),
        Kind::Flag | Kind::FlagFalse => match last.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "n" | "off" => Value::Bool(false),
            _ => return Err(invalid(last, "not a boolean")),
        },
        Kind::List => Value::List(raw.to_vec()),
        Kind::CommaList => Value::List(split_commas(last)),
        Kind::Choice(choices) | Kind::OptionalChoice { choices, .. } => {
            let v = last.to_ascii_lowercase();
            if !choices.contains(&v.as_str()) {
                return Err(invalid(last, &format!("must be one of {}", choices.join(", "))));
            }
            Value::Str(v)
        }
        Kind::AddrList => {
            AllowList::parse(last).map_err(|bad| invalid(last, &format!("{bad:?} is not a valid IP address or network")))?;
            Value::List(split_commas(last))
        }
        // Python objects come only from a configuration file and are kept
        // apart (see `pyfile`); as text they mean nothing.
        Kind::Hook | Kind::PyObject => Value::None,
        Kind::Dict => {
            let mut pairs = Vec::new();
            for item in split_commas(last) {
                let (k, v) = item.split_once('=').ok_or_else(|| invalid(last, "expected NAME=value pairs"))?;
                // Printed as given (gunicorn keeps the keys' case); matched
                // against request headers without regard to case.
                pairs.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            Value::Dict(pairs)
        }
    })
}

/// `int(x, 0)`, plus octal with a plain leading zero.
fn parse_auto_int(s: &str) -> Option<u64> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

fn split_commas(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The default value of `setting` as raw strings.
fn default_raw(setting: &Setting) -> Option<Vec<String>> {
    match setting.default {
        settings::Default::Literal(v) => Some(match setting.kind {
            Kind::List => split_commas(v),
            _ => vec![v.to_owned()],
        }),
        settings::Default::WebConcurrency => {
            Some(vec![std::env::var("WEB_CONCURRENCY").unwrap_or_else(|_| "1".into())])
        }
        settings::Default::CurrentDir => Some(vec![compat::launch_dir()]),
        settings::Default::None => None,
    }
}

/// Every setting's value after merging the sources, by name.
#[derive(Debug, Clone)]
pub struct Values {
    /// Validated values, one per setting in the table.
    map: BTreeMap<&'static str, Value>,
}

impl Values {
    /// Merge `sources`, lowest precedence first, over the defaults.
    pub fn merge(sources: &[&Overrides]) -> Result<Values, ConfigError> {
        let mut map = BTreeMap::new();
        for setting in SETTINGS {
            let mut raw = default_raw(setting);
            for source in sources {
                if let Some(v) = source.get(setting.name) {
                    raw = Some(v.clone());
                }
            }
            let value = match raw {
                Some(raw) => {
                    // A bad $WEB_CONCURRENCY is reported against workers.
                    validate(setting, &raw)?
                }
                None => Value::None,
            };
            map.insert(setting.name, value);
        }
        Ok(Values { map })
    }

    pub fn get(&self, name: &str) -> &Value {
        self.map.get(name).unwrap_or(&Value::None)
    }

    /// gunicorn's `--print-config` line value for a setting (Python's
    /// `str()` of the value).
    pub fn python_str(&self, name: &str) -> String {
        fn quote(s: &str) -> String {
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        match self.get(name) {
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => if *b { "True".into() } else { "False".into() },
            Value::List(v) => format!("[{}]", v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")),
            Value::Dict(v) => format!("{{{}}}", v.iter().map(|(k, v)| format!("{}: {}", quote(k), quote(v))).collect::<Vec<_>>().join(", ")),
            Value::None => "None".into(),
        }
    }

    /// An integer setting (0 when unset).
    pub fn int(&self, name: &str) -> u64 {
        match self.get(name) {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    /// A string setting (empty when unset).
    pub fn string(&self, name: &str) -> String {
        match self.get(name) {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        }
    }

    /// A flag setting.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Value::Bool(true))
    }

    /// A list setting (empty when unset).
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Value::List(v) => v.clone(),
            _ => Vec::new(),
        }
    }

    fn dict(&self, name: &str) -> Vec<(String, String)> {
        match self.get(name) {
            Value::Dict(v) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// Python objects from the configuration file: server hooks and settings
/// whose values are Python data.
#[derive(Debug, Default)]
pub struct PyObjects {
    /// By setting name.
    pub map: BTreeMap<&'static str, pyo3::Py<pyo3::PyAny>>,
}

impl PyObjects {
    pub fn get(&self, name: &str) -> Option<&pyo3::Py<pyo3::PyAny>> {
        self.map.get(name)
    }
}

/// The frozen configuration the master and workers run with.
#[derive(Debug)]
pub struct Config {
    /// The WSGI app, `module:callable` as given.
    pub app: String,
    /// The app came from the APP argument (not `wsgi_app` or `--paste`).
    pub app_from_command_line: bool,
    /// The worker class asked for is gthread (gunicorn logs it so).
    pub gthread: bool,
    /// Addresses to bind, as given.
    pub bind: Vec<String>,
    pub backlog: u32,
    pub workers: u32,
    pub threads: u32,
    pub worker_connections: usize,
    /// Worker silence / request time limit in seconds (0 disables).
    pub timeout: u64,
    pub graceful_timeout: u64,
    pub keepalive: u64,
    pub chdir: String,
    pub pythonpath: Vec<String>,
    pub loglevel: String,
    pub errorlog: String,
    /// Restart a worker after this many requests (0: never).
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    /// Restart a worker whose RSS passes this many MiB (0: never).
    pub max_worker_memory_mib: u64,
    pub pidfile: Option<String>,
    pub daemon: bool,
    /// Workers switch to this (uid, user name) after fork, when set.
    pub user: Option<(u32, String)>,
    /// Workers switch to this gid after fork, when set.
    pub group: Option<u32>,
    pub umask: u32,
    pub initgroups: bool,
    /// Base of the process titles.
    pub proc_name: String,
    /// `--preload`: load the app in the master before forking.
    pub preload_app: bool,
    /// `-e NAME=VALUE` settings for the environment.
    pub raw_env: Vec<(String, String)>,
    /// `--access-logfile` (`-` is stdout), when set.
    pub accesslog: Option<String>,
    pub access_log_format: String,
    /// Hooks and other Python objects from the configuration file.
    pub objects: std::sync::Arc<PyObjects>,
    /// `--statsd-host`, when metrics are sent.
    pub statsd_host: Option<String>,
    pub statsd_prefix: String,
    pub dogstatsd_tags: String,
    /// `--log-config` (an ini file for `logging.config.fileConfig`).
    pub logconfig: Option<String>,
    /// `--log-config-json`.
    pub logconfig_json: Option<String>,
    /// `--log-syslog` and its companions.
    pub syslog: bool,
    pub syslog_addr: String,
    pub syslog_prefix: Option<String>,
    pub syslog_facility: String,
    pub disable_redirect_access_to_syslog: bool,
    /// `--capture-output`: stdout/stderr into the error log.
    pub capture_output: bool,
    /// `--paste-global NAME=VALUE` defaults for a PasteDeploy app.
    pub paste_global_conf: Vec<(String, String)>,
    /// The app, when `--preload` loaded it in the master.
    pub preloaded_app: Option<pyo3::Py<pyo3::PyAny>>,
    /// Everything the HTTP parser needs.
    pub limits: Limits,
    /// Peers trusted for forwarding and secure-scheme headers.
    pub forwarded_allow: AllowList,
    pub proxy_protocol: ProxyMode,
    /// Peers allowed to send a PROXY header.
    pub proxy_allow: AllowList,
    /// `--static-map`: URL prefix (no trailing `/`) and canonical directory.
    pub static_map: Vec<(String, std::path::PathBuf)>,
    /// `--certfile` and company: the rustls configuration, read from the
    /// files when the configuration is resolved (at start and on HUP).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// `--suppress-ragged-eofs`.
    pub suppress_ragged_eofs: bool,
    /// The merged values, kept for printing and for later settings.
    pub values: Values,
    /// The worker kind `worker_class` maps to.
    pub worker: compat::WorkerChoice,
    /// A custom `logger_class` (imported), when the configuration names one.
    pub logger_class: Option<pyo3::Py<pyo3::PyAny>>,
}

impl Config {
    /// Build the typed configuration from merged values.
    pub fn new(app: String, values: Values) -> Result<Config, ConfigError> {
        let positive = |name: &'static str| -> Result<u64, ConfigError> {
            let n = values.int(name);
            if n == 0 {
                return Err(ConfigError::Invalid { name, value: "0".into(), reason: "must be at least 1".into() });
            }
            Ok(n)
        };
        let header_map = match values.string("header_map").as_str() {
            "refuse" => HeaderMapPolicy::Refuse,
            "dangerous" => HeaderMapPolicy::Dangerous,
            _ => HeaderMapPolicy::Drop,
        };
        let limits = Limits {
            request_line: values.int("limit_request_line") as usize,
            request_fields: values.int("limit_request_fields") as usize,
            request_field_size: values.int("limit_request_field_size") as usize,
            request_body: values.int("limit_request_body"),
            permit_unconventional_method: values.flag("permit_unconventional_http_method"),
            permit_unconventional_version: values.flag("permit_unconventional_http_version"),
            casefold_method: values.flag("casefold_http_method"),
            permit_obsolete_folding: values.flag("permit_obsolete_folding"),
            strip_header_spaces: values.flag("strip_header_spaces"),
            header_map,
            forwarder_headers: values.list("forwarder_headers").iter().map(|h| h.to_ascii_uppercase()).collect(),
            secure_scheme_headers: values
                .dict("secure_scheme_headers")
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v))
                .collect(),
        };
        let proxy_protocol = match values.string("proxy_protocol").as_str() {
            "v1" => ProxyMode::V1,
            "v2" => ProxyMode::V2,
            "auto" => ProxyMode::Auto,
            _ => ProxyMode::Off,
        };
        let allow = |name| AllowList::parse(&values.list(name).join(",")).unwrap_or_default();
        let user = match values.get("user") {
            Value::Str(spec) => {
                let (uid, _, name) = lookup_user(spec).ok_or_else(|| ConfigError::Invalid {
                    name: "user",
                    value: spec.clone(),
                    reason: "no such user".into(),
                })?;
                Some((uid, name))
            }
            _ => None,
        };
        let group = match values.get("group") {
            Value::Str(spec) => Some(lookup_group(spec).ok_or_else(|| ConfigError::Invalid {
                name: "group",
                value: spec.clone(),
                reason: "no such group".into(),
            })?),
            // gunicorn: the user's own group when only --user is given.
            _ => match values.get("user") {
                Value::Str(spec) => lookup_user(spec).map(|(_, gid, _)| gid),
                _ => None,
            },
        };
        let optional = |name: &str| match values.get(name) {
            Value::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let bind = values.list("bind");
        if bind.is_empty() {
            return Err(ConfigError::Invalid { name: "bind", value: String::new(), reason: "no address to bind".into() });
        }
        let static_map = files::static_map(&values)?;
        let tls = files::tls(&values)?;
        let workers = positive("workers")?;
        if workers as usize > crate::scoreboard::MAX_WORKERS {
            return Err(ConfigError::Invalid {
                name: "workers",
                value: workers.to_string(),
                reason: format!("at most {} workers", crate::scoreboard::MAX_WORKERS),
            });
        }
        let threads = positive("threads")?;
        if threads as usize > crate::scoreboard::MAX_THREADS {
            return Err(ConfigError::Invalid {
                name: "threads",
                value: threads.to_string(),
                reason: format!("at most {} threads per worker", crate::scoreboard::MAX_THREADS),
            });
        }
        Ok(Config {
            bind,
            backlog: values.int("backlog").clamp(1, i32::MAX as u64) as u32,
            workers: workers as u32,
            threads: threads as u32,
            worker_connections: positive("worker_connections")? as usize,
            timeout: values.int("timeout"),
            graceful_timeout: values.int("graceful_timeout"),
            keepalive: values.int("keepalive"),
            chdir: values.string("chdir"),
            pythonpath: match values.get("pythonpath") {
                Value::Str(s) => split_commas(s),
                _ => Vec::new(),
            },
            loglevel: values.string("loglevel"),
            errorlog: values.string("errorlog"),
            max_requests: values.int("max_requests"),
            max_requests_jitter: values.int("max_requests_jitter"),
            max_worker_memory_mib: values.int("max_worker_memory"),
            pidfile: optional("pidfile"),
            daemon: values.flag("daemon"),
            user,
            group,
            umask: values.int("umask") as u32,
            initgroups: values.flag("initgroups"),
            proc_name: optional("proc_name").unwrap_or_else(|| app.clone()),
            app_from_command_line: true,
            gthread: matches!(values.get("worker_class"), Value::Str(k) if k.contains("gthread") || k.contains("ThreadWorker")),
            preload_app: values.flag("preload_app"),
            raw_env: values
                .list("raw_env")
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                    None => Err(ConfigError::Invalid {
                        name: "raw_env",
                        value: kv.clone(),
                        reason: "expected NAME=VALUE".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            accesslog: optional("accesslog"),
            access_log_format: values.string("access_log_format"),
            objects: std::sync::Arc::new(PyObjects::default()),
            preloaded_app: None,
            statsd_host: optional("statsd_host"),
            statsd_prefix: values.string("statsd_prefix"),
            dogstatsd_tags: values.string("dogstatsd_tags"),
            capture_output: values.flag("capture_output"),
            logconfig: optional("logconfig"),
            logconfig_json: optional("logconfig_json"),
            syslog: values.flag("syslog"),
            syslog_addr: values.string("syslog_addr"),
            syslog_prefix: optional("syslog_prefix"),
            syslog_facility: values.string("syslog_facility"),
            disable_redirect_access_to_syslog: values.flag("disable_redirect_access_to_syslog"),
            paste_global_conf: values
                .list("raw_paste_global_conf")
                .iter()
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect(),
            app,
            limits,
            forwarded_allow: allow("forwarded_allow_ips"),
            proxy_protocol,
            proxy_allow: allow("proxy_allow_ips"),
            static_map,
            tls,
            suppress_ragged_eofs: values.flag("suppress_ragged_eofs"),
            values,
            worker: compat::WorkerChoice::default(),
            logger_class: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(pairs: &[(&'static str, &str)]) -> Overrides {
        let mut o = Overrides::new();
        for (k, v) in pairs {
            o.entry(*k).or_default().push(v.to_string());
        }
        o
    }

    #[test]
    fn defaults_are_gunicorns() {
        let c = Config::new("a:b".into(), Values::merge(&[]).unwrap()).unwrap();
        assert_eq!(c.bind, vec!["127.0.0.1:8000"]);
        assert_eq!(c.backlog, 2048);
        assert_eq!(c.threads, 1);
        assert_eq!(c.keepalive, 2);
        assert_eq!(c.graceful_timeout, 30);
        assert_eq!(c.limits.request_line, 4094);
        assert_eq!(c.limits.request_fields, 100);
        assert_eq!(c.limits.request_field_size, 8190);
        assert_eq!(c.limits.header_map, HeaderMapPolicy::Drop);
        assert_eq!(c.limits.forwarder_headers, vec!["SCRIPT_NAME", "PATH_INFO"]);
        assert_eq!(c.limits.secure_scheme_headers.len(), 3);
        assert_eq!(c.proxy_protocol, ProxyMode::Off);
        assert!(c.forwarded_allow.allows("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn precedence_last_source_wins() {
        let env = over(&[("workers", "3"), ("keepalive", "5")]);
        let cli = over(&[("workers", "4")]);
        let c = Config::new("a".into(), Values::merge(&[&env, &cli]).unwrap()).unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.keepalive, 5);
    }

    #[test]
    fn validation_errors() {
        assert!(Values::merge(&[&over(&[("workers", "x")])]).is_err());
        assert!(Values::merge(&[&over(&[("backlog", "-1")])]).is_err());
        assert!(Values::merge(&[&over(&[("header_map", "maybe")])]).is_err());
        assert!(Values::merge(&[&over(&[("forwarded_allow_ips", "10.0.0.300")])]).is_err());
        let zero = Values::merge(&[&over(&[("workers", "0")])]).unwrap();
        assert!(Config::new("a".into(), zero).is_err());
    }

    #[test]
    fn process_settings() {
        let o = over(&[("umask", "0o22"), ("max_requests", "50"), ("pidfile", "/tmp/x.pid"), ("user", "0")]);
        let c = Config::new("a:b".into(), Values::merge(&[&o]).unwrap()).unwrap();
        assert_eq!(c.umask, 0o22);
        assert_eq!(c.max_requests, 50);
        assert_eq!(c.pidfile.as_deref(), Some("/tmp/x.pid"));
        assert_eq!(c.user.as_ref().map(|u| u.0), Some(0));
        assert_eq!(c.proc_name, "a:b");
        assert_eq!(parse_auto_int("022"), Some(0o22));
        assert_eq!(parse_auto_int("18"), Some(18));
        assert_eq!(parse_auto_int("0x12"), Some(18));
        assert_eq!(parse_auto_int("0"), Some(0));
        let bad = over(&[("user", "no-such-user-here")]);
        assert!(Config::new("a".into(), Values::merge(&[&bad]).unwrap()).is_err());
        let many = over(&[("workers", "5000")]);
        assert!(Config::new("a".into(), Values::merge(&[&many]).unwrap()).is_err());
    }

    #[test]
    fn lists() {
        let o = over(&[("bind", "127.0.0.1:1"), ("bind", "unix:/tmp/s"), ("forwarder_headers", "a_b, REMOTE_USER")]);
        let c = Config::new("a".into(), Values::merge(&[&o]).unwrap()).unwrap();
        assert_eq!(c.bind, vec!["127.0.0.1:1", "unix:/tmp/s"]);
        assert_eq!(c.limits.forwarder_headers, vec!["A_B", "REMOTE_USER"]);
    }
}
