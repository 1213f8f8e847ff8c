//! The metrics endpoint's HTTP side: a listening socket and a handful of
//! scrape connections, all non-blocking and polled by the master loop next
//! to its signal pipe (`master::events`). Each connection sends one request
//! head; `GET /metrics` (or `HEAD`) is answered with the text the master
//! renders, anything else with 404 or 405, and the connection is closed.
//! A scraper that stalls is dropped after `SCRAPE_TIMEOUT_MS`; at most
//! `MAX_SCRAPES` are held (the oldest goes first).
//!
//! No thread: the master must have none when it forks. The descriptors are
//! closed in each forked child (`Exporter::fds`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};

use crate::scoreboard::now_ms;

/// Scrape connections held at once.
const MAX_SCRAPES: usize = 16;
/// How long a scraper has to send its request and take the answer.
const SCRAPE_TIMEOUT_MS: u64 = 10_000;
/// The longest request head read.
const MAX_HEAD: usize = 8192;

/// Where one scrape connection is.
enum Stage {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Writing the answer.
    Writing { out: Vec<u8>, sent: usize },
}

struct Scrape {
    stream: TcpStream,
    stage: Stage,
    /// When it is dropped (monotonic ms).
    deadline_ms: u64,
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    /// `GET /metrics` (`head`: no body).
    Metrics { head: bool },
    NotFound,
    BadMethod,
    Malformed,
}

fn parse(head: &[u8]) -> Ask {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Ask::Malformed;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Ask::Malformed;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Ask::Metrics { head: method == "HEAD" },
        ("GET" | "HEAD", _) => Ask::NotFound,
        _ => Ask::BadMethod,
    }
}

fn answer(status: &str, extra: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The endpoint.
pub struct Exporter {
    listener: TcpListener,
    addr: SocketAddr,
    scrapes: Vec<Scrape>,
}

impl Exporter {
    /// Listen on `HOST:PORT` (SO_REUSEPORT, so a master started by USR2
    /// can bind it while the old one still serves it). The error is one
    /// line for the operator.
    pub fn bind(spec: &str) -> Result<Exporter, String> {
        let fail = |why: String| format!("Cannot serve metrics at {spec:?} (--metrics-bind): {why}");
        if spec.starts_with("unix:") || spec.starts_with("fd://") {
            return Err(fail("expected HOST:PORT".into()));
        }
        let addr = spec
            .to_socket_addrs()
            .map_err(|e| fail(format!("{e} (expected HOST:PORT)")))?
            .next()
            .ok_or_else(|| fail("the host has no address".into()))?;
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).map_err(|e| fail(e.to_string()))?;
        let setup = || -> std::io::Result<()> {
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.bind(&addr.into())?;
            socket.listen(64)?;
            socket.set_nonblocking(true)
        };
        setup().map_err(|e| fail(e.to_string()))?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Exporter { listener, addr, scrapes: Vec::new() })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every descriptor the endpoint holds (closed in forked children).
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.listener.as_raw_fd()).chain(self.scrapes.iter().map(|s| s.stream.as_raw_fd()))
    }

    /// What to poll: the listener, then each scrape (reading or writing).
    pub fn pollfds(&self, out: &mut Vec<libc::pollfd>) {
        out.push(libc::pollfd { fd: self.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        for s in &self.scrapes {
            let events = if matches!(s.stage, Stage::Reading(_)) { libc::POLLIN } else { libc::POLLOUT };
            out.push(libc::pollfd { fd: s.stream.as_raw_fd(), events, revents: 0 });
        }
    }

    /// Act on what `pollfds` reported (`polled`, in the same order), then
    /// drop the finished and the expired. `render` makes the metrics text,
    /// once per pass at most.
    pub fn service(&mut self, polled: &[libc::pollfd], render: impl FnOnce() -> String) {
        let mut render = Some(render);
        let mut text: Option<String> = None;
        let now = now_ms();
        let mut done = vec![false; self.scrapes.len()];
        for (i, s) in self.scrapes.iter_mut().enumerate() {
            if polled.get(i + 1).is_none_or(|p| p.revents == 0) {
                done[i] = now >= s.deadline_ms;
                continue;
            }
            if let Stage::Reading(buf) = &mut s.stage {
                match read_head(&mut s.stream, buf) {
                    Ok(Some(ask)) => {
                        let out = match ask {
                            Ask::Metrics { head } => {
                                let body = text.get_or_insert_with(|| render.take().map(|r| r()).unwrap_or_default());
                                answer("200 OK", "", body, !head)
                            }
                            Ask::NotFound => answer("404 Not Found", "", "Not found: the metrics are at /metrics\n", true),
                            Ask::BadMethod => answer("405 Method Not Allowed", "Allow: GET, HEAD\r\n", "Method not allowed\n", true),
                            Ask::Malformed => answer("400 Bad Request", "", "Bad request\n", true),
                        };
                        s.stage = Stage::Writing { out, sent: 0 };
                    }
                    Ok(None) => continue,
                    Err(_) => {
                        done[i] = true;
                        continue;
                    }
                }
            }
            if let Stage::Writing { out, sent } = &mut s.stage {
                done[i] = loop {
                    match s.stream.write(&out[*sent..]) {
                        Ok(0) => break true,
                        Ok(n) => {
                            *sent += n;
                            if *sent == out.len() {
                                let _ = s.stream.shutdown(std::net::Shutdown::Write);
                                break true;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break now >= s.deadline_ms,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break true,
                    }
                };
            }
        }
        let mut i = 0;
        self.scrapes.retain(|_| {
            i += 1;
            !done[i - 1]
        });
        if polled.first().is_some_and(|p| p.revents != 0) {
            self.accept();
        }
    }

    /// Take every pending connection.
    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.scrapes.len() >= MAX_SCRAPES {
                        self.scrapes.remove(0);
                    }
                    self.scrapes.push(Scrape { stream, stage: Stage::Reading(Vec::new()), deadline_ms: now_ms() + SCRAPE_TIMEOUT_MS });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Read what the scraper sent; the request once its head is complete.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Ask>> {
    let mut chunk = [0u8; 2048];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if buf.len() > MAX_HEAD {
            return Ok(Some(Ask::Malformed));
        }
    }
    let complete = memchr::memmem::find(buf, b"\r\n\r\n").is_some() || memchr::memmem::find(buf, b"\n\n").is_some();
    Ok(complete.then(|| parse(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Ask::Metrics { head: false });
        assert_eq!(parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), Ask::Metrics { head: true });
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Ask::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Ask::BadMethod);
        assert_eq!(parse(b"nonsense\r\n\r\n"), Ask::Malformed);
    }

    #[test]
    fn bad_binds_are_one_line() {
        let e = Exporter::bind("unix:/tmp/x").err().unwrap();
        assert!(e.contains("--metrics-bind") && !e.contains('\n'));
        assert!(Exporter::bind("no-port-here").is_err());
        let ok = Exporter::bind("127.0.0.1:0").unwrap();
        assert_ne!(ok.addr().port(), 0);
    }
}
