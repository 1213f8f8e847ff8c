//! The pid file (`-p/--pid`): created when the master starts (refusing to
//! overwrite the pid of a live process), renamed when a re-executed master
//! is promoted, removed when the master exits.
//!
//! Used only by the master.

use std::path::{Path, PathBuf};

/// A pid file this master wrote.
#[derive(Debug)]
pub struct Pidfile {
    /// Where it is now.
    path: PathBuf,
}

/// True when `pid` names a live process.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// The pid a file holds, if it holds one.
fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Write `pid` to `path` atomically (a temporary file renamed over it).
fn write_pid(path: &Path, pid: i32) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{pid}"));
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}

impl Pidfile {
    /// Create the file for this process, as gunicorn's `Pidfile.create`.
    pub fn create(path: &str) -> Result<Pidfile, String> {
        let path = PathBuf::from(path);
        let me = std::process::id() as i32;
        if let Some(old) = read_pid(&path) {
            if old != me && alive(old) {
                return Err(format!("Already running on PID {old} (or pid file '{}' is stale)", path.display()));
            }
        }
        write_pid(&path, me).map_err(|e| format!("Cannot write pid file '{}': {e}", path.display()))?;
        Ok(Pidfile { path })
    }

    /// Move the file (promotion after a re-exec: `app.pid.2` → `app.pid`).
    pub fn rename(&mut self, to: &str) {
        let to = PathBuf::from(to);
        if std::fs::rename(&self.path, &to).is_ok() {
            self.path = to;
        } else if write_pid(&to, std::process::id() as i32).is_ok() {
            let _ = std::fs::remove_file(&self.path);
            self.path = to;
        }
    }

    /// Remove the file if it still holds this process's pid.
    pub fn unlink(&self) {
        if read_pid(&self.path) == Some(std::process::id() as i32) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_refuse_rename_unlink() {
        let dir = std::env::temp_dir().join(format!("rsgi-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pid");
        let mut f = Pidfile::create(p.to_str().unwrap()).unwrap();
        assert_eq!(read_pid(&p), Some(std::process::id() as i32));
        // Our own pid is not "another live process".
        assert!(Pidfile::create(p.to_str().unwrap()).is_ok());
        // pid 1 is alive: refused.
        std::fs::write(&p, "1\n").unwrap();
        assert!(Pidfile::create(p.to_str().unwrap()).is_err());
        std::fs::write(&p, format!("{}\n", std::process::id())).unwrap();
        let q = dir.join("b.pid");
        f.rename(q.to_str().unwrap());
        assert!(!p.exists() && q.exists());
        f.unlink();
        assert!(!q.exists());
    }
}
