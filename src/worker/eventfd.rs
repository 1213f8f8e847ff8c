//! The descriptor half of a [`Bell`](super::task::Bell) for a kind whose
//! thread waits on a descriptor of its own (the ASGI event loop, gevent's
//! hub): an eventfd, and the keys of the requests rung for since the
//! waiting thread last took them. When to write the eventfd (the rule that
//! coalesces a burst into one write) is the kind's; this type only writes
//! it, clears it and keeps the list.
//!
//! Written by the worker's I/O thread, cleared by the kind's thread; never
//! touches Python.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

/// An eventfd (non-blocking, close-on-exec) and the keys rung for.
pub struct EventFd {
    fd: OwnedFd,
    /// Keys of requests whose exchange changed, in the order rung.
    woken: Mutex<Vec<u64>>,
}

impl EventFd {
    /// A new eventfd. Called in the worker after fork.
    pub fn new() -> std::io::Result<EventFd> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd, woken: Mutex::new(Vec::new()) })
    }

    /// The descriptor the waiting thread watches.
    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Make the descriptor readable: one `write(2)`.
    pub fn write(&self) {
        let one: u64 = 1;
        // SAFETY: an 8-byte write from a local to our eventfd; a full
        // counter (EAGAIN) already means readable.
        unsafe { libc::write(self.fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    }

    /// Read the counter back to zero (nothing to read is fine: the
    /// descriptor is non-blocking).
    pub fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: an 8-byte read into a local from our non-blocking eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), &mut count as *mut u64 as *mut libc::c_void, 8) };
    }

    /// Note that the request under `key` may go on (the caller then rings).
    pub fn push(&self, key: u64) {
        self.list().push(key);
    }

    /// The keys noted since the last take.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.list())
    }

    /// Some key waits to be taken.
    pub fn any_woken(&self) -> bool {
        !self.list().is_empty()
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.woken.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The counter's value, read (and so cleared); 0 when not readable.
    pub(crate) fn pending(efd: &EventFd) -> u64 {
        let mut buf: u64 = 0;
        // SAFETY: reads 8 bytes into a local from the test's non-blocking eventfd.
        let n = unsafe { libc::read(efd.fd(), &mut buf as *mut u64 as *mut libc::c_void, 8) };
        if n == 8 {
            buf
        } else {
            0
        }
    }

    #[test]
    fn writes_add_up_and_clear_reads_them_back() {
        let efd = EventFd::new().unwrap();
        assert_eq!(pending(&efd), 0);
        efd.write();
        efd.write();
        assert_eq!(pending(&efd), 2);
        efd.write();
        efd.clear();
        assert_eq!(pending(&efd), 0);
    }

    #[test]
    fn keys_come_back_in_order_once() {
        let efd = EventFd::new().unwrap();
        assert!(!efd.any_woken());
        efd.push(7);
        efd.push(3);
        assert!(efd.any_woken());
        assert_eq!(efd.take(), vec![7, 3]);
        assert!(!efd.any_woken());
        assert!(efd.take().is_empty());
    }
}
