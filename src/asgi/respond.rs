//! ASGI response events to HTTP/1.1 bytes: `http.response.start` (status
//! and headers, validated and encoded as for WSGI by `http::response`),
//! `http.response.body` (each event handed to the loop at once, so
//! Server-Sent Events go out one by one), and the `http.response.pathsend`
//! (sendfile) and `http.response.trailers` extensions. The head waits for
//! the first body event, so a small response is one write.
//!
//! Runs on the ASGI thread with the GIL held; never blocks: a full output
//! window is reported to the caller, which awaits room.

use std::sync::Arc;

use crate::http::date::{http_date, with_http_date};
use crate::http::response::{self, AppHeaders, BodyFraming, RequestFacts};
use crate::scoreboard::{SlotHandle, SlotState};
use crate::worker::exchange::{Exchange, Finish, OutChunk};

/// Where the response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No `http.response.start` yet.
    Idle,
    /// Started; the head goes out with the first body bytes.
    Started,
    /// Body events are being sent.
    Body,
    /// The last body event came; `http.response.trailers` is awaited.
    Trailers,
    /// Complete.
    Done,
}

/// Why a response event is refused (raised to the app as its error).
pub type EventError = String;

/// The response of one request.
pub struct Writer {
    pub exchange: Arc<Exchange>,
    facts: RequestFacts,
    slot: SlotHandle,
    pub stage: Stage,
    pub code: u16,
    pub headers: AppHeaders,
    /// The app announced trailers (`"trailers": True` in the start event).
    trailers: bool,
    /// The trailer section has begun (`more_trailers` was set).
    trailers_open: bool,
    framing: BodyFraming,
    head_sent: bool,
    close: bool,
    /// Body bytes sent (after truncation to Content-Length).
    pub sent: u64,
    /// The client is gone: nothing more is queued.
    pub client_gone: bool,
    /// The status of an error page sent instead of the app's response.
    pub error_code: Option<u16>,
}

/// The standard reason phrase of `code` (as Python's `http.HTTPStatus`).
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// `"{code} {reason}"` (or the code alone when it has no standard reason),
/// the status as the response head and the access log show it; made once
/// per process for the codes 100 to 599.
pub fn status_text(code: u16) -> std::borrow::Cow<'static, str> {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| (100..600).map(text_of).collect());
    match texts.get(usize::from(code).wrapping_sub(100)) {
        Some(text) => std::borrow::Cow::Borrowed(text.as_str()),
        None => std::borrow::Cow::Owned(text_of(code)),
    }
}

fn text_of(code: u16) -> String {
    match reason(code) {
        "" => code.to_string(),
        phrase => format!("{code} {phrase}"),
    }
}

impl Writer {
    pub fn new(exchange: Arc<Exchange>, facts: RequestFacts, slot: SlotHandle) -> Writer {
        Writer {
            exchange,
            facts,
            slot,
            stage: Stage::Idle,
            code: 0,
            headers: AppHeaders::default(),
            trailers: false,
            trailers_open: false,
            framing: BodyFraming::None,
            head_sent: false,
            close: facts.close,
            sent: 0,
            client_gone: false,
            error_code: None,
        }
    }

    /// The status that went out (0 when nothing did).
    pub fn final_code(&self) -> u16 {
        match self.error_code {
            Some(c) => c,
            None if self.head_sent => self.code,
            None => 0,
        }
    }

    /// Queue `chunk`; returns whether the output window is now full.
    fn push(&mut self, chunk: OutChunk) -> bool {
        if self.client_gone {
            return false;
        }
        match self.exchange.push_output(chunk, false) {
            Some(full) => full,
            None => {
                self.client_gone = true;
                false
            }
        }
    }

    /// `http.response.start`.
    pub fn start(&mut self, code: u16, headers: AppHeaders, trailers: bool) -> Result<(), EventError> {
        if self.stage != Stage::Idle {
            return Err("Unexpected ASGI message 'http.response.start' sent, after response already started.".into());
        }
        if !(100..=999).contains(&code) || (100..200).contains(&code) {
            return Err(format!("Invalid HTTP status code '{code}' in response."));
        }
        self.code = code;
        self.headers = headers;
        self.trailers = trailers;
        self.stage = Stage::Started;
        Ok(())
    }

    /// Encode the head into `out` (once).
    fn head_into(&mut self, out: &mut Vec<u8>) {
        if self.head_sent {
            return;
        }
        let retiring = self.slot.state() == SlotState::Retiring;
        let (framing, close) = response::decide(self.facts, self.code, self.headers.content_length);
        self.framing = framing;
        self.close = self.close || close || retiring;
        let status = status_text(self.code);
        let (version, close) = (self.facts.version, self.close);
        with_http_date(|date| response::encode_head(out, version, &status, date, close, framing, &self.headers, self.code));
        self.head_sent = true;
    }

    /// The body bytes of `data` the framing lets through.
    fn take<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        match self.framing {
            BodyFraming::None => &data[..0],
            BodyFraming::Length(n) => &data[..(n.saturating_sub(self.sent)).min(data.len() as u64) as usize],
            BodyFraming::Chunked | BodyFraming::UntilClose => data,
        }
    }

    /// `http.response.body`. Returns whether the output window is full.
    pub fn body(&mut self, data: &[u8], more: bool) -> Result<bool, EventError> {
        match self.stage {
            Stage::Idle => return Err("Unexpected ASGI message 'http.response.body' sent, before 'http.response.start'.".into()),
            Stage::Trailers | Stage::Done => {
                return Err("Unexpected ASGI message 'http.response.body' sent, after response already completed.".into())
            }
            Stage::Started | Stage::Body => {}
        }
        self.stage = Stage::Body;
        let mut out = Vec::with_capacity(data.len() + if self.head_sent { 16 } else { 160 + self.headers.encoded.len() });
        self.head_into(&mut out);
        let data = self.take(data);
        self.framing.append(data, &mut out);
        self.sent += data.len() as u64;
        if !more {
            if self.trailers && self.framing == BodyFraming::Chunked {
                self.stage = Stage::Trailers;
            } else {
                self.end_body(&mut out);
            }
        }
        Ok(self.emit((!out.is_empty()).then_some(OutChunk::Bytes(out))))
    }

    /// The end of the body: the last chunk, or a short Content-Length body
    /// that must close the connection.
    fn end_body(&mut self, out: &mut Vec<u8>) {
        match self.framing {
            BodyFraming::Chunked => out.extend_from_slice(response::LAST_CHUNK),
            BodyFraming::Length(n) if self.sent < n => self.close = true,
            _ => {}
        }
        self.stage = Stage::Done;
    }

    /// `http.response.trailers` (only after a body announced with
    /// `trailers`; dropped when the framing cannot carry them).
    pub fn trailers(&mut self, headers: AppHeaders, more: bool) -> Result<bool, EventError> {
        match self.stage {
            Stage::Trailers => {}
            Stage::Body | Stage::Started if self.trailers => {
                return Err("Unexpected ASGI message 'http.response.trailers' sent, before the last body event.".into())
            }
            _ => return Err("Unexpected ASGI message 'http.response.trailers' sent, without 'trailers' in 'http.response.start'.".into()),
        }
        let mut out = Vec::new();
        if !self.trailers_open {
            out.extend_from_slice(b"0\r\n");
        }
        for line in headers.encoded.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line);
        }
        if !more {
            out.extend_from_slice(b"\r\n");
            self.stage = Stage::Done;
        } else {
            self.trailers_open = true;
        }
        Ok(self.emit((!out.is_empty()).then_some(OutChunk::Bytes(out))))
    }

    /// `http.response.pathsend`: the file at `path` with sendfile(2).
    pub fn pathsend(&mut self, path: &str) -> Result<bool, EventError> {
        match self.stage {
            Stage::Started => {}
            Stage::Idle => return Err("Unexpected ASGI message 'http.response.pathsend' sent, before 'http.response.start'.".into()),
            _ => return Err("Unexpected ASGI message 'http.response.pathsend' sent, after the body started.".into()),
        }
        let file = std::fs::File::open(path).map_err(|e| format!("http.response.pathsend: cannot open {path:?}: {e}"))?;
        let size = file.metadata().map_err(|e| format!("http.response.pathsend: {path:?}: {e}"))?.len();
        self.stage = Stage::Body;
        let mut out = Vec::with_capacity(160 + self.headers.encoded.len());
        self.head_into(&mut out);
        let count = match self.framing {
            BodyFraming::None => 0,
            BodyFraming::Length(n) => n.min(size),
            _ => size,
        };
        if count > 0 && self.framing == BodyFraming::Chunked {
            response::chunk_header(count as usize, &mut out);
        }
        // The window's state after the last push is what counts.
        self.push(OutChunk::Bytes(out));
        if count > 0 {
            self.push(OutChunk::File { file, offset: 0, remaining: count });
            self.sent = count;
        }
        let mut tail = Vec::new();
        if count > 0 && self.framing == BodyFraming::Chunked {
            tail.extend_from_slice(b"\r\n");
        }
        self.end_body(&mut tail);
        Ok(self.emit((!tail.is_empty()).then_some(OutChunk::Bytes(tail))))
    }

    /// Queue `chunk` (if any); once the response is complete (stage
    /// `Done`), also tell the loop so, with the same notice.
    fn emit(&mut self, chunk: Option<OutChunk>) -> bool {
        if self.stage != Stage::Done {
            return chunk.is_some_and(|c| self.push(c));
        }
        let keep_alive = !(self.close || self.client_gone);
        match self.exchange.push_last(chunk, keep_alive) {
            Some(full) => full,
            None => {
                self.client_gone = true;
                false
            }
        }
    }

    /// The app failed (or ended) before completing its response: an error
    /// page when nothing was sent, else close the connection.
    pub fn fail(&mut self, code: u16) {
        if self.stage == Stage::Done {
            return;
        }
        if !self.head_sent {
            let page = response::error_response(code, "", &http_date(), !self.facts.is_head);
            self.error_code = Some(code);
            self.head_sent = true;
            self.push(OutChunk::Bytes(page));
        }
        self.stage = Stage::Done;
        self.exchange.finish(Finish::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Version;
    use crate::worker::exchange::{ExchangeState, LoopHandle, Notice};
    use std::sync::atomic::AtomicBool;

    /// A writer on an exchange no loop drains, and the scoreboard and
    /// poller that must outlive it.
    fn writer(version: Version, is_head: bool) -> (Writer, crate::scoreboard::Scoreboard, mio::Poll) {
        let board = crate::scoreboard::Scoreboard::new().unwrap();
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (notices, _) = crossbeam_channel::unbounded();
        let handle = Arc::new(LoopHandle { notices, waker, sleeping: Arc::new(AtomicBool::new(false)), bell: None });
        let exchange = Exchange::new(Notice { token: 0, serial: 0 }, handle, ExchangeState::default());
        let facts = RequestFacts { version, is_head, close: false };
        (Writer::new(exchange, facts, board.handle(0)), board, poll)
    }

    fn written(w: &Writer) -> Vec<Vec<u8>> {
        w.exchange.lock().out.iter().map(|c| c.as_bytes().unwrap().to_vec()).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> AppHeaders {
        let mut h = AppHeaders::default();
        for (n, v) in pairs {
            response::push_app_header(&mut h, n, v).unwrap();
        }
        h
    }

    #[test]
    fn head_waits_for_the_first_body_event_and_each_event_is_its_own_chunk() {
        let (mut w, _b, _p) = writer(Version::HTTP_11, false);
        w.start(200, headers(&[("content-type", "text/event-stream")]), false).unwrap();
        assert!(written(&w).is_empty());
        w.body(b"data: 0\n\n", true).unwrap();
        w.body(b"data: 1\n\n", true).unwrap();
        w.body(b"", false).unwrap();
        let out = written(&w);
        assert_eq!(out.len(), 3);
        let head = String::from_utf8_lossy(&out[0]);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Transfer-Encoding: chunked\r\n") && head.ends_with("\r\n\r\n9\r\ndata: 0\n\n\r\n"), "{head}");
        assert_eq!(out[1], b"9\r\ndata: 1\n\n\r\n");
        assert_eq!(out[2], b"0\r\n\r\n");
        assert_eq!(w.stage, Stage::Done);
        assert_eq!(w.exchange.lock().finish, Some(Finish::KeepAlive));
    }

    #[test]
    fn content_length_truncates_and_a_short_body_closes() {
        let (mut w, _b, _p) = writer(Version::HTTP_11, false);
        w.start(200, headers(&[("content-length", "5")]), false).unwrap();
        w.body(b"hello world", false).unwrap();
        assert!(written(&w)[0].ends_with(b"\r\n\r\nhello"));
        assert_eq!(w.sent, 5);
        let (mut w, _b, _p) = writer(Version::HTTP_11, false);
        w.start(200, headers(&[("content-length", "10")]), false).unwrap();
        w.body(b"hey", false).unwrap();
        assert_eq!(w.exchange.lock().finish, Some(Finish::Close));
    }

    #[test]
    fn trailers_end_the_chunked_body() {
        let (mut w, _b, _p) = writer(Version::HTTP_11, false);
        w.start(200, AppHeaders::default(), true).unwrap();
        w.body(b"abc", false).unwrap();
        assert_eq!(w.stage, Stage::Trailers);
        assert!(w.exchange.lock().finish.is_none());
        w.trailers(headers(&[("x-sum", "1")]), false).unwrap();
        assert_eq!(written(&w).last().unwrap(), b"0\r\nx-sum: 1\r\n\r\n");
        assert_eq!(w.stage, Stage::Done);
    }

    #[test]
    fn events_out_of_order_are_refused() {
        let (mut w, _b, _p) = writer(Version::HTTP_11, false);
        assert!(w.body(b"x", false).is_err());
        assert!(w.start(101, AppHeaders::default(), false).is_err());
        w.start(204, AppHeaders::default(), false).unwrap();
        assert!(w.start(200, AppHeaders::default(), false).is_err());
        w.body(b"ignored", false).unwrap();
        assert!(w.body(b"x", false).is_err());
        assert!(!String::from_utf8_lossy(&written(&w)[0]).contains("ignored"));
    }

    #[test]
    fn http10_and_head() {
        let (mut w, _b, _p) = writer(Version::HTTP_10, false);
        w.start(200, AppHeaders::default(), false).unwrap();
        w.body(b"x", false).unwrap();
        assert_eq!(w.exchange.lock().finish, Some(Finish::Close));
        let (mut w, _b, _p) = writer(Version::HTTP_11, true);
        w.start(200, headers(&[("content-length", "3")]), false).unwrap();
        w.body(b"abc", false).unwrap();
        assert!(written(&w)[0].ends_with(b"Content-Length: 3\r\n\r\n") || written(&w)[0].ends_with(b"content-length: 3\r\n\r\n"));
    }

    #[test]
    fn failing_before_the_head_is_an_error_page() {
        let (mut w, _b, _p) = writer(Version::HTTP_11, false);
        w.fail(500);
        assert!(written(&w)[0].starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
        assert_eq!(w.final_code(), 500);
        assert_eq!(reason(422), "Unprocessable Content");
        assert_eq!(reason(799), "");
        assert_eq!(status_text(200), "200 OK");
        assert_eq!(status_text(299), "299");
        assert_eq!(status_text(99), "99");
        assert_eq!(status_text(799), "799");
    }
}
