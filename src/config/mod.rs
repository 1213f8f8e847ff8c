//! Configuration: merge the sources (CLI > `RSGI_CMD_ARGS` >
//! `GUNICORN_CMD_ARGS` > defaults), validate every value against the
//! settings table, and freeze the result into a typed [`Config`].
//!
//! Runs in the master before anything is bound or forked; pure apart from
//! reading the environment and the current directory for defaults.

pub mod settings;

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
        Kind::Flag => match last.to_ascii_lowercase().as_str() {
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
        Kind::Dict => {
            let mut pairs = Vec::new();
            for item in split_commas(last) {
                let (k, v) = item.split_once('=').ok_or_else(|| invalid(last, "expected NAME=value pairs"))?;
                pairs.push((k.trim().to_ascii_uppercase(), v.trim().to_owned()));
            }
            Value::Dict(pairs)
        }
    })
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
        settings::Default::CurrentDir => std::env::current_dir().ok().map(|d| vec![d.display().to_string()]),
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

    fn int(&self, name: &str) -> u64 {
        match self.get(name) {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    fn string(&self, name: &str) -> String {
        match self.get(name) {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Value::Bool(true))
    }

    fn list(&self, name: &str) -> Vec<String> {
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

/// The frozen configuration the master and workers run with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The WSGI app, `module:callable` as given.
    pub app: String,
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
    /// Everything the HTTP parser needs.
    pub limits: Limits,
    /// Peers trusted for forwarding and secure-scheme headers.
    pub forwarded_allow: AllowList,
    pub proxy_protocol: ProxyMode,
    /// Peers allowed to send a PROXY header.
    pub proxy_allow: AllowList,
    /// The merged values, kept for printing and for later settings.
    pub values: Values,
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
            secure_scheme_headers: values.dict("secure_scheme_headers"),
        };
        let proxy_protocol = match values.string("proxy_protocol").as_str() {
            "v1" => ProxyMode::V1,
            "v2" => ProxyMode::V2,
            "auto" => ProxyMode::Auto,
            _ => ProxyMode::Off,
        };
        let allow = |name| AllowList::parse(&values.list(name).join(",")).unwrap_or_default();
        let bind = values.list("bind");
        if bind.is_empty() {
            return Err(ConfigError::Invalid { name: "bind", value: String::new(), reason: "no address to bind".into() });
        }
        Ok(Config {
            app,
            bind,
            backlog: values.int("backlog").clamp(1, i32::MAX as u64) as u32,
            workers: positive("workers")? as u32,
            threads: positive("threads")? as u32,
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
            limits,
            forwarded_allow: allow("forwarded_allow_ips"),
            proxy_protocol,
            proxy_allow: allow("proxy_allow_ips"),
            values,
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
    fn lists() {
        let o = over(&[("bind", "127.0.0.1:1"), ("bind", "unix:/tmp/s"), ("forwarder_headers", "a_b, REMOTE_USER")]);
        let c = Config::new("a".into(), Values::merge(&[&o]).unwrap()).unwrap();
        assert_eq!(c.bind, vec!["127.0.0.1:1", "unix:/tmp/s"]);
        assert_eq!(c.limits.forwarder_headers, vec!["A_B", "REMOTE_USER"]);
    }
}
