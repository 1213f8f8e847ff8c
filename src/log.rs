//! The error log: gunicorn's line format
//! (`[2026-11-23 16:31:30 +0000] [1234] [INFO] message`) written by Rust to
//! stderr or `--error-logfile`, one `write` per line, reopened on demand.
//!
//! Used by every process and thread: the master, the worker's I/O loop and
//! the executors. Never attaches to Python; callers that hold Python text
//! pass it in as a `&str`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::sync::RwLock;

/// Severity, as gunicorn's `--log-level` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// Parse a `--log-level` value; unknown names mean INFO.
    pub fn parse(s: &str) -> Level {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            "critical" => Level::Critical,
            _ => Level::Info,
        }
    }

    /// Python's numeric level.
    pub fn python(self) -> i32 {
        match self {
            Level::Debug => 10,
            Level::Info => 20,
            Level::Warning => 30,
            Level::Error => 40,
            Level::Critical => 50,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// Where log lines go and which are kept.
struct Sink {
    /// Lines below this level are dropped.
    level: Level,
    /// `None` means stderr; otherwise the path of `--error-logfile`.
    path: Option<String>,
    /// The open log file, when `path` is set.
    file: Option<File>,
}

static SINK: RwLock<Sink> = RwLock::new(Sink { level: Level::Info, path: None, file: None });

fn open(path: &str) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Configure the error log. Called in the master before anything is
/// logged; workers inherit it across fork.
pub fn init(level: Level, errorlog: &str) -> std::io::Result<()> {
    let (path, file) = if errorlog == "-" || errorlog.is_empty() {
        (None, None)
    } else {
        (Some(errorlog.to_owned()), Some(open(errorlog)?))
    };
    let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
    *sink = Sink { level, path, file };
    Ok(())
}

/// Reopen the log file (after a rotation moved it away), and have a custom
/// logger_class reopen its own: USR1.
pub fn reopen() {
    {
        let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = sink.path.clone() {
            if let Ok(f) = open(&path) {
                sink.file = Some(f);
            }
        }
    }
    // A custom logger_class reopens its own files (reopen_files()).
    crate::pylog::reopen();
}

/// True when lines at `level` are written.
pub fn enabled(level: Level) -> bool {
    SINK.read().map(|s| level >= s.level).unwrap_or(true)
}

/// The current local time as gunicorn prints it: `2026-11-23 16:31:30 +0000`.
pub fn timestamp() -> String {
    // SAFETY: time/localtime_r/strftime write only into the locals given.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        let mut buf = [0u8; 64];
        let fmt = b"%Y-%m-%d %H:%M:%S %z\0";
        let n = libc::strftime(buf.as_mut_ptr() as *mut libc::c_char, buf.len(), fmt.as_ptr() as *const libc::c_char, &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Write raw text to the error log, without a prefix (tracebacks,
/// `wsgi.errors`).
pub fn write_raw(text: &[u8]) {
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    match &sink.file {
        Some(f) => {
            let _ = (&*f).write_all(text);
        }
        None => {
            let _ = std::io::stderr().lock().write_all(text);
        }
    }
}

/// Log one message in gunicorn's format. Multi-line messages (tracebacks)
/// keep their lines after the first.
pub fn log(level: Level, msg: &str) {
    match level {
        Level::Critical => crate::statsd::increment("gunicorn.log.critical", 1),
        Level::Error => crate::statsd::increment("gunicorn.log.error", 1),
        Level::Warning => crate::statsd::increment("gunicorn.log.warning", 1),
        _ => {}
    }
    if !enabled(level) {
        return;
    }
    crate::syslog::error_line(level, msg);
    if crate::pylog::log(false, level.python(), msg) {
        return;
    }
    let line = format!("[{}] [{}] [{}] {}\n", timestamp(), std::process::id(), level.label(), msg.trim_end_matches('\n'));
    write_raw(line.as_bytes());
}

/// The raw fd the log writes to (for faulthandler-style dumps).
pub fn fd() -> i32 {
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    sink.file.as_ref().map(|f| f.as_raw_fd()).unwrap_or(2)
}

#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, &format!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, &format!($($t)*)) } }
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, &format!($($t)*)) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { if $crate::log::enabled($crate::log::Level::Debug) { $crate::log::log($crate::log::Level::Debug, &format!($($t)*)) } } }
#[macro_export]
macro_rules! critical { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Critical, &format!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::parse("DEBUG"), Level::Debug);
        assert_eq!(Level::parse("nonsense"), Level::Info);
        assert!(Level::Error > Level::Warning);
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 25, "{t}");
        assert_eq!(&t[4..5], "-");
        assert!(t[20..].starts_with('+') || t[20..].starts_with('-'));
    }
}
