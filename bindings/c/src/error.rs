//! Status codes, the thread's last error message, and the boundary guard that turns a Rust
//! error or a caught panic into both.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
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

impl vigilo_status {
    /// Every status, in the order of their values.
    const ALL: [vigilo_status; 11] = [
        vigilo_status::Ok,
        vigilo_status::NullArgument,
        vigilo_status::InvalidUtf8,
        vigilo_status::InvalidArgument,
        vigilo_status::Config,
        vigilo_status::Io,
        vigilo_status::State,
        vigilo_status::StaleHandle,
        vigilo_status::NotFound,
        vigilo_status::Monitor,
        vigilo_status::Panic,
    ];

    /// The status with value `value`, if there is one.
    pub(crate) fn from_int(value: c_int) -> Option<vigilo_status> {
        Self::ALL.into_iter().find(|s| *s as c_int == value)
    }

    /// Its short, static description.
    fn name(self) -> &'static CStr {
        match self {
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
    }
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

/// The most a last-error message holds, in bytes (longer ones keep their start and end).
pub const VIGILO_ERROR_MAX: usize = 4096;

/// `message`, cut to at most [`VIGILO_ERROR_MAX`] bytes: its start and its end, and between
/// them how much was left out.
fn bounded(message: &str) -> String {
    if message.len() <= VIGILO_ERROR_MAX {
        return message.to_owned();
    }
    let keep = VIGILO_ERROR_MAX / 2 - 64;
    let mut head = keep;
    while !message.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = message.len() - keep;
    while !message.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{} [… {} bytes left out …] {}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

/// Records `message` as this thread's last error (bounded: see [`VIGILO_ERROR_MAX`]).
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(bounded(message).replace('\0', "\u{fffd}")).unwrap_or_default();
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

/// The message of the last failed call on the calling thread (an empty string if none failed),
/// at most `VIGILO_ERROR_MAX` bytes.
///
/// The string belongs to vigilo and stays valid until the next failing call on this thread;
/// copy it to keep it. Never NULL. Thread safety: each thread has its own.
#[unsafe(no_mangle)]
pub extern "C" fn vigilo_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A short, static description of a status code (`"null argument"`, …); `"unknown status"`
/// for a value that is not a `vigilo_status`. Never NULL.
///
/// Takes an `int`, not the enum: any integer a C caller passes is defined here.
#[unsafe(no_mangle)]
pub extern "C" fn vigilo_status_name(status: c_int) -> *const c_char {
    vigilo_status::from_int(status)
        .map_or(c"unknown status", vigilo_status::name)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_integer_has_a_status_name() {
        // SAFETY: static NUL-terminated strings.
        let name = |v| {
            unsafe { CStr::from_ptr(vigilo_status_name(v)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(name(0), "ok");
        assert_eq!(name(10), "internal error");
        for v in [11, 99, -1, c_int::MIN, c_int::MAX] {
            assert_eq!(name(v), "unknown status");
        }
        for s in vigilo_status::ALL {
            assert_eq!(vigilo_status::from_int(s as c_int), Some(s));
        }
    }

    #[test]
    fn last_error_messages_are_bounded() {
        let long = format!("{}é{}", "a".repeat(10_000_000), "z".repeat(100));
        let b = bounded(&long);
        assert!(b.len() <= VIGILO_ERROR_MAX, "{}", b.len());
        assert!(b.starts_with("aaa") && b.ends_with("zzz"));
        assert_eq!(bounded("short"), "short");
    }
}
