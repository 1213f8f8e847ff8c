//! Prometheus metrics (`--metrics-bind`): the master renders the text
//! format from the scoreboard (each live worker's counters and load, plus
//! the totals of workers it has reaped) and its own counts (restarts by
//! reason, workers), and serves it from its loop through [`Exporter`]: no
//! thread and no Python. Also the listen queue from `TCP_INFO` (Prometheus
//! and, with `--enable-backlog-metric`, statsd's `gunicorn.backlog`).
//!
//! Used only by the master.

use std::fmt::Write as _;

use super::exporter::Exporter;
use super::{Arbiter, WorkerInfo, WorkerState};
use crate::config::{Config, Key, Value};
use crate::listen::Listener;
use crate::scoreboard::{Retirement, SlotState, Totals, DURATION_BOUNDS_US};

/// Why a worker was replaced, as counted in `rsgi_worker_restarts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restart {
    /// Exited with an error status or died of a signal the master did not
    /// send.
    Crash,
    /// Killed by the master for `--timeout`.
    Timeout,
    /// Retired at `--max-requests`.
    MaxRequests,
    /// Retired over `--max-worker-memory`.
    Memory,
}

impl Restart {
    const ALL: [Restart; 4] = [Restart::Crash, Restart::Timeout, Restart::MaxRequests, Restart::Memory];

    fn label(self) -> &'static str {
        match self {
            Restart::Crash => "crash",
            Restart::Timeout => "timeout",
            Restart::MaxRequests => "max_requests",
            Restart::Memory => "memory",
        }
    }

    /// Why a reaped worker went, if it was not the master's own doing
    /// (HUP, TTOU, a stop).
    fn of(info: &WorkerInfo, retirement: Retirement, status: i32) -> Option<Restart> {
        if matches!(info.state, WorkerState::Aborted { .. }) {
            return Some(Restart::Timeout);
        }
        match retirement {
            Retirement::MaxRequests => return Some(Restart::MaxRequests),
            Retirement::Memory => return Some(Restart::Memory),
            Retirement::ParentGone | Retirement::None => {}
        }
        let failed = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status) != 0
        } else {
            libc::WIFSIGNALED(status) && !matches!(libc::WTERMSIG(status), libc::SIGTERM | libc::SIGQUIT | libc::SIGINT)
        };
        failed.then_some(Restart::Crash)
    }
}

/// The master's side of the metrics: the endpoint, and what outlives the
/// workers.
pub(super) struct Metrics {
    /// Serving scrapes, with `--metrics-bind`.
    pub(super) exporter: Option<Exporter>,
    /// Traffic counters of the workers already reaped.
    totals: Totals,
    /// Restarts, in `Restart::ALL` order.
    restarts: [u64; 4],
    /// `--enable-backlog-metric`.
    backlog_to_statsd: bool,
}

impl Metrics {
    /// Open the endpoint, if `--metrics-bind` asks for one. The error is
    /// one line for the operator. Called in the master before it binds.
    pub(super) fn open(cfg: &Config) -> Result<Metrics, String> {
        let exporter = match cfg.values.get(Key::MetricsBind) {
            Value::Str(spec) if !spec.is_empty() => Some(Exporter::bind(spec)?),
            _ => None,
        };
        if let Some(e) = &exporter {
            crate::info!("Serving metrics at: http://{}/metrics", e.addr());
        }
        Ok(Metrics { exporter, totals: Totals::default(), restarts: [0; 4], backlog_to_statsd: cfg.values.flag(Key::EnableBacklogMetric) })
    }
}

/// The accept queue of a TCP listener: (connections waiting, the limit),
/// from `TCP_INFO` (`tcpi_unacked` and `tcpi_sacked` on a listening
/// socket). `None` for unix sockets and where Linux says nothing.
fn listen_queue(l: &Listener) -> Option<(u32, u32)> {
    let Listener::Tcp { .. } = l else { return None };
    // SAFETY: tcp_info is plain data, valid when zeroed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the local struct.
    let r = unsafe {
        libc::getsockopt(l.raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, &mut info as *mut _ as *mut libc::c_void, &mut len)
    };
    (r == 0 && len as usize >= std::mem::offset_of!(libc::tcp_info, tcpi_sacked) + 4)
        .then_some((info.tcpi_unacked, info.tcpi_sacked))
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A bucket bound in seconds, written as Prometheus clients write them.
fn seconds(us: u64) -> String {
    if us % 1_000_000 == 0 {
        format!("{}.0", us / 1_000_000)
    } else {
        format!("{}", us as f64 / 1e6)
    }
}

/// One metric family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Arbiter {
    /// A worker was reaped: fold its counters into the totals and count
    /// its restart. Called from `reap_workers` before its slot is freed.
    pub(super) fn count_exit(&mut self, info: &WorkerInfo, status: i32) {
        let slot = self.scoreboard.slot(info.slot);
        if let Some(why) = Restart::of(info, slot.retirement(), status) {
            self.observers.metrics.restarts[Restart::ALL.iter().position(|r| *r == why).unwrap_or(0)] += 1;
        }
        slot.fold_into(&mut self.observers.metrics.totals);
    }

    /// The idle arm's statsd gauges: the worker count, and (with
    /// `--enable-backlog-metric`) the listen backlog as gunicorn sends it.
    pub(super) fn send_gauges(&self) {
        crate::statsd::gauge("gunicorn.workers", self.workers.len() as u64);
        if self.observers.metrics.backlog_to_statsd && crate::statsd::enabled() {
            let backlog: u64 = self.listeners.iter().filter_map(listen_queue).map(|(q, _)| q as u64).sum();
            crate::statsd::histogram("gunicorn.backlog", backlog);
        }
    }

    /// The Prometheus text exposition of everything the master knows.
    pub(super) fn render_metrics(&self) -> String {
        let mut t = self.observers.metrics.totals.clone();
        let (mut open, mut waiting, mut parked, mut in_flight, mut busy, mut idle) = (0, 0, 0, 0, 0, 0);
        let threads = (self.cfg.threads as usize).min(crate::scoreboard::MAX_THREADS);
        for w in self.workers.values() {
            let slot = self.scoreboard.slot(w.slot);
            t.add(&slot.traffic);
            let load = &slot.load;
            let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            open += get(&load.conns_open);
            waiting += get(&load.conns_waiting);
            parked += get(&load.parked);
            in_flight += get(&load.in_flight);
            if slot.state() != SlotState::Booting {
                let free = slot.free_executors(threads) as u64;
                idle += free;
                busy += threads as u64 - free;
            }
        }
        let mut out = String::with_capacity(4096);
        family(&mut out, "rsgi_requests_total", "counter", "Responses sent, by status class.");
        for class in 1..=5 {
            let _ = writeln!(out, "rsgi_requests_total{{class=\"{class}xx\"}} {}", t.class(class));
        }
        let name = "rsgi_request_duration_seconds";
        family(&mut out, name, "histogram", "Time from a request's head being read to its response being done, for requests the app answered.");
        let mut cumulative = 0;
        for (i, bound) in DURATION_BOUNDS_US.iter().enumerate() {
            cumulative += t.bucket(i);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", seconds(*bound));
        }
        cumulative += t.bucket(DURATION_BOUNDS_US.len());
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", t.duration_sum_us() as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
        family(&mut out, "rsgi_received_bytes_total", "counter", "Bytes read from client connections.");
        let _ = writeln!(out, "rsgi_received_bytes_total {}", t.bytes_in());
        family(&mut out, "rsgi_sent_bytes_total", "counter", "Bytes written to client connections.");
        let _ = writeln!(out, "rsgi_sent_bytes_total {}", t.bytes_out());
        family(&mut out, "rsgi_requests_in_flight", "gauge", "Requests read and not yet fully answered.");
        let _ = writeln!(out, "rsgi_requests_in_flight {in_flight}");
        family(&mut out, "rsgi_connections", "gauge", "Client connections: open; waiting for a free executor; with a response paused for a slow client.");
        let _ = writeln!(out, "rsgi_connections{{state=\"open\"}} {open}\nrsgi_connections{{state=\"waiting\"}} {waiting}");
        let _ = writeln!(out, "rsgi_connections{{state=\"parked\"}} {parked}");
        family(&mut out, "rsgi_executors", "gauge", "Executor threads of serving workers, busy with a request or idle.");
        let _ = writeln!(out, "rsgi_executors{{state=\"busy\"}} {busy}\nrsgi_executors{{state=\"idle\"}} {idle}");
        family(&mut out, "rsgi_workers", "gauge", "Worker processes alive.");
        let _ = writeln!(out, "rsgi_workers {}", self.workers.len());
        family(&mut out, "rsgi_worker_restarts_total", "counter", "Workers replaced, by reason.");
        for (r, n) in Restart::ALL.iter().zip(self.observers.metrics.restarts) {
            let _ = writeln!(out, "rsgi_worker_restarts_total{{reason=\"{}\"}} {n}", r.label());
        }
        let queues: Vec<(String, (u32, u32))> =
            self.listeners.iter().filter_map(|l| listen_queue(l).map(|q| (label(&l.url()), q))).collect();
        if !queues.is_empty() {
            family(&mut out, "rsgi_listen_queue", "gauge", "Connections waiting in a listener's accept queue.");
            for (l, (q, _)) in &queues {
                let _ = writeln!(out, "rsgi_listen_queue{{listener=\"{l}\"}} {q}");
            }
            family(&mut out, "rsgi_listen_queue_limit", "gauge", "The accept queue's limit (the effective --backlog).");
            for (l, (_, limit)) in &queues {
                let _ = writeln!(out, "rsgi_listen_queue_limit{{listener=\"{l}\"}} {limit}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_labels() {
        assert_eq!(seconds(5_000), "0.005");
        assert_eq!(seconds(1_000_000), "1.0");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(label("unix:/a\"b\\c"), "unix:/a\\\"b\\\\c");
    }

    #[test]
    fn restart_reasons() {
        let info = |aborted: Option<u64>| WorkerInfo {
            age: 1,
            slot: 0,
            state: aborted.map_or(WorkerState::Serving, |at| WorkerState::Aborted { at }),
        };
        let exited = |code: i32| code << 8;
        let signaled = |sig: i32| sig;
        assert_eq!(Restart::of(&info(Some(1)), Retirement::None, signaled(libc::SIGABRT)), Some(Restart::Timeout));
        assert_eq!(Restart::of(&info(None), Retirement::MaxRequests, exited(0)), Some(Restart::MaxRequests));
        assert_eq!(Restart::of(&info(None), Retirement::Memory, exited(0)), Some(Restart::Memory));
        assert_eq!(Restart::of(&info(None), Retirement::None, signaled(libc::SIGKILL)), Some(Restart::Crash));
        assert_eq!(Restart::of(&info(None), Retirement::None, exited(1)), Some(Restart::Crash));
        // The master's own doing (HUP, TTOU, a stop) is no restart.
        assert_eq!(Restart::of(&info(None), Retirement::None, exited(0)), None);
        assert_eq!(Restart::of(&info(None), Retirement::None, signaled(libc::SIGTERM)), None);
        assert_eq!(Restart::of(&info(None), Retirement::ParentGone, exited(0)), None);
    }

    #[test]
    fn the_listen_queue_of_a_tcp_listener() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let l = Listener::Tcp { socket, addr };
        let (queued, limit) = listen_queue(&l).expect("Linux reports TCP_INFO");
        assert_eq!(queued, 0);
        assert!(limit > 0);
        let _c = std::net::TcpStream::connect(addr).unwrap();
        // The server side completes the handshake as the client's ACK
        // lands: wait for it (bounded).
        let seen = (0..5000).any(|_| {
            let one = listen_queue(&l).map(|q| q.0) == Some(1);
            if !one {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            one
        });
        assert!(seen);
    }
}
