//! Property tests for the pure HTTP code (proptest): a request delivered in
//! reads split anywhere parses exactly like the same bytes in one read, and
//! a body written with the response side's chunked encoding decodes back to
//! itself through the request side's decoder, whatever the reads and the
//! room given to the decoder.

use _rsgi::http::response::{chunk_header, LAST_CHUNK};
use _rsgi::http::{parse_head, BodyDecoder, Framing, HeaderMap, Limits, Parsed, RequestHead};
use proptest::prelude::*;

/// What the parser made of one connection's bytes.
#[derive(Debug, PartialEq)]
enum Event {
    Request(Box<RequestHead>, Vec<u8>, HeaderMap),
    Refused(u16),
    Unfinished,
}

/// Parse requests from `input` as the loop does (head, then body, then the
/// next head), the bytes arriving in reads that end at `cuts`.
fn parse_all(input: &[u8], cuts: &[usize], room: usize) -> Vec<Event> {
    let limits = Limits::default();
    let mut ends = cuts.iter().copied().filter(|&c| c < input.len()).chain(std::iter::once(input.len()));
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut feed = |buf: &mut Vec<u8>| match ends.next() {
        Some(end) if end > fed => {
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            true
        }
        Some(_) => true,
        None => false,
    };
    let mut events = Vec::new();
    loop {
        let head = loop {
            match parse_head(&buf, &limits, false) {
                Ok(Parsed::Complete(head, used)) => {
                    buf.drain(..used);
                    break head;
                }
                Ok(Parsed::Incomplete) if feed(&mut buf) => {}
                Ok(Parsed::Incomplete) => {
                    if !buf.is_empty() {
                        events.push(Event::Unfinished);
                    }
                    return events;
                }
                Err(e) => {
                    events.push(Event::Refused(e.status()));
                    return events;
                }
            }
        };
        let mut body = Vec::new();
        let mut trailers = Vec::new();
        if let Some(mut decoder) = BodyDecoder::new(head.framing) {
            loop {
                match decoder.decode(&buf, &mut body, room, &limits) {
                    Ok(d) => {
                        buf.drain(..d.consumed);
                        if d.done {
                            trailers = d.trailers;
                            break;
                        }
                        if d.consumed == 0 && !feed(&mut buf) {
                            events.push(Event::Unfinished);
                            return events;
                        }
                    }
                    Err(e) => {
                        events.push(Event::Refused(e.status()));
                        return events;
                    }
                }
            }
        }
        events.push(Event::Request(Box::new(head), body, trailers));
    }
}

/// A body written in chunks of the given sizes (the rest in one last
/// chunk), with the response side's encoding.
fn encode_chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    for &n in sizes.iter().chain(std::iter::once(&usize::MAX)) {
        let n = n.min(rest.len());
        if n == 0 {
            continue;
        }
        chunk_header(n, &mut out);
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(LAST_CHUNK);
    out
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^`|~-]{1,12}"
}

/// One request: a method, a target, header fields, and a body framed by
/// Content-Length or chunked (`None`: no body).
fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "PROPFIND"]);
    let target = "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,10}){1,3}(\\?[A-Za-z0-9=&/?]{0,12})?";
    let fields = prop::collection::vec((token(), "[ -~\t]{0,20}"), 0..5);
    let body = prop::option::of((prop::collection::vec(any::<u8>(), 0..200), any::<bool>(), prop::collection::vec(1usize..40, 0..6)));
    (method, target, fields, body).prop_map(|(method, target, fields, body)| {
        let mut out = format!("{method} {target} HTTP/1.1\r\nHost: example.com\r\n").into_bytes();
        for (name, value) in fields {
            let name = name.to_ascii_lowercase();
            if ["host", "content-length", "transfer-encoding", "expect", "content-type"].contains(&name.as_str()) {
                continue;
            }
            out.extend_from_slice(format!("X-{name}: {value}\r\n").as_bytes());
        }
        match body {
            None => out.extend_from_slice(b"\r\n"),
            Some((body, false, _)) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            Some((body, true, sizes)) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                out.extend_from_slice(&encode_chunked(&body, &sizes));
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Pipelined requests split into reads anywhere parse like the whole,
    /// with the body buffer's room anywhere from one byte up.
    #[test]
    fn any_split_parses_like_the_whole(
        requests in prop::collection::vec(request(), 1..4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        room in 1usize..64,
    ) {
        let input = requests.concat();
        let whole = parse_all(&input, &[], usize::MAX);
        prop_assert_eq!(whole.len(), requests.len(), "{:?}", whole);
        prop_assert!(whole.iter().all(|e| matches!(e, Event::Request(..))), "{:?}", whole);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len())).collect();
        cuts.sort_unstable();
        prop_assert_eq!(parse_all(&input, &cuts, room), whole);
    }

    /// Arbitrary bytes (not only valid requests) split anywhere give the
    /// same requests and the same verdict as the whole.
    #[test]
    fn any_split_of_any_bytes_parses_like_the_whole(
        prefix in request(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let input = [prefix, noise].concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len())).collect();
        cuts.sort_unstable();
        prop_assert_eq!(parse_all(&input, &cuts, usize::MAX), parse_all(&input, &[], usize::MAX));
    }

    /// Chunked encode, then decode in arbitrary reads with arbitrary room:
    /// the body comes back, and the decoder uses exactly the encoding.
    #[test]
    fn chunked_round_trip(
        body in prop::collection::vec(any::<u8>(), 0..2000),
        sizes in prop::collection::vec(1usize..300, 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        room in 1usize..128,
        after in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let encoded = encode_chunked(&body, &sizes);
        let input = [&encoded[..], &after[..]].concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len())).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        let limits = Limits::default();
        let mut d = BodyDecoder::new(Framing::Chunked).unwrap();
        let (mut out, mut pending, mut used, mut fed) = (Vec::new(), Vec::new(), 0, 0);
        'reads: for end in cuts {
            pending.extend_from_slice(&input[fed..end]);
            fed = end;
            loop {
                let r = d.decode(&pending, &mut out, room, &limits).unwrap();
                pending.drain(..r.consumed);
                used += r.consumed;
                if r.done {
                    prop_assert!(r.trailers.is_empty());
                    break 'reads;
                }
                if r.consumed == 0 || pending.is_empty() {
                    break;
                }
            }
        }
        prop_assert!(d.is_done());
        prop_assert_eq!(used, encoded.len());
        prop_assert_eq!(out, body);
    }
}
