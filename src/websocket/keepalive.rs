//! The server's keep-alive pings on an open WebSocket, as uvicorn sends
//! them (`--ws-ping-interval`, `--ws-ping-timeout`): a ping every
//! interval, one at a time; a ping whose pong has not come within the
//! timeout fails the connection (1011). The next ping is due an interval
//! after the last one was sent, once its pong came.
//!
//! Pure: the caller passes the clock's readings in, sends the pings this
//! asks for, and reports the pongs the peer sent (`Session` does both).

use std::time::{Duration, Instant};

/// The two settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pings {
    /// Time between pings (`None`: no pings).
    pub interval: Option<Duration>,
    /// Time a ping waits for its pong (`None`: for ever).
    pub timeout: Option<Duration>,
}

impl Pings {
    /// No keep-alive pings.
    pub const OFF: Pings = Pings { interval: None, timeout: None };
}

/// Where the keep-alive stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No pings (turned off, or the connection is closing).
    Off,
    /// The next ping goes at this time.
    Idle { ping_at: Instant },
    /// A ping with this payload went at `sent`; its pong is awaited.
    Awaiting { payload: [u8; 4], sent: Instant },
}

/// What is due at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    Nothing,
    /// Send a ping with this payload.
    Ping([u8; 4]),
    /// The pong did not come in time: fail the connection with 1011.
    Expired,
}

/// One connection's keep-alive.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    pings: Pings,
    stage: Stage,
    /// Pings sent so far (their payloads: a counter).
    sent: u32,
}

impl KeepAlive {
    /// Start at `now` (when the connection was accepted).
    pub fn new(pings: Pings, now: Instant) -> Self {
        let stage = match pings.interval {
            Some(i) if !i.is_zero() => Stage::Idle { ping_at: now + i },
            _ => Stage::Off,
        };
        KeepAlive { pings, stage, sent: 0 }
    }

    /// No pings, ever.
    pub fn off() -> Self {
        KeepAlive { pings: Pings::OFF, stage: Stage::Off, sent: 0 }
    }

    /// When the caller must look again (`None`: never).
    pub fn next(&self) -> Option<Instant> {
        match self.stage {
            Stage::Off => None,
            Stage::Idle { ping_at } => Some(ping_at),
            Stage::Awaiting { sent, .. } => self.pings.timeout.map(|t| sent + t),
        }
    }

    /// What is due at `now`; a ping asked for counts as sent at `now`.
    pub fn due(&mut self, now: Instant) -> Due {
        match self.stage {
            Stage::Idle { ping_at } if now >= ping_at => {
                self.sent = self.sent.wrapping_add(1);
                let payload = self.sent.to_be_bytes();
                self.stage = Stage::Awaiting { payload, sent: now };
                Due::Ping(payload)
            }
            Stage::Awaiting { sent, .. } if self.pings.timeout.is_some_and(|t| now >= sent + t) => {
                self.stage = Stage::Off;
                Due::Expired
            }
            _ => Due::Nothing,
        }
    }

    /// The peer sent a pong: the one awaited (same payload) schedules the
    /// next ping; any other (unsolicited, RFC 6455 §5.5.3) is ignored.
    pub fn on_pong(&mut self, payload: &[u8]) {
        if let Stage::Awaiting { payload: p, sent } = self.stage {
            if payload == p {
                let interval = self.pings.interval.unwrap_or_default();
                self.stage = Stage::Idle { ping_at: sent + interval };
            }
        }
    }

    /// The connection is closing: no more pings.
    pub fn stop(&mut self) {
        self.stage = Stage::Off;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn off_never_pings() {
        let t = Instant::now();
        for pings in [Pings::OFF, Pings { interval: Some(Duration::ZERO), timeout: Some(ms(5)) }] {
            let mut k = KeepAlive::new(pings, t);
            assert_eq!(k.next(), None);
            assert_eq!(k.due(t + ms(100_000)), Due::Nothing);
        }
    }

    #[test]
    fn a_ping_each_interval_while_pongs_come() {
        let t = Instant::now();
        let mut k = KeepAlive::new(Pings { interval: Some(ms(20)), timeout: Some(ms(10)) }, t);
        assert_eq!(k.next(), Some(t + ms(20)));
        assert_eq!(k.due(t + ms(19)), Due::Nothing);
        let Due::Ping(p1) = k.due(t + ms(21)) else { panic!("a ping is due") };
        assert_eq!(k.next(), Some(t + ms(31)), "the pong's deadline");
        assert_eq!(k.due(t + ms(25)), Due::Nothing, "one ping at a time");
        k.on_pong(b"other");
        assert_eq!(k.due(t + ms(31)), Due::Expired, "an unsolicited pong does not count");
        let mut k = KeepAlive::new(Pings { interval: Some(ms(20)), timeout: Some(ms(10)) }, t);
        let Due::Ping(p1b) = k.due(t + ms(21)) else { panic!() };
        assert_eq!(p1, p1b);
        k.on_pong(&p1b);
        assert_eq!(k.next(), Some(t + ms(41)), "an interval after the ping went");
        let Due::Ping(p2) = k.due(t + ms(41)) else { panic!("the next ping") };
        assert_ne!(p1, p2, "each ping has its own payload");
        k.stop();
        assert_eq!((k.next(), k.due(t + ms(1000))), (None, Due::Nothing));
    }

    #[test]
    fn without_a_timeout_a_ping_waits_for_ever() {
        let t = Instant::now();
        let mut k = KeepAlive::new(Pings { interval: Some(ms(20)), timeout: None }, t);
        assert!(matches!(k.due(t + ms(20)), Due::Ping(_)));
        assert_eq!(k.next(), None);
        assert_eq!(k.due(t + ms(1_000_000)), Due::Nothing);
    }
}
