//! Shared pieces of the fuzz targets: parser settings chosen from the
//! input's first bytes, and [`drive`], a model of how the worker's I/O loop
//! (`worker::cycle`'s head and body steps) feeds the pure parsers (PROXY
//! header, request head, body decoder) from reads that end at arbitrary
//! offsets, with a body buffer the app drains at its own pace.
//!
//! The model copies the loop's decisions (when a head is re-checked, how
//! much one fill reads, when body bytes are decoded) with a body window the
//! fuzzer sizes (the real one is 256 KiB, beyond the fuzzer's inputs). The
//! `connection` target checks that a delivery split anywhere gives the same
//! events as one whole delivery; `conn_real` checks the same of the real
//! cycle (`worker::script`), so a change to `worker::cycle` that the model
//! misses still meets the fuzzer there.

use _rsgi::http::proxy::{self, ProxyInfo, ProxyMode, ProxyParsed};
use _rsgi::http::request::find_head_end;
use _rsgi::http::{parse_head, BodyDecoder, HeaderMap, HeaderMapPolicy, Limits, Parsed, RequestHead};

/// Parser settings from two bytes: `flags` switches the lenient settings and
/// the `header_map` policy (its top bit says whether the peer is trusted),
/// `sizes` picks each limit among the default, "unlimited" (0) and small
/// values that the fuzzer can reach.
pub fn limits_from(flags: u8, sizes: u8) -> (Limits, bool) {
    let limits = Limits {
        permit_unconventional_method: flags & 1 != 0,
        permit_unconventional_version: flags & 2 != 0,
        casefold_method: flags & 4 != 0,
        permit_obsolete_folding: flags & 8 != 0,
        strip_header_spaces: flags & 16 != 0,
        header_map: match (flags >> 5) & 3 {
            0 => HeaderMapPolicy::Drop,
            1 => HeaderMapPolicy::Refuse,
            _ => HeaderMapPolicy::Dangerous,
        },
        request_line: [4094, 0, 32, 9000][(sizes & 3) as usize],
        request_fields: [100, 0, 2, 5][((sizes >> 2) & 3) as usize],
        request_field_size: [8190, 0, 16, 64][((sizes >> 4) & 3) as usize],
        request_body: [0, 1, 16, 1000][((sizes >> 6) & 3) as usize],
        ..Limits::default()
    };
    (limits, flags & 128 != 0)
}

/// The `proxy_protocol` setting from two bits.
pub fn proxy_mode(b: u8) -> ProxyMode {
    [ProxyMode::Off, ProxyMode::V1, ProxyMode::V2, ProxyMode::Auto][(b & 3) as usize]
}

/// Read offsets from a list of gaps (each at least 1): the bytes arrive in
/// pieces that end at these offsets.
pub fn cuts_from(gaps: &[u8], len: usize) -> Vec<usize> {
    let mut at = 0usize;
    let mut cuts = Vec::new();
    for &g in gaps {
        at += g as usize + 1;
        if at >= len {
            break;
        }
        cuts.push(at);
    }
    cuts
}

/// What the loop did with the bytes of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A PROXY header was read.
    Proxy(ProxyInfo),
    /// A request was read whole: its head, body and trailers as the app
    /// would see them.
    Request { head: Box<RequestHead>, body: Vec<u8>, trailers: HeaderMap },
    /// The connection was refused with this status.
    Refused(u16),
    /// The input ended inside a request head; a full check of what was
    /// buffered says this (0: still incomplete, or nothing buffered).
    EndedInHead(u16),
    /// The input ended inside a PROXY header.
    EndedInProxy,
    /// The input ended inside a body.
    EndedInBody,
}

/// How the model's loop is set up.
#[derive(Debug, Clone)]
pub struct Setup {
    pub limits: Limits,
    pub trusted: bool,
    pub proxy: ProxyMode,
    /// Body bytes the exchange holds for the app (the worker's
    /// `BODY_BUFFER`, small here so back-pressure happens on small inputs).
    pub body_buffer: usize,
    /// Body bytes the app takes from the exchange each time it runs.
    pub app_take: usize,
}

/// The client side: bytes that have arrived on the socket so far (up to
/// the next cut) and how many the loop has read.
struct Wire<'a> {
    input: &'a [u8],
    cuts: &'a [usize],
    arrived: usize,
    read: usize,
    closed: bool,
}

impl Wire<'_> {
    /// The next piece arrives; false when there is none left.
    fn arrive(&mut self) -> bool {
        if self.arrived >= self.input.len() {
            return false;
        }
        self.arrived = self.cuts.iter().copied().find(|&c| c > self.arrived).unwrap_or(self.input.len());
        true
    }

    /// `Conn::fill`: read what has arrived, in reads of `want` bytes, until
    /// `rbuf` holds `limit` bytes. `step` is the fill's largest read.
    fn fill(&mut self, rbuf: &mut Vec<u8>, limit: usize, step: usize) {
        while !self.closed && rbuf.len() < limit {
            let want = (limit - rbuf.len()).clamp(4096, step);
            let n = want.min(self.arrived - self.read);
            if n == 0 {
                if self.arrived == self.input.len() {
                    // The client half-closed after its last byte.
                    self.closed = true;
                }
                return;
            }
            rbuf.extend_from_slice(&self.input[self.read..self.read + n]);
            self.read += n;
        }
    }

    /// Bytes that arrived and wait unread.
    fn unread(&self) -> bool {
        self.read < self.arrived
    }
}

/// The body in progress after a head.
struct Body {
    head: RequestHead,
    decoder: Option<BodyDecoder>,
    /// What the exchange holds for the app.
    buffered: Vec<u8>,
    /// What the app has read.
    taken: Vec<u8>,
    trailers: HeaderMap,
}

enum Phase {
    Head,
    Body(Box<Body>),
}

enum Step {
    Again,
    Wait,
    Close,
}

/// Run one connection over `input`, delivered in pieces that end at `cuts`,
/// and return what the loop made of it. Panics if the loop would stall with
/// unread bytes it can never take (a connection left to its timeout).
pub fn drive(input: &[u8], cuts: &[usize], setup: &Setup) -> Vec<Event> {
    let limits = &setup.limits;
    let mut wire = Wire { input, cuts, arrived: 0, read: 0, closed: false };
    let mut events = Vec::new();
    let mut rbuf: Vec<u8> = Vec::new();
    let mut scanned = 0usize;
    let mut served = 0u64;
    let mut proxied = false;
    let mut phase = Phase::Head;
    wire.arrive();
    // Every step either reads, consumes or ends; this bounds a model bug.
    let mut budget = 16 * input.len() + 64;
    loop {
        budget = budget.checked_sub(1).expect("the loop model makes no progress");
        let step = match &mut phase {
            Phase::Head => {
                let cap = limits.effective_request_line() + limits.max_header_block() + 4096;
                let before = rbuf.len();
                wire.fill(&mut rbuf, cap, 8 * 1024);
                head_step(&mut rbuf, &mut scanned, &mut proxied, &mut phase, served, before, &wire, setup, &mut events)
            }
            Phase::Body(b) => {
                let step = body_step(&mut rbuf, b, &mut wire, setup, &mut events);
                if let Step::Again = step {
                    if b.decoder.is_none() && b.buffered.is_empty() {
                        // The app has the whole body: the exchange ends.
                        let close = b.head.close;
                        let Phase::Body(b) = std::mem::replace(&mut phase, Phase::Head) else { unreachable!() };
                        let b = *b;
                        events.push(Event::Request { head: Box::new(b.head), body: b.taken, trailers: b.trailers });
                        if close {
                            return events;
                        }
                        served += 1;
                    }
                }
                step
            }
        };
        match step {
            Step::Again => {}
            Step::Close => return events,
            Step::Wait => {
                assert!(!wire.unread(), "the loop waits with unread bytes it will never read: {} buffered", rbuf.len());
                if !wire.arrive() {
                    // Nothing more will come: the next fill sees the end.
                    wire.closed = true;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn head_step(
    rbuf: &mut Vec<u8>,
    scanned: &mut usize,
    proxied: &mut bool,
    phase: &mut Phase,
    served: u64,
    before: usize,
    wire: &Wire<'_>,
    setup: &Setup,
    events: &mut Vec<Event>,
) -> Step {
    let limits = &setup.limits;
    if rbuf.is_empty() {
        if wire.closed {
            events.push(Event::EndedInHead(0));
            return Step::Close;
        }
        return Step::Wait;
    }
    if served == 0 && !*proxied && setup.proxy != ProxyMode::Off && *scanned == 0 {
        match proxy::parse(rbuf, setup.proxy) {
            Ok(ProxyParsed::Incomplete) => {
                if wire.closed {
                    events.push(Event::EndedInProxy);
                    return Step::Close;
                }
                return Step::Wait;
            }
            Ok(ProxyParsed::Header(info, used)) => {
                assert!(used <= rbuf.len());
                rbuf.drain(..used);
                *proxied = true;
                events.push(Event::Proxy(info));
                return Step::Again;
            }
            Ok(ProxyParsed::Absent) => {}
            Err(e) => {
                events.push(Event::Refused(e.status()));
                return Step::Close;
            }
        }
    }
    let parsed = match find_head_end(rbuf, *scanned) {
        Some(end) => {
            assert!(end <= rbuf.len());
            parse_head(&rbuf[..end], limits, setup.trusted)
        }
        None => {
            let from = if *scanned == 0 { 0 } else { before.saturating_sub(1) };
            let bound = limits.effective_request_line().min(limits.max_header_block());
            let check = memchr_lf(&rbuf[from..]) || rbuf.len() > bound;
            *scanned = rbuf.len();
            if check {
                parse_head(rbuf, limits, setup.trusted)
            } else {
                Ok(Parsed::Incomplete)
            }
        }
    };
    match parsed {
        Err(e) => {
            events.push(Event::Refused(e.status()));
            Step::Close
        }
        Ok(Parsed::Incomplete) => {
            if wire.closed {
                let verdict = match parse_head(rbuf, limits, setup.trusted) {
                    Err(e) => e.status(),
                    Ok(Parsed::Incomplete) => 0,
                    Ok(Parsed::Complete(..)) => panic!("a full parse finds a head the loop missed"),
                };
                events.push(Event::EndedInHead(verdict));
                Step::Close
            } else if rbuf.len() > before {
                Step::Again
            } else {
                Step::Wait
            }
        }
        Ok(Parsed::Complete(head, used)) => {
            assert!(used > 0 && used <= rbuf.len());
            rbuf.drain(..used);
            *scanned = 0;
            let decoder = BodyDecoder::new(head.framing);
            *phase = Phase::Body(Box::new(Body { head, decoder, buffered: Vec::new(), taken: Vec::new(), trailers: Vec::new() }));
            Step::Again
        }
    }
}

fn memchr_lf(b: &[u8]) -> bool {
    b.contains(&b'\n')
}

/// `cycle::exchange_next`'s body part, then the app taking what it can.
fn body_step(rbuf: &mut Vec<u8>, b: &mut Body, wire: &mut Wire<'_>, setup: &Setup, events: &mut Vec<Event>) -> Step {
    let mut changed = false;
    if let Some(decoder) = b.decoder.as_mut() {
        if b.buffered.len() < setup.body_buffer {
            let limit = setup.body_buffer.max(rbuf.len() + 1);
            wire.fill(rbuf, limit, 64 * 1024);
        }
        if !rbuf.is_empty() {
            let room = setup.body_buffer.saturating_sub(b.buffered.len());
            if room > 0 {
                let had = b.buffered.len();
                match decoder.decode(rbuf, &mut b.buffered, room, &setup.limits) {
                    Ok(d) => {
                        assert!(d.consumed <= rbuf.len(), "decoder used more than it was given");
                        assert!(b.buffered.len() - had <= room, "decoder overfilled the body buffer");
                        if d.consumed > 0 {
                            rbuf.drain(..d.consumed);
                            changed = true;
                        }
                        if d.done {
                            assert!(decoder.is_done());
                            b.trailers = d.trailers;
                            b.decoder = None;
                            changed = true;
                        }
                    }
                    Err(e) => {
                        events.push(Event::Refused(e.status()));
                        return Step::Close;
                    }
                }
            }
        }
        if b.decoder.is_some() && wire.closed && rbuf.is_empty() {
            events.push(Event::EndedInBody);
            return Step::Close;
        }
    }
    // The app reads.
    let n = setup.app_take.min(b.buffered.len());
    if n > 0 {
        b.taken.extend(b.buffered.drain(..n));
        changed = true;
    }
    if changed || (b.decoder.is_none() && b.buffered.is_empty()) {
        Step::Again
    } else {
        Step::Wait
    }
}
