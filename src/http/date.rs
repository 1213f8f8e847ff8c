//! The `Date` header value (RFC 9110 §5.6.7 IMF-fixdate), formatted from a
//! Unix time and cached per second.
//!
//! The formatting (`imf_fixdate`, `DateCache`) is pure: it takes the time as
//! an argument. `with_http_date` is the one place that reads the clock (the
//! coarse real-time clock), for the threads that answer requests.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
pub const IMF_FIXDATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Format `unix_secs` as an IMF-fixdate.
pub fn imf_fixdate(unix_secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    let days = (unix_secs / 86_400) as i64;
    let secs = (unix_secs % 86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[(days.rem_euclid(7)) as usize]);
    two(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let y = year as u32;
    two(&mut out[12..14], y / 100);
    two(&mut out[14..16], y % 100);
    two(&mut out[17..19], secs / 3600);
    two(&mut out[20..22], secs / 60 % 60);
    two(&mut out[23..25], secs % 60);
    out
}

/// The formatted date, recomputed only when the second changes.
#[derive(Debug, Clone)]
pub struct DateCache {
    /// The second `value` was formatted for.
    second: u64,
    /// The formatted date for `second`.
    value: [u8; IMF_FIXDATE_LEN],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache { second: 0, value: imf_fixdate(0) }
    }
}

impl DateCache {
    /// The date for `unix_secs`, formatting it only on a new second.
    pub fn get(&mut self, unix_secs: u64) -> &[u8; IMF_FIXDATE_LEN] {
        if unix_secs != self.second {
            self.second = unix_secs;
            self.value = imf_fixdate(unix_secs);
        }
        &self.value
    }
}

thread_local! {
    /// Each thread that answers requests (the loop, the executors) formats
    /// the Date header at most once a second.
    static DATE: RefCell<DateCache> = RefCell::new(DateCache::default());
}

/// The current `Date` header value.
pub fn http_date() -> Vec<u8> {
    with_http_date(|date| date.to_vec())
}

/// Seconds since the epoch, from the coarse real-time clock (the last timer
/// tick: whole seconds are all a `Date` header shows).
fn unix_seconds() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the local timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        return ts.tv_sec as u64;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Run `f` with the current `Date` header value (no copy).
pub fn with_http_date<T>(f: impl FnOnce(&[u8]) -> T) -> T {
    let now = unix_seconds();
    DATE.with(|d| f(d.borrow_mut().get(now)))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&imf_fixdate(1_795_392_000), b"Mon, 23 Nov 2026 00:00:00 GMT");
        assert_eq!(&imf_fixdate(4_102_444_799), b"Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn cache_follows_seconds() {
        let mut c = DateCache::default();
        assert_eq!(c.get(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.get(784_111_778), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
