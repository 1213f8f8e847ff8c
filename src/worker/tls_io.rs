//! A TLS connection's I/O on the worker's loop (`--certfile`): rustls
//! between the socket and the connection's buffers. Reading decrypts into
//! `Conn::rbuf`; writing encrypts the output queue (file regions are read
//! into memory, since sendfile cannot go through TLS). The handshake is
//! driven by the same reads and writes, so it never blocks a thread and is
//! bounded by the deadline a new connection has for its first request head.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use super::exchange::OutChunk;

/// What the app sees of a TLS connection (once per connection).
#[derive(Debug)]
pub struct TlsFacts {
    /// The client's certificate as PEM, when it sent one.
    pub client_cert: Option<String>,
}

/// How a closed TLS stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ragged {
    /// Closed without close_notify is an ordinary end of stream
    /// (`--suppress-ragged-eofs`, the default).
    Suppress,
    /// Closed without close_notify is an error: the connection is dropped.
    Error,
}

/// A TLS connection: the socket and the rustls state.
pub struct TlsStream {
    pub tcp: TcpStream,
    session: ServerConnection,
    ragged: Ragged,
    facts: Option<Arc<TlsFacts>>,
}

/// Largest piece of a file read into memory at a time.
const FILE_PIECE: usize = 16 * 1024;

impl TlsStream {
    pub fn new(tcp: TcpStream, config: Arc<ServerConfig>, ragged: Ragged) -> io::Result<TlsStream> {
        let session = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream { tcp, session, ragged, facts: None })
    }

    /// Encrypted bytes are waiting for the socket (handshake, alerts,
    /// close_notify, or output).
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// What the environ shows of the connection; computed once, after the
    /// handshake.
    pub fn facts(&mut self) -> Arc<TlsFacts> {
        if let Some(f) = &self.facts {
            return f.clone();
        }
        let client_cert = self.session.peer_certificates().and_then(|c| c.first()).map(|c| crate::tls::pem(c));
        let facts = Arc::new(TlsFacts { client_cert });
        self.facts = Some(facts.clone());
        facts
    }

    /// Send what rustls has for the socket while it takes it. Sets
    /// `writable` false when the socket is full.
    pub fn push(&mut self, writable: &mut bool) -> io::Result<()> {
        while *writable && self.session.wants_write() {
            match self.session.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Read and decrypt into `rbuf` up to `limit` bytes. Returns the
    /// plaintext bytes added; sets `read_closed` at the end of the stream,
    /// `readable` false when the socket is empty.
    pub fn fill(&mut self, rbuf: &mut Vec<u8>, limit: usize, readable: &mut bool, read_closed: &mut bool, writable: &mut bool) -> io::Result<usize> {
        let mut total = 0;
        let mut buf = [0u8; 16 * 1024];
        while !*read_closed && rbuf.len() < limit {
            // Plaintext already decrypted first.
            let want = (limit - rbuf.len()).min(buf.len());
            match self.session.reader().read(&mut buf[..want]) {
                Ok(0) => {
                    // close_notify: a clean end.
                    *read_closed = true;
                    break;
                }
                Ok(n) => {
                    rbuf.extend_from_slice(&buf[..n]);
                    total += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    *read_closed = true;
                    if self.ragged == Ragged::Error {
                        return Err(e);
                    }
                    break;
                }
                Err(e) => return Err(e),
            }
            if !*readable {
                break;
            }
            match self.session.read_tls(&mut self.tcp) {
                Ok(0) => {
                    // The socket ended: rustls reports how (above) once
                    // the records are processed; without a record to
                    // process, it is the end.
                    *readable = false;
                    if self.session.process_new_packets().is_err() || self.session.is_handshaking() {
                        *read_closed = true;
                        break;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.session.process_new_packets() {
                // Send the alert, then give up on the connection.
                let _ = self.push(writable);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        // Handshake messages (and key updates) go out at once.
        self.push(writable)?;
        // Plaintext left decrypted (the buffer was full): the caller is to
        // read again, though the socket raises no new edge for it.
        if !*read_closed && self.session.process_new_packets().is_ok_and(|st| st.plaintext_bytes_to_read() > 0) {
            *readable = true;
        }
        Ok(total)
    }

    /// Encrypt queued output and send it while the socket takes it.
    /// Returns the number of counted (exchange) plaintext bytes taken.
    pub fn flush(&mut self, wq: &mut VecDeque<(OutChunk, bool)>, front_written: &mut usize, writable: &mut bool) -> io::Result<usize> {
        let mut counted = 0;
        loop {
            self.push(writable)?;
            if !*writable || self.session.is_handshaking() {
                break;
            }
            let Some((front, is_counted)) = wq.front_mut() else { break };
            let is_counted = *is_counted;
            let (taken, done) = match front {
                OutChunk::File { file, offset, remaining } => {
                    let mut piece = vec![0u8; (*remaining).min(FILE_PIECE as u64) as usize];
                    let n = file.read_at(&mut piece, *offset)?;
                    if n == 0 {
                        wq.pop_front();
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent"));
                    }
                    let took = self.session.writer().write(&piece[..n])?;
                    *offset += took as u64;
                    *remaining -= took as u64;
                    (took, *remaining == 0)
                }
                other => {
                    let bytes = other.as_bytes().unwrap_or_default();
                    let rest = &bytes[(*front_written).min(bytes.len())..];
                    let took = self.session.writer().write(rest)?;
                    (took, took == rest.len())
                }
            };
            if done {
                wq.pop_front();
                *front_written = 0;
            } else if !matches!(wq.front(), Some((OutChunk::File { .. }, _))) {
                *front_written += taken;
            }
            if is_counted {
                counted += taken;
            }
            if taken == 0 && !done && !self.session.wants_write() {
                break;
            }
        }
        Ok(counted)
    }

    /// End the sending side: close_notify, then the socket's FIN.
    pub fn shutdown_write(&mut self) {
        self.session.send_close_notify();
        let mut writable = true;
        let _ = self.push(&mut writable);
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }
}
