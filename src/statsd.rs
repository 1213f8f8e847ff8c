//! statsd metrics (`--statsd-host`, `--statsd-prefix`, `--dogstatsd-tags`)
//! with gunicorn's metric names: `gunicorn.requests`,
//! `gunicorn.request.duration`, `gunicorn.request.status.<code>`,
//! `gunicorn.workers`, `gunicorn.log.<level>`, and with
//! `--enable-backlog-metric` `gunicorn.backlog` (a histogram, sent by the
//! master loop). One UDP datagram per metric,
//! never blocking and never failing a request.
//!
//! Configured in the master before fork (the socket is shared by every
//! process); sent from executor threads (no GIL), the master loop, and the
//! error log.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::time::Duration;

/// Where datagrams go.
enum Target {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

struct Statsd {
    target: Target,
    /// Prepended to every name, ending in `.` when set.
    prefix: String,
    /// `|#tags` appended for DogStatsD, when set.
    tags: String,
}

static STATSD: OnceLock<Statsd> = OnceLock::new();

/// gunicorn's prefix rule: a non-empty prefix ends with exactly one dot.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_end_matches('.');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}.")
    }
}

/// Connect to `host:port` or `unix:PATH`. Called in the master.
pub fn init(host: &str, prefix: &str, tags: &str) -> std::io::Result<()> {
    let target = if let Some(path) = host.strip_prefix("unix:") {
        let s = UnixDatagram::unbound()?;
        s.connect(path)?;
        s.set_nonblocking(true)?;
        Target::Unix(s)
    } else {
        let s = UdpSocket::bind(if host.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })?;
        s.connect(host)?;
        s.set_nonblocking(true)?;
        Target::Udp(s)
    };
    let tags = if tags.is_empty() { String::new() } else { format!("|#{tags}") };
    let _ = STATSD.set(Statsd { target, prefix: normalize_prefix(prefix), tags });
    Ok(())
}

fn send(body: String) {
    if let Some(s) = STATSD.get() {
        let msg = format!("{}{body}{}", s.prefix, s.tags);
        let _ = match &s.target {
            Target::Udp(u) => u.send(msg.as_bytes()),
            Target::Unix(u) => u.send(msg.as_bytes()),
        };
    }
}

/// True when metrics are sent.
pub fn enabled() -> bool {
    STATSD.get().is_some()
}

pub fn increment(name: &str, value: u64) {
    send(format!("{name}:{value}|c|@1.0"));
}

pub fn gauge(name: &str, value: u64) {
    send(format!("{name}:{value}|g"));
}

/// A histogram sample (gunicorn's `gunicorn.backlog`).
pub fn histogram(name: &str, value: u64) {
    send(format!("{name}:{value}|h"));
}

pub fn timer(name: &str, ms: f64) {
    send(format!("{name}:{ms}|ms"));
}

/// The metrics gunicorn sends for each request; the duration is left out
/// when there is none to give (a WebSocket connection's length).
pub fn request(status: u16, duration: Option<Duration>) {
    if !enabled() {
        return;
    }
    if let Some(duration) = duration {
        timer("gunicorn.request.duration", duration.as_secs_f64() * 1000.0);
    }
    increment("gunicorn.requests", 1);
    increment(&format!("gunicorn.request.status.{status}"), 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("app"), "app.");
        assert_eq!(normalize_prefix("app..."), "app.");
    }
}
