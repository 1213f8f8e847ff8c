//! systemd's readiness notification (`sd_notify(3)`): when the service
//! manager set `$NOTIFY_SOCKET`, the master sends `READY=1` once it
//! listens, as gunicorn's arbiter does, so a `Type=notify` unit counts as
//! started when rsgi accepts connections (and one written for gunicorn
//! does not time out waiting). A path that starts with `@` names an
//! abstract socket. A failure is a debug line: the notification is a
//! courtesy to the service manager, never a reason to stop.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The master listens: tell the service manager, if there is one.
pub fn ready() {
    send("READY=1\nSTATUS=rsgi master booted");
}

fn send(state: &str) {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send_to(&addr, state) {
        crate::debug!("sd_notify to {:?} failed: {e}", addr);
    }
}

/// One datagram to `addr` (a path, or `@name` for an abstract socket).
fn send_to(addr: &OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match addr.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.connect_addr(&abstract_addr)?;
            sock.send(state.as_bytes())?;
        }
        None => {
            sock.send_to(state.as_bytes(), std::path::Path::new(addr))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_and_an_abstract_name_both_get_the_datagram() {
        let dir = std::env::temp_dir().join(format!("rsgi-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let by_path = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = by_path.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("rsgi-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let by_name = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(OsStr::new(&format!("@{name}")), "STATUS=x").unwrap();
        let n = by_name.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=x");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
