//! Passing a client connection to a sibling worker: its descriptor (with
//! `SCM_RIGHTS`) and what the loop knows about it that the socket does not
//! (bytes already read, requests served, a PROXY header's addresses).
//!
//! Each worker binds one datagram socket in the abstract unix namespace,
//! named after the master's scoreboard nonce and the worker's slot, so a
//! sender reaches exactly the sibling it chose from the scoreboard (one with
//! an idle executor). The receiver asks the kernel for the sender's
//! credentials on every message and takes only what a sibling of the same
//! user sent, live or since exited (a worker killed for its timeout, or
//! retiring, passes its connections on just before it exits, and the
//! sibling may read them after the master has reaped it); anything else is
//! dropped and its descriptors closed.
//!
//! Only connections between requests travel (no request inside the app,
//! nothing queued for writing), so the receiver simply goes on reading.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::http::proxy::ProxyInfo;
use super::task::Admission;
use crate::scoreboard::{SlotHandle, SlotState};

/// Bytes already read that a connection may carry along. A head larger
/// than this stays with its worker (heads are a few hundred bytes).
pub const MAX_CARRIED: usize = 64 * 1024;

/// First bytes of every message (and its format version).
const MAGIC: &[u8; 4] = b"RSH1";

/// What travels with a connection's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// Index of the listener that accepted it.
    pub listener: u16,
    /// Requests already served on it (0: a PROXY header may still come).
    pub served: u64,
    /// The client closed its sending side.
    pub read_closed: bool,
    /// A unix-socket client (else TCP).
    pub unix: bool,
    /// What a PROXY header said.
    pub proxy: Option<ProxyInfo>,
    /// Bytes read and not yet used.
    pub rbuf: Vec<u8>,
}

fn put_addr(out: &mut Vec<u8>, addr: Option<(IpAddr, u16)>) {
    match addr {
        None => out.push(0),
        Some((IpAddr::V4(ip), port)) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
            out.extend_from_slice(&port.to_be_bytes());
        }
        Some((IpAddr::V6(ip), port)) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
            out.extend_from_slice(&port.to_be_bytes());
        }
    }
}

/// A cursor over a received message; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    }
    fn addr(&mut self) -> Option<Option<(IpAddr, u16)>> {
        match self.u8()? {
            0 => Some(None),
            4 => {
                let b: [u8; 4] = self.take(4)?.try_into().ok()?;
                Some(Some((IpAddr::V4(Ipv4Addr::from(b)), self.u16()?)))
            }
            6 => {
                let b: [u8; 16] = self.take(16)?.try_into().ok()?;
                Some(Some((IpAddr::V6(Ipv6Addr::from(b)), self.u16()?)))
            }
            _ => None,
        }
    }
}

/// The PROXY protocol names `ProxyInfo::protocol` can hold, by wire code.
const PROTOCOLS: [&str; 4] = ["TCP4", "TCP6", "LOCAL", "UNSPEC"];

impl Carried {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.rbuf.len());
        out.extend_from_slice(MAGIC);
        out.push(u8::from(self.read_closed) | u8::from(self.unix) << 1);
        out.extend_from_slice(&self.listener.to_be_bytes());
        out.extend_from_slice(&self.served.to_be_bytes());
        match &self.proxy {
            None => out.push(0),
            Some(p) => {
                let code = PROTOCOLS.iter().position(|&n| n == p.protocol).unwrap_or(3);
                out.push(1 + code as u8);
                put_addr(&mut out, p.client);
                put_addr(&mut out, p.proxy);
            }
        }
        out.extend_from_slice(&(self.rbuf.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.rbuf);
        out
    }

    /// Read a message body; `None` when it is not one of ours.
    pub fn decode(msg: &[u8]) -> Option<Carried> {
        let mut r = Reader(msg);
        if r.take(4)? != MAGIC {
            return None;
        }
        let flags = r.u8()?;
        let listener = r.u16()?;
        let served = r.u64()?;
        let proxy = match r.u8()? {
            0 => None,
            code @ 1..=4 => {
                let client = r.addr()?;
                let proxy = r.addr()?;
                Some(ProxyInfo { protocol: PROTOCOLS[usize::from(code - 1)], client, proxy })
            }
            _ => return None,
        };
        let len = r.u32()? as usize;
        let rbuf = r.take(len)?.to_vec();
        if !r.0.is_empty() {
            return None;
        }
        Some(Carried { listener, served, read_closed: flags & 1 != 0, unix: flags & 2 != 0, proxy, rbuf })
    }
}

/// The abstract socket address of the worker in slot `index`.
fn address(nonce: u64, index: usize) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let name = format!("rsgi-handoff.{nonce:016x}.{index}");
    // sun_path[0] stays 0: the abstract namespace, nothing on disk.
    for (dst, src) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    (addr, len as libc::socklen_t)
}

/// A connection received from a sibling.
pub struct Received {
    pub fd: OwnedFd,
    pub carried: Carried,
}

/// This worker's hand-off socket.
pub struct Handoff {
    fd: OwnedFd,
    /// The worker's own slot (for the names and to check senders).
    slot: SlotHandle,
}

/// Control-message room for one descriptor plus the sender's credentials
/// (and a little more, so a message with extra descriptors is seen whole
/// and every descriptor in it closed).
const CMSG_ROOM: usize = 256;

impl Handoff {
    /// Bind this worker's socket. Called in the worker after fork.
    pub fn bind(slot: SlotHandle) -> io::Result<Handoff> {
        // SAFETY: plain socket calls on a descriptor we create and own.
        unsafe {
            let raw = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(raw);
            let on: libc::c_int = 1;
            if libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_PASSCRED, &on as *const _ as *const libc::c_void, 4) != 0 {
                return Err(io::Error::last_os_error());
            }
            let (addr, len) = address(slot.nonce, slot.index);
            if libc::bind(raw, &addr as *const _ as *const libc::sockaddr, len) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Handoff { fd, slot })
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Send `conn_fd` with `carried` to the worker in slot `target`. On
    /// success the receiver holds its own reference to the connection; the
    /// caller closes its copy. Fails without side effects when the target
    /// is gone or its queue is full.
    pub fn send(&self, target: usize, conn_fd: RawFd, carried: &Carried) -> io::Result<()> {
        let body = carried.encode();
        let (addr, addr_len) = address(self.slot.nonce, target);
        let mut iov = libc::iovec { iov_base: body.as_ptr() as *mut libc::c_void, iov_len: body.len() };
        let mut cmsg_buf = [0u64; CMSG_ROOM / 8];
        // SAFETY: the message header points at locals that outlive the
        // call; the control buffer is sized and aligned for one SCM_RIGHTS
        // entry, which the CMSG macros fill in.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = &addr as *const _ as *mut libc::c_void;
            msg.msg_namelen = addr_len;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg_buf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, conn_fd);
            if libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Take the next message, if any: `Ok(None)` when the queue is empty.
    /// A message that is not a well-formed hand-off from a sibling is
    /// dropped (its descriptors closed) and the next one read.
    pub fn recv(&self) -> io::Result<Option<Received>> {
        loop {
            let mut body = vec![0u8; MAX_CARRIED + 256];
            let mut cmsg_buf = [0u64; CMSG_ROOM / 8];
            let mut iov = libc::iovec { iov_base: body.as_mut_ptr() as *mut libc::c_void, iov_len: body.len() };
            let mut fds: Vec<OwnedFd> = Vec::new();
            let mut sender: Option<libc::ucred> = None;
            // SAFETY: recvmsg into local buffers described by the header;
            // the control messages are walked with the CMSG macros within
            // `msg_controllen`, and every descriptor received is owned.
            let n = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = cmsg_buf.as_mut_ptr() as *mut libc::c_void;
                msg.msg_controllen = CMSG_ROOM;
                let n = libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC);
                if n < 0 {
                    let e = io::Error::last_os_error();
                    return match e.kind() {
                        io::ErrorKind::WouldBlock => Ok(None),
                        io::ErrorKind::Interrupted => continue,
                        _ => Err(e),
                    };
                }
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    let data = libc::CMSG_DATA(cmsg);
                    let len = (*cmsg).cmsg_len - (data as usize - cmsg as usize);
                    if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                        for i in 0..len / std::mem::size_of::<RawFd>() {
                            let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                            fds.push(OwnedFd::from_raw_fd(fd));
                        }
                    } else if (*cmsg).cmsg_level == libc::SOL_SOCKET
                        && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
                        && len >= std::mem::size_of::<libc::ucred>()
                    {
                        sender = Some(std::ptr::read_unaligned(data as *const libc::ucred));
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
                if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
                    continue;
                }
                n as usize
            };
            if fds.len() != 1 || !sender.is_some_and(|c| self.is_sibling(c)) {
                continue;
            }
            let Some(carried) = Carried::decode(&body[..n]) else { continue };
            let fd = fds.pop().expect("one descriptor, checked above");
            return Ok(Some(Received { fd, carried }));
        }
    }

    /// A message may come only from a sibling running as our user: one
    /// that is serving, or one that sent it and exited before it was read.
    fn is_sibling(&self, cred: libc::ucred) -> bool {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        cred.uid == uid && self.slot.is_or_was_sibling(cred.pid)
    }

    /// The sibling best placed to serve a waiting request: serving, alive,
    /// with the most idle executors (`threads` each); failing that, one
    /// whose busy executors all started their requests less than
    /// `stuck_ms` ago (it is making progress and will take the request in
    /// its next turn). `taken` counts what this pass already sent to each
    /// slot, so one pass spreads its connections instead of piling them on
    /// one sibling.
    /// A worker whose kind fills slots (`Admission::Slots`) has room for
    /// its capacity less its requests in flight, and is never "moving"
    /// when full.
    pub fn pick(&self, admission: Admission, threads: usize, stuck_ms: u64, taken: &[(usize, usize)]) -> Option<usize> {
        let now = crate::scoreboard::now_ms();
        self.slot
            .siblings()
            .filter(|(_, s)| s.state() == SlotState::Serving)
            .filter(|(_, s)| now.saturating_sub(s.heartbeat_ms.load(std::sync::atomic::Ordering::Relaxed)) < 2_000)
            .filter_map(|(i, s)| {
                let sent = taken.iter().find(|(t, _)| *t == i).map_or(0, |(_, n)| *n);
                let (free, moving) = match admission {
                    Admission::Threads => (
                        s.free_executors(threads).saturating_sub(sent),
                        s.oldest_busy_ms().is_none_or(|since| now.saturating_sub(since) < stuck_ms),
                    ),
                    Admission::Slots => {
                        let busy = s.load.in_flight.load(std::sync::atomic::Ordering::Relaxed) as usize;
                        (threads.saturating_sub(busy).saturating_sub(sent), false)
                    }
                };
                // Idle executors first; then progress, the least loaded first.
                let rank = if free > 0 { (1, free, usize::MAX - sent) } else if moving { (0, 0, usize::MAX - sent) } else { return None };
                Some((i, rank))
            })
            .max_by_key(|&(i, rank)| (rank, usize::MAX - i))
            .map(|(i, _)| i)
    }

    /// Any live serving sibling, for connections that only need a new home
    /// (idle ones, when this worker leaves); `round` spreads them.
    pub fn any(&self, round: usize) -> Option<usize> {
        let live: Vec<usize> = self.slot.siblings().filter(|(_, s)| s.state() == SlotState::Serving).map(|(i, _)| i).collect();
        if live.is_empty() {
            None
        } else {
            Some(live[round % live.len()])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Carried {
        Carried {
            listener: 2,
            served: 7,
            read_closed: true,
            unix: false,
            proxy: Some(ProxyInfo {
                protocol: "TCP6",
                client: Some(("2001:db8::1".parse().unwrap(), 40000)),
                proxy: Some(("10.0.0.1".parse().unwrap(), 443)),
            }),
            rbuf: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        }
    }

    #[test]
    fn round_trip() {
        let c = sample();
        assert_eq!(Carried::decode(&c.encode()), Some(c));
        let plain = Carried { listener: 0, served: 0, read_closed: false, unix: true, proxy: None, rbuf: Vec::new() };
        assert_eq!(Carried::decode(&plain.encode()), Some(plain));
    }

    #[test]
    fn foreign_or_cut_messages_are_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert_eq!(Carried::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Carried::decode(&longer), None);
        let mut other = bytes;
        other[0] = b'X';
        assert_eq!(Carried::decode(&other), None);
    }

    #[test]
    fn a_connection_travels_between_two_sockets() {
        use std::io::{Read, Write};
        let board = crate::scoreboard::Scoreboard::new().unwrap();
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        board.slot(0).reset(me);
        board.slot(1).reset(me);
        board.slot(1).set_state(SlotState::Serving);
        let a = Handoff::bind(board.handle(0)).unwrap();
        let b = Handoff::bind(board.handle(1)).unwrap();
        assert_eq!(a.pick(Admission::Threads, 1, 10, &[]), Some(1));
        let (mut left, right) = std::os::unix::net::UnixStream::pair().unwrap();
        a.send(1, right.as_raw_fd(), &sample()).unwrap();
        drop(right);
        let got = b.recv().unwrap().expect("a message");
        assert_eq!(got.carried, sample());
        let mut moved = std::os::unix::net::UnixStream::from(got.fd);
        left.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        moved.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        assert!(b.recv().unwrap().is_none());
    }

    /// A worker passes its connections on just before it exits (killed for
    /// its timeout, or retiring); the master may reap it and free (or
    /// refill) its slot before the sibling reads them. They are still taken;
    /// a sender that never held a slot is still refused.
    #[test]
    fn connections_from_a_sibling_that_exited_since_are_taken() {
        let board = crate::scoreboard::Scoreboard::new().unwrap();
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        board.slot(0).reset(me);
        board.slot(1).reset(me + 1);
        let a = Handoff::bind(board.handle(0)).unwrap();
        let b = Handoff::bind(board.handle(1)).unwrap();
        let conn = || std::os::unix::net::UnixStream::pair().unwrap();
        // Sent, then the sender is reaped: its slot is free.
        let (_l1, r1) = conn();
        a.send(1, r1.as_raw_fd(), &sample()).unwrap();
        board.slot(0).release(me);
        assert_eq!(b.recv().unwrap().map(|r| r.carried), Some(sample()));
        // Sent, reaped, and the slot taken by its replacement.
        board.slot(0).reset(me);
        let (_l2, r2) = conn();
        a.send(1, r2.as_raw_fd(), &sample()).unwrap();
        board.slot(0).release(me);
        board.slot(0).reset(me + 2);
        assert_eq!(b.recv().unwrap().map(|r| r.carried), Some(sample()));
        // A sender no slot ever held (this process, once slot 0's pids
        // are others) is refused, and the message dropped.
        board.slot(0).release(me + 2);
        board.slot(0).reset(me + 3);
        let (_l3, r3) = conn();
        a.send(1, r3.as_raw_fd(), &sample()).unwrap();
        assert!(b.recv().unwrap().is_none());
    }
}
