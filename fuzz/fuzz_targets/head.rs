//! Fuzz target: the request-head parser (`http::parse_head`) on arbitrary
//! bytes under settings chosen by the first two bytes. Checks that it never
//! panics, that a complete head says how many bytes it used (at most the
//! input), that the head parses the same from exactly those bytes, and that
//! `find_head_end` agrees on where it ends.
#![no_main]

use _rsgi::http::request::find_head_end;
use _rsgi::http::{parse_head, Parsed};
use libfuzzer_sys::fuzz_target;
use rsgi_fuzz::limits_from;

fuzz_target!(|data: &[u8]| {
    let [flags, sizes, buf @ ..] = data else { return };
    let (limits, trusted) = limits_from(*flags, *sizes);
    match parse_head(buf, &limits, trusted) {
        Ok(Parsed::Complete(head, used)) => {
            assert!(used > 0 && used <= buf.len(), "used {used} of {}", buf.len());
            assert_eq!(find_head_end(buf, 0), Some(used), "find_head_end disagrees");
            match parse_head(&buf[..used], &limits, trusted) {
                Ok(Parsed::Complete(again, n)) => {
                    assert_eq!(n, used);
                    assert_eq!(again, head);
                }
                other => panic!("the head's own bytes parse as {other:?}"),
            }
            // The parts are slices of the target.
            let _ = (head.path(), head.query(), head.fragment());
        }
        Ok(Parsed::Incomplete) | Err(_) => {}
    }
});
