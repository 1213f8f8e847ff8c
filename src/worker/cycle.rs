//! The request/response cycle of one connection, one step at a time: move
//! the executor's output to the socket, read, parse a head, answer it
//! from a static file (`static_serve`) or decode its body and hand the
//! request to an executor, and decide between the next request and
//! closing. Each step is a plain function of the connection and a context;
//! the I/O loop (`io_loop`) calls `advance` until it says to wait.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::conn::{Active, AppStage, Conn, Phase};
use super::exchange::{BodyState, Exchange, ExchangeState, Finish, InlineOut, LoopHandle, Notice, Start, BODY_BUFFER, OUT_HIGH_WATER};
use super::task::{Job, Task};
pub use super::dispatch::{abandon, finish_orphan, Dispatcher};
use super::dispatch::dispatch;
use super::io_loop::LoopConfig;
use crate::http::proxy::{self, ProxyMode, ProxyParsed};
use crate::http::request::find_head_end;
use crate::http::response::{error_response, CONTINUE};
use crate::http::{parse_head, BodyDecoder, HttpError, Parsed};
use crate::worker::conn::Peer;
use crate::http::date::http_date;

/// Everything `advance` needs besides the connection.
pub struct Ctx<'a> {
    pub cfg: &'a LoopConfig,
    pub handle: &'a Arc<LoopHandle>,
    pub servers: &'a [Option<Arc<(String, String)>>],
    pub token: usize,
    pub draining: bool,
    /// While a retiring worker drains: until when it keeps a connection
    /// between requests for its replacement to take over (`pass_on`),
    /// instead of shutting it when its keep-alive time runs out.
    pub handover_until: Option<Instant>,
    pub now: Instant,
    /// Requests this step completed (for the scoreboard).
    pub completed: std::cell::Cell<u64>,
    /// Requests this worker may still start under `--max-requests`
    /// (`u64::MAX` when unlimited); the one that reaches zero is answered
    /// with `Connection: close` and retires the worker, as in gunicorn.
    pub requests_left: &'a std::cell::Cell<u64>,
    /// Where work for the app goes.
    pub tasks: Dispatcher<'a>,
    /// Leave queued output unwritten for now: the loop writes it at the end
    /// of its pass.
    pub hold_output: bool,
    /// Set when output was left queued because of `hold_output`.
    pub held: std::cell::Cell<bool>,
}

/// What one step of a connection's state machine asks for next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Something changed: step again.
    Again,
    /// Nothing to do until an event or notice arrives.
    Wait,
    /// Drop the connection.
    Close,
}

/// One step of a connection: move output, write, read, and advance the
/// request cycle.
pub fn advance(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    // Take what the executor produced.
    let mut upgrade = false;
    let exchanging = matches!(conn.phase, Phase::Exchange(_));
    if let Phase::Exchange(a) | Phase::Upgraded(a) = &mut conn.phase {
        let mut st = a.exchange.lock();
        st.loop_notified = false;
        while let Some(chunk) = st.out.pop_front() {
            conn.wq.push_back((chunk, true));
        }
        if let (AppStage::Running, Some(finish)) = (&a.app, st.finish) {
            a.app = AppStage::Done(finish);
        }
        // The app accepted a WebSocket: its 101 is queued, frames follow.
        upgrade = exchanging && st.websocket.is_some();
    }
    if upgrade {
        super::upgraded::enter(conn);
    }

    // Write what is queued, unless the loop holds output to the end of its
    // pass (`IoLoop::turn`: one client wake-up for many responses).
    let mut progressed = false;
    if !conn.wq.is_empty() && conn.writable && ctx.hold_output {
        ctx.held.set(true);
    } else if (!conn.wq.is_empty() || conn.stream.wants_write()) && conn.writable {
        match conn.flush() {
            Ok(counted) => {
                progressed = counted > 0;
                if let Phase::Exchange(a) | Phase::Upgraded(a) = &mut conn.phase {
                    if counted > 0 {
                        let mut st = a.exchange.lock();
                        st.out_pending = st.out_pending.saturating_sub(counted);
                        if st.out_pending < OUT_HIGH_WATER {
                            a.exchange.wake_executor(&st);
                            // A paused response goes on (dispatched below).
                            if let Some(parked) = st.parked.take() {
                                a.app = AppStage::Pending(Task::Resume(parked));
                            }
                        }
                    }
                }
            }
            Err(_) => return Step::Close,
        }
    }
    if !conn.all_sent() && (progressed || conn.deadline.is_none()) {
        // A client that stops reading is dropped after io_timeout.
        conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
    }

    match conn.phase {
        Phase::Closing => {
            if conn.all_sent() {
                conn.stream.shutdown_write();
                Step::Close
            } else {
                if conn.deadline.is_none() {
                    conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
                }
                Step::Wait
            }
        }
        Phase::Own => {
            if !conn.all_sent() {
                return if progressed { Step::Again } else { Step::Wait };
            }
            conn.served += 1;
            conn.phase = Phase::Head;
            conn.deadline = Some(ctx.now + if conn.rbuf.is_empty() { ctx.cfg.keepalive } else { ctx.cfg.io_timeout });
            Step::Again
        }
        Phase::Head => head_step(conn, ctx),
        Phase::Upgraded(_) => {
            let step = super::upgraded::step(conn, ctx);
            if step == Step::Wait && progressed {
                Step::Again
            } else {
                step
            }
        }
        Phase::Exchange(_) => {
            let step = exchange_step(conn, ctx);
            if step == Step::Wait && progressed {
                Step::Again
            } else {
                step
            }
        }
    }
}

/// Answer a bad request and close.
fn refuse(conn: &mut Conn, err: &HttpError, ctx: &Ctx<'_>) -> Step {
    let ip = match conn.peer {
        Peer::Tcp(a) => a.ip().to_string(),
        Peer::Unix => String::new(),
    };
    crate::warn!("Invalid request from ip={ip}: {err}");
    ctx.cfg.slot.traffic.count(err.status(), None);
    conn.queue_own(error_response(err.status(), &err.to_string(), &http_date(), true));
    conn.phase = Phase::Closing;
    conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
    Step::Again
}

fn peer_ip(peer: Peer) -> Option<IpAddr> {
    match peer {
        Peer::Tcp(a) => Some(a.ip()),
        Peer::Unix => None,
    }
}

/// How much a connection buffers while it waits for a complete head.
fn head_cap(limits: &crate::http::Limits) -> usize {
    limits.effective_request_line() + limits.max_header_block() + 4096
}

/// Read what an idle connection's client has sent, ahead of its step:
/// the loop reads every connection a poll reported before it runs the
/// first app call of the pass, so the calls run back to back, without the
/// kernel's receive path between them. Only a plain socket between
/// requests with nothing buffered: a failed read leaves the connection
/// closed for reading and empty, which its step closes, as it would have.
pub fn read_ahead(conn: &mut Conn, cfg: &LoopConfig) {
    let idle = matches!(conn.phase, Phase::Head) && conn.readable && conn.rbuf.is_empty();
    if idle && conn.stream.is_plain_socket() && conn.fill(head_cap(&cfg.limits)).is_err() {
        conn.rbuf.clear();
        conn.readable = false;
        conn.read_closed = true;
    }
}

/// Waiting for or reading a request head.
fn head_step(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    if ctx.draining && conn.rbuf.is_empty() {
        // Keep the connection until its idle time runs out: a request
        // already on its way is answered (with Connection: close). A
        // retiring worker keeps one that can move until its replacement
        // serves and takes it over, so that no client's next request meets
        // a connection shut at its idle limit in between.
        match ctx.handover_until {
            Some(until) if conn.stream.is_plain_socket() => conn.deadline = Some(until),
            _ => {
                let limit = ctx.now + ctx.cfg.keepalive;
                if conn.deadline.is_none_or(|d| d > limit) {
                    conn.deadline = Some(limit);
                }
            }
        }
    }
    let limits = &ctx.cfg.limits;
    let cap = head_cap(limits);
    let before = conn.rbuf.len();
    if conn.fill(cap).is_err() {
        return Step::Close;
    }
    if conn.rbuf.is_empty() {
        return if conn.read_closed { Step::Close } else { Step::Wait };
    }
    if conn.served == 0 && conn.proxy.is_none() && ctx.cfg.proxy_mode != ProxyMode::Off && conn.scanned == 0 {
        if proxy::has_signature(&conn.rbuf, ctx.cfg.proxy_mode) {
            if let Some(ip) = peer_ip(conn.peer) {
                if !ctx.cfg.proxy_allow.allows(ip) {
                    return refuse(conn, &HttpError::ForbiddenProxy(ip.to_string()), ctx);
                }
            }
        }
        match proxy::parse(&conn.rbuf, ctx.cfg.proxy_mode) {
            Ok(ProxyParsed::Incomplete) => {
                return if conn.read_closed { Step::Close } else { Step::Wait };
            }
            Ok(ProxyParsed::Header(info, used)) => {
                if let Some(ip) = peer_ip(conn.peer) {
                    if !ctx.cfg.proxy_allow.allows(ip) {
                        return refuse(conn, &HttpError::ForbiddenProxy(ip.to_string()), ctx);
                    }
                }
                conn.rbuf.drain(..used);
                conn.proxy = Some(info);
                return Step::Again;
            }
            Ok(ProxyParsed::Absent) => {}
            Err(e) => return refuse(conn, &e, ctx),
        }
    }
    // (A request for a static file is answered even then: it needs no
    // app thread.)
    if ctx.tasks.all_busy() && !ctx.cfg.static_files.as_ref().is_some_and(|f| f.raw_match(&conn.rbuf)) {
        // Every app thread is taken: leave the bytes raw, so the connection
        // can still go to a sibling worker with a free one (`handoff`).
        ctx.tasks.wants_executor.set(true);
        return Step::Wait;
    }
    let end = find_head_end(&conn.rbuf, conn.scanned);
    let parsed = match end {
        Some(end) => parse_head(&conn.rbuf[..end], limits, conn.trusted),
        None => {
            // Only re-run the full checks when the new bytes could fail
            // them (a line feed, or past the request-line or header-block
            // bound), so a client dribbling bytes costs a scan of its new
            // bytes only.
            let from = if conn.scanned == 0 { 0 } else { before.saturating_sub(1) };
            let fresh = &conn.rbuf[from..];
            let bound = limits.effective_request_line().min(limits.max_header_block());
            let check = memchr::memchr(b'\n', fresh).is_some() || conn.rbuf.len() > bound;
            conn.scanned = conn.rbuf.len();
            if check {
                parse_head(&conn.rbuf, limits, conn.trusted)
            } else {
                Ok(Parsed::Incomplete)
            }
        }
    };
    match parsed {
        Err(e) => refuse(conn, &e, ctx),
        Ok(Parsed::Incomplete) => {
            if conn.read_closed {
                Step::Close
            } else if conn.rbuf.len() > before {
                Step::Again
            } else {
                Step::Wait
            }
        }
        Ok(Parsed::Complete(head, used)) => {
            conn.rbuf.drain(..used);
            conn.scanned = 0;
            let decoder = BodyDecoder::new(head.framing);
            // Static files: answered here, without the app.
            if let Some(found) = ctx.cfg.static_files.as_ref().and_then(|f| f.lookup(head.path())) {
                return super::static_serve::answer(conn, &head, decoder.is_some(), found, ctx);
            }
            let websocket = match super::upgraded::offer(conn, &head, ctx) {
                Ok(offer) => offer,
                Err(step) => return step,
            };
            if head.expect_continue && decoder.is_some() && conn.rbuf.is_empty() {
                conn.queue_own(CONTINUE.to_vec());
            }
            let body_state = if decoder.is_none() { BodyState::Complete } else { BodyState::Receiving };
            let state = ExchangeState { body_state, ..ExchangeState::default() };
            let notice = Notice { token: ctx.token, serial: conn.serial };
            let exchange = Exchange::new(notice, ctx.handle.clone(), state);
            let mut head = head;
            if ctx.draining || websocket.is_some() {
                head.close = true;
            }
            let close = head.close;
            let job = Box::new(Job {
                head,
                exchange: exchange.clone(),
                peer: conn.peer,
                server: ctx.servers.get(conn.listener).cloned().flatten(),
                proxy: conn.proxy.clone(),
                tls: match &mut conn.stream {
                    super::conn::Stream::Tls(t) => Some(t.facts()),
                    _ => None,
                },
                started: ctx.now,
                websocket,
            });
            conn.deadline = if decoder.is_some() { Some(ctx.now + ctx.cfg.io_timeout) } else { None };
            conn.phase = Phase::Exchange(Active { exchange, decoder, app: AppStage::Pending(Task::Serve(job)), close });
            Step::Again
        }
    }
}

/// Receiving a body, waiting for the app, and finishing the response.
fn exchange_step(conn: &mut Conn, ctx: &Ctx<'_>) -> Step {
    let Phase::Exchange(mut a) = std::mem::replace(&mut conn.phase, Phase::Closing) else {
        return Step::Wait;
    };
    match exchange_next(conn, &mut a, ctx) {
        Next::Stay(step) => {
            conn.phase = Phase::Exchange(a);
            step
        }
        Next::Refuse(err) => {
            abandon(&mut a, &ctx.tasks);
            refuse(conn, &err, ctx)
        }
        Next::Close => {
            abandon(&mut a, &ctx.tasks);
            Step::Close
        }
        Next::Request => {
            conn.served += 1;
            if conn.rbuf.is_empty() && conn.rbuf.capacity() > 64 * 1024 {
                // A large body grew the buffer: give it back while idle.
                conn.rbuf = Vec::new();
            }
            conn.phase = Phase::Head;
            conn.deadline = Some(ctx.now + if conn.rbuf.is_empty() { ctx.cfg.keepalive } else { ctx.cfg.io_timeout });
            Step::Again
        }
    }
}

/// Where an exchange goes after one step.
enum Next {
    /// Stay in the exchange; the step to report.
    Stay(Step),
    /// Answer this error and close.
    Refuse(HttpError),
    /// Drop the connection.
    Close,
    /// The exchange is over: read the next request.
    Request,
}

fn exchange_next(conn: &mut Conn, a: &mut Active, ctx: &Ctx<'_>) -> Next {
    let mut changed = false;

    // The body: read and decode while there is room (or discard it after
    // the response, so the next request on the connection can be read).
    if let Some(decoder) = a.decoder.as_mut() {
        let discard = matches!(a.app, AppStage::Done(_));
        let buffered = if discard { 0 } else { a.exchange.lock().body.len() };
        if buffered < BODY_BUFFER {
            let before = conn.rbuf.len();
            let limit = BODY_BUFFER.max(conn.rbuf.len() + 1);
            if conn.readable && !conn.read_closed && conn.fill(limit).is_err() {
                return Next::Close;
            }
            if conn.rbuf.len() > before {
                conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
            }
        }
        if !conn.rbuf.is_empty() {
            let mut st = a.exchange.lock();
            let mut scratch = Vec::new();
            let (out, room) = if discard {
                (&mut scratch, usize::MAX)
            } else {
                let room = BODY_BUFFER.saturating_sub(st.body.len());
                (&mut st.body, room)
            };
            if room > 0 {
                match decoder.decode(&conn.rbuf, out, room, &ctx.cfg.limits) {
                    Ok(d) => {
                        if d.consumed > 0 {
                            conn.rbuf.drain(..d.consumed);
                            changed = true;
                        }
                        if d.done {
                            st.body_state = BodyState::Complete;
                            a.decoder = None;
                        }
                        if changed {
                            a.exchange.wake_executor(&st);
                        }
                    }
                    Err(e) => {
                        if matches!(a.app, AppStage::Pending(_)) {
                            return Next::Refuse(e);
                        }
                        crate::warn!("Invalid request body: {e}");
                        st.body_state = BodyState::Failed(e);
                        a.decoder = None;
                        a.close = true;
                        a.exchange.wake_executor(&st);
                        changed = true;
                    }
                }
            }
        }
        if a.decoder.is_some() && conn.read_closed && conn.rbuf.is_empty() {
            // The client stopped sending before the body ended.
            if !matches!(a.app, AppStage::Running) {
                return Next::Close;
            }
            let mut st = a.exchange.lock();
            st.client_gone = true;
            a.exchange.wake_executor(&st);
            a.decoder = None;
            a.close = true;
            changed = true;
        }
    } else if conn.hup_seen && matches!(a.app, AppStage::Running) {
        // The client closed its side while the app runs: tell the app (an
        // ASGI app hears `http.disconnect`); the response is still written.
        let mut st = a.exchange.lock();
        if !st.peer_closed {
            st.peer_closed = true;
            a.exchange.wake_executor(&st);
        }
    }

    // Hand the request to an executor once its body is in (or the buffer
    // is full and the rest must stream), or at once for a kind that starts
    // at the head (`Start::AtHead`); a paused response as soon as it may
    // go on.
    if let AppStage::Pending(task) = &a.app {
        let resume = matches!(task, Task::Resume(_));
        let ready = resume
            || a.decoder.is_none()
            || ctx.cfg.start == Start::AtHead
            || a.exchange.lock().body.len() >= BODY_BUFFER;
        if ready {
            if let Some(mut task) = a.take_pending() {
                let left = ctx.requests_left.get();
                if let Task::Serve(job) = &mut task {
                    if left != u64::MAX {
                        if left <= 1 {
                            job.head.close = true;
                            a.close = true;
                        }
                        ctx.requests_left.set(left.saturating_sub(1));
                    }
                }
                // With the body in and nothing queued for the socket, the
                // loop thread may run the app itself (`dispatch`).
                // Unless this pass holds a burst of responses, the call
                // may write its response before the iterable's close().
                let inline_ok = (a.decoder.is_none() && conn.wq.is_empty() && conn.stream.is_plain_socket())
                    .then(|| InlineOut { fd: conn.stream.fd(), timeout: ctx.cfg.io_timeout, early: !ctx.hold_output });
                match dispatch(task, &ctx.tasks, inline_ok) {
                    Ok(()) => {
                        changed = true;
                        if a.decoder.is_none() && conn.wq.is_empty() {
                            conn.deadline = None;
                        }
                        if ctx.tasks.inline_task.borrow().is_some() {
                            // The loop runs it next, then steps this
                            // connection again.
                            return Next::Stay(Step::Wait);
                        }
                    }
                    Err(Some(task)) => {
                        if !resume && left != u64::MAX {
                            ctx.requests_left.set(left);
                        }
                        a.app = AppStage::Pending(task);
                    }
                    Err(None) => return Next::Close,
                }
            }
        }
    }

    // The response is complete and written: next request, or close.
    if let AppStage::Done(finish) = a.app {
        if conn.all_sent() {
            if a.decoder.is_none() || finish == Finish::Close || a.close {
                ctx.completed.set(ctx.completed.get() + 1);
            }
            let keep = finish == Finish::KeepAlive && !a.close;
            if !keep {
                conn.stream.shutdown_write();
                return Next::Close;
            }
            if a.decoder.is_some() {
                // Still discarding the unread body.
                if conn.read_closed {
                    return Next::Close;
                }
                return Next::Stay(if changed { Step::Again } else { Step::Wait });
            }
            return Next::Request;
        } else if conn.deadline.is_none() {
            conn.deadline = Some(ctx.now + ctx.cfg.io_timeout);
        }
    }
    Next::Stay(if changed { Step::Again } else { Step::Wait })
}
