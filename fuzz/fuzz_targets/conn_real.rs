//! Fuzz target: one connection's bytes through the worker's real
//! connection cycle (`cycle::advance` on a scripted stream, with a
//! deterministic app: `worker::script`), delivered in reads that end at
//! fuzzer-chosen offsets and written to a client that takes fuzzer-chosen
//! amounts at a time. Checks that nothing panics, that the cycle never
//! spins and never waits with bytes it will not be told to read (both
//! asserted by `script::run`), and that the split delivery gives exactly
//! the requests, output and end of one whole delivery.
//!
//! Input: flags, sizes, mode (proxy protocol in bits 0-1, proxy allowed in
//! bit 2, the client closes after its bytes in bit 3), number of gaps,
//! number of write sizes, the gaps, the write sizes, then the connection's
//! bytes.
#![no_main]

use std::sync::Once;

use _rsgi::worker::script::{run, Setup};
use libfuzzer_sys::fuzz_target;
use rsgi_fuzz::{cuts_from, limits_from, proxy_mode};

fuzz_target!(|data: &[u8]| {
    static QUIET: Once = Once::new();
    // Refusals are logged at warning level; the fuzzer wants speed.
    QUIET.call_once(|| {
        let _ = _rsgi::log::init(_rsgi::log::Level::Critical, "-");
    });
    let [flags, sizes, mode, ngaps, nwrites, rest @ ..] = data else { return };
    let (limits, trusted) = limits_from(*flags, *sizes);
    let ngaps = (*ngaps as usize % 32).min(rest.len());
    let (gaps, rest) = rest.split_at(ngaps);
    let nwrites = (*nwrites as usize % 16).min(rest.len());
    let (writes, input) = rest.split_at(nwrites);
    let setup = Setup { limits, trusted, proxy: proxy_mode(*mode), proxy_allowed: mode & 4 != 0, eof: mode & 8 != 0 };
    let whole = run(input, &[], &[], &setup);
    let cuts = cuts_from(gaps, input.len());
    let writes: Vec<usize> = writes.iter().map(|&w| w as usize + 1).collect();
    let split = run(input, &cuts, &writes, &setup);
    assert_eq!(split, whole, "cuts {cuts:?} writes {writes:?}");
});
