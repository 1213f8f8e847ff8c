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
//! loop moves that queue to the socket's before adding its own frames.
//! Input is bounded by the [`Inbox`]'s count and bytes: when the app does
//! not receive, the loop stops reading and TCP pushes back on the client.
//! Keep-alive pings go out when the session's timer says
//! (`Conn::wake_at`, looked at on the loop's tick).
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

/// Bytes of messages queued for an app that is not receiving before the
/// loop stops reading its socket (whatever their count): at least one
/// message is always taken, however large (up to
/// `--websocket-max-message-size`).
pub const INBOX_BYTES: usize = 1 << 20;

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
    /// `--websocket-max-queue`: messages queued for an app that is not
    /// receiving before the loop stops reading.
    pub max_queue: usize,
    /// `--websocket-ping-interval` and `--websocket-ping-timeout`.
    pub pings: crate::websocket::Pings,
}

/// A valid upgrade request as the kind receives it (`Job::websocket`):
/// what the client offered, and what accepting it takes.
#[derive(Debug, Clone)]
pub struct WsOffer {
    pub upgrade: crate::websocket::handshake::Upgrade,
    /// The worker's WebSocket settings (`max_message` is `usize::MAX`
    /// when there is no bound).
    pub settings: WsSettings,
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
        let (mut session, sender) = Session::new(self.upgrade.deflate, self.settings.max_message);
        session.keep_alive(crate::websocket::KeepAlive::new(self.settings.pings, std::time::Instant::now()));
        Ok((head, WsLink { session, inbox: Inbox::new(self.settings.max_queue) }, sender))
    }
}

/// The upgraded half of an exchange.
pub struct WsLink {
    pub session: Session,
    /// What the app has still to receive.
    pub inbox: Inbox,
}

/// Messages for the app, in order, bounded by count and by bytes: the
/// loop reads no more while it is full.
pub struct Inbox {
    queue: VecDeque<ToApp>,
    /// Payload bytes queued.
    bytes: usize,
    max_messages: usize,
}

impl Inbox {
    pub fn new(max_messages: usize) -> Self {
        Inbox { queue: VecDeque::new(), bytes: 0, max_messages: max_messages.max(1) }
    }

    fn size(t: &ToApp) -> usize {
        match t {
            ToApp::Text(s) => s.len(),
            ToApp::Binary(b) => b.len(),
            ToApp::Disconnect { reason, .. } => reason.len(),
        }
    }

    /// Queue `t` (the disconnect too when full: it is the last).
    pub fn push(&mut self, t: ToApp) {
        self.bytes += Self::size(&t);
        self.queue.push_back(t);
    }

    /// The oldest message.
    pub fn pop(&mut self) -> Option<ToApp> {
        let t = self.queue.pop_front()?;
        self.bytes -= Self::size(&t);
        Some(t)
    }

    /// `max_messages` messages or `INBOX_BYTES` bytes wait: read no more.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.max_messages || self.bytes >= INBOX_BYTES
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
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
        Ok(upgrade) => Ok(Some(Box::new(WsOffer { upgrade, settings: *ws }))),
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
            ws.inbox.push(t);
            told = true;
        }
    }
    // A keep-alive ping due, or a pong overdue.
    if conn.wake_at.is_some_and(|at| ctx.now >= at) {
        if let Some(t) = ws.session.on_timer(ctx.now, &mut out) {
            ws.inbox.push(t);
            told = true;
        }
    }
    let mut failed_read = false;
    while !ws.session.is_finished() && !ws.inbox.is_full() {
        if !conn.rbuf.is_empty() {
            let s = ws.session.on_bytes(&conn.rbuf, &mut out);
            conn.rbuf.drain(..s.used);
            if let Some(t) = s.to_app {
                ws.inbox.push(t);
                told = true;
                continue;
            }
        }
        if conn.read_closed || failed_read {
            if let Some(t) = ws.session.on_eof() {
                ws.inbox.push(t);
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
    conn.wake_at = ws.session.next_timer();
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
