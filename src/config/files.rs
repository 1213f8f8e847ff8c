//! Settings that name files the server itself reads, checked when the
//! configuration is resolved (at start and on HUP) so a mistake is one line:
//! the `--static-map` directories and the TLS certificate, key and CA files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ConfigError, Value, Values};

/// `--static-map PREFIX=DIR` entries, each directory resolved against
/// `--chdir` and checked now, so a typo is one line at start-up.
pub(super) fn static_map(values: &Values) -> Result<Vec<(String, PathBuf)>, ConfigError> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for spec in values.list("static_map") {
        let invalid = |reason: String| ConfigError::Invalid { name: "static_map", value: spec.clone(), reason };
        let (prefix, dir) = crate::static_files::parse_mapping(&spec).map_err(invalid)?;
        let path = Path::new(&values.string("chdir")).join(&dir);
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
    let optional = |name: &str| match values.get(name) {
        Value::Str(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let Some(certfile) = optional("certfile") else {
        if let Some(keyfile) = optional("keyfile") {
            return Err(ConfigError::Invalid { name: "keyfile", value: keyfile, reason: "a key without --certfile".into() });
        }
        return Ok(None);
    };
    let spec = crate::tls::TlsSpec {
        certfile: certfile.clone(),
        keyfile: optional("keyfile"),
        ca_certs: optional("ca_certs"),
        cert_reqs: values.int("cert_reqs"),
        ssl_version: values.string("ssl_version"),
        ciphers: optional("ciphers"),
    };
    crate::tls::server_config(&spec)
        .map(Some)
        .map_err(|reason| ConfigError::Invalid { name: "certfile", value: certfile, reason })
}
