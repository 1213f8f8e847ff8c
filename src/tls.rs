//! TLS settings turned into a rustls server configuration: gunicorn's
//! `certfile`, `keyfile`, `ca_certs`, `cert_reqs`, `ssl_version` and
//! `ciphers`, checked when the configuration is resolved (at start and on
//! HUP, so a renewed certificate is read again), each problem reported as
//! one line. ALPN offers `http/1.1` only.
//!
//! Runs in the master; the workers inherit the built configuration. The
//! per-connection side is `worker::tls_io`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// gunicorn's `cert_reqs` values (Python's `ssl.CERT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// `0` (CERT_NONE): none asked for.
    None,
    /// `1` (CERT_OPTIONAL): asked for, verified when sent.
    Optional,
    /// `2` (CERT_REQUIRED): the handshake fails without a valid one.
    Required,
}

/// The TLS settings as given.
#[derive(Debug, Clone, Default)]
pub struct TlsSpec {
    pub certfile: String,
    /// The key's file; `None`: the key is in `certfile`, as gunicorn allows.
    pub keyfile: Option<String>,
    pub ca_certs: Option<String>,
    pub cert_reqs: u64,
    pub ssl_version: String,
    pub ciphers: Option<String>,
}

/// TLS 1.2 alone (`ssl_version = TLSv1_2`).
static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// The TLS versions `ssl_version` asks for: Python's protocol constants by
/// name or number. Only those rustls offers (TLS 1.2 and 1.3) are
/// accepted.
pub fn versions(ssl_version: &str) -> Result<&'static [&'static rustls::SupportedProtocolVersion], String> {
    let v = ssl_version.trim();
    let v = v.rsplit('.').next().unwrap_or(v).trim_start_matches("PROTOCOL_");
    match v {
        // PROTOCOL_TLS (= SSLv23, gunicorn's default) and TLS_SERVER:
        // the best both sides have.
        "2" | "TLS" | "SSLv23" | "17" | "TLS_SERVER" => Ok(rustls::DEFAULT_VERSIONS),
        "5" | "TLSv1_2" => Ok(TLS12_ONLY),
        other => Err(format!(
            "ssl_version {other:?} is not available: rustls offers TLS 1.2 and 1.3 only (use TLS, the default, or TLSv1_2)"
        )),
    }
}

/// `cert_reqs` as a [`ClientCerts`].
pub fn client_certs(cert_reqs: u64) -> Result<ClientCerts, String> {
    match cert_reqs {
        0 => Ok(ClientCerts::None),
        1 => Ok(ClientCerts::Optional),
        2 => Ok(ClientCerts::Required),
        n => Err(format!("cert_reqs {n} is not one of 0 (none), 1 (optional), 2 (required)")),
    }
}

fn certs_from(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} {path}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// Build the server configuration. Every error is one line naming the
/// setting and the file.
pub fn server_config(spec: &TlsSpec) -> Result<Arc<ServerConfig>, String> {
    if spec.ciphers.as_deref().is_some_and(|c| !c.trim().is_empty()) {
        return Err("ciphers: rustls chooses its own suites (TLS 1.3, and TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305); remove --ciphers".into());
    }
    let versions = versions(&spec.ssl_version)?;
    let certs = certs_from(&spec.certfile, "certfile")?;
    let key_path = spec.keyfile.as_deref().unwrap_or(&spec.certfile);
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| format!("keyfile {key_path}: no usable private key ({e})"))?;
    let builder = ServerConfig::builder_with_protocol_versions(versions);
    let builder = match (client_certs(spec.cert_reqs)?, &spec.ca_certs) {
        (ClientCerts::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err("cert_reqs: checking client certificates needs --ca-certs".into()),
        (reqs, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in certs_from(ca, "ca_certs")? {
                roots.add(cert).map_err(|e| format!("ca_certs {ca}: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = if reqs == ClientCerts::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("ca_certs {ca}: {e}"))?)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certfile {} and keyfile {key_path} do not go together: {e}", spec.certfile))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A DER certificate as PEM text (the environ's `SSL_CLIENT_CERT`).
pub fn pem(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(der.len() * 4 / 3 + 80);
    text.push_str("-----BEGIN CERTIFICATE-----\n");
    let mut line = 0;
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            text.push(if i <= chunk.len() { B64[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
        line += 4;
        if line == 64 {
            text.push('\n');
            line = 0;
        }
    }
    if line > 0 {
        text.push('\n');
    }
    text.push_str("-----END CERTIFICATE-----\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names() {
        assert_eq!(versions("2").unwrap().len(), rustls::DEFAULT_VERSIONS.len());
        assert!(versions("TLS").is_ok() && versions("ssl.PROTOCOL_TLS_SERVER").is_ok() && versions("SSLv23").is_ok());
        assert_eq!(versions("TLSv1_2").unwrap().len(), 1);
        for bad in ["TLSv1", "TLSv1_1", "3", "4", "16", "TLS_CLIENT", "SSLv3"] {
            assert!(versions(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cert_reqs_values() {
        assert_eq!(client_certs(0).unwrap(), ClientCerts::None);
        assert_eq!(client_certs(2).unwrap(), ClientCerts::Required);
        assert!(client_certs(3).is_err());
    }

    #[test]
    fn pem_encoding() {
        assert_eq!(pem(b"ab"), "-----BEGIN CERTIFICATE-----\nYWI=\n-----END CERTIFICATE-----\n");
        assert_eq!(pem(b"abc"), "-----BEGIN CERTIFICATE-----\nYWJj\n-----END CERTIFICATE-----\n");
        let long = pem(&[0u8; 48]);
        assert!(long.contains(&format!("{}\n", "A".repeat(64))));
    }
}
