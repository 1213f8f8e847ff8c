//! How the I/O loop wakes the gevent hub: an eventfd the hub watches
//! (`hub.loop.io(fd, READ)`), written only when the hub's dispatcher has
//! said it is about to wait (armed), so a burst of requests costs one
//! system call. Requests waiting in a greenlet for body bytes or output
//! room are named by their connection's serial number in a list the
//! dispatcher drains.
//!
//! Rung by the worker's I/O thread, drained by the hub (main) thread; never
//! touches Python.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::worker::eventfd::EventFd;
use crate::worker::task::Bell;

/// The loop's side of the hub's wake-up descriptor.
pub struct HubBell {
    /// The eventfd, and the serial numbers of requests whose greenlet may
    /// go on.
    efd: EventFd,
    /// The dispatcher is about to wait on the eventfd: the next ring writes it.
    armed: AtomicBool,
    /// A `Closing` (0 while the loop runs): the dispatcher stops taking work.
    closed: AtomicU8,
}

/// How the loop ended, for the hub: wait for running requests or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// TERM (or a retirement): let running greenlets finish, up to
    /// `--graceful-timeout`.
    Graceful = 1,
    /// INT or QUIT: leave at once.
    Fast = 2,
}

/// What the dispatcher takes in one go.
pub struct Rung {
    /// Requests whose greenlet may go on.
    pub woken: Vec<u64>,
    /// The loop has ended, and how.
    pub closed: Option<Closing>,
}

impl HubBell {
    /// A new eventfd. Called in the worker after fork.
    pub fn new() -> std::io::Result<HubBell> {
        Ok(HubBell { efd: EventFd::new()?, armed: AtomicBool::new(false), closed: AtomicU8::new(0) })
    }

    /// The descriptor the hub watches.
    pub fn fd(&self) -> i32 {
        self.efd.fd()
    }

    /// Wake the dispatcher if it waits (or is about to). The swap pairs
    /// with `arm`'s store-then-look: whoever comes second sees the other.
    fn ring(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.efd.write();
        }
    }

    /// The loop has ended (its thread calls this after dropping the loop,
    /// which closed the channel).
    pub fn close(&self, how: Closing) {
        self.closed.store(how as u8, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
        self.ring();
    }

    /// Take what the loop rang for, and clear the descriptor. Called by the
    /// dispatcher (hub thread).
    pub fn take(&self) -> Rung {
        self.efd.clear();
        let woken = self.efd.take();
        let closed = match self.closed.load(Ordering::SeqCst) {
            1 => Some(Closing::Graceful),
            2 => Some(Closing::Fast),
            _ => None,
        };
        Rung { woken, closed }
    }

    /// Announce that the dispatcher will wait on the descriptor, then look
    /// once more: returns true when work came meanwhile (`pending` says
    /// whether tasks wait in the channel), so the dispatcher must not wait.
    pub fn arm(&self, pending: impl Fn() -> bool) -> bool {
        self.armed.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let woken = self.efd.any_woken();
        if woken || pending() || self.closed.load(Ordering::SeqCst) != 0 {
            self.armed.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }
}

impl Bell for HubBell {
    fn tasks(&self) {
        self.ring();
    }

    fn request(&self, key: u64) {
        self.efd.push(key);
        self.ring();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(bell: &HubBell) -> bool {
        let mut pfd = libc::pollfd { fd: bell.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: polls one descriptor we own, without waiting.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn rings_only_when_armed() {
        let bell = HubBell::new().unwrap();
        bell.tasks();
        assert!(!readable(&bell), "nobody waits: no system call");
        assert!(!bell.arm(|| false));
        bell.tasks();
        assert!(readable(&bell));
        bell.tasks();
        let rung = bell.take();
        assert!(rung.woken.is_empty() && rung.closed.is_none());
        assert!(!readable(&bell), "one write for the burst, cleared by take");
    }

    #[test]
    fn work_that_came_before_arming_is_seen() {
        let bell = HubBell::new().unwrap();
        bell.request(7);
        assert!(bell.arm(|| false), "a woken request is waiting");
        assert_eq!(bell.take().woken, vec![7]);
        assert!(bell.arm(|| true), "tasks wait in the channel");
        assert!(!bell.arm(|| false));
        bell.close(Closing::Fast);
        assert!(readable(&bell));
        assert_eq!(bell.take().closed, Some(Closing::Fast));
    }
}
