//! Wake-ups of the loop that an executor thread holds back while it works
//! through a batch. An executor that finishes responses one after another
//! (an ASGI event loop running the tasks of one wake-up) would otherwise
//! wake a sleeping loop at the first, and on a worker pinned to one core
//! the loop preempts it right there, writes that one response, sleeps, and
//! is woken again by the next. While a thread holds its wake-ups,
//! [`LoopHandle::wake`](super::exchange::LoopHandle::wake) on it only
//! records that one is owed; [`release`] writes the waker once for all.
//! Notices themselves are queued at once either way: only the system call
//! that wakes the loop waits.
//!
//! Per thread, so the loop's own thread and the other executors never see
//! it. A kind that holds must release within a bounded time (the ASGI
//! kind: at the end of the event loop's next iteration), or the loop
//! sleeps on queued notices until its tick.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

thread_local! {
    /// This thread holds its wake-ups.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
    /// The loop owed a wake-up, if any: its waker and its sleep flag.
    static OWED: RefCell<Option<(Arc<mio::Waker>, Arc<AtomicBool>)>> = const { RefCell::new(None) };
}

/// Hold this thread's wake-ups of the loop from now on.
pub fn hold() {
    HOLDING.with(|h| h.set(true));
}

/// Stop holding, and wake the loop once if a wake-up was held back.
pub fn release() {
    HOLDING.with(|h| h.set(false));
    if let Some((waker, sleeping)) = OWED.with(|o| o.borrow_mut().take()) {
        wake_if_sleeping(&waker, &sleeping);
    }
}

/// Called by `LoopHandle::wake`: true when this thread holds its
/// wake-ups (the one owed is recorded), false when the caller wakes now.
pub(super) fn defer(waker: &Arc<mio::Waker>, sleeping: &Arc<AtomicBool>) -> bool {
    if !HOLDING.with(Cell::get) {
        return false;
    }
    OWED.with(|o| {
        let mut owed = o.borrow_mut();
        if owed.is_none() {
            *owed = Some((waker.clone(), sleeping.clone()));
        }
    });
    true
}

/// Write the waker if the loop sleeps, once per sleep: the first caller
/// takes the flag. Pairs with the loop's set-sleeping-then-check-notices
/// sequence (both SeqCst), so a notice is never left unseen.
pub(super) fn wake_if_sleeping(waker: &mio::Waker, sleeping: &AtomicBool) {
    // The notice was queued before this fence; the loop fences between
    // announcing its sleep and looking at the queue.
    std::sync::atomic::fence(Ordering::SeqCst);
    if sleeping.load(Ordering::SeqCst) && sleeping.swap(false, Ordering::SeqCst) {
        let _ = waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_held_wake_up_is_written_once_at_release() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let sleeping = Arc::new(AtomicBool::new(true));
        let mut events = mio::Events::with_capacity(4);
        hold();
        assert!(defer(&waker, &sleeping));
        assert!(defer(&waker, &sleeping));
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "held: nothing written yet");
        assert!(sleeping.load(Ordering::SeqCst));
        release();
        assert!(!sleeping.load(Ordering::SeqCst), "the release took the flag");
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(!events.is_empty(), "released: the loop is woken");
        assert!(!defer(&waker, &sleeping), "not holding any more");
        release();
    }
}
