//! The socket filter a stopping server puts on its TCP listeners so that it
//! loses nothing the kernel already accepted.
//!
//! A listening socket keeps completing handshakes and queueing connections
//! until the last process holding it closes it; whatever is still queued
//! then is reset, though the client had connected and sent its request. So
//! a final graceful stop first attaches a classic BPF filter that drops
//! segments with SYN set and ACK clear: new clients' connection attempts
//! are dropped (they retry their SYN, and are refused once the socket is
//! gone), while handshakes already under way complete and every queued
//! connection is accepted and served by the draining workers.
//!
//! The filter belongs to the socket, which outlives the process when it was
//! inherited (USR2, `fd://`, socket activation): a master that starts on
//! inherited sockets removes any filter a predecessor left (`clear`).
//!
//! Called in the master; never touches Python.

use std::os::fd::{AsRawFd, RawFd};

use crate::listen::Listener;

/// `refuse_new` on every TCP listener (unix sockets have no handshake to
/// filter: their path is unlinked instead, so new clients find nothing).
pub fn refuse_all(listeners: &[Listener]) {
    for l in listeners {
        if let Listener::Tcp { socket, addr } = l {
            if let Err(e) = refuse_new(socket.as_raw_fd()) {
                crate::warn!("Cannot stop new connections on {addr} before the stop: {e}");
            }
        }
    }
}

/// `clear` on every TCP listener. Called in the master at start-up.
pub fn clear_all(listeners: &[Listener]) {
    for l in listeners {
        if let Listener::Tcp { socket, .. } = l {
            clear(socket.as_raw_fd());
        }
    }
}

/// The program: for a TCP socket the filter sees the segment from its TCP
/// header, whose byte 13 holds the flags (SYN 0x02, ACK 0x10).
fn program() -> [libc::sock_filter; 5] {
    const BPF_LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    [
        // A = the flags byte
        libc::sock_filter { code: BPF_LD_B_ABS, jt: 0, jf: 0, k: 13 },
        // A &= SYN | ACK
        libc::sock_filter { code: BPF_AND_K, jt: 0, jf: 0, k: 0x12 },
        // SYN without ACK: drop (return 0), else keep the whole segment
        libc::sock_filter { code: BPF_JEQ_K, jt: 0, jf: 1, k: 0x02 },
        libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: 0 },
        libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: u32::MAX },
    ]
}

/// Make TCP listener `fd` refuse new connections from now on, while the
/// connections it already holds (queued or mid-handshake) go on.
pub fn refuse_new(fd: RawFd) -> std::io::Result<()> {
    let mut code = program();
    let prog = libc::sock_fprog { len: code.len() as u16, filter: code.as_mut_ptr() };
    // SAFETY: the program outlives the call (the kernel copies it); fd is a
    // socket the caller holds.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Remove a filter an earlier master left on inherited listener `fd`
/// (nothing to do when there is none).
pub fn clear(fd: RawFd) {
    let zero: libc::c_int = 0;
    // SAFETY: plain setsockopt on a socket the caller holds; ENOENT (no
    // filter) is the common, harmless outcome.
    unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, &zero as *const _ as *const libc::c_void, 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn queued_connections_stay_and_new_ones_are_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = TcpStream::connect(addr).unwrap();
        queued.write_all(b"sent before the stop").unwrap();
        refuse_new(listener.as_raw_fd()).unwrap();
        // A new client's SYN is dropped: its connect does not complete.
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(late.is_err(), "a connection got through the filter");
        // The queued one is accepted whole, and talks both ways.
        let (mut served, _) = listener.accept().unwrap();
        let mut buf = [0u8; 20];
        served.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"sent before the stop");
        served.write_all(b"ok").unwrap();
        let mut two = [0u8; 2];
        queued.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"ok");
        // Cleared, the socket takes new clients again.
        clear(listener.as_raw_fd());
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok());
    }
}
