//! The hand-off between the I/O loop and an executor for one request: the
//! request body flowing in, the response flowing out, and who waits for whom.
//!
//! Both sides are bounded: the loop stops reading the socket when
//! `BODY_BUFFER` body bytes wait for the app, and a response stops at
//! `OUT_HIGH_WATER` bytes waiting for the socket: an iterable pauses (its
//! state is `parked` here until the loop hands it back), the `write()`
//! callable waits with the GIL released. Shared by the worker's I/O thread and its executor
//! threads; never touches Python.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::http::HttpError;

/// Body bytes the loop buffers for one request before it stops reading the
/// socket. A request whose whole body fits is handed to an executor only
/// once the body is complete, so a slow uploader never holds a Python
/// thread; a larger body is streamed to the app through this window.
pub const BODY_BUFFER: usize = 256 * 1024;

/// When the loop hands a request with a body to the app (`LoopConfig::start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Once the body is complete or `BODY_BUFFER` of it is buffered: a slow
    /// uploader never holds an app thread (the threaded and gevent kinds).
    AfterBody,
    /// As soon as the head is parsed, the body streaming through the same
    /// window while the app runs: a kind whose requests cost no thread
    /// (ASGI, as uvicorn calls the app), so an app may answer before it
    /// reads the body, or without reading it.
    AtHead,
}

/// Response bytes an executor may queue before it waits for the client to
/// read: the back-pressure bound per connection.
pub const OUT_HIGH_WATER: usize = 256 * 1024;

/// A piece of response waiting to be written.
#[derive(Debug)]
pub enum OutChunk {
    /// Bytes (status line, headers, chunk framing and body).
    Bytes(Vec<u8>),
    /// A large Python `bytes` object from the app, written from its own
    /// memory without copying (and without the GIL: the object is immutable
    /// and this reference keeps it alive).
    Python(PyBytesRef),
    /// A file region, sent with sendfile(2).
    File { file: File, offset: u64, remaining: u64 },
}

/// A Python `bytes` object and the part of it to send.
pub struct PyBytesRef {
    /// Keeps the object alive until the bytes are written.
    _object: pyo3::Py<pyo3::types::PyBytes>,
    /// Its data (taken while the GIL was held).
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointed-to memory belongs to an immutable bytes object that
// `_object` keeps alive; it is only read.
unsafe impl Send for PyBytesRef {}

impl PyBytesRef {
    /// Hold the first `len` bytes of `object` for writing. Called with the
    /// GIL held.
    pub fn new(object: &pyo3::Bound<'_, pyo3::types::PyBytes>, len: usize) -> PyBytesRef {
        use pyo3::types::PyBytesMethods;
        let data = object.as_bytes();
        PyBytesRef { ptr: data.as_ptr(), len: len.min(data.len()), _object: object.clone().unbind() }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: see the Send impl: valid, immutable, kept alive.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::fmt::Debug for PyBytesRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyBytesRef({} bytes)", self.len)
    }
}

impl OutChunk {
    /// Bytes this chunk still has to write.
    pub fn len(&self) -> usize {
        match self {
            OutChunk::Bytes(b) => b.len(),
            OutChunk::Python(p) => p.len,
            OutChunk::File { remaining, .. } => (*remaining).min(usize::MAX as u64) as usize,
        }
    }

    /// The bytes of an in-memory chunk (`None` for a file region).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            OutChunk::Bytes(b) => Some(b),
            OutChunk::Python(p) => Some(p.as_slice()),
            OutChunk::File { .. } => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop the first `n` bytes of an in-memory chunk (written already;
    /// `write_queue`'s `front_written`, which file regions do not use).
    fn skip(&mut self, n: usize) {
        match self {
            OutChunk::Bytes(b) => {
                b.drain(..n.min(b.len()));
            }
            OutChunk::Python(p) => {
                let n = n.min(p.len);
                // SAFETY: n <= len, so the pointer stays inside (or one
                // past the end of) the object's data.
                p.ptr = unsafe { p.ptr.add(n) };
                p.len -= n;
            }
            OutChunk::File { .. } => {}
        }
    }
}

/// How the executor ended the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The response is complete; the connection may serve another request.
    KeepAlive,
    /// The response is complete (or abandoned); close after writing it.
    Close,
}

/// Where the request body stands, as the loop receives it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum BodyState {
    /// More of the body is to come.
    #[default]
    Receiving,
    /// The whole body has been received (or there was none).
    Complete,
    /// The body turned out malformed or too large after the app started.
    Failed(HttpError),
}

/// The mutable half of an exchange, behind its mutex.
#[derive(Default)]
pub struct ExchangeState {
    /// Body bytes received and not yet read by the app.
    pub body: Vec<u8>,
    /// Whether more body is to come.
    pub body_state: BodyState,
    /// Response chunks not yet taken by the loop.
    pub out: VecDeque<OutChunk>,
    /// Response bytes not yet written to the socket (queued here or held by
    /// the loop): what back-pressure is measured on.
    pub out_pending: usize,
    /// Set once the executor is done with the request.
    pub finish: Option<Finish>,
    /// The client went away or stalled: stop producing output.
    pub client_gone: bool,
    /// A wake-up for the loop is already on its way.
    pub loop_notified: bool,
    /// The executor is waiting on `executor_wake` (so a wake-up is needed).
    pub executor_waiting: bool,
    /// Set while the app runs on the loop thread itself: nobody else drains
    /// the output, so a full window is written to the socket directly.
    pub inline: Option<InlineOut>,
    /// A response paused with its window full, waiting for the loop to hand
    /// it back to an executor (or run it) once the client has caught up.
    pub parked: Option<Box<dyn super::task::Paused>>,
    /// The key under which a kind that waits on its own descriptor is told
    /// (`task::Bell::request`) instead of `executor_wake` being signalled.
    pub bell_key: Option<u64>,
    /// The client closed its side while the app ran (its request body was
    /// complete). The response is still written if the socket takes it; an
    /// ASGI app is told `http.disconnect`.
    pub peer_closed: bool,
    /// Set by the executor kind when the app accepted a WebSocket: the
    /// session both sides use from then on (`upgraded`).
    pub websocket: Option<Box<super::upgraded::WsLink>>,
}

impl ExchangeState {
    /// The output window is full and the client still there: a response
    /// iterable pauses rather than queue more.
    pub fn window_full(&self) -> bool {
        !self.client_gone && self.out_pending >= OUT_HIGH_WATER
    }
}

/// The socket of a request whose app runs on the loop thread, and how long
/// its client may take to accept output.
#[derive(Debug, Clone, Copy)]
pub struct InlineOut {
    pub fd: std::os::unix::io::RawFd,
    pub timeout: Duration,
    /// The loop would write this response at once (it holds no burst of
    /// responses in this pass), so the call may write it itself before
    /// the iterable's `close()` runs (`Exchange::flush_inline`).
    pub early: bool,
}

/// A wake-up for the I/O loop about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// The connection's slot in the loop's slab.
    pub token: usize,
    /// The connection's serial number, so a notice for a connection that
    /// has since closed (and whose slot was reused) is ignored.
    pub serial: u64,
}

/// How an executor reaches the I/O loop.
#[derive(Clone)]
pub struct LoopHandle {
    /// Notices for the loop.
    pub notices: Sender<Notice>,
    /// Wakes the loop's poll.
    pub waker: Arc<mio::Waker>,
    /// The loop is (about to be) blocked in its poll: only then does a
    /// notice need the waker's system call.
    pub sleeping: Arc<std::sync::atomic::AtomicBool>,
    /// The executor kind's bell, when its app side does not wait on
    /// `Exchange::executor_wake` (gevent's hub).
    pub bell: Option<Arc<dyn super::task::Bell>>,
}

impl LoopHandle {
    /// Wake the loop if it sleeps. Pairs with the loop's
    /// set-sleeping-then-check-notices sequence (both SeqCst), so a notice
    /// is never left unseen. The first notice after the loop fell asleep
    /// takes the flag and writes the waker; the ones that follow before the
    /// loop has run again find it taken and make no system call (the loop
    /// drains every queued notice when it wakes), so an executor finishing
    /// a batch of responses wakes a sleeping loop once, not once each. On a
    /// thread that holds its wake-ups (`held_wakes`), only recorded.
    pub fn wake(&self) {
        if !super::held_wakes::defer(&self.waker, &self.sleeping) {
            super::held_wakes::wake_if_sleeping(&self.waker, &self.sleeping);
        }
    }
}

/// One request's shared state between the loop and an executor.
pub struct Exchange {
    state: Mutex<ExchangeState>,
    /// Signalled when the executor may proceed: body bytes arrived, output
    /// drained, or the client went away.
    pub executor_wake: Condvar,
    /// Where the connection lives in the loop.
    pub notice: Notice,
    /// How to wake the loop.
    pub handle: Arc<LoopHandle>,
}

impl Exchange {
    pub fn new(notice: Notice, handle: Arc<LoopHandle>, state: ExchangeState) -> Arc<Exchange> {
        Arc::new(Exchange { state: Mutex::new(state), executor_wake: Condvar::new(), notice, handle })
    }

    /// Lock the state. A poisoned lock (a panic on the other side) still
    /// yields the state: it is plain data.
    pub fn lock(&self) -> MutexGuard<'_, ExchangeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait on the condition for at most `timeout` (guards against lost
    /// wake-ups; callers loop on their condition). Called by the executor.
    pub fn wait<'a>(&self, mut guard: MutexGuard<'a, ExchangeState>, timeout: Duration) -> MutexGuard<'a, ExchangeState> {
        guard.executor_waiting = true;
        let mut guard = match self.executor_wake.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
        guard.executor_waiting = false;
        guard
    }

    /// Wake the executor if it waits (called by the loop with the state
    /// locked: no system call when nobody waits).
    pub fn wake_executor(&self, state: &ExchangeState) {
        if state.executor_waiting {
            match (&self.handle.bell, state.bell_key) {
                (Some(bell), Some(key)) => bell.request(key),
                _ => self.executor_wake.notify_all(),
            }
        }
    }

    /// Mark that the loop must look at this connection (called by the
    /// executor with the state locked). Returns true when the caller must
    /// then send the notice, after unlocking (`send_notice`): at most one is
    /// pending, and the lock is never held across the system call.
    pub fn notify_loop(&self, state: &mut ExchangeState) -> bool {
        if state.loop_notified {
            return false;
        }
        state.loop_notified = true;
        true
    }

    /// Send the notice `notify_loop` asked for; wakes the poller only if the
    /// loop is asleep in it.
    pub fn send_notice(&self) {
        let _ = self.handle.notices.send(self.notice);
        self.handle.wake();
    }

    /// Queue response output. With `wait`, first wait while the client is
    /// behind (called with the GIL released: the legacy `write()` callable);
    /// without, queue at once (an iterable's item: the sender pauses before
    /// the next item when the window is full). Returns `None` when the client
    /// is gone (nothing was queued), else whether the window is now full
    /// (read under the same lock, so the sender needs no second one).
    pub fn push_output(&self, chunk: OutChunk, wait: bool) -> Option<bool> {
        let mut st = self.lock();
        while wait && st.out_pending >= OUT_HIGH_WATER && !st.client_gone {
            match st.inline {
                Some(inline) => write_inline(&mut st, inline),
                None => st = self.wait(st, Duration::from_millis(500)),
            }
        }
        if st.client_gone {
            return None;
        }
        st.out_pending += chunk.len();
        st.out.push_back(chunk);
        let full = st.window_full();
        let send = self.notify_loop(&mut st);
        drop(st);
        if send {
            self.send_notice();
        }
        Some(full)
    }

    /// The app runs on the loop thread and its iterable is exhausted: write
    /// what is queued now, as far as the socket takes it without waiting,
    /// so that the client has its response while the iterable's `close()`
    /// and the request's end run (Django's `request_finished` work, for
    /// one) rather than after them, as a sync worker sends it; the loop
    /// sends any rest once the call returns. Only when the loop would have
    /// written the response at once (`InlineOut::early`); on an executor
    /// the loop drains the output itself and this does nothing. Called
    /// with the GIL released.
    pub fn flush_inline(&self) {
        Self::flush_locked(self.lock());
    }

    /// [`Exchange::flush_inline`] when the exchange's lock is free at once,
    /// for a caller that holds the GIL: false, with nothing done, when
    /// another thread holds the lock (the caller then releases the GIL and
    /// calls `flush_inline`, since waiting for the lock with the GIL held
    /// could deadlock). The write itself never blocks, so the GIL is not
    /// released and taken again for every response (bench/PROFILE.md).
    pub fn try_flush_inline(&self) -> bool {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        Self::flush_locked(st);
        true
    }

    fn flush_locked(mut st: MutexGuard<'_, ExchangeState>) {
        let Some(inline) = st.inline else { return };
        if !inline.early || inline.fd < 0 || st.client_gone || st.out.is_empty() {
            return;
        }
        let mut queue: VecDeque<(OutChunk, bool)> = st.out.drain(..).map(|c| (c, true)).collect();
        let (mut front_written, mut writable) = (0, true);
        match super::conn::write_queue(inline.fd, &mut queue, &mut front_written, &mut writable) {
            Ok(n) => st.out_pending = st.out_pending.saturating_sub(n),
            Err(_) => {
                st.client_gone = true;
                return;
            }
        }
        // What the socket did not take stays queued, in order (this thread
        // is the only producer, and the loop leaves the connection alone
        // until the call returns).
        if let Some((front, _)) = queue.front_mut() {
            front.skip(front_written);
        }
        st.out = queue.into_iter().map(|(c, _)| c).collect();
    }

    /// Queue the response's last output (if any) and mark it finished
    /// (`keep_alive`, unless the client is gone), under one lock and with
    /// one notice: queued and finished apart, the first notice woke the
    /// loop, which wrote the output and slept, and the second woke it again
    /// (an ASGI app on a worker pinned to one core: two preemptions of the
    /// event loop per request instead of one). Returns `None` when the
    /// client is gone (nothing was queued), else whether the window is full.
    pub fn push_last(&self, chunk: Option<OutChunk>, keep_alive: bool) -> Option<bool> {
        let mut st = self.lock();
        let gone = st.client_gone;
        if let (false, Some(chunk)) = (gone, chunk) {
            st.out_pending += chunk.len();
            st.out.push_back(chunk);
        }
        let full = st.window_full();
        st.finish = Some(if keep_alive && !gone { Finish::KeepAlive } else { Finish::Close });
        let send = self.notify_loop(&mut st);
        drop(st);
        if send {
            self.send_notice();
        }
        (!gone).then_some(full)
    }

    /// Mark the response finished. Called by an executor.
    pub fn finish(&self, how: Finish) {
        let mut st = self.lock();
        st.finish = Some(how);
        let send = self.notify_loop(&mut st);
        drop(st);
        if send {
            self.send_notice();
        }
    }
}

/// The app runs on the loop thread and its `write()` calls filled the
/// output window (an iterable would pause instead): write everything
/// queued to the socket here, waiting for it with poll(2), since no loop is
/// there to drain it. A client that takes nothing for the
/// timeout, or whose socket fails, is gone. Called with the GIL released.
fn write_inline(st: &mut ExchangeState, inline: InlineOut) {
    let mut queue: VecDeque<(OutChunk, bool)> = st.out.drain(..).map(|c| (c, true)).collect();
    let (mut front_written, mut writable) = (0, true);
    let timeout_ms = inline.timeout.as_millis().min(i32::MAX as u128) as i32;
    while !queue.is_empty() {
        match super::conn::write_queue(inline.fd, &mut queue, &mut front_written, &mut writable) {
            Ok(n) => st.out_pending = st.out_pending.saturating_sub(n),
            Err(_) => {
                st.client_gone = true;
                return;
            }
        }
        if !queue.is_empty() {
            let mut pfd = libc::pollfd { fd: inline.fd, events: libc::POLLOUT, revents: 0 };
            // SAFETY: polls one descriptor the loop owns and keeps open
            // while the app runs.
            let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if ready == 0 || (ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted) {
                st.client_gone = true;
                return;
            }
            writable = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_lengths() {
        assert_eq!(OutChunk::Bytes(vec![1, 2, 3]).len(), 3);
        assert!(OutChunk::Bytes(Vec::new()).is_empty());
    }

    #[test]
    fn a_sleeping_loop_is_woken_once_per_sleep() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (notices, _rx) = crossbeam_channel::unbounded();
        let handle = LoopHandle { notices, waker, sleeping: Arc::default(), bell: None };
        let mut events = mio::Events::with_capacity(4);
        let woken = |poll: &mut mio::Poll, events: &mut mio::Events| {
            poll.poll(events, Some(Duration::ZERO)).unwrap();
            !events.is_empty()
        };
        handle.wake();
        assert!(!woken(&mut poll, &mut events), "an awake loop needs no wake-up");
        handle.sleeping.store(true, std::sync::atomic::Ordering::SeqCst);
        handle.wake();
        assert!(!handle.sleeping.load(std::sync::atomic::Ordering::SeqCst), "the first notice took the flag");
        handle.wake();
        assert!(woken(&mut poll, &mut events));
    }
}
