//! User and group ids: `--user` and `--group` given as names or numbers,
//! looked up the way gunicorn does, and this process's own effective ids
//! (what gunicorn prints when neither is set).
//!
//! Runs in the master while the configuration is resolved.

/// Resolve a user name or uid; returns (uid, gid of the user, name).
pub(super) fn lookup_user(spec: &str) -> Option<(u32, u32, String)> {
    // SAFETY: getpwnam/getpwuid return a pointer into static storage that we
    // copy from at once; the master is single-threaded here.
    unsafe {
        let pw = match spec.parse::<u32>() {
            Ok(uid) => libc::getpwuid(uid),
            Err(_) => {
                let name = std::ffi::CString::new(spec).ok()?;
                libc::getpwnam(name.as_ptr())
            }
        };
        if pw.is_null() {
            return spec.parse::<u32>().ok().map(|uid| (uid, libc::getegid(), spec.to_owned()));
        }
        let name = std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        Some(((*pw).pw_uid, (*pw).pw_gid, name))
    }
}

/// Resolve a group name or gid.
pub(super) fn lookup_group(spec: &str) -> Option<u32> {
    if let Ok(gid) = spec.parse::<u32>() {
        return Some(gid);
    }
    let name = std::ffi::CString::new(spec).ok()?;
    // SAFETY: as in lookup_user.
    unsafe {
        let gr = libc::getgrnam(name.as_ptr());
        if gr.is_null() {
            None
        } else {
            Some((*gr).gr_gid)
        }
    }
}

/// This process's effective user id (what gunicorn prints for `user` when
/// none is set).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// This process's effective group id.
pub fn effective_gid() -> u32 {
    // SAFETY: getegid has no preconditions.
    unsafe { libc::getegid() }
}
