//! Fuzz target: the chunked body decoder (`http::BodyDecoder`) on arbitrary
//! bytes, fed in pieces and with room for the body limited the way the
//! worker's body buffer limits it. Checks that it never panics, never uses
//! more input or fills more room than it was given, and that any delivery
//! decodes exactly like one whole delivery with unlimited room (same body,
//! trailers, bytes used, or same refusal).
#![no_main]

use _rsgi::http::{BodyDecoder, Framing, HeaderMap, Limits};
use libfuzzer_sys::fuzz_target;
use rsgi_fuzz::{cuts_from, limits_from};

#[derive(Debug, PartialEq)]
enum Outcome {
    Done { body: Vec<u8>, used: usize, trailers: HeaderMap },
    Unfinished { body: Vec<u8> },
    Refused(u16),
}

fn run(input: &[u8], cuts: &[usize], room: usize, limits: &Limits) -> Outcome {
    let mut d = BodyDecoder::new(Framing::Chunked).expect("chunked has a body");
    let mut body = Vec::new();
    let mut used = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(input.len()));
    for end in ends {
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let before = body.len();
            match d.decode(&pending, &mut body, room, limits) {
                Ok(r) => {
                    assert!(r.consumed <= pending.len());
                    assert!(body.len() - before <= room);
                    pending.drain(..r.consumed);
                    used += r.consumed;
                    if r.done {
                        assert!(d.is_done());
                        return Outcome::Done { body, used, trailers: r.trailers };
                    }
                    // Room ran out: the app takes the body, decode again.
                    if r.consumed == 0 || pending.is_empty() {
                        break;
                    }
                }
                Err(e) => return Outcome::Refused(e.status()),
            }
        }
    }
    Outcome::Unfinished { body }
}

fuzz_target!(|data: &[u8]| {
    let [sizes, room, ngaps, rest @ ..] = data else { return };
    let (limits, _) = limits_from(0, *sizes);
    let ngaps = (*ngaps as usize % 16).min(rest.len());
    let (gaps, input) = rest.split_at(ngaps);
    let whole = run(input, &[], usize::MAX, &limits);
    let cuts = cuts_from(gaps, input.len());
    let room = *room as usize % 32 + 1;
    let split = run(input, &cuts, room, &limits);
    assert_eq!(split, whole, "cuts {cuts:?}, room {room}");
});
