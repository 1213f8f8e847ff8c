//! `--reload`: the master watches the app's source files (every module in
//! `sys.modules` once the app is loaded) and `--reload-extra-file`, and on
//! a change replaces the workers gracefully, as HUP does; if the changed
//! code does not load, the workers it has keep serving the old code and
//! the error is logged.
//!
//! The master does not import the app itself (except with `--preload`), so
//! it forks a *trial*: a child that loads the app as a worker would, writes
//! the module files it then has to a memfd, and exits 0, or logs why the
//! app fails to load and exits with `APP_LOAD_ERROR`. A trial runs at start
//! (to learn what to watch) and after each change; only a trial that loads
//! starts new workers. Changes during a trial start another one after it.
//!
//! Watching is inotify through libc on the files' directories (editors
//! replace files by renaming), polled by the master loop with its signal
//! pipe; `--reload-engine poll` (or `auto` where inotify is unavailable)
//! compares the files' modification times on each pass instead (about
//! once a second). Not the `notify` crate: it runs its own thread, and the
//! master must have none when it forks.
//!
//! Used only by the master.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use pyo3::prelude::*;

use super::Arbiter;
use crate::config::{Config, Key};
use crate::process::APP_LOAD_ERROR;

/// What the inotify watches report: a file written, renamed into place or
/// removed.
const EVENTS: u32 = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_DELETE;

/// How often the poll engine compares modification times.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// The module files of a loaded app (sources for `.pyc`), the
/// `--reload-extra-file` entries (glob patterns expanded), as absolute
/// paths, one a line.
const LIST_FILES: &std::ffi::CStr = c"
import glob, os, sys
_found = set()
for _m in list(sys.modules.values()):
    _f = getattr(_m, '__file__', None)
    if isinstance(_f, str):
        if _f.endswith(('.pyc', '.pyo')) and os.path.exists(_f[:-1]):
            _f = _f[:-1]
        _found.add(os.path.abspath(_f))
for _e in _extra:
    if any(c in _e for c in '*?['):
        _found.update(os.path.abspath(p) for p in glob.glob(_e, recursive=True))
    else:
        _found.add(os.path.abspath(_e))
_listed = '\\n'.join(sorted(_found))
";

/// How changes are noticed.
enum Engine {
    /// An inotify descriptor and its directory watches.
    Inotify { fd: RawFd, dirs: BTreeMap<i32, PathBuf> },
    /// Modification times, compared every `POLL_EVERY`.
    Poll { seen: BTreeMap<PathBuf, Option<SystemTime>>, next: Instant },
}

/// Why a trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// At start: only to learn the files.
    Scan,
    /// After a change: new workers if it loads.
    Change,
}

/// The trial import.
enum Trial {
    /// None running; `due` when one is to start.
    Idle { due: Option<Purpose> },
    /// Running as `pid`, writing its file list to `memfd`; `again` when a
    /// change came during it.
    Running { pid: i32, memfd: RawFd, purpose: Purpose, again: bool },
}

/// The reloader's state.
pub(super) struct Watch {
    engine: Engine,
    /// Every watched path (and the targets of symlinked ones).
    files: BTreeSet<PathBuf>,
    /// `--reload-extra-file` as given.
    extra: Vec<String>,
    /// With `--preload`, the module files the master loaded: no trials;
    /// a change to one of them cannot be loaded without a restart (a
    /// change to another watched file replaces the workers).
    preloaded: Option<BTreeSet<PathBuf>>,
    trial: Trial,
}

impl Watch {
    /// Start watching, if `--reload` is on; the error is one line for the
    /// operator. Called in the master after `--preload` loaded the app.
    pub(super) fn open(cfg: &Config) -> Result<Option<Watch>, String> {
        if !cfg.values.flag(Key::Reload) {
            return Ok(None);
        }
        let engine_name = cfg.values.string(Key::ReloadEngine);
        let engine = match engine_name.as_str() {
            "poll" => poll_engine(),
            _ => {
                // SAFETY: inotify_init1 has no preconditions.
                let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
                if fd >= 0 {
                    Engine::Inotify { fd, dirs: BTreeMap::new() }
                } else if engine_name == "inotify" {
                    return Err(format!("Cannot watch files (--reload-engine inotify): {}", std::io::Error::last_os_error()));
                } else {
                    crate::info!("inotify is unavailable ({}): --reload polls the files", std::io::Error::last_os_error());
                    poll_engine()
                }
            }
        };
        crate::warn!("--reload is on: workers are replaced whenever the app's files change (meant for development)");
        let extra = cfg.values.list(Key::ReloadExtraFiles);
        let mut watch = Watch { engine, files: BTreeSet::new(), extra, preloaded: None, trial: Trial::Idle { due: Some(Purpose::Scan) } };
        if cfg.preloaded_app.is_some() {
            // The master has the app: its own modules are the list.
            let modules = Python::attach(|py| list_files(py, &[])).unwrap_or_default();
            let listed = Python::attach(|py| list_files(py, &watch.extra)).unwrap_or_default();
            watch.add_files(&listed);
            watch.preloaded = Some(modules.lines().map(PathBuf::from).collect());
            watch.trial = Trial::Idle { due: None };
        }
        Ok(Some(watch))
    }

    /// The descriptors to close in forked children.
    pub(super) fn fds(&self) -> Vec<RawFd> {
        let mut fds = Vec::new();
        if let Engine::Inotify { fd, .. } = &self.engine {
            fds.push(*fd);
        }
        if let Trial::Running { memfd, .. } = &self.trial {
            fds.push(*memfd);
        }
        fds
    }

    /// The inotify descriptor to poll, if any.
    pub(super) fn pollfd(&self) -> Option<libc::pollfd> {
        match &self.engine {
            Engine::Inotify { fd, .. } => Some(libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 }),
            Engine::Poll { .. } => None,
        }
    }

    /// Watch the files in `listed` (one path a line) too. Files are never
    /// dropped: a module a failed import did not reach is still watched,
    /// so fixing it reloads.
    fn add_files(&mut self, listed: &str) {
        let mut files = std::mem::take(&mut self.files);
        for line in listed.lines().filter(|l| !l.is_empty()) {
            let path = PathBuf::from(line);
            if let Ok(real) = std::fs::canonicalize(&path) {
                files.insert(real);
            }
            files.insert(path);
        }
        match &mut self.engine {
            Engine::Inotify { fd, dirs } => {
                let wanted: BTreeSet<&Path> = files.iter().filter_map(|f| f.parent()).collect();
                let have: BTreeSet<PathBuf> = dirs.values().cloned().collect();
                for dir in wanted.into_iter().filter(|d| !have.contains(*d)) {
                    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else { continue };
                    // SAFETY: adds a watch on our inotify descriptor for a
                    // NUL-terminated path.
                    let wd = unsafe { libc::inotify_add_watch(*fd, c.as_ptr(), EVENTS | libc::IN_ONLYDIR) };
                    if wd >= 0 {
                        dirs.insert(wd, dir.to_path_buf());
                    } else if dir.exists() {
                        crate::warn!("--reload cannot watch {}: {}", dir.display(), std::io::Error::last_os_error());
                    }
                }
            }
            Engine::Poll { seen, .. } => {
                for f in &files {
                    seen.entry(f.clone()).or_insert_with(|| mtime(f));
                }
            }
        }
        crate::debug!("--reload watches {} files", files.len());
        self.files = files;
    }

    /// The changed watched file, if any, after a poll (`ready`: the
    /// inotify descriptor is readable).
    fn changed(&mut self, ready: bool) -> Option<PathBuf> {
        match &mut self.engine {
            Engine::Inotify { fd, dirs } => {
                if !ready {
                    return None;
                }
                let mut hit = None;
                let mut buf = [0u64; 512];
                loop {
                    // SAFETY: reads into a local, 8-byte aligned buffer.
                    let n = unsafe { libc::read(*fd, buf.as_mut_ptr() as *mut libc::c_void, std::mem::size_of_val(&buf)) };
                    if n <= 0 {
                        break;
                    }
                    // SAFETY: the buffer's first `n` bytes, as bytes.
                    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
                    for (wd, mask, name) in inotify_events(bytes) {
                        if mask & libc::IN_Q_OVERFLOW != 0 {
                            hit.get_or_insert_with(|| PathBuf::from("(many files)"));
                        }
                        if mask & libc::IN_IGNORED != 0 {
                            dirs.remove(&wd);
                        }
                        if let Some(dir) = dirs.get(&wd) {
                            let path = dir.join(std::ffi::OsStr::from_bytes(name));
                            if self.files.contains(&path) {
                                hit.get_or_insert(path);
                            }
                        }
                    }
                }
                hit
            }
            Engine::Poll { seen, next } => {
                if Instant::now() < *next {
                    return None;
                }
                *next = Instant::now() + POLL_EVERY;
                let mut hit = None;
                for (path, last) in seen.iter_mut() {
                    let now = mtime(path);
                    if now != *last {
                        *last = now;
                        hit.get_or_insert_with(|| path.clone());
                    }
                }
                hit
            }
        }
    }
}

fn poll_engine() -> Engine {
    Engine::Poll { seen: BTreeMap::new(), next: Instant::now() + POLL_EVERY }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The (watch, mask, name) of each event in an inotify read.
fn inotify_events(bytes: &[u8]) -> Vec<(i32, u32, &[u8])> {
    const HEAD: usize = std::mem::size_of::<libc::inotify_event>();
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEAD <= bytes.len() {
        let field = |i: usize| u32::from_ne_bytes(bytes[at + 4 * i..at + 4 * i + 4].try_into().unwrap_or_default());
        let (wd, mask, len) = (field(0) as i32, field(1), field(3) as usize);
        let name = bytes.get(at + HEAD..at + HEAD + len).unwrap_or_default();
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        out.push((wd, mask, name));
        at += HEAD + len;
    }
    out
}

/// Run `LIST_FILES` in this interpreter.
fn list_files(py: Python<'_>, extra: &[String]) -> PyResult<String> {
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item("_extra", extra.to_vec())?;
    py.run(LIST_FILES, Some(&globals), None)?;
    globals.get_item("_listed")?.map(|v| v.extract()).unwrap_or_else(|| Ok(String::new()))
}

/// The trial child: load the app as a worker does, write the files it then
/// has to `memfd`, exit 0 if it loaded.
fn run_trial(py: Python<'_>, cfg: &Config, master_pid: i32, memfd: RawFd, extra: &[String]) -> ! {
    crate::proctitle::set(&format!("rsgi: reload trial [{}]", cfg.proc_name));
    if let Err(e) = crate::process::prepare_process(cfg, master_pid) {
        crate::error!("Reload: cannot try the new code: {e}");
        crate::process::exit_child(py, APP_LOAD_ERROR);
    }
    let loaded = crate::wsgi::app::load_app_with(py, &cfg.app, &cfg.paste_global_conf);
    if let Ok(listed) = list_files(py, extra) {
        let mut rest = listed.as_bytes();
        while !rest.is_empty() {
            // SAFETY: writes from a live buffer to the memfd we inherited.
            let n = unsafe { libc::write(memfd, rest.as_ptr() as *const libc::c_void, rest.len()) };
            if n <= 0 {
                break;
            }
            rest = &rest[n as usize..];
        }
    }
    match loaded {
        Ok(_) => crate::process::exit_child(py, 0),
        Err(e) => {
            crate::error!("Reload: the app does not load: {}", e.message);
            if let Some(tb) = &e.traceback {
                crate::error!("{}", tb.trim_end());
            }
            crate::process::exit_child(py, APP_LOAD_ERROR)
        }
    }
}

/// Everything written to `memfd`, which is then closed.
fn read_memfd(memfd: RawFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        // SAFETY: reads into a local buffer from our own memfd.
        let n = unsafe { libc::pread(memfd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), out.len() as libc::off_t) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: closing a descriptor the watch owns.
    unsafe { libc::close(memfd) };
    String::from_utf8_lossy(&out).into_owned()
}

impl Arbiter {
    /// The loop's reload work after a wait (`ready`: the inotify descriptor
    /// is readable): notice changes, start the trial that is due.
    pub(super) fn watch_step(&mut self, ready: bool) {
        let Some(watch) = self.observers.watch.as_mut() else { return };
        if let Some(path) = watch.changed(ready) {
            if let Some(modules) = &watch.preloaded {
                if modules.contains(&path) {
                    crate::error!("Reload: {} changed, but --preload keeps the old code in the master: restart rsgi to load it", path.display());
                } else {
                    crate::info!("Reload: {} changed: replacing the workers", path.display());
                    self.replace_workers();
                }
                return;
            }
            match &mut watch.trial {
                Trial::Running { again, .. } => *again = true,
                Trial::Idle { due } => {
                    crate::info!("Reload: {} changed: trying the new code", path.display());
                    *due = Some(Purpose::Change);
                }
            }
        }
        let Trial::Idle { due: Some(purpose) } = watch.trial else { return };
        // SAFETY: memfd_create with a NUL-terminated name; close-on-exec.
        let memfd = unsafe { libc::memfd_create(c"rsgi-reload".as_ptr(), libc::MFD_CLOEXEC) };
        if memfd < 0 {
            crate::error!("Reload: cannot try the new code: {}", std::io::Error::last_os_error());
            watch.trial = Trial::Idle { due: None };
            return;
        }
        let extra = watch.extra.clone();
        let fds = self.master_fds();
        let (cfg, master_pid) = (&self.cfg, std::process::id() as i32);
        match super::spawn::fork_child(&mut self.signals, &fds, |py| run_trial(py, cfg, master_pid, memfd, &extra)) {
            Ok(pid) => {
                if let Some(w) = self.observers.watch.as_mut() {
                    w.trial = Trial::Running { pid, memfd, purpose, again: false };
                }
            }
            Err(e) => {
                crate::error!("Reload: cannot try the new code: {e}");
                // SAFETY: closing the memfd made above.
                unsafe { libc::close(memfd) };
                if let Some(w) = self.observers.watch.as_mut() {
                    w.trial = Trial::Idle { due: None };
                }
            }
        }
    }

    /// A child that is not a worker exited: if it is the trial, act on it.
    /// Returns true when it was.
    pub(super) fn trial_exited(&mut self, pid: i32, status: i32) -> bool {
        let Some(watch) = self.observers.watch.as_mut() else { return false };
        let Trial::Running { pid: trial, memfd, purpose, again } = watch.trial else { return false };
        if trial != pid {
            return false;
        }
        let listed = read_memfd(memfd);
        if !listed.is_empty() {
            watch.add_files(&listed);
        }
        let loaded = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        watch.trial = Trial::Idle { due: again.then_some(Purpose::Change) };
        if self.listeners.is_empty() {
            // The master is stopping (`halt_with` let the listeners go):
            // no new workers, whatever the trial found.
            return true;
        }
        match (purpose, loaded, again) {
            (_, _, true) => {}
            (Purpose::Scan, true, _) => crate::info!("Reload: watching {} files", watch.files.len()),
            (Purpose::Scan, false, _) => crate::warn!("Reload: the app failed to load in the trial; watching {} files", watch.files.len()),
            (Purpose::Change, true, _) => {
                crate::info!("Reload: the new code loads: replacing the workers");
                self.replace_workers();
            }
            (Purpose::Change, false, _) => {
                crate::error!("Reload: the new code fails to load (see above): the workers keep serving the code they have");
            }
        }
        true
    }

    /// Start `num_workers` new workers, then gracefully stop the old ones
    /// (HUP's replacement, and a reload's).
    pub(super) fn replace_workers(&mut self) {
        let old: Vec<i32> = self.workers.iter().filter(|(_, w)| w.state == super::WorkerState::Serving).map(|(p, _)| *p).collect();
        for _ in 0..self.num_workers {
            if self.spawn_worker().is_err() {
                break;
            }
        }
        for pid in old {
            self.retire(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_records() {
        let mut bytes = Vec::new();
        for (wd, mask, name) in [(1i32, libc::IN_CLOSE_WRITE, &b"app.py\0\0"[..]), (2, libc::IN_IGNORED, &b""[..])] {
            bytes.extend_from_slice(&wd.to_ne_bytes());
            bytes.extend_from_slice(&mask.to_ne_bytes());
            bytes.extend_from_slice(&0u32.to_ne_bytes());
            bytes.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            bytes.extend_from_slice(name);
        }
        let events = inotify_events(&bytes);
        assert_eq!(events, vec![(1, libc::IN_CLOSE_WRITE, &b"app.py"[..]), (2, libc::IN_IGNORED, &b""[..])]);
    }
}
