//! One upgraded connection after the 101: the receiver, the control frames
//! and the closing handshake (RFC 6455 §7) in one state machine, so the I/O
//! loop only moves bytes and the app only sees messages and one
//! disconnect.
//!
//! The loop feeds socket bytes to [`Session::on_bytes`], which answers
//! pings and the peer's close by itself (into the loop's output, no app
//! needed) and hands messages over as [`ToApp`]; the app closes through
//! [`Session::close`]. The app's messages are encoded (and compressed) by
//! the data [`Sender`] that [`Session::new`] hands back, which the sending
//! side keeps for itself, so the work needs no lock the loop also takes;
//! the frames go out only while [`Session::is_open`] (or through
//! [`Session::send`], where one thread holds both). The app is told of
//! the end once, with the code that ended it: the peer's close
//! code (1005 when it gave none), the code of a protocol failure
//! (1002/1007/1009) that the server sent, the server's own when it stops
//! ([`Session::shutdown`]), or 1006 when the connection ended without a
//! close frame ([`Session::on_eof`]). An app that closes first is not told
//! again: it knows.
//!
//! With keep-alive pings turned on ([`Session::keep_alive`]), the loop
//! calls [`Session::on_timer`] when [`Session::next_timer`] says: it sends
//! the pings, and fails the connection with 1011 when a pong is overdue
//! (the app is told 1011).
//!
//! [`Session::is_finished`] says when the loop may close the socket once
//! its output is written; while a close sent by the server waits for the
//! peer's answer ([`Closing::CloseSent`]), the loop bounds the wait with
//! its own timer.

use super::close::{self, CloseFrame};
use super::extension::Deflate;
use super::frame::Peer;
use super::keepalive::{Due, KeepAlive};
use super::receiver::{Incoming, Receiver};
use super::sender::{DataKind, Sender};

/// Where the closing handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Messages flow both ways.
    Open,
    /// The server sent its close (the app's, or the server stopping) and
    /// waits for the peer's; data that still arrives is dropped.
    CloseSent,
    /// Nothing more is read or sent: the peer's close was answered, the
    /// connection failed, or it ended. The socket closes once written.
    Finished,
}

/// What the app is to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToApp {
    Text(String),
    Binary(Vec<u8>),
    /// The connection is over (ASGI's `websocket.disconnect`).
    Disconnect { code: u16, reason: String },
}

/// What one [`Session::on_bytes`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input used; the caller drains them.
    pub used: usize,
    /// Something for the app; the caller feeds the rest again after it.
    pub to_app: Option<ToApp>,
}

/// An app's send or close after the connection closed, or a close code
/// that may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection is closing or closed: nothing more is sent.
    Closed,
    /// The app's close code is not one that may be sent.
    BadCode(u16),
}

/// One upgraded connection.
pub struct Session {
    receiver: Receiver,
    /// Control frames (never compressed).
    control: Sender,
    closing: Closing,
    keepalive: KeepAlive,
}

impl Session {
    /// The session for a connection accepted with `deflate` (if agreed),
    /// refusing client messages over `max_message` bytes, and the data
    /// sender for the app's messages (with the compressor, if agreed).
    pub fn new(deflate: Option<Deflate>, max_message: usize) -> (Self, Sender) {
        let (deflater, inflater) = match deflate {
            Some(d) => {
                let (tx, rx) = d.codec();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let session = Session {
            receiver: Receiver::new(Peer::Client, max_message, inflater),
            control: Sender::new(None),
            closing: Closing::Open,
            keepalive: KeepAlive::off(),
        };
        (session, Sender::new(deflater))
    }

    /// Send keep-alive pings (`keepalive`, started when the connection was
    /// accepted).
    pub fn keep_alive(&mut self, keepalive: KeepAlive) {
        self.keepalive = keepalive;
    }

    /// When [`Session::on_timer`] is next due (`None`: not while nothing
    /// else happens).
    pub fn next_timer(&self) -> Option<std::time::Instant> {
        if self.closing == Closing::Open {
            self.keepalive.next()
        } else {
            None
        }
    }

    /// The time is `now`: send the ping that is due into `out`, or fail
    /// the connection with 1011 when the last one's pong is overdue (the
    /// app is told).
    pub fn on_timer(&mut self, now: std::time::Instant, out: &mut Vec<u8>) -> Option<ToApp> {
        if self.closing != Closing::Open {
            return None;
        }
        match self.keepalive.due(now) {
            Due::Nothing => None,
            Due::Ping(payload) => {
                self.control.ping(&payload, out);
                None
            }
            Due::Expired => {
                let reason = "keepalive ping timeout";
                self.control.close(close::INTERNAL_ERROR, reason, out);
                self.closing = Closing::Finished;
                Some(ToApp::Disconnect { code: close::INTERNAL_ERROR, reason: reason.to_owned() })
            }
        }
    }

    /// Where the closing handshake stands.
    pub fn closing(&self) -> Closing {
        self.closing
    }

    /// True when nothing more will be read or sent: close the socket once
    /// the output is written.
    pub fn is_finished(&self) -> bool {
        self.closing == Closing::Finished
    }

    /// True while the app may still send.
    pub fn is_open(&self) -> bool {
        self.closing == Closing::Open
    }

    /// Bytes from the socket: use what can be used, answer pings and the
    /// peer's close into `out`, and return at most one thing for the app.
    pub fn on_bytes(&mut self, input: &[u8], out: &mut Vec<u8>) -> Step {
        let mut at = 0;
        loop {
            if self.closing == Closing::Finished {
                return Step { used: input.len(), to_app: None };
            }
            let fed = match self.receiver.feed(&input[at..]) {
                Ok(fed) => fed,
                Err(v) => {
                    // Fail the connection: say why, then close without
                    // waiting for an answer (RFC 6455 §7.1.7).
                    let was_open = self.closing == Closing::Open;
                    if was_open {
                        self.control.close(v.code, v.reason, out);
                    }
                    self.closing = Closing::Finished;
                    let to_app = was_open.then(|| ToApp::Disconnect { code: v.code, reason: v.reason.to_owned() });
                    return Step { used: input.len(), to_app };
                }
            };
            at += fed.used;
            let to_app = match fed.event {
                None => return Step { used: at, to_app: None },
                Some(event) => self.on_event(event, out),
            };
            if to_app.is_some() {
                return Step { used: at, to_app };
            }
        }
    }

    fn on_event(&mut self, event: Incoming, out: &mut Vec<u8>) -> Option<ToApp> {
        let open = self.closing == Closing::Open;
        match event {
            Incoming::Text(t) if open => Some(ToApp::Text(t)),
            Incoming::Binary(b) if open => Some(ToApp::Binary(b)),
            Incoming::Ping(p) if open => {
                self.control.pong(&p, out);
                None
            }
            Incoming::Close(frame) => {
                self.closing = Closing::Finished;
                if !open {
                    // The answer to the server's close.
                    return None;
                }
                self.echo_close(&frame, out);
                Some(ToApp::Disconnect { code: frame.code_or_no_status(), reason: frame.reason })
            }
            // A pong may answer a keep-alive ping.
            Incoming::Pong(p) => {
                self.keepalive.on_pong(&p);
                None
            }
            // After the server's close: data and pings are dropped.
            _ => None,
        }
    }

    /// Answer a peer's close with the same code (RFC 6455 §5.5.1), or an
    /// empty close when it gave none.
    fn echo_close(&mut self, frame: &CloseFrame, out: &mut Vec<u8>) {
        match frame.code {
            Some(code) => self.control.close(code, "", out),
            None => super::frame::write_frame(out, true, false, super::frame::Opcode::Close, &[], None),
        }
    }

    /// The socket ended (EOF or an error) before the closing handshake
    /// did: the app is told 1006 unless it already knows of the end.
    pub fn on_eof(&mut self) -> Option<ToApp> {
        let was = std::mem::replace(&mut self.closing, Closing::Finished);
        (was == Closing::Open).then(|| ToApp::Disconnect { code: close::ABNORMAL, reason: String::new() })
    }

    /// The app sends a message, encoded by `data` (the sender
    /// [`Session::new`] returned), when one thread holds both.
    pub fn send(&mut self, data: &mut Sender, kind: DataKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        if self.closing != Closing::Open {
            return Err(Refused::Closed);
        }
        data.message(kind, payload, out);
        Ok(())
    }

    /// The app closes with `code` (ASGI's default is 1000) and `reason`
    /// (cut to 123 bytes at a character boundary).
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) -> Result<(), Refused> {
        if !close::is_valid_code(code) {
            return Err(Refused::BadCode(code));
        }
        if self.closing != Closing::Open {
            return Err(Refused::Closed);
        }
        self.control.close(code, reason, out);
        self.closing = Closing::CloseSent;
        Ok(())
    }

    /// The server stops (or drops the connection for another reason of
    /// its own): send a close with `code` and tell the app, once.
    pub fn shutdown(&mut self, code: u16, out: &mut Vec<u8>) -> Option<ToApp> {
        if self.closing != Closing::Open {
            return None;
        }
        self.control.close(code, "", out);
        self.closing = Closing::CloseSent;
        Some(ToApp::Disconnect { code, reason: String::new() })
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
