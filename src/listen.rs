//! Listening sockets: parse `--bind` addresses (HOST:PORT, [IPv6]:PORT,
//! unix:PATH, fd://FD), bind them with gunicorn's socket options
//! (SO_REUSEADDR, SO_REUSEPORT with `--reuse-port`), take over sockets from
//! systemd socket activation (`LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`),
//! and describe them for the log and for `SERVER_NAME`/`SERVER_PORT`.
//!
//! Bound in the master before any worker is forked; workers inherit the
//! descriptors and register them with their own poller. A unix socket file
//! is created under `-m/--umask` (default 0, so mode 0777) and the process's
//! own umask is put back right after, as gunicorn does.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

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

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const SYSTEMD_FIRST_FD: RawFd = 3;

/// `--reuse-port`, as the configuration last resolved it (startup, HUP).
static REUSE_PORT: AtomicBool = AtomicBool::new(false);

/// `-m/--umask`, as the configuration last resolved it.
static SOCKET_UMASK: AtomicU32 = AtomicU32::new(0);

/// The options of sockets bound from now on: SO_REUSEPORT on TCP sockets
/// (`--reuse-port`) and the umask unix socket files are created under
/// (`--umask`). Called when the configuration is resolved, in the master.
pub fn set_options(reuse_port: bool, umask: u32) {
    REUSE_PORT.store(reuse_port, Ordering::Relaxed);
    SOCKET_UMASK.store(umask, Ordering::Relaxed);
}

/// Sockets handed over by systemd socket activation: the descriptor and
/// its name from `LISTEN_FDNAMES` (systemd names them after the socket
/// unit unless `FileDescriptorName=` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    pub fds: Vec<(RawFd, String)>,
}

impl Activated {
    /// The `--bind` values that stand for these sockets (`fd://N`).
    pub fn binds(&self) -> Vec<String> {
        self.fds.iter().map(|(fd, _)| format!("fd://{fd}")).collect()
    }
}

/// How a master holding systemd's descriptors names them to its USR2
/// successor (which inherits them at the same numbers): set only in the
/// successor's exec environment ([`systemd_fds_for_successor`]), and taken
/// out of it again when the successor starts ([`predecessor_systemd_fds`]),
/// so that neither workers nor the app's own subprocesses see it.
pub const SYSTEMD_FDS_ENV: &str = "RSGI_SYSTEMD_FDS";

/// The descriptors from systemd a USR2 predecessor handed down, read once
/// from [`SYSTEMD_FDS_ENV`] and removed from the process environment
/// (Python's `os.environ` is the caller's: `config::sources`). Called in
/// the master, first by [`systemd_activation`].
fn predecessor_systemd_fds() -> &'static [RawFd] {
    static FDS: OnceLock<Vec<RawFd>> = OnceLock::new();
    FDS.get_or_init(|| {
        let list = std::env::var(SYSTEMD_FDS_ENV).unwrap_or_default();
        std::env::remove_var(SYSTEMD_FDS_ENV);
        list.split(',').filter_map(|f| f.trim().parse().ok()).collect()
    })
}

/// The `RSGI_SYSTEMD_FDS` value for a USR2 successor's environment: every
/// descriptor from systemd this master holds (its own activation's and its
/// predecessor's), `None` when there is none. Called in the master.
pub fn systemd_fds_for_successor() -> Option<String> {
    let mut fds: Vec<RawFd> = predecessor_systemd_fds().to_vec();
    if let Ok(Some(a)) = systemd_activation() {
        fds.extend(a.fds.iter().map(|(fd, _)| *fd));
    }
    fds.sort_unstable();
    fds.dedup();
    (!fds.is_empty()).then(|| fds.iter().map(RawFd::to_string).collect::<Vec<_>>().join(","))
}

/// Read systemd's socket-activation variables once per process, as
/// `sd_listen_fds` does: they apply only when `LISTEN_PID` is this
/// process, and are removed from the environment so that neither workers
/// nor apps nor a re-executed master take them for their own. Later calls
/// (HUP re-resolves the configuration) return the first answer.
/// `Ok(None)` when rsgi was not socket-activated. Called in the master;
/// the first call also takes a USR2 predecessor's note of systemd's
/// descriptors out of the environment.
pub fn systemd_activation() -> Result<Option<Activated>, String> {
    static ACTIVATED: OnceLock<Result<Option<Activated>, String>> = OnceLock::new();
    ACTIVATED
        .get_or_init(|| {
            predecessor_systemd_fds();
            let get = |k: &str| std::env::var(k).ok();
            let (pid, fds, names) = (get("LISTEN_PID"), get("LISTEN_FDS"), get("LISTEN_FDNAMES"));
            let found = parse_activation(pid.as_deref(), fds.as_deref(), names.as_deref(), std::process::id());
            if matches!(found, Ok(Some(_)) | Err(_)) {
                for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                    std::env::remove_var(k);
                }
            }
            found
        })
        .clone()
}

/// The pure part of [`systemd_activation`].
fn parse_activation(pid: Option<&str>, fds: Option<&str>, names: Option<&str>, me: u32) -> Result<Option<Activated>, String> {
    let (Some(pid), Some(fds)) = (pid, fds) else { return Ok(None) };
    if pid.trim().parse::<u32>().ok() != Some(me) {
        return Ok(None);
    }
    let n = fds
        .trim()
        .parse::<u16>()
        .map_err(|_| format!("Can't use systemd's sockets: LISTEN_FDS={fds:?} is not a number of descriptors"))?;
    if n == 0 {
        return Ok(None);
    }
    let names: Vec<&str> = names.map(|n| n.split(':').collect()).unwrap_or_default();
    let fds = (0..n as RawFd)
        .map(|i| {
            let name = names.get(i as usize).copied().filter(|n| !n.is_empty()).unwrap_or("unknown");
            (SYSTEMD_FIRST_FD + i, name.to_owned())
        })
        .collect();
    Ok(Some(Activated { fds }))
}

/// Whether a descriptor came from systemd socket activation, to this
/// master or to the one it succeeded by USR2 (such a unix socket file
/// belongs to systemd and is never unlinked by rsgi).
fn is_systemd_fd(fd: RawFd) -> bool {
    matches!(systemd_activation(), Ok(Some(a)) if a.fds.iter().any(|(f, _)| *f == fd)) || predecessor_systemd_fds().contains(&fd)
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp { socket: TcpListener, addr: SocketAddr },
    /// `owned` is false for a socket file systemd created: rsgi leaves it.
    Unix { socket: UnixListener, path: PathBuf, owned: bool },
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

    /// As [`Listener::url`], with `https://` for a TCP bind when the
    /// server speaks TLS (gunicorn's `Listening at:` line).
    pub fn url_for(&self, tls: bool) -> String {
        let url = self.url();
        if tls {
            url.replacen("http://", "https://", 1)
        } else {
            url
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

    /// Remove the socket file of a unix listener (on stop), unless systemd
    /// owns it (gunicorn does not unlink socket-activated files either).
    pub fn unlink(&self) {
        if let Listener::Unix { path, owned: true, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Why a bind failed, as one line for the operator.
pub fn bind_error(spec: &str, e: &std::io::Error) -> String {
    format!("Can't connect to {spec}: {e}")
}

/// Bind one address with gunicorn's options (SO_REUSEADDR, SO_REUSEPORT
/// with `--reuse-port`, the backlog). Called in the master.
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
            if REUSE_PORT.load(Ordering::Relaxed) {
                socket.set_reuse_port(true).map_err(|e| bind_error(spec, &e))?;
            }
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
            // SAFETY: umask only swaps this process's file creation mask;
            // the previous one is put back right after the bind.
            let previous = unsafe { libc::umask(SOCKET_UMASK.load(Ordering::Relaxed) as libc::mode_t) };
            let bound = socket.bind(&sa);
            // SAFETY: as above.
            unsafe { libc::umask(previous) };
            bound.map_err(|e| bind_error(spec, &e))?;
            socket.listen(backlog).map_err(|e| bind_error(spec, &e))?;
            Ok(Listener::Unix { socket: socket.into(), path, owned: true })
        }
        BindAddr::Fd(fd) => adopt_with_backlog(fd, backlog).map_err(|e| bind_error(spec, &e)),
    }
}

/// Take over an already-bound stream socket (`fd://N`, systemd's, or one
/// inherited from an old master on USR2), listening on it if it is not yet
/// (as gunicorn does). A unix socket systemd made stays systemd's to
/// remove. Called in the master.
pub fn adopt(fd: RawFd) -> std::io::Result<Listener> {
    // The backlog only matters for a socket not yet listening (never the
    // case for inherited ones); 2048 is gunicorn's default.
    adopt_with_backlog(fd, 2048)
}

fn adopt_with_backlog(fd: RawFd, backlog: i32) -> std::io::Result<Listener> {
    // SAFETY: fcntl(F_GETFD) only reads the descriptor's flags; it tells a
    // descriptor that is not open (EBADF) from one we may take over.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the descriptor is open and was handed to this process to
    // listen on; from here the Socket owns it (and closes it on error).
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let local = socket.local_addr()?;
    if socket.r#type()? != Type::STREAM {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a stream socket"));
    }
    if !socket.is_listener()? {
        socket.listen(backlog)?;
    }
    // Inherited descriptors lost close-on-exec for the exec; set it back.
    socket.set_cloexec(true)?;
    if let Some(addr) = local.as_socket() {
        Ok(Listener::Tcp { socket: socket.into(), addr })
    } else {
        let path = local.as_pathname().map(PathBuf::from).unwrap_or_default();
        Ok(Listener::Unix { socket: socket.into(), path, owned: !is_systemd_fd(fd) })
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
    fn systemd_variables() {
        let me = 4242;
        assert_eq!(parse_activation(None, None, None, me), Ok(None));
        // For another process (a parent that was activated): not ours.
        assert_eq!(parse_activation(Some("1"), Some("2"), None, me), Ok(None));
        assert_eq!(parse_activation(Some("4242"), Some("0"), None, me), Ok(None));
        let a = parse_activation(Some("4242"), Some("2"), Some("web.socket:admin"), me).unwrap().unwrap();
        assert_eq!(a.fds, vec![(3, "web.socket".to_owned()), (4, "admin".to_owned())]);
        assert_eq!(a.binds(), vec!["fd://3", "fd://4"]);
        let a = parse_activation(Some("4242"), Some("1"), None, me).unwrap().unwrap();
        assert_eq!(a.fds, vec![(3, "unknown".to_owned())]);
        assert!(parse_activation(Some("4242"), Some("two"), None, me).unwrap_err().contains("LISTEN_FDS"));
    }

    #[test]
    fn adopt_refuses_what_is_not_a_stream_socket() {
        assert!(adopt(-1).is_err());
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = std::os::unix::io::IntoRawFd::into_raw_fd(udp);
        assert!(adopt(fd).is_err());
        // A bound but not yet listening socket is put to listen.
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        let fd = std::os::unix::io::IntoRawFd::into_raw_fd(s);
        let l = adopt(fd).unwrap();
        let Listener::Tcp { addr, .. } = &l else { panic!("not tcp") };
        std::net::TcpStream::connect(addr).unwrap();
    }

    #[test]
    fn reuse_port_is_set_when_asked() {
        set_options(true, 0);
        let a = bind("127.0.0.1:0", 16).unwrap();
        set_options(false, 0);
        let port = a.server_name_port().unwrap().1;
        // A second socket with SO_REUSEPORT may share the port only if the
        // first one set it too.
        let b = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        b.set_reuse_port(true).unwrap();
        b.bind(&format!("127.0.0.1:{port}").parse::<SocketAddr>().unwrap().into()).unwrap();
        let c = bind("127.0.0.1:0", 16).unwrap();
        let port = c.server_name_port().unwrap().1;
        let d = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        d.set_reuse_port(true).unwrap();
        assert!(d.bind(&format!("127.0.0.1:{port}").parse::<SocketAddr>().unwrap().into()).is_err());
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
