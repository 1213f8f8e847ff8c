//! The I/O loop's timing rules, as pure functions of the clock: how long it
//! may sleep in its poll, when held responses must go out, how many steps
//! one connection takes in a row, and how often the loop ticks.
//!
//! Used by `io_loop` on the worker's I/O thread.

use std::time::{Duration, Instant};

use super::lifecycle::STUCK_MS;

/// How often timeouts and the parent are checked.
pub(super) const TICK: Duration = Duration::from_millis(500);

/// Steps one connection may take in a row before the others get theirs
/// (a client pipelining many requests in one write must not hold the loop;
/// it is queued again behind the others, never forgotten).
pub(super) const STEPS_PER_TURN: usize = 64;

/// How long a pass of the loop may hold responses that are ready, so that
/// they go out together at its end (one wake-up of the client for many
/// responses, rather than one per response): at most this much time after
/// the first one was held, the held ones are written. A client wakes once
/// per burst, so the burst should cover a few dozen framework requests
/// (60-80 µs each): 2 ms. Only connections stepped in the same pass are
/// held, so a lone request never waits.
pub(super) const HOLD_OUTPUT: Duration = Duration::from_millis(2);

/// How long the poll may sleep at `now`: until the next tick; at most
/// `STUCK_MS` while connections wait for an app thread a sibling may free
/// (`sibling_may_free`); no later than a stopping worker's last accept;
/// and not at all for a draining worker with nothing left to serve
/// (`drained`), which exits on this turn rather than at the next tick.
pub(super) fn sleep_for(now: Instant, next_tick: Instant, sibling_may_free: bool, accept_until: Option<Instant>, drained: bool) -> Duration {
    if drained {
        return Duration::ZERO;
    }
    let mut timeout = next_tick.saturating_duration_since(now);
    if sibling_may_free {
        timeout = timeout.min(Duration::from_millis(STUCK_MS));
    }
    if let Some(until) = accept_until {
        timeout = timeout.min(until.saturating_duration_since(now));
    }
    timeout
}

/// Responses held since `held_since` have waited long enough at `now`
/// (`HOLD_OUTPUT`): they go out, and the rest of the pass makes the next
/// burst.
pub(super) fn held_long_enough(held_since: Option<Instant>, now: Instant) -> bool {
    held_since.is_some_and(|since| now.saturating_duration_since(since) >= HOLD_OUTPUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_sleeps_until_the_first_thing_due() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(sleep_for(now, now + TICK, false, None, false), TICK);
        assert_eq!(sleep_for(now, now + TICK, true, None, false), ms(STUCK_MS), "a sibling may free up");
        assert_eq!(sleep_for(now, now + ms(3), true, None, false), ms(3), "the tick comes first");
        assert_eq!(sleep_for(now, now + TICK, true, Some(now + ms(1)), false), ms(1), "the last accept comes first");
        assert_eq!(sleep_for(now + ms(5), now, false, Some(now), false), Duration::ZERO, "both overdue");
        assert_eq!(sleep_for(now, now + TICK, false, None, true), Duration::ZERO, "drained: exit, not wait for the tick");
    }

    #[test]
    fn held_output_goes_out_after_the_hold() {
        let now = Instant::now();
        assert!(!held_long_enough(None, now), "nothing held");
        assert!(!held_long_enough(Some(now), now));
        assert!(!held_long_enough(Some(now), now + HOLD_OUTPUT - Duration::from_micros(1)));
        assert!(held_long_enough(Some(now), now + HOLD_OUTPUT));
        assert!(!held_long_enough(Some(now + HOLD_OUTPUT), now), "a clock read before the hold");
    }
}
