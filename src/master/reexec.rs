//! USR2: start a new master from the same command line that inherits the
//! listening sockets, for zero-downtime upgrades. The new master is a child
//! of the old one; it finds the sockets in `RSGI_FD` (and `GUNICORN_FD`),
//! writes `PIDFILE.2`, and takes over `PIDFILE` once the old master exits.
//!
//! Used only by the master.

use std::ffi::CString;

use pyo3::prelude::*;

use crate::listen::{Listener, SYSTEMD_FDS_ENV};

/// The environment variable carrying inherited listener descriptors.
pub const FD_ENV: &str = "RSGI_FD";
/// gunicorn's name for the same (read too, for mixed upgrades).
pub const GUNICORN_FD_ENV: &str = "GUNICORN_FD";
/// The environment variable carrying the old master's pid.
pub const MASTER_PID_ENV: &str = "RSGI_MASTER_PID";

/// What to exec, prepared before forking (the child may only do
/// async-signal-safe work between fork and exec).
pub struct ExecPlan {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
    fds: Vec<i32>,
}

impl ExecPlan {
    /// The interpreter and the original arguments (`sys.orig_argv`), the
    /// current environment plus the inherited descriptors (and which of
    /// them are systemd's), and the directory rsgi was started in. Called
    /// in the master.
    pub fn new(listeners: &[Listener], start_dir: &str) -> Result<ExecPlan, String> {
        let (program, args): (String, Vec<String>) = Python::attach(|py| -> PyResult<_> {
            let sys = py.import("sys")?;
            let exe: String = sys.getattr("executable")?.extract()?;
            let argv: Vec<String> = sys.getattr("orig_argv")?.extract()?;
            Ok((exe, argv))
        })
        .map_err(|e| format!("cannot read the command line: {e}"))?;
        let fds: Vec<i32> = listeners.iter().map(Listener::raw_fd).collect();
        let fd_list = fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let mut env: Vec<CString> = std::env::vars()
            .filter(|(k, _)| ![FD_ENV, GUNICORN_FD_ENV, MASTER_PID_ENV, SYSTEMD_FDS_ENV].contains(&k.as_str()))
            .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect();
        let pid = std::process::id().to_string();
        let systemd = crate::listen::systemd_fds_for_successor();
        let notes = [(FD_ENV, Some(fd_list)), (MASTER_PID_ENV, Some(pid)), (SYSTEMD_FDS_ENV, systemd)];
        for (k, v) in notes.iter().filter_map(|(k, v)| Some((k, v.as_ref()?))) {
            env.push(CString::new(format!("{k}={v}")).map_err(|e| e.to_string())?);
        }
        let cstr = |s: &str| CString::new(s).map_err(|e| e.to_string());
        Ok(ExecPlan {
            program: cstr(&program)?,
            argv: args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
            env,
            cwd: cstr(start_dir)?,
            fds,
        })
    }

    /// In the forked child: let the sockets survive exec, go back to the
    /// start directory, and exec. Only async-signal-safe calls. Never returns.
    pub fn exec(&self) -> ! {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut env: Vec<*const libc::c_char> = self.env.iter().map(|e| e.as_ptr()).collect();
        env.push(std::ptr::null());
        // SAFETY: fcntl/chdir/execve/_exit are async-signal-safe; the
        // pointers come from CStrings that live until exec replaces us.
        unsafe {
            for &fd in &self.fds {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            libc::chdir(self.cwd.as_ptr());
            libc::execve(self.program.as_ptr(), argv.as_ptr(), env.as_ptr());
            libc::_exit(127)
        }
    }
}

/// Listener descriptors handed down by an old master, if any, removed from
/// the environment so later children do not see them.
pub fn inherited_fds() -> Option<Vec<i32>> {
    let raw = std::env::var(FD_ENV).or_else(|_| std::env::var(GUNICORN_FD_ENV)).ok()?;
    std::env::remove_var(FD_ENV);
    std::env::remove_var(GUNICORN_FD_ENV);
    Some(raw.split(',').filter_map(|s| s.trim().parse().ok()).collect())
}

/// The old master's pid when this master was started by USR2.
fn parent_master() -> Option<i32> {
    let pid = std::env::var(MASTER_PID_ENV).ok()?.parse().ok()?;
    Some(pid)
}

/// A master's place in a USR2 hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineage {
    /// No hand-over under way.
    Sole,
    /// USR2 started a new master, `child`, which still runs.
    Parent { child: i32 },
    /// Started by USR2; the old master, `parent`, still runs (this one is
    /// "Master.2" and writes `PIDFILE.2` until it is promoted).
    Heir { parent: i32 },
}

impl Lineage {
    /// How this process starts: an heir when an old master handed it the
    /// sockets.
    pub fn at_start() -> Lineage {
        match parent_master() {
            Some(parent) if parent != 0 => Lineage::Heir { parent },
            _ => Lineage::Sole,
        }
    }

    /// The name the log gives this master.
    pub fn master_name(self) -> &'static str {
        match self {
            Lineage::Heir { .. } => "Master.2",
            Lineage::Sole | Lineage::Parent { .. } => "Master",
        }
    }
}
