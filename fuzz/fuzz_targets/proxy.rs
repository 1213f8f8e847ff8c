//! Fuzz target: the PROXY protocol v1/v2 parser (`http::proxy::parse`) on
//! arbitrary bytes in each mode. Checks that it never panics, that a header
//! uses at most the input, parses the same from exactly its own bytes, and
//! that every shorter prefix of it is `Incomplete` (never an error).
#![no_main]

use _rsgi::http::proxy::{self, ProxyParsed};
use libfuzzer_sys::fuzz_target;
use rsgi_fuzz::proxy_mode;

fuzz_target!(|data: &[u8]| {
    let [mode, buf @ ..] = data else { return };
    let mode = proxy_mode(*mode);
    if let Ok(ProxyParsed::Header(info, used)) = proxy::parse(buf, mode) {
        assert!(used <= buf.len(), "used {used} of {}", buf.len());
        assert_eq!(proxy::parse(&buf[..used], mode), Ok(ProxyParsed::Header(info, used)));
        assert!(proxy::has_signature(buf, mode), "a header without its signature");
        for cut in 0..used {
            assert_eq!(proxy::parse(&buf[..cut], mode), Ok(ProxyParsed::Incomplete), "prefix {cut}");
        }
    }
});
