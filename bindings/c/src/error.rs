//! Status codes, the thread's last error message, and the boundary guard that turns a Rust
//! error or a caught panic into both.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a fallible function of the API returns. On anything but `VIGILO_STATUS_OK`,
/// [`vigilo_last_error`] gives the message, on the same thread.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum vigilo_status {
    /// Success.
    Ok = 0,
    /// A pointer argument the function needs was NULL.
    NullArgument = 1,
    /// A string was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An argument had a value the function cannot take (an invalid metric or label name, a
    /// name registered as another kind, the series limit reached, a zero duration …).
    InvalidArgument = 3,
    /// The configuration was refused; the message locates the problem (`name:line:column`).
    Config = 4,
    /// A file could not be read.
    Io = 5,
    /// The call does not fit the monitor's state: not started yet, already started, stopped, or
    /// destroying a monitor from inside one of its own callbacks.
    State = 6,
    /// The monitor handle was already destroyed (detected when it is; never relied upon).
    StaleHandle = 7,
    /// No incident or silence with that id, or no `[http]` endpoint.
    NotFound = 8,
    /// The monitor (evaluator, pipeline, plugin host) refused or failed; see the message.
    Monitor = 9,
    /// A bug in vigilo: a panic was caught at the boundary. The message says where.
    Panic = 10,
}

/// An error on its way to the caller.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: vigilo_status,
    pub(crate) message: String,
}

pub(crate) fn fail(status: vigilo_status, message: impl Into<String>) -> Failure {
    Failure {
        status,
        message: message.into(),
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\u{fffd}")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = text);
}

/// Runs `f` at the boundary: its error, or a panic it raised, becomes a status code and this
/// thread's last error message. Nothing unwinds into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> vigilo_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => vigilo_status::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            set_last_error(&format!("internal error (please report it): {what}"));
            vigilo_status::Panic
        }
    }
}

/// For the functions that cannot report an error (recording, freeing): runs `f`, and swallows
/// a panic rather than let it cross into C.
pub(crate) fn quietly(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// The message of the last failed call on the calling thread (an empty string if none failed).
///
/// The string belongs to vigilo and stays valid until the next failing call on this thread;
/// copy it to keep it. Never NULL. Thread safety: each thread has its own.
#[unsafe(no_mangle)]
pub extern "C" fn vigilo_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A short, static description of a status code (`"null argument"`, …). Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn vigilo_status_name(status: vigilo_status) -> *const c_char {
    match status {
        vigilo_status::Ok => c"ok",
        vigilo_status::NullArgument => c"null argument",
        vigilo_status::InvalidUtf8 => c"invalid UTF-8",
        vigilo_status::InvalidArgument => c"invalid argument",
        vigilo_status::Config => c"configuration error",
        vigilo_status::Io => c"I/O error",
        vigilo_status::State => c"wrong state",
        vigilo_status::StaleHandle => c"stale handle",
        vigilo_status::NotFound => c"not found",
        vigilo_status::Monitor => c"monitor error",
        vigilo_status::Panic => c"internal error",
    }
    .as_ptr()
}
