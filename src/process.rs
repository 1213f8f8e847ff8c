//! A worker process's life, after fork: it loads the app, starts the
//! executor kind that runs it (WSGI threads; the ASGI event loop thread
//! for `-k asgi` and uvicorn's workers; or, for `-k gevent`, gevent's hub
//! on this thread with the loop on a thread of its own, after patching the
//! standard library before `post_fork`), runs the I/O loop (the
//! worker core, `worker`) with the GIL released, and on a graceful stop
//! lets in-flight requests finish before it exits. This is where the core
//! and the executor kind are put together; neither imports the other's
//! insides.
//!
//! Lifecycle: Booting (load the app; for ASGI also lifespan startup; a
//! stop signal ends it at once: `signals::stop_ends_at_once`) → Serving
//! (the loop; a stop signal sent since the boot ended waits for it in the
//! loop's signal pipe) → Draining
//! (TERM: no new connections, finish current ones) → Exiting.
//! Everything here runs in the child, on its main thread.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use crate::config::{Config, Key};
use crate::hooks::Hook;
use crate::listen::Listener;
use crate::scoreboard::{SlotHandle, SlotState};
use crate::signals::{Signal, SignalPipe};
use crate::worker::io_loop::{Evacuation, IoLoop, ListenSock, LoopConfig, LoopExit};
use crate::asgi::Interface;
use crate::gevent::bell::{Closing, HubBell};
use crate::gevent::hub::HubBridge;
use crate::worker::relay;
use crate::worker::task::Admission;
use crate::wsgi::environ::EnvironBase;
use crate::wsgi::executor;
use crate::wsgi::AppContext;

/// gunicorn's exit status for a worker that could not boot.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// gunicorn's exit status for a worker that could not load the app.
pub const APP_LOAD_ERROR: i32 = 4;

/// A worker's exit: Python's `atexit` callbacks (which flush what apps
/// leave for the end: error reports, trace spans, log handlers), then
/// [`exit_child`]. In gunicorn a worker leaves by `sys.exit`, so the
/// interpreter runs them; a worker here leaves with `_exit`, so it runs
/// them itself (their errors are printed by `atexit`, as at an exit).
pub fn exit_worker(py: Python<'_>, code: i32) -> ! {
    if let Err(err) = py.import("atexit").and_then(|m| m.call_method0("_run_exitfuncs")) {
        err.print(py);
    }
    exit_child(py, code)
}

/// Flush Python's stdio and leave the process without unwinding into the
/// master's stack frames (which the child inherited but does not own).
/// A reload trial leaves this way (it is no worker: no `atexit`).
pub fn exit_child(py: Python<'_>, code: i32) -> ! {
    py.detach(crate::pylog::shutdown);
    crate::pylog::flush_stdio(py);
    // SAFETY: _exit ends the process at once; nothing after it runs.
    unsafe { libc::_exit(code) }
}

/// Take the worker's copies of the listeners for its own poller.
fn worker_listeners(listeners: &[Listener]) -> std::io::Result<Vec<ListenSock>> {
    listeners
        .iter()
        .map(|l| {
            Ok(match l {
                Listener::Tcp { socket, .. } => {
                    let s = socket.try_clone()?;
                    s.set_nonblocking(true)?;
                    ListenSock::Tcp(mio::net::TcpListener::from_std(s))
                }
                Listener::Unix { socket, .. } => {
                    let s = socket.try_clone()?;
                    s.set_nonblocking(true)?;
                    ListenSock::Unix(mio::net::UnixListener::from_std(s))
                }
            })
        })
        .collect()
}

/// A random number in `0..=max` (for `--max-requests-jitter`).
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut buf = [0u8; 8];
    // SAFETY: getrandom fills the local buffer.
    unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    u64::from_ne_bytes(buf) % (max + 1)
}

/// Process-level set-up of a new worker: die with the master, no core
/// files, the configured user and group. Called in the child after fork.
pub(crate) fn prepare_process(cfg: &Config, master_pid: i32) -> Result<(), String> {
    // SAFETY: prctl/getppid/setrlimit on our own process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != master_pid {
            return Err("the master exited while the worker was starting".into());
        }
        // A timed-out worker dies by SIGABRT: its traceback is in the log,
        // a core file would only fill the disk.
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    }
    if let Some(gid) = cfg.group {
        // SAFETY: plain credential calls; failures are reported.
        unsafe {
            if cfg.initgroups {
                if let Some((_, name)) = &cfg.user {
                    let cname = std::ffi::CString::new(name.as_str()).map_err(|e| e.to_string())?;
                    if libc::initgroups(cname.as_ptr(), gid) != 0 {
                        return Err(format!("initgroups failed: {}", std::io::Error::last_os_error()));
                    }
                }
            }
            if libc::getegid() != gid && libc::setgid(gid) != 0 {
                return Err(format!("cannot switch to group {gid}: {}", std::io::Error::last_os_error()));
            }
        }
    }
    if let Some((uid, name)) = &cfg.user {
        // SAFETY: as above.
        unsafe {
            if libc::geteuid() != *uid && libc::setuid(*uid) != 0 {
                return Err(format!("cannot switch to user {name}: {}", std::io::Error::last_os_error()));
            }
        }
    }
    Ok(())
}

/// The signal that makes faulthandler write every thread's Python
/// traceback to the error log (from the signal handler, without the GIL, so
/// it works while the app spins holding it). Raised by the worker itself
/// when the master sends SIGABRT for a timeout.
const TRACEBACK_SIGNAL: i32 = libc::SIGUSR2;

/// Install the traceback dump on `TRACEBACK_SIGNAL`. faulthandler writes
/// a dump in many small writes, and the replacement worker (started at
/// once) logs meanwhile, so the dump goes to a memory file that
/// `log_traceback_dump` copies to the log in one write; straight to the
/// log if the memory file cannot be made. Returns the memory file.
fn install_traceback_dump(py: Python<'_>) -> Option<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor is
    // owned by the File from here.
    let buffer = unsafe {
        let raw = libc::memfd_create(c"rsgi-traceback".as_ptr(), libc::MFD_CLOEXEC);
        (raw >= 0).then(|| std::fs::File::from_raw_fd(raw))
    };
    let fd = buffer.as_ref().map_or_else(crate::log::fd, |b| b.as_raw_fd());
    let code = format!("import faulthandler\nfaulthandler.register({TRACEBACK_SIGNAL}, file={fd}, all_threads=True, chain=False)\n");
    if let Ok(code) = std::ffi::CString::new(code) {
        if let Err(e) = py.run(&code, None, None) {
            crate::warn!("Cannot install the timeout traceback dump: {e}");
        }
    }
    buffer
}

/// Dump every thread's traceback (faulthandler, no GIL needed) and, when
/// it went to the memory file, copy it to the log in one write.
fn log_traceback_dump(buffer: Option<&std::fs::File>) {
    use std::io::{Read, Seek};
    // SAFETY: raising a signal at our own process; its handler is
    // faulthandler's traceback dump.
    unsafe { libc::raise(TRACEBACK_SIGNAL) };
    if let Some(mut b) = buffer {
        let mut text = Vec::new();
        if b.seek(std::io::SeekFrom::Start(0)).is_ok() && b.read_to_end(&mut text).is_ok() {
            crate::log::write_raw(&text);
        }
    }
}

/// Answer the master's SIGABRT (a request ran past `--timeout`) on a thread
/// of its own, so it works wherever the app is stuck, even on the loop
/// thread: first the loop passes every connection it can to a sibling (so
/// no request that never reached the app dies with this worker), then
/// every thread's traceback to the log, then the `worker_abort`
/// hook (as gunicorn; it gets the GIL at the next switch interval even
/// while the app spins), then death by SIGABRT so the master reports it.
/// If the GIL never comes back (the app is stuck in C), the master's
/// SIGKILL follows after a grace period.
fn start_abort_watch(
    objects: Arc<crate::config::PyObjects>,
    worker: Option<Py<PyAny>>,
    evacuation: Arc<Evacuation>,
    dump: Option<std::fs::File>,
) -> std::io::Result<()> {
    /// How long the loop may take to pass its connections on.
    const EVACUATION_LIMIT: Duration = Duration::from_millis(500);
    let pipe = SignalPipe::install(&[Signal::Abrt])?;
    std::thread::Builder::new().name("rsgi-timeout".into()).spawn(move || {
        while !pipe.wait(-1).contains(&Signal::Abrt) {}
        evacuation.run(EVACUATION_LIMIT);
        log_traceback_dump(dump.as_ref());
        Python::attach(|py| {
            if let Some(w) = &worker {
                if let Ok(args) = pyo3::types::PyTuple::new(py, [w.bind(py).clone()]) {
                    crate::hooks::call_in(py, &objects, Hook::WorkerAbort, args);
                }
            }
            py.detach(crate::pylog::shutdown);
        });
        // SAFETY: restoring SIGABRT's default action, then raising it: the
        // process ends here.
        unsafe {
            libc::signal(libc::SIGABRT, libc::SIG_DFL);
            libc::raise(libc::SIGABRT);
            libc::_exit(1);
        }
    })?;
    Ok(())
}

/// The executor kind a worker runs, as far as its end needs to know.
enum Kind {
    /// WSGI executor threads.
    Wsgi(Vec<std::thread::JoinHandle<()>>),
    /// The ASGI event loop thread.
    Asgi(crate::asgi::thread::AsgiThread),
}

/// The I/O loop's settings for this worker: `threads` is how many requests
/// it hands over at once (app threads, or the ASGI loop's capacity).
fn loop_config(
    cfg: &Config,
    master_pid: i32,
    slot: SlotHandle,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    threads: usize,
    inline: bool,
    bell: Option<Arc<dyn crate::worker::task::Bell>>,
) -> Result<LoopConfig, String> {
    Ok(LoopConfig {
        limits: cfg.limits.clone(),
        keepalive: Duration::from_secs(cfg.keepalive.max(1)),
        io_timeout: Duration::from_secs(if cfg.timeout == 0 { 30 } else { cfg.timeout.max(1) }),
        worker_connections: cfg.worker_connections,
        graceful_timeout: Duration::from_secs(cfg.graceful_timeout),
        forwarded_allow: cfg.forwarded_allow.clone(),
        proxy_mode: cfg.proxy_protocol,
        proxy_allow: cfg.proxy_allow.clone(),
        master_pid,
        slot,
        max_requests: if cfg.max_requests > 0 { cfg.max_requests + jitter(cfg.max_requests_jitter) } else { 0 },
        max_memory: cfg.max_worker_memory_mib << 20,
        in_flight,
        threads,
        inline,
        admission: Admission::Threads,
        bell,
        static_files: crate::worker::static_serve::StaticFiles::open(&cfg.static_map).map_err(|e| e.to_string())?,
        tls: cfg.tls.clone(),
        ragged: if cfg.suppress_ragged_eofs { crate::worker::tls_io::Ragged::Suppress } else { crate::worker::tls_io::Ragged::Error },
        websocket: None,
        start: crate::worker::exchange::Start::AfterBody,
    })
}

/// Who runs the loop.
enum Runner {
    /// The main thread alone (executor threads run the app).
    Plain(Box<IoLoop>),
    /// The main thread and a standby, either of which may be running the
    /// app (one executor, run by the loop thread).
    Relay(Arc<relay::Relay>),
    /// A thread of its own, while the main thread runs gevent's hub.
    Hub(Box<IoLoop>, Arc<HubBell>, HubBridge),
}

/// The gevent kind's serving: the loop on a thread of its own (it never
/// takes the GIL), gevent's hub on this one until the loop has ended and
/// the requests still running are done. Returns how the loop ended.
fn serve_hub(py: Python<'_>, cfg: &Config, io: Box<IoLoop>, bell: Arc<HubBell>, bridge: HubBridge) -> LoopExit {
    let ring = bell.clone();
    let looping = std::thread::Builder::new().name("rsgi-loop".into()).spawn(move || {
        let mut io = io;
        let how = io.run(None);
        // Closing the channel, then telling the hub.
        drop(io);
        ring.close(if how == LoopExit::Graceful { Closing::Graceful } else { Closing::Fast });
        how
    });
    let looping = match looping {
        Ok(t) => t,
        Err(e) => {
            crate::error!("Exception in worker process: cannot start the I/O thread: {e}");
            exit_worker(py, WORKER_BOOT_ERROR);
        }
    };
    if let Err(e) = crate::gevent::hub::serve(py, bridge, cfg.timeout, cfg.graceful_timeout) {
        crate::error!("Exception in worker process: gevent's hub failed: {e}");
        exit_worker(py, WORKER_BOOT_ERROR);
    }
    py.detach(|| looping.join()).unwrap_or(LoopExit::Fast)
}

/// The worker's whole life. Called in the child right after fork, with the
/// GIL held; never returns.
pub fn run(py: Python<'_>, cfg: &Config, listeners: &[Listener], master_pid: i32, slot: SlotHandle, age: u64) -> ! {
    let pid = std::process::id();
    // `threading` takes the thread that first imports it for the main one:
    // import it here, on the worker's main thread, before app code can
    // import it first on an executor or event-loop thread.
    let _ = py.import("threading");
    // What a USR2 predecessor handed the master (its listeners, its pid) is
    // the master's business: the app and its subprocesses do not see it
    // (gunicorn pops GUNICORN_FD). `os.environ.pop` unsets the process's
    // variable too.
    if let Ok(environ) = py.import("os").and_then(|os| os.getattr("environ")) {
        use crate::master::reexec::{FD_ENV, GUNICORN_FD_ENV, MASTER_PID_ENV};
        for k in [FD_ENV, GUNICORN_FD_ENV, MASTER_PID_ENV] {
            let _ = environ.call_method1("pop", (k, py.None()));
        }
    }
    // The `worker` object hooks receive (built only when hooks are set).
    let worker_obj = if crate::hooks::has(cfg, Hook::PostFork)
        || crate::hooks::has(cfg, Hook::PostWorkerInit)
        || crate::hooks::has(cfg, Hook::WorkerInt)
        || crate::hooks::has(cfg, Hook::WorkerAbort)
        || crate::hooks::has(cfg, Hook::WorkerExit)
        || crate::hooks::has(cfg, Hook::PreRequest)
        || crate::hooks::has(cfg, Hook::PostRequest)
    {
        crate::hooks::worker(py, cfg, Some(pid as i32), master_pid, age).ok().map(|w| w.unbind())
    } else {
        None
    };
    let server_call = |hook: Hook| {
        if let (true, Some(w)) = (crate::hooks::has(cfg, hook), &worker_obj) {
            if let Ok(server) = crate::hooks::server(py, cfg, cfg.workers, master_pid as u32) {
                if let Ok(args) = pyo3::types::PyTuple::new(py, [server, w.bind(py).clone()]) {
                    crate::hooks::call(py, cfg, hook, args);
                }
            }
        }
    };
    crate::proctitle::set(&format!("rsgi: worker [{}]", cfg.proc_name));
    crate::scoreboard::set_own(slot);
    crate::pylog::start_forwarder();
    if let Err(e) = prepare_process(cfg, master_pid) {
        crate::error!("Exception in worker process: {e}");
        exit_worker(py, WORKER_BOOT_ERROR);
    }
    // Until it serves, a stop signal ends the worker at once.
    crate::signals::stop_ends_at_once(true);
    let signals = match SignalPipe::install(&[Signal::Term, Signal::Int, Signal::Quit, Signal::Usr1]) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("Exception in worker process: cannot install signal handlers: {e}");
            exit_worker(py, WORKER_BOOT_ERROR);
        }
    };
    crate::info!("Booting worker with pid: {pid}");
    let gevent = cfg.worker.kind == crate::config::compat::WorkerKind::Gevent;
    if gevent {
        // Before post_fork and the app's import, as gunicorn's gevent
        // worker does, so both see the patched standard library.
        if let Err(e) = crate::gevent::hub::patch(py) {
            crate::error!("Exception in worker process: cannot patch the standard library for gevent: {e}");
            exit_worker(py, WORKER_BOOT_ERROR);
        }
    }
    server_call(Hook::PostFork);
    let dump = install_traceback_dump(py);
    let abort_worker = worker_obj.as_ref().filter(|_| crate::hooks::has(cfg, Hook::WorkerAbort)).map(|w| w.clone_ref(py));
    let evacuation = Evacuation::new();
    if let Err(e) = start_abort_watch(cfg.objects.clone(), abort_worker, evacuation.clone(), dump) {
        crate::error!("Exception in worker process: cannot install the timeout handler: {e}");
        exit_worker(py, WORKER_BOOT_ERROR);
    }

    let loaded = match &cfg.preloaded_app {
        Some(app) => Ok(app.clone_ref(py)),
        None => crate::wsgi::app::load_app_with(py, &cfg.app, &cfg.paste_global_conf),
    };
    let app = match loaded {
        Ok(app) => app,
        Err(e) => {
            if let Some(tb) = &e.traceback {
                crate::debug!("Exception while loading the application\n{tb}");
            }
            crate::error!("{}", e.message);
            exit_worker(py, if e.import_failed { WORKER_BOOT_ERROR } else { APP_LOAD_ERROR });
        }
    };
    let asgi = cfg.worker.kind == crate::config::compat::WorkerKind::Asgi;
    if !asgi {
        // A WSGI worker has booted once its app is loaded: from its
        // post_worker_init on, a stop signal reaches the loop (worker_int,
        // worker_exit), as gunicorn's worker takes signals from before its
        // import. An ASGI worker boots until its lifespan startup is over.
        crate::signals::stop_ends_at_once(false);
    }
    if let (true, Some(w)) = (crate::hooks::has(cfg, Hook::PostWorkerInit), &worker_obj) {
        if let Ok(args) = pyo3::types::PyTuple::new(py, [w.bind(py).clone()]) {
            crate::hooks::call(py, cfg, Hook::PostWorkerInit, args);
        }
    }
    let request_hooks = crate::hooks::has(cfg, Hook::PreRequest) || crate::hooks::has(cfg, Hook::PostRequest);
    let hook_worker = if request_hooks { worker_obj.as_ref().map(|w| w.clone_ref(py)) } else { None };
    // The app's interface must fit the worker kind: one line and a
    // non-zero exit otherwise.
    let interface = crate::asgi::interface(py, app.bind(py)).unwrap_or(Interface::Unknown);
    if asgi && interface == Interface::Wsgi {
        crate::error!("{} is a WSGI application; the ASGI worker ({}) cannot run it: use a sync or gthread worker", cfg.app, cfg.worker.name);
        exit_worker(py, APP_LOAD_ERROR);
    }
    if !asgi && interface == Interface::Asgi3 {
        crate::error!("{} is an ASGI application; run it with -k uvicorn.workers.UvicornWorker (or -k asgi)", cfg.app);
        exit_worker(py, APP_LOAD_ERROR);
    }
    let boot = || -> Result<_, String> {
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let socks = worker_listeners(listeners).map_err(|e| e.to_string())?;
        let servers = listeners.iter().map(|l| l.server_name_port().map(Arc::new)).collect();
        if asgi {
            // One event loop thread serves up to --worker-connections
            // requests at once; lifespan startup runs before the loop
            // accepts anything.
            let capacity = cfg.worker_connections.max(1);
            let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(capacity);
            let bell = crate::asgi::feed::Bell::new().map_err(|e| e.to_string())?;
            let ctx = Arc::new(crate::asgi::AsgiContext {
                app,
                slot,
                consts: crate::asgi::scope::Consts::new(py, &cfg.values.string(Key::RootPath)).map_err(|e| e.to_string())?,
                state: std::sync::OnceLock::new(),
                hook_worker,
                cfg_objects: cfg.objects.clone(),
                in_flight: in_flight.clone(),
                capacity,
                bell: bell.clone(),
                done: Py::new(py, crate::asgi::awaitable::Awaitable::done()).map_err(|e| e.to_string())?.into_any(),
            });
            let settings = crate::asgi::thread::Settings {
                event_loop: cfg.values.string(Key::AsgiLoop),
                lifespan: cfg.values.string(Key::AsgiLifespan),
                disconnect_grace: Duration::from_secs(cfg.values.int(Key::AsgiDisconnectGracePeriod)),
                graceful: Duration::from_secs(cfg.graceful_timeout),
            };
            let (thread, started) = crate::asgi::thread::AsgiThread::start(ctx, jobs_rx, settings).map_err(|e| e.to_string())?;
            match py.detach(|| started.recv()) {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(format!("Application startup failed: {message}")),
                Err(_) => return Err("the ASGI event loop ended during startup".into()),
            }
            let bell: Arc<dyn crate::worker::task::Bell> = bell;
            // The ASGI kind speaks WebSocket.
            let max_message = match cfg.values.int(Key::WebsocketMaxMessageSize) {
                0 => usize::MAX,
                n => usize::try_from(n).unwrap_or(usize::MAX),
            };
            let seconds = |key| Some(cfg.values.seconds(key)).filter(|d| !d.is_zero());
            let pings = crate::websocket::Pings { interval: seconds(Key::WebsocketPingInterval), timeout: seconds(Key::WebsocketPingTimeout) };
            let max_queue = usize::try_from(cfg.values.int(Key::WebsocketMaxQueue)).unwrap_or(usize::MAX);
            let ws = crate::worker::upgraded::WsSettings { max_message, deflate: true, max_queue, pings };
            let mut loop_cfg = loop_config(cfg, master_pid, slot, in_flight, capacity, false, Some(bell))?;
            loop_cfg.websocket = Some(ws);
            // The app is called at the head, as uvicorn calls it.
            loop_cfg.start = crate::worker::exchange::Start::AtHead;
            let io = IoLoop::new(socks, servers, jobs_tx, signals, loop_cfg, evacuation.clone()).map_err(|e| e.to_string())?;
            return Ok((Runner::Plain(Box::new(io)), Kind::Asgi(thread)));
        }
        // Greenlets run concurrently like threads (gunicorn says so too).
        let base = EnvironBase::new(py, cfg.threads > 1 || gevent, cfg.workers > 1).map_err(|e| e.to_string())?;
        let ctx = Arc::new(AppContext { app, base, slot, hook_worker, cfg_objects: cfg.objects.clone() });
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(cfg.worker_connections.max(1));
        // The gevent kind: requests run in greenlets of the hub on this
        // thread, up to --worker-connections at once; the loop gets a
        // thread of its own and rings the hub's bell.
        let hub = if gevent {
            let bell = Arc::new(HubBell::new().map_err(|e| e.to_string())?);
            let bridge = HubBridge {
                jobs: jobs_rx.clone(),
                bell: bell.clone(),
                ctx: ctx.clone(),
                in_flight: in_flight.clone(),
                capacity: cfg.worker_connections,
                slot,
            };
            Some((bell, bridge))
        } else {
            None
        };
        // One executor: the loop thread runs the app itself when it can
        // (RSGI_INLINE=0 turns that off, for measuring the difference).
        let inline = (cfg.threads == 1 && !gevent && std::env::var_os("RSGI_INLINE").is_none_or(|v| v != "0"))
            .then(|| executor::Inline::new(ctx.clone(), slot, in_flight.clone()));
        let threads = if gevent {
            Vec::new()
        } else {
            executor::start(cfg.threads, jobs_rx, ctx, slot, in_flight.clone()).map_err(|e| e.to_string())?
        };
        let capacity = if gevent { cfg.worker_connections } else { cfg.threads as usize };
        let bell = hub.as_ref().map(|(bell, _)| bell.clone() as Arc<dyn crate::worker::task::Bell>);
        let mut loop_cfg = loop_config(cfg, master_pid, slot, in_flight, capacity, inline.is_some(), bell)?;
        if hub.is_some() {
            loop_cfg.admission = Admission::Slots;
        }
        let io = IoLoop::new(socks, servers, jobs_tx, signals, loop_cfg, evacuation.clone()).map_err(|e| e.to_string())?;
        // One executor run by the loop thread: a relay keeps the loop
        // going while an app call runs long.
        let runner = match (inline, hub) {
            (_, Some((bell, bridge))) => Runner::Hub(Box::new(io), bell, bridge),
            (Some(inline), None) => {
                let relay = relay::Relay::new(io, Box::new(inline));
                relay.start_standby().map_err(|e| e.to_string())?;
                Runner::Relay(relay)
            }
            (None, None) => Runner::Plain(Box::new(io)),
        };
        Ok((runner, Kind::Wsgi(threads)))
    };
    let (runner, kind) = match boot() {
        Ok(v) => v,
        Err(e) => {
            crate::error!("Exception in worker process: {e}");
            exit_worker(py, WORKER_BOOT_ERROR);
        }
    };
    // From here a stop signal reaches the loop, which stops as it says
    // (an ASGI worker's lifespan startup is over).
    crate::signals::stop_ends_at_once(false);

    slot.set_state(SlotState::Serving);
    let (how, io) = match runner {
        Runner::Hub(io, bell, bridge) => (serve_hub(py, cfg, io, bell, bridge), None),
        runner => py.detach(|| match runner {
            Runner::Plain(mut io) => (io.run(None), Some(*io)),
            Runner::Relay(relay) => (relay.run(0, true), relay.take_loop()),
            Runner::Hub(..) => unreachable!("served above"),
        }),
    };
    slot.set_state(SlotState::Retiring);
    if how == LoopExit::Fast {
        if let (true, Some(w)) = (crate::hooks::has(cfg, Hook::WorkerInt), &worker_obj) {
            if let Ok(args) = pyo3::types::PyTuple::new(py, [w.bind(py).clone()]) {
                crate::hooks::call(py, cfg, Hook::WorkerInt, args);
            }
        }
    }
    if how == LoopExit::Graceful {
        // Closing the channel lets each executor finish its request and
        // stop; the ASGI event loop lets its requests finish and runs
        // lifespan shutdown.
        drop(io);
        py.detach(|| match kind {
            Kind::Wsgi(threads) => {
                for t in threads {
                    let _ = t.join();
                }
            }
            Kind::Asgi(thread) => thread.stop(),
        });
    }
    crate::info!("Worker exiting (pid: {pid})");
    server_call(Hook::WorkerExit);
    exit_worker(py, 0);
}
