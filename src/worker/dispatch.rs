//! Handing work to the app: a parsed request or a paused response goes to
//! a free executor of the kind over the bounded channel (ringing the kind
//! when it waits on a descriptor of its own), or to the loop's own thread
//! when the worker has one idle executor; with every executor busy it stays
//! with its connection. Also runs to their end the responses of clients
//! that went away, so their iterables' `close()` runs.
//!
//! Runs on the worker's I/O thread; never touches Python.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Sender, TrySendError};

use super::conn::Active;
use super::exchange::InlineOut;
use super::task::Task;

/// How the loop hands work to the app: the executors' channel, or its own
/// thread.
pub struct Dispatcher<'a> {
    pub jobs: &'a Sender<Task>,
    /// Tasks handed over and not yet done.
    pub in_flight: &'a AtomicUsize,
    /// App threads of the worker: work goes out only while one is free, so
    /// a request never queues behind a busy thread (it waits, raw, in its
    /// connection, where it can still be passed to a sibling worker).
    pub threads: usize,
    /// The loop may run the app on its own thread (one executor).
    pub inline: bool,
    /// The bell of a kind that waits on its own descriptor; `dispatch`
    /// marks it due (`bell_due`) and the loop rings it once its pass has
    /// handed out all it had (`ring_due`): the kind wakes once for the
    /// pass's requests, instead of for the first of them while the loop
    /// still reads the rest.
    pub bell: Option<&'a dyn super::task::Bell>,
    /// A task was queued since the bell was last rung.
    pub bell_due: &'a Cell<bool>,
    /// The task the loop thread is to run itself, set by `dispatch`; the
    /// loop stops its pass and runs it (`IoLoop::turn`).
    pub inline_task: &'a RefCell<Option<Task>>,
    /// Set when work found every executor busy: the connection waits for
    /// one (the loop queues it).
    pub wants_executor: Cell<bool>,
    /// Paused responses of connections that went away, still to be run to
    /// their end (their iterable's `close()`); the loop retries them.
    pub orphans: &'a RefCell<Vec<Task>>,
    /// How long a client has to take output.
    pub io_timeout: std::time::Duration,
}

impl<'a> Dispatcher<'a> {
    /// From the loop's parts (not a method of the loop, so a connection's
    /// step can borrow them next to the connection).
    pub(super) fn of_loop(
        jobs: &'a Sender<Task>,
        cfg: &'a super::io_loop::LoopConfig,
        inline_task: &'a RefCell<Option<Task>>,
        orphans: &'a RefCell<Vec<Task>>,
        bell_due: &'a Cell<bool>,
    ) -> Dispatcher<'a> {
        Dispatcher {
            jobs,
            in_flight: &cfg.in_flight,
            threads: cfg.threads,
            inline: cfg.inline,
            bell: cfg.bell.as_deref(),
            bell_due,
            inline_task,
            wants_executor: Cell::new(false),
            orphans,
            io_timeout: cfg.io_timeout,
        }
    }

    /// Every app thread is taken.
    pub fn all_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) >= self.threads
    }
}

/// Ring the kind's bell if tasks were queued since it last rang.
pub fn ring_due(bell: Option<&dyn super::task::Bell>, due: &Cell<bool>) {
    if due.replace(false) {
        if let Some(bell) = bell {
            bell.tasks();
        }
    }
}

/// Hand a task to a free executor, or to the loop thread when it may run
/// it (one executor, idle; `inline_ok` says the connection allows it).
/// Returns the task when no executor is free (`Some`), or `None` when the
/// executors are gone.
pub(super) fn dispatch(task: Task, ctx: &Dispatcher<'_>, inline_ok: Option<InlineOut>) -> Result<(), Option<Task>> {
    let busy = ctx.in_flight.load(Ordering::Acquire);
    if busy >= ctx.threads {
        ctx.wants_executor.set(true);
        return Err(Some(task));
    }
    if let Some(out) = inline_ok.filter(|_| ctx.inline && busy == 0 && ctx.inline_task.borrow().is_none()) {
        {
            let exchange = task.exchange();
            let mut st = exchange.lock();
            st.inline = Some(out);
            // The loop thread itself runs it: no notices needed.
            st.loop_notified = true;
        }
        ctx.in_flight.fetch_add(1, Ordering::AcqRel);
        *ctx.inline_task.borrow_mut() = Some(task);
        return Ok(());
    }
    ctx.in_flight.fetch_add(1, Ordering::AcqRel);
    match ctx.jobs.try_send(task) {
        Ok(()) => {
            // A kind that waits elsewhere than in the channel is told, at
            // the end of the pass.
            if ctx.bell.is_some() {
                ctx.bell_due.set(true);
            }
            Ok(())
        }
        Err(TrySendError::Full(task)) => {
            ctx.in_flight.fetch_sub(1, Ordering::AcqRel);
            ctx.wants_executor.set(true);
            Err(Some(task))
        }
        Err(TrySendError::Disconnected(_)) => {
            ctx.in_flight.fetch_sub(1, Ordering::AcqRel);
            Err(None)
        }
    }
}

/// A connection is going away in the middle of a request: a response that
/// paused (or waits to be resumed) is run to its end anyway, with the
/// client marked gone, so its iterable's `close()` runs.
pub fn abandon(a: &mut Active, ctx: &Dispatcher<'_>) {
    let parked = {
        let mut st = a.exchange.lock();
        st.client_gone = true;
        a.exchange.wake_executor(&st);
        st.parked.take()
    };
    match (a.take_pending(), parked) {
        (Some(Task::Resume(p)), _) | (_, Some(p)) => finish_orphan(Task::Resume(p), ctx),
        _ => {}
    }
}

/// Run an orphaned paused response (its client is gone) to its end: here
/// when the loop may run the app, else on an executor, else later (kept in
/// `orphans`). It writes nothing, so the loop thread needs no socket for it.
pub fn finish_orphan(task: Task, ctx: &Dispatcher<'_>) {
    if let Err(Some(task)) = dispatch(task, ctx, Some(InlineOut { fd: -1, timeout: ctx.io_timeout, early: false })) {
        ctx.orphans.borrow_mut().push(task);
    }
}
