//! syslog output (`--log-syslog`, `--log-syslog-to`, `--log-syslog-prefix`,
//! `--log-syslog-facility`, `--disable-redirect-access-to-syslog`), framed as
//! Python's `SysLogHandler` frames gunicorn's lines:
//! `<PRI>gunicorn.PREFIX.error: [PID] message\0`.
//!
//! Configured in the master before fork; used by the error log and the
//! access log from any process or thread.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::{Mutex, OnceLock};

/// syslog facility codes by name (RFC 5424 §6.2.1).
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

enum Transport {
    Udp(UdpSocket),
    Tcp(Mutex<TcpStream>),
    UnixDgram(UnixDatagram),
    UnixStream(Mutex<UnixStream>),
}

struct Syslog {
    transport: Transport,
    facility: u8,
    /// `gunicorn.<prefix>`; `.error` / `.access` is added per line.
    prefix: String,
    /// Access lines go to syslog too.
    access: bool,
}

static SYSLOG: OnceLock<Syslog> = OnceLock::new();

/// Open the syslog destination. `addr` is `udp://host:port`,
/// `tcp://host:port` or `unix://path[#dgram|#stream]`. Called in the master.
pub fn init(addr: &str, facility: &str, prefix: &str, access: bool) -> Result<(), String> {
    let facility = facility_code(facility).ok_or_else(|| format!("unknown syslog facility {facility:?}"))?;
    let transport = if let Some(rest) = addr.strip_prefix("unix://") {
        let (path, kind) = rest.split_once('#').unwrap_or((rest, ""));
        match kind {
            "stream" => Transport::UnixStream(Mutex::new(UnixStream::connect(path).map_err(|e| e.to_string())?)),
            _ => {
                let s = UnixDatagram::unbound().map_err(|e| e.to_string())?;
                match s.connect(path) {
                    Ok(()) => Transport::UnixDgram(s),
                    Err(_) => Transport::UnixStream(Mutex::new(UnixStream::connect(path).map_err(|e| e.to_string())?)),
                }
            }
        }
    } else if let Some(hostport) = addr.strip_prefix("udp://") {
        let s = UdpSocket::bind(if hostport.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" }).map_err(|e| e.to_string())?;
        s.connect(with_port(hostport)).map_err(|e| e.to_string())?;
        Transport::Udp(s)
    } else if let Some(hostport) = addr.strip_prefix("tcp://") {
        Transport::Tcp(Mutex::new(TcpStream::connect(with_port(hostport)).map_err(|e| e.to_string())?))
    } else {
        return Err(format!("invalid syslog address {addr:?}"));
    };
    let _ = SYSLOG.set(Syslog { transport, facility, prefix: format!("gunicorn.{prefix}"), access });
    Ok(())
}

fn with_port(hostport: &str) -> String {
    let has_port = if hostport.starts_with('[') { hostport.contains("]:") } else { hostport.contains(':') };
    if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:514")
    }
}

/// The syslog severity of an error-log level.
fn severity(level: crate::log::Level) -> u8 {
    use crate::log::Level::*;
    match level {
        Debug => 7,
        Info => 6,
        Warning => 4,
        Error => 3,
        Critical => 2,
    }
}

fn send(sys: &Syslog, severity: u8, channel: &str, msg: &str) {
    let line = format!("<{}>{}.{channel}: [{}] {msg}\0", sys.facility as u32 * 8 + severity as u32, sys.prefix, std::process::id());
    let _ = match &sys.transport {
        Transport::Udp(s) => s.send(line.as_bytes()).map(|_| ()),
        Transport::UnixDgram(s) => s.send(line.as_bytes()).map(|_| ()),
        Transport::Tcp(s) => s.lock().map(|mut s| s.write_all(line.as_bytes())).unwrap_or(Ok(())),
        Transport::UnixStream(s) => s.lock().map(|mut s| s.write_all(line.as_bytes())).unwrap_or(Ok(())),
    };
}

/// Send an error-log line.
pub fn error_line(level: crate::log::Level, msg: &str) {
    if let Some(sys) = SYSLOG.get() {
        send(sys, severity(level), "error", msg);
    }
}

/// Send an access-log line (unless `--disable-redirect-access-to-syslog`).
pub fn access_line(msg: &str) {
    if let Some(sys) = SYSLOG.get() {
        if sys.access {
            send(sys, 6, "access", msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_and_ports() {
        assert_eq!(facility_code("USER"), Some(1));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("nope"), None);
        assert_eq!(with_port("localhost"), "localhost:514");
        assert_eq!(with_port("127.0.0.1:5140"), "127.0.0.1:5140");
        assert_eq!(with_port("[::1]"), "[::1]:514");
    }
}
