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
pub use sources::{apply_to_python, check_support, resolve, set_programmatic, Programmatic, Resolved, Run};

use std::collections::BTreeMap;

use crate::http::proxy::ProxyMode;
use crate::http::trust::AllowList;
use crate::http::{HeaderMapPolicy, Limits};
pub use settings::Key;
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

/// Raw values from one source: setting → the strings given for it
/// (several for repeatable options).
pub type Overrides = BTreeMap<Key, Vec<String>>;

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
        Kind::Seconds => {
            let v: f64 = last.trim().parse().map_err(|_| invalid(last, "not a number"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(last, "must be a positive number of seconds"));
            }
            // Kept as Python prints the float (`20.0`).
            Value::Str(format!("{v:?}"))
        }
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

/// Every setting's value after merging the sources, by key.
#[derive(Debug, Clone)]
pub struct Values {
    /// Validated values, one per setting, in the table's order.
    values: Vec<Value>,
}

impl Values {
    /// Merge `sources`, lowest precedence first, over the defaults.
    pub fn merge(sources: &[&Overrides]) -> Result<Values, ConfigError> {
        let mut values = Vec::with_capacity(SETTINGS.len());
        for setting in SETTINGS {
            let mut raw = default_raw(setting);
            for source in sources {
                if let Some(v) = source.get(&setting.key) {
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
            values.push(value);
        }
        Ok(Values { values })
    }

    /// The value of setting `key`.
    pub fn get(&self, key: Key) -> &Value {
        &self.values[key as usize]
    }

    /// gunicorn's `--print-config` line value for a setting (Python's
    /// `str()` of the value).
    pub fn python_str(&self, key: Key) -> String {
        fn quote(s: &str) -> String {
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        match self.get(key) {
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => if *b { "True".into() } else { "False".into() },
            Value::List(v) => format!("[{}]", v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")),
            Value::Dict(v) => format!("{{{}}}", v.iter().map(|(k, v)| format!("{}: {}", quote(k), quote(v))).collect::<Vec<_>>().join(", ")),
            Value::None => "None".into(),
        }
    }

    /// An integer setting (0 when unset).
    pub fn int(&self, key: Key) -> u64 {
        match self.get(key) {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    /// A `Seconds` setting (zero when unset).
    pub fn seconds(&self, key: Key) -> std::time::Duration {
        match self.get(key) {
            Value::Str(s) => s.parse::<f64>().ok().and_then(|v| std::time::Duration::try_from_secs_f64(v).ok()).unwrap_or_default(),
            _ => std::time::Duration::ZERO,
        }
    }

    /// A string setting (empty when unset).
    pub fn string(&self, key: Key) -> String {
        match self.get(key) {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        }
    }

    /// A flag setting.
    pub fn flag(&self, key: Key) -> bool {
        matches!(self.get(key), Value::Bool(true))
    }

    /// A list setting (empty when unset).
    pub fn list(&self, key: Key) -> Vec<String> {
        match self.get(key) {
            Value::List(v) => v.clone(),
            _ => Vec::new(),
        }
    }

    fn dict(&self, key: Key) -> Vec<(String, String)> {
        match self.get(key) {
            Value::Dict(v) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// Python objects from the configuration file: server hooks and settings
/// whose values are Python data.
#[derive(Debug, Default)]
pub struct PyObjects {
    /// By setting.
    pub map: BTreeMap<Key, pyo3::Py<pyo3::PyAny>>,
}

impl PyObjects {
    /// The object the configuration file gave setting `key`, if any.
    pub fn get(&self, key: Key) -> Option<&pyo3::Py<pyo3::PyAny>> {
        self.map.get(&key)
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
        let positive = |key: Key| -> Result<u64, ConfigError> {
            let n = values.int(key);
            if n == 0 {
                return Err(ConfigError::Invalid { name: key.name(), value: "0".into(), reason: "must be at least 1".into() });
            }
            Ok(n)
        };
        let header_map = match values.string(Key::HeaderMap).as_str() {
            "refuse" => HeaderMapPolicy::Refuse,
            "dangerous" => HeaderMapPolicy::Dangerous,
            _ => HeaderMapPolicy::Drop,
        };
        let limits = Limits {
            request_line: values.int(Key::LimitRequestLine) as usize,
            request_fields: values.int(Key::LimitRequestFields) as usize,
            request_field_size: values.int(Key::LimitRequestFieldSize) as usize,
            request_body: values.int(Key::LimitRequestBody),
            permit_unconventional_method: values.flag(Key::PermitUnconventionalHttpMethod),
            permit_unconventional_version: values.flag(Key::PermitUnconventionalHttpVersion),
            casefold_method: values.flag(Key::CasefoldHttpMethod),
            permit_obsolete_folding: values.flag(Key::PermitObsoleteFolding),
            strip_header_spaces: values.flag(Key::StripHeaderSpaces),
            header_map,
            forwarder_headers: values.list(Key::ForwarderHeaders).iter().map(|h| h.to_ascii_uppercase()).collect(),
            secure_scheme_headers: values
                .dict(Key::SecureSchemeHeaders)
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v))
                .collect(),
        };
        let proxy_protocol = match values.string(Key::ProxyProtocol).as_str() {
            "v1" => ProxyMode::V1,
            "v2" => ProxyMode::V2,
            "auto" => ProxyMode::Auto,
            _ => ProxyMode::Off,
        };
        let allow = |key| AllowList::parse(&values.list(key).join(",")).unwrap_or_default();
        let user = match values.get(Key::User) {
            Value::Str(spec) => {
                let (uid, _, name) = lookup_user(spec).ok_or_else(|| ConfigError::Invalid {
                    name: Key::User.name(),
                    value: spec.clone(),
                    reason: "no such user".into(),
                })?;
                Some((uid, name))
            }
            _ => None,
        };
        let group = match values.get(Key::Group) {
            Value::Str(spec) => Some(lookup_group(spec).ok_or_else(|| ConfigError::Invalid {
                name: Key::Group.name(),
                value: spec.clone(),
                reason: "no such group".into(),
            })?),
            // gunicorn: the user's own group when only --user is given.
            _ => match values.get(Key::User) {
                Value::Str(spec) => lookup_user(spec).map(|(_, gid, _)| gid),
                _ => None,
            },
        };
        let optional = |key: Key| match values.get(key) {
            Value::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let bind = values.list(Key::Bind);
        if bind.is_empty() {
            return Err(ConfigError::Invalid { name: Key::Bind.name(), value: String::new(), reason: "no address to bind".into() });
        }
        let static_map = files::static_map(&values)?;
        let tls = files::tls(&values)?;
        let workers = positive(Key::Workers)?;
        if workers as usize > crate::scoreboard::MAX_WORKERS {
            return Err(ConfigError::Invalid {
                name: Key::Workers.name(),
                value: workers.to_string(),
                reason: format!("at most {} workers", crate::scoreboard::MAX_WORKERS),
            });
        }
        let threads = positive(Key::Threads)?;
        if threads as usize > crate::scoreboard::MAX_THREADS {
            return Err(ConfigError::Invalid {
                name: Key::Threads.name(),
                value: threads.to_string(),
                reason: format!("at most {} threads per worker", crate::scoreboard::MAX_THREADS),
            });
        }
        Ok(Config {
            bind,
            backlog: values.int(Key::Backlog).clamp(1, i32::MAX as u64) as u32,
            workers: workers as u32,
            threads: threads as u32,
            worker_connections: positive(Key::WorkerConnections)? as usize,
            timeout: values.int(Key::Timeout),
            graceful_timeout: values.int(Key::GracefulTimeout),
            keepalive: values.int(Key::Keepalive),
            chdir: values.string(Key::Chdir),
            pythonpath: match values.get(Key::Pythonpath) {
                Value::Str(s) => split_commas(s),
                _ => Vec::new(),
            },
            loglevel: values.string(Key::Loglevel),
            errorlog: values.string(Key::Errorlog),
            max_requests: values.int(Key::MaxRequests),
            max_requests_jitter: values.int(Key::MaxRequestsJitter),
            max_worker_memory_mib: values.int(Key::MaxWorkerMemory),
            pidfile: optional(Key::Pidfile),
            daemon: values.flag(Key::Daemon),
            user,
            group,
            umask: values.int(Key::Umask) as u32,
            initgroups: values.flag(Key::Initgroups),
            proc_name: optional(Key::ProcName).unwrap_or_else(|| app.clone()),
            app_from_command_line: true,
            gthread: matches!(values.get(Key::WorkerClass), Value::Str(k) if k.contains("gthread") || k.contains("ThreadWorker")),
            preload_app: values.flag(Key::PreloadApp),
            raw_env: values
                .list(Key::RawEnv)
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                    None => Err(ConfigError::Invalid {
                        name: Key::RawEnv.name(),
                        value: kv.clone(),
                        reason: "expected NAME=VALUE".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            accesslog: optional(Key::Accesslog),
            access_log_format: values.string(Key::AccessLogFormat),
            objects: std::sync::Arc::new(PyObjects::default()),
            preloaded_app: None,
            statsd_host: optional(Key::StatsdHost),
            statsd_prefix: values.string(Key::StatsdPrefix),
            dogstatsd_tags: values.string(Key::DogstatsdTags),
            capture_output: values.flag(Key::CaptureOutput),
            logconfig: optional(Key::Logconfig),
            logconfig_json: optional(Key::LogconfigJson),
            syslog: values.flag(Key::Syslog),
            syslog_addr: values.string(Key::SyslogAddr),
            syslog_prefix: optional(Key::SyslogPrefix),
            syslog_facility: values.string(Key::SyslogFacility),
            disable_redirect_access_to_syslog: values.flag(Key::DisableRedirectAccessToSyslog),
            paste_global_conf: values
                .list(Key::RawPasteGlobalConf)
                .iter()
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect(),
            app,
            limits,
            forwarded_allow: allow(Key::ForwardedAllowIps),
            proxy_protocol,
            proxy_allow: allow(Key::ProxyAllowIps),
            static_map,
            tls,
            suppress_ragged_eofs: values.flag(Key::SuppressRaggedEofs),
            values,
            worker: compat::WorkerChoice::default(),
            logger_class: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(pairs: &[(Key, &str)]) -> Overrides {
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
        let env = over(&[(Key::Workers, "3"), (Key::Keepalive, "5")]);
        let cli = over(&[(Key::Workers, "4")]);
        let c = Config::new("a".into(), Values::merge(&[&env, &cli]).unwrap()).unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.keepalive, 5);
    }

    #[test]
    fn validation_errors() {
        assert!(Values::merge(&[&over(&[(Key::Workers, "x")])]).is_err());
        assert!(Values::merge(&[&over(&[(Key::Backlog, "-1")])]).is_err());
        assert!(Values::merge(&[&over(&[(Key::HeaderMap, "maybe")])]).is_err());
        assert!(Values::merge(&[&over(&[(Key::ForwardedAllowIps, "10.0.0.300")])]).is_err());
        let zero = Values::merge(&[&over(&[(Key::Workers, "0")])]).unwrap();
        assert!(Config::new("a".into(), zero).is_err());
    }

    #[test]
    fn process_settings() {
        let o = over(&[(Key::Umask, "0o22"), (Key::MaxRequests, "50"), (Key::Pidfile, "/tmp/x.pid"), (Key::User, "0")]);
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
        let bad = over(&[(Key::User, "no-such-user-here")]);
        assert!(Config::new("a".into(), Values::merge(&[&bad]).unwrap()).is_err());
        let many = over(&[(Key::Workers, "5000")]);
        assert!(Config::new("a".into(), Values::merge(&[&many]).unwrap()).is_err());
    }

    #[test]
    fn lists() {
        let o = over(&[(Key::Bind, "127.0.0.1:1"), (Key::Bind, "unix:/tmp/s"), (Key::ForwarderHeaders, "a_b, REMOTE_USER")]);
        let c = Config::new("a".into(), Values::merge(&[&o]).unwrap()).unwrap();
        assert_eq!(c.bind, vec!["127.0.0.1:1", "unix:/tmp/s"]);
        assert_eq!(c.limits.forwarder_headers, vec!["A_B", "REMOTE_USER"]);
    }
}
