//! The cost of one request inside a worker, without sockets, next to the
//! floor it is measured against: calling the same app once from Rust with
//! a fresh environ and the cheapest possible `start_response`.
//!
//! `cargo bench --bench hot_path` (add `-- --quick` for the short run CI
//! does). It prints figures and asserts nothing about time: it is the
//! regression guard of bench/README.md, read by people, never a test that
//! fails on a slow machine. The app is bench/apps/plain.py's `hello`, the
//! same one the side-by-side benchmark serves. A last figure times the
//! connection's socket code (`Conn::fill`, `Conn::flush`) over a socket
//! pair.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use _rsgi::http::{parse_head, Limits, Parsed};
use _rsgi::worker::exchange::{BodyState, Exchange, ExchangeState, LoopHandle, Notice};
use _rsgi::worker::task::Job;
use _rsgi::worker::conn::{Conn, Peer, Stream};
use _rsgi::wsgi::environ::{self, ConnFacts, EnvironBase};
use _rsgi::http::response::RequestFacts;
use _rsgi::wsgi::input::Input;
use _rsgi::wsgi::recycle::RequestObjects;
use _rsgi::wsgi::start_response::ResponseWriter;
use _rsgi::wsgi::AppContext;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

/// The request wrk sends in the side-by-side benchmark.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";

/// The floor's `start_response`: takes its arguments, does nothing.
#[pyfunction]
#[pyo3(signature = (_status, _headers, _exc_info = None))]
fn noop_start_response(_status: &Bound<'_, PyAny>, _headers: &Bound<'_, PyAny>, _exc_info: Option<&Bound<'_, PyAny>>) {}

/// Nanoseconds per call of `f`, the best of `rounds` rounds of `iters`.
fn measure(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}

/// The app `module:callable` from bench/apps (`plain:hello` unless
/// `--app` names another, e.g. `flask_hello:app` with Flask on PYTHONPATH).
fn load_app(py: Python<'_>, target: &str) -> PyResult<Py<PyAny>> {
    let apps = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/apps");
    py.import("sys")?.getattr("path")?.call_method1("insert", (0, apps))?;
    let (module, callable) = target.split_once(':').unwrap_or((target, "application"));
    Ok(py.import(module)?.getattr(callable)?.unbind())
}

/// The floor: a fresh environ with the keys rsgi sets for `REQUEST`, the
/// app called, its body items taken, its `close()` called if it has one.
fn floor_request(py: Python<'_>, app: &Bound<'_, PyAny>, base: &Bound<'_, PyDict>, sr: &Bound<'_, PyAny>, keys: &[Py<PyString>]) -> PyResult<usize> {
    let env = base.copy()?;
    for (key, value) in keys.iter().zip(FLOOR_VALUES) {
        env.set_item(key.bind(py), PyString::new(py, value))?;
    }
    env.set_item(pyo3::intern!(py, "wsgi.input"), py.None())?;
    let result = app.call1((env, sr))?;
    let mut n = 0;
    for item in result.try_iter()? {
        n += item?.cast::<PyBytes>()?.as_bytes().len();
    }
    if !result.is_exact_instance_of::<pyo3::types::PyList>() {
        if let Some(close) = result.getattr_opt(pyo3::intern!(py, "close"))? {
            close.call0()?;
        }
    }
    Ok(n)
}

/// The per-request keys of the floor's environ (as rsgi sets them).
const FLOOR_KEYS: [&str; 12] = [
    "REQUEST_METHOD",
    "QUERY_STRING",
    "RAW_URI",
    "SERVER_PROTOCOL",
    "HTTP_HOST",
    "wsgi.url_scheme",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "PATH_INFO",
    "SCRIPT_NAME",
];
const FLOOR_VALUES: [&str; 12] = ["GET", "", "/", "HTTP/1.1", "127.0.0.1:8000", "http", "127.0.0.1", "50000", "127.0.0.1", "8000", "/", ""];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--profile`: mostly rsgi's path, for perf; `--profile-floor`: mostly
    // the floor.
    let profile = std::env::args().any(|a| a == "--profile");
    let profile_floor = std::env::args().any(|a| a == "--profile-floor");
    let (rounds, iters) = if quick { (3, 20_000) } else { (5, 200_000) };
    let iters = std::env::args().skip_while(|a| a != "--iters").nth(1).and_then(|n| n.parse().ok()).unwrap_or(iters);
    let (parse_rounds, floor_rounds) = if profile { (1, 1) } else if profile_floor { (1, 20) } else { (rounds, rounds) };
    let rounds = if profile { 20 } else if profile_floor { 1 } else { rounds };
    Python::attach(|py| {
        let target = std::env::args().skip_while(|a| a != "--app").nth(1).unwrap_or_else(|| "plain:hello".into());
        let app = load_app(py, &target).unwrap_or_else(|e| panic!("cannot load {target}: {e}"));
        let app = app.bind(py);
        let limits = Limits::default();

        // The parser alone.
        let parse_ns = measure(parse_rounds, iters, || {
            black_box(parse_head(black_box(REQUEST), &limits, false).is_ok());
        });

        // The floor.
        let base = EnvironBase::new(py, false, false).expect("environ base");
        let base_dict = base.dict.bind(py).clone();
        let sr = wrap_pyfunction!(noop_start_response, py).expect("start_response").into_any();
        let keys: Vec<Py<PyString>> = FLOOR_KEYS.iter().map(|k| PyString::intern(py, k).unbind()).collect();
        let floor_ns = measure(floor_rounds, iters, || {
            black_box(floor_request(py, app, &base_dict, &sr, &keys).expect("floor request"));
        });

        // rsgi: parse, environ, app, start_response, response encoding,
        // output handed to the exchange (where the loop would take it).
        let scoreboard = _rsgi::scoreboard::Scoreboard::new().expect("scoreboard");
        let ctx = AppContext {
            app: app.clone().unbind(),
            base,
            slot: scoreboard.handle(0),
            hook_worker: None,
            cfg_objects: Arc::new(Default::default()),
        };
        let poll = mio::Poll::new().expect("poll");
        let (tx, _rx) = crossbeam_channel::unbounded();
        let handle = Arc::new(LoopHandle {
            notices: tx,
            waker: Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker")),
            sleeping: Arc::new(AtomicBool::new(false)),
            bell: None,
        });
        let peer: SocketAddr = "127.0.0.1:50000".parse().expect("address");
        let server = Arc::new(("127.0.0.1".to_owned(), "8000".to_owned()));
        let mut out_bytes = 0;
        let rsgi_ns = measure(rounds, iters, || {
            let Ok(Parsed::Complete(head, _)) = parse_head(REQUEST, &limits, false) else { panic!("request did not parse") };
            // As the loop sets it up for a request it serves on its thread.
            let state = ExchangeState { body_state: BodyState::Complete, loop_notified: true, ..ExchangeState::default() };
            let exchange = Exchange::new(Notice { token: 0, serial: 0 }, handle.clone(), state);
            let job = Job {
                head,
                exchange: exchange.clone(),
                peer: Peer::Tcp(peer),
                server: Some(server.clone()),
                proxy: None,
                tls: None,
                started: Instant::now(),
                websocket: None,
            };
            _rsgi::wsgi::response::serve(py, &ctx, job);
            let mut st = exchange.lock();
            assert!(st.finish.is_some(), "the response did not finish");
            out_bytes = st.out.drain(..).map(|c| c.len()).sum::<usize>();
        });

        // rsgi's environ with the floor's call: splits rsgi's cost between
        // the environ and start_response + output. `wsgi.input` comes from
        // the reused request objects, as in `serve`.
        let conn = ConnFacts { peer: Peer::Tcp(peer), server: Some(&server), proxy: None, tls: None };
        let environ_ns = measure(floor_rounds, iters, || {
            let Ok(Parsed::Complete(head, _)) = parse_head(REQUEST, &limits, false) else { panic!("request did not parse") };
            let state = ExchangeState { body_state: BodyState::Complete, loop_notified: true, ..ExchangeState::default() };
            let exchange = Exchange::new(Notice { token: 0, serial: 0 }, handle.clone(), state);
            let facts = RequestFacts { version: head.version, is_head: false, close: head.close };
            let writer = ResponseWriter::new(exchange.clone(), facts, ctx.slot);
            let objects = RequestObjects::get(py, writer, Input::new(exchange)).expect("request objects");
            let input = objects.input.bind(py).clone().into_any();
            let Ok(Ok(env)) = environ::build(py, &ctx.base, &head, &conn, input) else { panic!("environ") };
            let result = app.call1((env, &sr)).expect("app call");
            for item in result.try_iter().expect("iterable") {
                black_box(item.expect("item"));
            }
            // As the floor (and rsgi): no `close` looked up on a list.
            if !result.is_exact_instance_of::<pyo3::types::PyList>() {
                if let Some(close) = result.getattr_opt("close").expect("close lookup") {
                    close.call0().expect("close");
                }
            }
            drop(result);
            objects.keep(py);
        });

        // The connection's socket code (`Conn::fill`, `Conn::flush`): the
        // request read and a response written over a unix socket pair, the
        // client's side done by the same thread.
        let (ours, mut client) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        let mut conn = Conn::new(Stream::Unix(mio::net::UnixStream::from_std(ours)), 1, Peer::Unix, 0, false);
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let mut back = [0u8; 256];
        let socket_ns = measure(rounds, iters, || {
            client.write_all(REQUEST).expect("client write");
            conn.readable = true;
            black_box(conn.fill(1 << 16).expect("fill"));
            conn.rbuf.clear();
            conn.queue_own(answer.to_vec());
            conn.writable = true;
            black_box(conn.flush().expect("flush"));
            black_box(client.read(&mut back).expect("client read"));
        });

        println!("hot path of one `{target}` request inside a worker, no sockets (best of {rounds} x {iters}):");
        println!("  parse the request head (Rust)                          {:>7.2} µs", parse_ns / 1000.0);
        println!("  floor: fresh environ + app call + body items           {:>7.2} µs", floor_ns / 1000.0);
        println!("  rsgi's parse + environ, then the floor's call           {:>7.2} µs", environ_ns / 1000.0);
        println!(
            "  rsgi: parse + environ + app + start_response + output  {:>7.2} µs  ({:.2}x the floor, {out_bytes} bytes out)",
            rsgi_ns / 1000.0,
            rsgi_ns / floor_ns
        );
        println!("and the socket code around it (read the request, write the answer; a socket pair):");
        println!("  Conn::fill + Conn::flush, client's write and read      {:>7.2} µs", socket_ns / 1000.0);
    });
}
