//! The threads that call into C.
//!
//! Every C callback (an event callback, a C channel's `deliver`) runs on a *runner*: a thread
//! created with `pthread_create` (not `std::thread`), whose only Rust frames while the callback
//! runs are plain old frames: no value with a destructor is live across the call and no
//! `catch_unwind` is above it. So a callback that ends its thread (`pthread_exit`, or Python's
//! finalisation ending a thread that wants the interpreter) unwinds through C frames and these
//! plain frames only, nothing catches the forced unwind (which glibc answers with "FATAL:
//! exception not rethrown" and an abort), and the thread ends. Its thread-local exit notice
//! then tells the waiting caller that the call ended without returning.
//!
//! The function pointer types are `extern "C-unwind"`: a forced unwind through an `extern "C"`
//! call would reach Rust's abort-on-unwind guard instead of passing.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::views::{DeliverFn, EventFn, vigilo_alert, vigilo_event};

/// One call into C, with its arguments (every pointer valid until the call returns: the caller
/// of [`Runner::run`] keeps them alive while it waits).
#[derive(Clone, Copy)]
pub(crate) enum Call {
    /// An event callback.
    Event {
        callback: EventFn,
        user: *mut c_void,
        event: *const vigilo_event,
    },
    /// A C channel's delivery.
    Deliver {
        deliver: DeliverFn,
        user: *mut c_void,
        alert: *const vigilo_alert,
        message: *mut c_char,
        capacity: usize,
    },
}

impl Call {
    /// Calls into C. Plain: no destructor is pending in this frame while C runs.
    ///
    /// # Safety
    /// The pointers are valid for the callback, per [`Call`].
    unsafe fn invoke(self) -> c_int {
        match self {
            Call::Event {
                callback,
                user,
                event,
            } => {
                // SAFETY: per this function's contract.
                unsafe { callback(user, event) };
                0
            }
            Call::Deliver {
                deliver,
                user,
                alert,
                message,
                capacity,
            } => {
                // SAFETY: per this function's contract.
                unsafe { deliver(user, alert, message, capacity) }
            }
        }
    }
}

/// A call handed to the runner: the call and the monitor it belongs to.
#[derive(Clone, Copy)]
struct Posted {
    call: Call,
    token: usize,
}

// SAFETY: the pointers in a posted call are only used by the runner thread while the posting
// thread waits for the result and keeps them alive; the header tells callers that callbacks
// run on vigilo's threads (user data must be usable there).
unsafe impl Send for Posted {}

/// The runner thread ended a call without returning from it (the callback ended the thread).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

#[derive(Default)]
struct Slot {
    call: Option<Posted>,
    result: Option<c_int>,
    /// The owner asks the thread to end.
    quit: bool,
    /// The thread has ended (returned, or was ended by a callback).
    gone: bool,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Slot)) {
        f(&mut self.slot.lock());
        self.changed.notify_all();
    }
}

thread_local! {
    /// The monitor whose callback this thread runs now (0: none).
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
    /// Set on a runner thread: tells its owner when the thread ends, however it ends.
    static EXIT_NOTICE: ExitNotice = const { ExitNotice(Cell::new(std::ptr::null())) };
}

/// True if the calling thread is inside a callback of monitor `token`.
pub(crate) fn inside_callback_of(token: usize) -> bool {
    IN_CALLBACK.try_with(Cell::get).is_ok_and(|t| t == token)
}

/// Runs as a thread-local destructor when a runner thread ends, after a `pthread_exit` too
/// (glibc runs thread-local destructors after the unwind, in normal context).
struct ExitNotice(Cell<*const Shared>);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let shared = self.0.get();
        if !shared.is_null() {
            // SAFETY: the owner keeps its `Arc<Shared>` until `pthread_join` returned, and
            // this runs before the thread can be joined.
            unsafe { &*shared }.update(|s| s.gone = true);
        }
    }
}

/// Waits for the next call (None: quit). Marks the thread as inside a callback of its monitor.
///
/// # Safety
/// `shared` is the runner's shared state, alive for the thread's life.
unsafe fn next(shared: *const Shared) -> Option<Call> {
    // SAFETY: per this function's contract.
    let shared = unsafe { &*shared };
    let _ = EXIT_NOTICE.try_with(|n| n.0.set(shared));
    let mut slot = shared.slot.lock();
    loop {
        if slot.quit {
            return None;
        }
        if let Some(posted) = slot.call.take() {
            let _ = IN_CALLBACK.try_with(|c| c.set(posted.token));
            return Some(posted.call);
        }
        shared.changed.wait(&mut slot);
    }
}

/// Hands the result back and clears the callback mark.
///
/// # Safety
/// As [`next`].
unsafe fn finish(shared: *const Shared, result: c_int) {
    let _ = IN_CALLBACK.try_with(|c| c.set(0));
    // SAFETY: per this function's contract.
    unsafe { &*shared }.update(|s| s.result = Some(result));
}

/// The runner thread. `extern "C-unwind"` and a plain frame: a forced unwind started by a
/// callback passes through it to the thread's start, which ends the thread.
extern "C-unwind" fn runner_main(arg: *mut c_void) -> *mut c_void {
    let shared = arg.cast_const().cast::<Shared>();
    // SAFETY: the owner keeps `shared` alive until it has joined this thread.
    while let Some(call) = unsafe { next(shared) } {
        // SAFETY: the posting thread keeps the call's pointers alive until it has the result
        // (or learnt that this thread ended).
        let result = unsafe { call.invoke() };
        // SAFETY: as for `next`.
        unsafe { finish(shared, result) };
    }
    std::ptr::null_mut()
}

unsafe extern "C" {
    /// `pthread_create` with a start routine that may be unwound through (libc's binding
    /// declares it `extern "C"`).
    #[link_name = "pthread_create"]
    fn pthread_create_unwinding(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        start: extern "C-unwind" fn(*mut c_void) -> *mut c_void,
        arg: *mut c_void,
    ) -> c_int;
}

/// A thread that runs calls into C, one at a time.
pub(crate) struct Runner {
    shared: Arc<Shared>,
    thread: libc::pthread_t,
}

impl Runner {
    /// Starts a runner thread.
    pub(crate) fn spawn() -> std::io::Result<Runner> {
        let shared = Arc::new(Shared::default());
        let mut thread: libc::pthread_t = 0;
        // SAFETY: `thread` is writable; default attributes; `runner_main` matches the start
        // routine's C signature; `shared` outlives the thread (joined in `Drop` before the Arc
        // goes).
        let rc = unsafe {
            pthread_create_unwinding(
                &mut thread,
                std::ptr::null(),
                runner_main,
                Arc::as_ptr(&shared).cast_mut().cast(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(Runner { shared, thread })
    }

    /// Runs `call` on the runner thread for monitor `token` and waits until it returns, as long
    /// as that takes. `Err(Gone)` if the callback ended the thread instead (this runner is then
    /// spent: drop it).
    ///
    /// # Safety
    /// `call`'s function and pointers are valid for the call (they live until this returns).
    pub(crate) unsafe fn run(&self, token: usize, call: Call) -> Result<c_int, Gone> {
        let mut slot = self.shared.slot.lock();
        if slot.gone {
            return Err(Gone);
        }
        slot.result = None;
        slot.call = Some(Posted { call, token });
        self.shared.changed.notify_all();
        loop {
            if let Some(result) = slot.result.take() {
                return Ok(result);
            }
            if slot.gone {
                return Err(Gone);
            }
            self.shared.changed.wait(&mut slot);
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.shared.update(|s| s.quit = true);
        // SAFETY: `thread` is this runner's thread, joined once, here. A runner is never
        // dropped on its own thread: it is owned by the thread that posts calls to it.
        unsafe {
            libc::pthread_join(self.thread, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C-unwind" fn count(user: *mut c_void, _event: *const vigilo_event) {
        // SAFETY: the test passes a live AtomicUsize.
        let n = unsafe { &*user.cast::<std::sync::atomic::AtomicUsize>() };
        // Relaxed: read after `run` returned, which synchronised through the slot's mutex.
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    unsafe extern "C-unwind" fn exit_thread(_user: *mut c_void, _event: *const vigilo_event) {
        // SAFETY: ends this (runner) thread; the test checks that the runner notices.
        unsafe { libc::pthread_exit(std::ptr::null_mut()) }
    }

    fn event(callback: EventFn, user: *mut c_void) -> Call {
        Call::Event {
            callback,
            user,
            event: std::ptr::null(),
        }
    }

    #[test]
    fn a_runner_runs_calls_in_turn_and_a_callback_ending_its_thread_is_reported() {
        let n = std::sync::atomic::AtomicUsize::new(0);
        let user = std::ptr::from_ref(&n).cast_mut().cast();
        let runner = Runner::spawn().unwrap();
        for _ in 0..3 {
            // SAFETY: `count` takes the live counter.
            assert_eq!(unsafe { runner.run(1, event(count, user)) }.ok(), Some(0));
        }
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 3);
        // SAFETY: `exit_thread` uses no argument.
        assert!(unsafe { runner.run(1, event(exit_thread, user)) }.is_err());
        // SAFETY: as above.
        assert!(unsafe { runner.run(1, event(count, user)) }.is_err());
        drop(runner); // joins the ended thread
    }
}
