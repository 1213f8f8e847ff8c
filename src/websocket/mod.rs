//! WebSockets (RFC 6455) with permessage-deflate (RFC 7692), pure: bytes
//! and request heads in, bytes and events out, no socket, no Python, no
//! clock. The worker's I/O loop is to drive it for an executor kind that
//! speaks WebSockets (ASGI's `websocket` scope).
//!
//! - `handshake`: is a request an upgrade, is it a valid one, the 101
//!   (with the app's subprotocol and headers), 400 and 426 answers.
//! - `extension`: `Sec-WebSocket-Extensions` offers and the
//!   permessage-deflate parameters chosen from them.
//! - `frame`: frame headers, opcodes and masking.
//! - `receiver`: frames in (from reads cut anywhere), messages, pings and
//!   the peer's close out, or the close code that fails the connection.
//! - `sender`: messages and control frames out.
//! - `session`: one upgraded connection: the receiving half, control
//!   frames, the closing handshake, and what the app is told.
//! - `keepalive`: the server's pings and the wait for their pongs.
//! - `deflate`: the compressor and the size-bounded decompressor.
//! - `utf8`: text validated as it arrives; `close`: close codes and
//!   payloads.

pub mod close;
pub mod deflate;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod keepalive;
pub mod receiver;
pub mod sender;
pub mod session;
pub mod utf8;

pub use frame::Peer;
pub use receiver::{Fed, Incoming, Receiver, Violation};
pub use sender::{DataKind, Sender};
pub use keepalive::{KeepAlive, Pings};
pub use session::{Closing, Session, Step, ToApp};

/// The default bound on one message's size (uvicorn's `--ws-max-size`).
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
