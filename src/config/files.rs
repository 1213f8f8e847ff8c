//! Settings that name files the server itself reads, checked when the
//! configuration is resolved (at start and on HUP) so a mistake is one line:
//! the `--static-map` directories and the TLS certificate, key and CA files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ConfigError, Key, Value, Values};

/// `--static-map PREFIX=DIR` entries, each directory resolved against
/// `--chdir` and checked now, so a typo is one line at start-up.
pub(super) fn static_map(values: &Values) -> Result<Vec<(String, PathBuf)>, ConfigError> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for spec in values.list(Key::StaticMap) {
        let invalid = |reason: String| ConfigError::Invalid { name: Key::StaticMap.name(), value: spec.clone(), reason };
        let (prefix, dir) = crate::static_files::parse_mapping(&spec).map_err(invalid)?;
        let path = Path::new(&values.string(Key::Chdir)).join(&dir);
        let dir = path.canonicalize().map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        if !dir.is_dir() {
            return Err(invalid(format!("{} is not a directory", dir.display())));
        }
        if out.iter().any(|(p, _)| *p == prefix) {
            return Err(invalid(format!("the prefix {prefix:?} is mapped twice")));
        }
        out.push((prefix, dir));
    }
    Ok(out)
}

/// The rustls configuration `--certfile` and company ask for, or `None`
/// without `--certfile`.
pub(super) fn tls(values: &Values) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
    let optional = |key: Key| match values.get(key) {
        Value::Str(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let Some(certfile) = optional(Key::Certfile) else {
        if let Some(keyfile) = optional(Key::Keyfile) {
            return Err(ConfigError::Invalid { name: Key::Keyfile.name(), value: keyfile, reason: "a key without --certfile".into() });
        }
        return Ok(None);
    };
    let spec = crate::tls::TlsSpec {
        certfile: certfile.clone(),
        keyfile: optional(Key::Keyfile),
        ca_certs: optional(Key::CaCerts),
        cert_reqs: values.int(Key::CertReqs),
        ssl_version: values.string(Key::SslVersion),
        ciphers: optional(Key::Ciphers),
    };
    crate::tls::server_config(&spec)
        .map(Some)
        .map_err(|reason| ConfigError::Invalid { name: Key::Certfile.name(), value: certfile, reason })
}
