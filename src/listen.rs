//! Listening sockets: parse `--bind` addresses (HOST:PORT, [IPv6]:PORT,
//! unix:PATH, fd://FD), bind them with gunicorn's socket options, and describe
//! them for the log and for `SERVER_NAME`/`SERVER_PORT`.
//!
//! Bound in the master before any worker is forked; workers inherit the
//! descriptors and register them with their own poller.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use socket2::{Domain, Socket, Type};

/// gunicorn's port when `--bind` gives a host alone.
pub const DEFAULT_PORT: u16 = 8000;

/// A parsed `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// `HOST:PORT`; the host is resolved when binding.
    Tcp { host: String, port: u16 },
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: an already-bound socket handed to us.
    Fd(RawFd),
}

/// Parse one `--bind` value the way gunicorn's `parse_address` does.
pub fn parse_bind(spec: &str) -> Result<BindAddr, String> {
    if let Some(path) = spec.strip_prefix("unix://").or_else(|| spec.strip_prefix("unix:")) {
        if path.is_empty() {
            return Err(format!("{spec:?}: empty unix socket path"));
        }
        return Ok(BindAddr::Unix(PathBuf::from(path)));
    }
    if let Some(fd) = spec.strip_prefix("fd://") {
        return fd.parse::<RawFd>().map(BindAddr::Fd).map_err(|_| format!("{spec:?}: invalid file descriptor"));
    }
    let spec_l = spec.strip_prefix("tcp://").unwrap_or(spec).to_ascii_lowercase();
    let (host, port) = if let Some(rest) = spec_l.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("{spec:?}: missing ']' in IPv6 address"))?;
        match after.strip_prefix(':') {
            Some(p) => (host.to_owned(), Some(p)),
            None if after.is_empty() => (host.to_owned(), None),
            None => return Err(format!("{spec:?}: invalid address")),
        }
    } else if spec_l.matches(':').count() > 1 {
        // A bare IPv6 address without brackets and without a port.
        (spec_l.clone(), None)
    } else {
        match spec_l.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (spec_l.clone(), None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().map_err(|_| format!("{spec:?}: {p:?} is not a valid port number"))?,
    };
    let host = if host.is_empty() { "0.0.0.0".to_owned() } else { host };
    Ok(BindAddr::Tcp { host, port })
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp { socket: TcpListener, addr: SocketAddr },
    Unix { socket: UnixListener, path: PathBuf },
}

impl Listener {
    /// How gunicorn names the listener in `Listening at: …`.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp { addr, .. } => match addr {
                SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
                SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
            },
            Listener::Unix { path, .. } => format!("unix:{}", path.display()),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp { socket, .. } => socket.as_raw_fd(),
            Listener::Unix { socket, .. } => socket.as_raw_fd(),
        }
    }

    /// `SERVER_NAME` and `SERVER_PORT` for requests on this listener; `None`
    /// for unix sockets, where they come from the Host header.
    pub fn server_name_port(&self) -> Option<(String, String)> {
        match self {
            Listener::Tcp { addr, .. } => Some((addr.ip().to_string(), addr.port().to_string())),
            Listener::Unix { .. } => None,
        }
    }

    /// Give a unix listener's socket file to the workers' user and group.
    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::os::unix::fs::chown(path, uid, gid);
        }
    }

    /// Remove the socket file of a unix listener (on stop).
    pub fn unlink(&self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Why a bind failed, as one line for the operator.
pub fn bind_error(spec: &str, e: &std::io::Error) -> String {
    format!("Can't connect to {spec}: {e}")
}

/// Bind one address with gunicorn's options (SO_REUSEADDR, the backlog).
/// Called in the master.
pub fn bind(spec: &str, backlog: u32) -> Result<Listener, String> {
    let backlog = backlog.min(i32::MAX as u32) as i32;
    match parse_bind(spec)? {
        BindAddr::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("Can't connect to {spec}: {e}"))?
                .collect();
            let addr = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| format!("Can't connect to {spec}: no address"))?;
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(|e| bind_error(spec, &e))?;
            socket.set_reuse_address(true).map_err(|e| bind_error(spec, &e))?;
            if addr.is_ipv6() {
                let _ = socket.set_only_v6(true);
            }
            socket.bind(&addr.into()).map_err(|e| bind_error(spec, &e))?;
            socket.listen(backlog).map_err(|e| bind_error(spec, &e))?;
            let socket: TcpListener = socket.into();
            let addr = socket.local_addr().map_err(|e| bind_error(spec, &e))?;
            Ok(Listener::Tcp { socket, addr })
        }
        BindAddr::Unix(path) => {
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                use std::os::unix::fs::FileTypeExt;
                if meta.file_type().is_socket() {
                    let _ = std::fs::remove_file(&path);
                } else {
                    return Err(format!("Can't connect to {spec}: {} is not a socket", path.display()));
                }
            }
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| bind_error(spec, &e))?;
            let sa = socket2::SockAddr::unix(&path).map_err(|e| bind_error(spec, &e))?;
            socket.bind(&sa).map_err(|e| bind_error(spec, &e))?;
            socket.listen(backlog).map_err(|e| bind_error(spec, &e))?;
            Ok(Listener::Unix { socket: socket.into(), path })
        }
        BindAddr::Fd(fd) => adopt(fd).map_err(|e| bind_error(spec, &e)),
    }
}

/// Take over an already-listening descriptor (`fd://N`, or one inherited
/// from an old master on USR2). Called in the master.
pub fn adopt(fd: RawFd) -> std::io::Result<Listener> {
    // SAFETY: the descriptor was handed to this process as a listening
    // socket; we take ownership of it.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let local = socket.local_addr()?;
    // Inherited descriptors lost close-on-exec for the exec; set it back.
    socket.set_cloexec(true)?;
    if let Some(addr) = local.as_socket() {
        Ok(Listener::Tcp { socket: socket.into(), addr })
    } else {
        let path = local.as_pathname().map(PathBuf::from).unwrap_or_default();
        Ok(Listener::Unix { socket: socket.into(), path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        assert_eq!(parse_bind("127.0.0.1:8001"), Ok(BindAddr::Tcp { host: "127.0.0.1".into(), port: 8001 }));
        assert_eq!(parse_bind("localhost"), Ok(BindAddr::Tcp { host: "localhost".into(), port: 8000 }));
        assert_eq!(parse_bind(":9000"), Ok(BindAddr::Tcp { host: "0.0.0.0".into(), port: 9000 }));
        assert_eq!(parse_bind("[::1]:8002"), Ok(BindAddr::Tcp { host: "::1".into(), port: 8002 }));
        assert_eq!(parse_bind("[::1]"), Ok(BindAddr::Tcp { host: "::1".into(), port: 8000 }));
        assert_eq!(parse_bind("::1"), Ok(BindAddr::Tcp { host: "::1".into(), port: 8000 }));
        assert_eq!(parse_bind("unix:/tmp/x.sock"), Ok(BindAddr::Unix("/tmp/x.sock".into())));
        assert_eq!(parse_bind("unix:///tmp/x.sock"), Ok(BindAddr::Unix("/tmp/x.sock".into())));
        assert_eq!(parse_bind("fd://3"), Ok(BindAddr::Fd(3)));
        assert!(parse_bind("127.0.0.1:http").is_err());
        assert!(parse_bind("127.0.0.1:70000").is_err());
        assert!(parse_bind("[::1").is_err());
        assert!(parse_bind("unix:").is_err());
    }

    #[test]
    fn bind_loopback_and_unix() {
        let l = bind("127.0.0.1:0", 16).unwrap();
        assert!(l.url().starts_with("http://127.0.0.1:"));
        assert_eq!(l.server_name_port().unwrap().0, "127.0.0.1");
        let dir = std::env::temp_dir().join(format!("rsgi-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let u = bind(&format!("unix:{}", path.display()), 16).unwrap();
        assert_eq!(u.url(), format!("unix:{}", path.display()));
        // Rebinding over a stale socket file works, as in gunicorn.
        drop(u);
        let u = bind(&format!("unix:{}", path.display()), 16).unwrap();
        u.unlink();
        assert!(bind("999.1.1.1:80", 16).is_err());
    }
}
