//! One client connection as the I/O loop sees it: its socket, the bytes
//! read but not yet used, the output waiting for the socket, and where it
//! stands in the request/response cycle ([`Phase`]); and the [`census`] of
//! the connections the loop publishes for the metrics. Reads and writes
//! count their bytes in the worker's scoreboard slot.
//!
//! A connection's stream may also be a [`ByteIo`] instead of a socket
//! (`Stream::Memory`): the same reading, parsing and writing code then runs
//! on scripted bytes (`worker::script`, the `conn_real` fuzz target). The
//! socket paths pay one enum match for it, beside a system call.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};

use super::exchange::{Exchange, Finish, OutChunk};
use super::task::Task;
use super::tls_io::TlsStream;
use crate::http::proxy::ProxyInfo;
use crate::http::BodyDecoder;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    /// A unix-socket client (no address).
    Unix,
}

impl Peer {
    /// The client's address for the access log: the one a PROXY header
    /// gave, else the peer's; empty for a unix socket.
    pub fn remote_addr(self, proxy: Option<&ProxyInfo>) -> String {
        match (proxy.and_then(|p| p.client), self) {
            (Some((ip, _)), _) => ip.to_string(),
            (None, Peer::Tcp(a)) => a.ip().to_string(),
            (None, Peer::Unix) => String::new(),
        }
    }
}

/// What a failed write system call (-1) asks of `Conn::flush`.
enum Retry {
    /// The socket is full: wait for it to be writable.
    Blocked,
    /// Interrupted by a signal: try again at once.
    Now,
}

/// Classify the error of a failed write; a real failure is returned as
/// the error.
fn write_failed(e: io::Error, writable: &mut bool) -> io::Result<Retry> {
    match e.kind() {
        io::ErrorKind::WouldBlock => {
            *writable = false;
            Ok(Retry::Blocked)
        }
        io::ErrorKind::Interrupted => Ok(Retry::Now),
        _ => Err(e),
    }
}

/// A byte stream that is not a socket, read and written as one would be
/// (non-blocking: `WouldBlock` when nothing can move now).
pub trait ByteIo: Send {
    /// Copy what is there, up to `buf.len()` bytes; `Ok(0)` is the end of
    /// the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Take bytes from the front of `bufs`, as writev(2).
    fn write(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize>;
    /// The sending side is closed.
    fn shutdown_write(&mut self);
}

/// The socket of a connection.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TCP with TLS (`--certfile`): rustls between the socket and the
    /// buffers (`tls_io`).
    Tls(Box<TlsStream>),
    /// No socket: bytes from a script (see [`ByteIo`]).
    Memory(Box<dyn ByteIo>),
}

impl Stream {
    /// What the poller registers (a memory stream has nothing).
    pub fn source(&mut self) -> Option<&mut dyn Source> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(s) => Some(s),
            Stream::Tls(s) => Some(&mut s.tcp),
            Stream::Memory(_) => None,
        }
    }

    /// The socket's descriptor (-1 for a memory stream).
    pub fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.tcp.as_raw_fd(),
            Stream::Memory(_) => -1,
        }
    }

    /// A plain socket, which another worker or the app's thread can use by
    /// its descriptor (not TLS, whose session lives here; not memory).
    pub fn is_plain_socket(&self) -> bool {
        matches!(self, Stream::Tcp(_) | Stream::Unix(_))
    }

    /// Encrypted bytes wait for the socket (TLS only).
    pub fn wants_write(&self) -> bool {
        match self {
            Stream::Tls(s) => s.wants_write(),
            _ => false,
        }
    }

    /// Half-close the sending side (after a final response); TLS sends
    /// close_notify first.
    pub fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(s) => {
                s.shutdown_write();
                Ok(())
            }
            Stream::Memory(m) => {
                m.shutdown_write();
                Ok(())
            }
        };
    }
}

/// A request in progress on a connection.
pub struct Active {
    /// Shared with the executor.
    pub exchange: Arc<Exchange>,
    /// Body decoding still to do; `None` once the body is complete.
    pub decoder: Option<BodyDecoder>,
    /// Where the request stands with the app.
    pub app: AppStage,
    /// The connection must close after this response (request said so, or
    /// the body turned out broken).
    pub close: bool,
}

/// Where a request stands with the app.
pub enum AppStage {
    /// Waiting to be handed over: the request, or a paused response that
    /// may go on.
    Pending(Task),
    /// With an executor, or paused in its exchange.
    Running,
    /// The executor said it is done.
    Done(Finish),
}

impl Active {
    /// The task waiting to be handed over, if any (the stage becomes
    /// `Running`: the caller hands it over, or puts it back).
    pub fn take_pending(&mut self) -> Option<Task> {
        match std::mem::replace(&mut self.app, AppStage::Running) {
            AppStage::Pending(task) => Some(task),
            other => {
                self.app = other;
                None
            }
        }
    }
}

/// Where a connection stands.
pub enum Phase {
    /// Waiting for, or reading, a request head.
    Head,
    /// A request is being received and/or served.
    Exchange(Active),
    /// The app accepted a WebSocket on this request: frames both ways
    /// until the closing handshake ends (`upgraded`).
    Upgraded(Active),
    /// A response the loop made itself (a static file) is being written;
    /// then the next request.
    Own,
    /// Sending a final response, then closing.
    Closing,
}

/// One client connection.
pub struct Conn {
    pub stream: Stream,
    /// The connection's serial number (see `Notice`).
    pub serial: u64,
    /// The client address.
    pub peer: Peer,
    /// Index of the listener that accepted it.
    pub listener: usize,
    /// The peer may set forwarding headers (`forwarded_allow_ips`).
    pub trusted: bool,
    /// What a PROXY header said, once read.
    pub proxy: Option<ProxyInfo>,
    /// Bytes received and not yet consumed.
    pub rbuf: Vec<u8>,
    /// How far the end-of-head scan has looked in `rbuf`.
    pub scanned: usize,
    /// Output waiting for the socket; the bool says whether the bytes are
    /// counted in the exchange's back-pressure total.
    pub wq: VecDeque<(OutChunk, bool)>,
    /// Bytes of the front chunk already written.
    pub wq_offset: usize,
    /// Last known readiness (mio is edge-triggered).
    pub readable: bool,
    pub writable: bool,
    /// The client closed its sending side.
    pub read_closed: bool,
    /// The poller reported the peer's end (or an error): read to the end
    /// of the stream rather than stopping at a short read.
    pub hup_seen: bool,
    pub phase: Phase,
    /// When the connection times out, if it can.
    pub deadline: Option<Instant>,
    /// When its phase wants a step of its own, with nothing read or
    /// written (an upgraded connection's keep-alive ping); looked at on
    /// the loop's tick.
    pub wake_at: Option<Instant>,
    /// Requests completed on this connection.
    pub served: u64,
    /// In the loop's queue of connections waiting for a free executor.
    pub awaiting_executor: bool,
    /// In the loop's list of connections whose output waits for the end of
    /// its pass.
    pub output_held: bool,
}

impl Conn {
    pub fn new(stream: Stream, serial: u64, peer: Peer, listener: usize, trusted: bool) -> Conn {
        Conn {
            stream,
            serial,
            peer,
            listener,
            trusted,
            proxy: None,
            rbuf: Vec::new(),
            scanned: 0,
            wq: VecDeque::new(),
            wq_offset: 0,
            readable: false,
            writable: false,
            read_closed: false,
            hup_seen: false,
            phase: Phase::Head,
            deadline: None,
            wake_at: None,
            served: 0,
            awaiting_executor: false,
            output_held: false,
        }
    }

    /// True when the connection may move to another worker: between
    /// requests (nothing of it inside the app), nothing left to write, and
    /// what it has read small enough to carry (`handoff::MAX_CARRIED`).
    pub fn can_move(&self) -> bool {
        matches!(self.phase, Phase::Head)
            && self.wq.is_empty()
            && self.rbuf.len() <= super::handoff::MAX_CARRIED
            && self.stream.is_plain_socket()
    }

    /// Everything queued has reached the socket (for TLS, encrypted too).
    pub fn all_sent(&self) -> bool {
        self.wq.is_empty() && !self.stream.wants_write()
    }

    /// Queue bytes produced by the loop itself (100 Continue, error pages).
    pub fn queue_own(&mut self, bytes: Vec<u8>) {
        self.wq.push_back((OutChunk::Bytes(bytes), false));
    }

    /// Read what the socket has, up to `limit` buffered bytes. Returns the
    /// number of bytes read; sets `read_closed` on EOF.
    pub fn fill(&mut self, limit: usize) -> io::Result<usize> {
        if let Stream::Tls(t) = &mut self.stream {
            return t.fill(&mut self.rbuf, limit, &mut self.readable, &mut self.read_closed, &mut self.writable);
        }
        let mut total = 0;
        while self.readable && !self.read_closed && self.rbuf.len() < limit {
            let len = self.rbuf.len();
            // Heads are small: read them in small steps, so thousands of
            // idle connections cost little; bodies in large ones.
            let step = if matches!(self.phase, Phase::Head) { 8 * 1024 } else { 64 * 1024 };
            let want = (limit - len).clamp(4096, step);
            self.rbuf.reserve(want);
            let want = want.min(self.rbuf.spare_capacity_mut().len());
            let got = match &mut self.stream {
                Stream::Memory(m) => {
                    let mut buf = vec![0u8; want];
                    m.read(&mut buf).inspect(|&n| self.rbuf.extend_from_slice(&buf[..n]))
                }
                stream => {
                    let spare = self.rbuf.spare_capacity_mut();
                    // SAFETY: read(2) writes at most `want` bytes into the
                    // vector's spare capacity; only the bytes it reports are
                    // made part of the vector. (Zero-filling the buffer first
                    // cost a fifth of the worker's time on small requests.)
                    let n = unsafe { sys_read(stream.fd(), spare.as_mut_ptr() as *mut libc::c_void, want) };
                    if n >= 0 {
                        // SAFETY: the kernel initialised these `n` bytes.
                        unsafe { self.rbuf.set_len(len + n as usize) };
                        Ok(n as usize)
                    } else {
                        Err(io::Error::last_os_error())
                    }
                }
            };
            match got {
                Ok(0) => self.read_closed = true,
                Ok(n) => {
                    total += n;
                    crate::scoreboard::count_in(n);
                    if n < want && !self.hup_seen {
                        // A short read emptied the socket: bytes arriving
                        // from now on raise a new edge in the poller, so the
                        // read that would only say EAGAIN (a third of the
                        // worker's system calls on small requests) is
                        // skipped.
                        self.readable = false;
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => self.readable = false,
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(e),
                },
            }
        }
        Ok(total)
    }

    /// Write queued output while the socket takes it (see [`write_queue`]).
    /// Returns the number of counted (exchange) bytes written.
    pub fn flush(&mut self) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Tls(t) => t.flush(&mut self.wq, &mut self.wq_offset, &mut self.writable),
            Stream::Memory(m) => write_queue_to(&mut MemoryOut(m.as_mut()), &mut self.wq, &mut self.wq_offset, &mut self.writable),
            stream => write_queue(stream.fd(), &mut self.wq, &mut self.wq_offset, &mut self.writable),
        }
    }

    /// Bytes still queued for the socket that count toward back-pressure.
    pub fn queued_counted(&self) -> usize {
        let mut n: usize = self.wq.iter().filter(|(_, c)| *c).map(|(c, _)| c.len()).sum();
        if let Some((chunk, true)) = self.wq.front() {
            if chunk.as_bytes().is_some() {
                n -= self.wq_offset;
            }
        }
        n
    }
}

/// Where [`write_queue_to`] writes: a socket, or a memory stream.
trait Out {
    /// As writev(2).
    fn writev(&mut self, iov: &[io::IoSlice<'_>]) -> io::Result<usize>;
    /// As sendfile(2): up to `count` bytes of `file` from `offset`, which
    /// moves past what was sent.
    fn sendfile(&mut self, file: &std::fs::File, offset: &mut u64, count: usize) -> io::Result<usize>;
}

/// A socket, by its descriptor.
struct FdOut(RawFd);

impl Out for FdOut {
    fn writev(&mut self, iov: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: `IoSlice` has the layout of `iovec` on unix, and the
        // slices stay borrowed until writev returns.
        let r = unsafe { sys_writev(self.0, iov.as_ptr() as *const libc::iovec, iov.len() as libc::c_int) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    fn sendfile(&mut self, file: &std::fs::File, offset: &mut u64, count: usize) -> io::Result<usize> {
        let mut off = *offset as libc::off_t;
        // SAFETY: sendfile between two descriptors we own; the offset
        // pointer is a local.
        let r = unsafe { libc::sendfile(self.0, file.as_raw_fd(), &mut off, count) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        *offset = off as u64;
        Ok(r as usize)
    }
}

/// A memory stream; file regions are read and written as bytes.
struct MemoryOut<'a>(&'a mut dyn ByteIo);

impl Out for MemoryOut<'_> {
    fn writev(&mut self, iov: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write(iov)
    }

    fn sendfile(&mut self, file: &std::fs::File, offset: &mut u64, count: usize) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; count.min(64 * 1024)];
        let n = file.read_at(&mut buf, *offset)?;
        let n = self.0.write(&[io::IoSlice::new(&buf[..n])])?;
        *offset += n as u64;
        Ok(n)
    }
}

/// Write `wq` to `fd` while the socket takes it: consecutive in-memory
/// chunks in one writev(2), file regions with sendfile(2). `front_written` is how
/// much of the front chunk is already written; `writable` turns false when
/// the socket is full. Returns the number of counted (exchange) bytes
/// written. Used by the loop, and by an app run on the loop thread that
/// must wait for its client (`Exchange::push_output`).
pub fn write_queue(fd: RawFd, wq: &mut VecDeque<(OutChunk, bool)>, front_written: &mut usize, writable: &mut bool) -> io::Result<usize> {
    write_queue_to(&mut FdOut(fd), wq, front_written, writable)
}

/// [`write_queue`] to any [`Out`].
fn write_queue_to(out: &mut impl Out, wq: &mut VecDeque<(OutChunk, bool)>, front_written: &mut usize, writable: &mut bool) -> io::Result<usize> {
    /// Most chunks gathered into one writev.
    const MAX_IOV: usize = 16;
    let mut counted = 0;
    while *writable {
        let Some((front, _)) = wq.front_mut() else { break };
        if let OutChunk::File { file, offset, remaining } = front {
            let count = (*remaining).min(1 << 30) as usize;
            let r = match out.sendfile(file, offset, count) {
                Ok(r) => r,
                Err(e) => match write_failed(e, writable)? {
                    Retry::Blocked => break,
                    Retry::Now => continue,
                },
            };
            if r == 0 {
                // The file is shorter than promised: nothing more to send.
                wq.pop_front();
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank during sendfile"));
            }
            *remaining -= r as u64;
            crate::scoreboard::count_out(r);
            let done = *remaining == 0;
            if wq.front().is_some_and(|(_, c)| *c) {
                counted += r;
            }
            if done {
                wq.pop_front();
            }
            continue;
        }
        // Gather the in-memory chunks at the front.
        let mut iov = [io::IoSlice::new(&[]); MAX_IOV];
        let mut n_iov = 0;
        for (i, (chunk, _)) in wq.iter().enumerate() {
            let Some(bytes) = chunk.as_bytes() else { break };
            let bytes = if i == 0 { &bytes[(*front_written).min(bytes.len())..] } else { bytes };
            if bytes.is_empty() {
                continue;
            }
            iov[n_iov] = io::IoSlice::new(bytes);
            n_iov += 1;
            if n_iov == MAX_IOV {
                break;
            }
        }
        let written = if n_iov == 0 {
            0
        } else {
            match out.writev(&iov[..n_iov]) {
                Ok(r) => {
                    crate::scoreboard::count_out(r);
                    r
                }
                Err(e) => match write_failed(e, writable)? {
                    Retry::Blocked => break,
                    Retry::Now => continue,
                },
            }
        };
        // Retire what was written.
        let mut left = written;
        while let Some((chunk, is_counted)) = wq.front() {
            let Some(bytes) = chunk.as_bytes() else { break };
            let remaining = bytes.len().saturating_sub(*front_written);
            let take = left.min(remaining);
            if *is_counted {
                counted += take;
            }
            left -= take;
            if take == remaining {
                wq.pop_front();
                *front_written = 0;
            } else {
                *front_written += take;
                break;
            }
        }
        if n_iov == 0 && wq.front().is_some_and(|(c, _)| c.as_bytes().is_some()) {
            // Only empty chunks were queued; they are gone now.
            continue;
        }
    }
    Ok(counted)
}

/// read(2) through `syscall(2)`. glibc's `read` is a cancellation point:
/// in a multi-threaded process each call switches the thread's
/// cancellation state on and off around the system call (two atomic
/// updates), and rsgi never cancels a thread. Same result and `errno`.
///
/// # Safety
/// As read(2): `buf` must be valid for `len` bytes of writes.
unsafe fn sys_read(fd: libc::c_int, buf: *mut libc::c_void, len: usize) -> isize {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { libc::syscall(libc::SYS_read, fd, buf, len) as isize }
}

/// writev(2) through `syscall(2)`, for the reason of [`sys_read`].
///
/// # Safety
/// As writev(2): `iov` must point to `n` valid iovecs over readable memory.
unsafe fn sys_writev(fd: libc::c_int, iov: *const libc::iovec, n: libc::c_int) -> isize {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { libc::syscall(libc::SYS_writev, fd, iov, n) as isize }
}

/// Count the worker's connections for its scoreboard slot (the loop's
/// tick): open, waiting for an executor, with a request in flight, and
/// with a response paused while the client catches up.
pub fn census<'a>(conns: impl Iterator<Item = &'a Conn>) -> crate::scoreboard::Census {
    let mut c = crate::scoreboard::Census::default();
    for conn in conns {
        c.open += 1;
        c.waiting += conn.awaiting_executor as u64;
        if let Phase::Exchange(a) | Phase::Upgraded(a) = &conn.phase {
            c.in_flight += 1;
            c.parked += (matches!(a.app, AppStage::Pending(Task::Resume(_))) || a.exchange.lock().parked.is_some()) as u64;
        }
    }
    c
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
