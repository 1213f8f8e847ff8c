//! Fuzz target: one connection's bytes through a model of the worker's I/O
//! loop (`rsgi_fuzz::drive`: PROXY header, request heads, bodies, pipelined
//! requests, a body buffer the app drains), delivered in reads that end at
//! fuzzer-chosen offsets. Checks that nothing panics, that the loop never
//! waits with bytes it will not read, and that the split delivery gives
//! exactly the events of one whole delivery.
//!
//! Input: flags, sizes, proxy mode / app pace, body buffer, number of gaps,
//! the gaps, then the connection's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsgi_fuzz::{cuts_from, drive, limits_from, proxy_mode, Setup};

fuzz_target!(|data: &[u8]| {
    let [flags, sizes, mode, buffer, ngaps, rest @ ..] = data else { return };
    let (limits, trusted) = limits_from(*flags, *sizes);
    let ngaps = (*ngaps as usize % 32).min(rest.len());
    let (gaps, input) = rest.split_at(ngaps);
    let whole_setup = Setup { limits, trusted, proxy: proxy_mode(*mode), body_buffer: 1 << 20, app_take: usize::MAX };
    let whole = drive(input, &[], &whole_setup);
    let split_setup = Setup { body_buffer: *buffer as usize % 64 + 1, app_take: (*mode >> 2) as usize % 16 + 1, ..whole_setup };
    let cuts = cuts_from(gaps, input.len());
    let split = drive(input, &cuts, &split_setup);
    assert_eq!(split, whole, "cuts {cuts:?}");
});

