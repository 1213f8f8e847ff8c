//! A connection after a WebSocket upgrade (`conn::Phase::Upgraded`): the
//! loop reads frames, answers pings and the peer's close itself, queues
//! messages for the app, and closes the socket when the closing handshake
//! is over.
//!
//! The session (`websocket::Session`) lives in the request's exchange
//! ([`WsLink`], under the exchange's lock), shared with the executor kind:
//! the loop feeds it what it reads; the kind encodes the app's messages
//! with a sender of its own, outside the lock (compressing a large message
//! must not stall the loop), and queues them only while the session is
//! open. Output of both goes out in the order it was queued: the kind's
//! frames pass through the exchange's output queue (counted against
//! `OUT_HIGH_WATER`, so a slow reader pauses the app's `send`), and the
//! loop moves that queue to the socket's before adding its own frames. Input is bounded by
//! [`INBOX_MESSAGES`]: when the app does not receive, the loop stops
//! reading and TCP pushes back on the client.
//!
//! A WebSocket needs a kind that speaks it (`LoopConfig::websocket`); with
//! none, an upgrade request is plain HTTP to the app, as before.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::collections::VecDeque;

use super::conn::{AppStage, Conn, Phase};
use super::cycle::{Ctx, Step};
use super::exchange::OutChunk;
use crate::websocket::{Session, ToApp};

/// Messages queued for an app that is not receiving before the loop stops
/// reading its socket (uvicorn's `--ws-max-queue` is 32).
pub const INBOX_MESSAGES: usize = 16;

/// What a read takes from the socket at most.
const READ_STEP: usize = 64 * 1024;

/// The close code sent to every WebSocket when the worker stops: 1012
/// (service restart), as uvicorn sends, so clients reconnect elsewhere.
pub const STOP_CODE: u16 = 1012;

/// WebSocket settings, for a kind that speaks WebSocket.
#[derive(Debug, Clone, Copy)]
pub struct WsSettings {
    /// `--websocket-max-message-size`.
    pub max_message: usize,
    /// Whether permessage-deflate is offered back to clients that ask.
    pub deflate: bool,
}

/// A valid upgrade request as the kind receives it (`Job::websocket`):
/// what the client offered, and what accepting it takes.
#[derive(Debug, Clone)]
pub struct WsOffer {
    pub upgrade: crate::websocket::handshake::Upgrade,
    /// `--websocket-max-message-size` (`usize::MAX`: none).
    pub max_message: usize,
}

impl WsOffer {
    /// Accept: the 101 response (with the app's subprotocol and headers),
    /// the session to put in the exchange (`ExchangeState::websocket`),
    /// and the sender the kind keeps to encode the app's messages.
    pub fn accept<'a>(
        &self,
        subprotocol: Option<&str>,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(Vec<u8>, WsLink, crate::websocket::Sender), crate::http::response::ResponseError> {
        let head = crate::websocket::handshake::accept_response(&self.upgrade, subprotocol, headers, &crate::http::date::http_date())?;
        let (session, sender) = Session::new(self.upgrade.deflate, self.max_message);
        Ok((head, WsLink::new(session), sender))
    }
}

/// The upgraded half of an exchange.
pub struct WsLink {
    pub session: Session,
    /// What the app has still to receive.
    pub inbox: VecDeque<ToApp>,
}

impl WsLink {
    pub fn new(session: Session) -> Self {
        WsLink { session, inbox: VecDeque::new() }
    }
}

/// A parsed head, when the kind speaks WebSocket and the request asks for
/// an upgrade: check it. `Ok(None)` is plain HTTP, `Ok(Some(offer))` goes
/// to the app (which accepts or denies it); a bad handshake is answered
/// here (400, or 426 naming version 13) and closes: `Err` is the step.
pub fn offer(conn: &mut Conn, head: &crate::http::RequestHead, ctx: &Ctx<'_>) -> Result<Option<Box<WsOffer>>, Step> {
    let Some(ws) = &ctx.cfg.websocket else { return Ok(None) };
    if !crate::websocket::handshake::is_upgrade(head) {
        return Ok(None);
    }
    match crate::websocket::handshake::check(head, ws.deflate) {
        Ok(upgrade) => Ok(Some(Box::new(WsOffer { upgrade, max_message: ws.max_message }))),
        Err(refusal) => {
            ctx.cfg.slot.traffic.count(refusal.status(), None);
            conn.queue_own(refusal.response(&crate::http::date::http_date()));
            conn.phase = Phase::Closing;
            conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
            Err(Step::Again)
        }
    }
}

/// The app accepted (the kind put the session in the exchange and queued
/// the 101): a connection still in its exchange becomes upgraded.
pub fn enter(conn: &mut Conn) {
    conn.phase = match std::mem::replace(&mut conn.phase, Phase::Closing) {
        Phase::Exchange(a) => {
            conn.deadline = None;
            Phase::Upgraded(a)
        }
        other => other,
    };
}

/// One step of an upgraded connection, after `cycle::advance` moved the
/// kind's output and wrote what it could.
pub fn step(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    let Phase::Upgraded(a) = &mut conn.phase else { return Step::Wait };
    let exchange = a.exchange.clone();
    let app_done = matches!(a.app, AppStage::Done(_));
    let mut st = exchange.lock();
    // The kind's frames first, so the loop's follow them.
    while let Some(chunk) = st.out.pop_front() {
        conn.wq.push_back((chunk, true));
    }
    let Some(ws) = st.websocket.as_mut() else { return Step::Close };
    let mut out = Vec::new();
    let mut told = false;
    if ctx.draining || app_done {
        // The worker stops (or the kind left an open session behind).
        if let Some(t) = ws.session.shutdown(if app_done { crate::websocket::close::NORMAL } else { STOP_CODE }, &mut out) {
            ws.inbox.push_back(t);
            told = true;
        }
    }
    let mut failed_read = false;
    while !ws.session.is_finished() && ws.inbox.len() < INBOX_MESSAGES {
        if !conn.rbuf.is_empty() {
            let s = ws.session.on_bytes(&conn.rbuf, &mut out);
            conn.rbuf.drain(..s.used);
            if let Some(t) = s.to_app {
                ws.inbox.push_back(t);
                told = true;
                continue;
            }
        }
        if conn.read_closed || failed_read {
            if let Some(t) = ws.session.on_eof() {
                ws.inbox.push_back(t);
                told = true;
            }
            break;
        }
        if !conn.readable {
            break;
        }
        let before = conn.rbuf.len();
        failed_read = conn.fill(before + READ_STEP).is_err();
        if conn.rbuf.len() == before && !conn.read_closed && !failed_read {
            break;
        }
    }
    let produced = !out.is_empty();
    if produced {
        conn.wq.push_back((OutChunk::Bytes(out), false));
    }
    let closing = ws.session.closing();
    if told {
        exchange.wake_executor(&st);
    }
    drop(st);
    match closing {
        // An idle WebSocket lives on; a stalled reader is still dropped
        // (`advance` sets the deadline while output waits).
        crate::websocket::Closing::Open if conn.all_sent() => conn.deadline = None,
        crate::websocket::Closing::Open => {}
        // The wait for the peer's answer to a close is bounded.
        crate::websocket::Closing::CloseSent => {
            if conn.deadline.is_none() {
                conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
            }
        }
        crate::websocket::Closing::Finished => {
            if conn.all_sent() {
                ctx.completed.set(ctx.completed.get() + 1);
                conn.stream.shutdown_write();
                return Step::Close;
            }
        }
    }
    if produced || told {
        Step::Again
    } else {
        Step::Wait
    }
}

#[cfg(test)]
#[path = "upgraded_tests.rs"]
mod tests;
