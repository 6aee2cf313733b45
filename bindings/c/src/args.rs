//! Plain arguments from C, validated at the boundary: pointers that must not be NULL, flags,
//! durations and lengths. Every value a C caller can pass is defined here; an unexpected one
//! is refused with a status that names the argument.

use std::ffi::c_int;
use std::time::Duration;

use crate::error::{Failure, fail, vigilo_status};

/// `VIGILO_STATUS_NULL_ARGUMENT` naming `what` if `ptr` is NULL.
pub(crate) fn non_null<T>(ptr: *const T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(fail(vigilo_status::NullArgument, format!("{what} is NULL")));
    }
    Ok(())
}

/// A flag: 0 is false, 1 is true; anything else is refused (`VIGILO_STATUS_INVALID_ARGUMENT`).
pub(crate) fn flag(value: c_int, what: &str) -> Result<bool, Failure> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(fail(
            vigilo_status::InvalidArgument,
            format!("{what} is {other}; a flag is 0 or 1"),
        )),
    }
}

/// The longest duration taken from C: 3660 days (about ten years). Longer ones are taken as this (a
/// timeout or deadline of `UINT64_MAX` means "as long as it takes" without overflowing a
/// clock).
pub const VIGILO_MAX_MILLIS: u64 = 316_224_000_000;

/// `ms` milliseconds, at most [`VIGILO_MAX_MILLIS`].
pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms.min(VIGILO_MAX_MILLIS))
}

/// Refuses `n` elements of `size` bytes that could not be one object in memory (more than
/// `isize::MAX` bytes), and a pointer not aligned for its elements.
pub(crate) fn array<T>(ptr: *const T, n: usize, what: &str) -> Result<(), Failure> {
    let fits = n
        .checked_mul(std::mem::size_of::<T>())
        .is_some_and(|bytes| isize::try_from(bytes).is_ok());
    if !fits {
        return Err(fail(
            vigilo_status::InvalidArgument,
            format!("{what}: a length of {n} cannot be right"),
        ));
    }
    if !ptr.is_aligned() {
        return Err(fail(
            vigilo_status::InvalidArgument,
            format!("{what} is not aligned for its type"),
        ));
    }
    Ok(())
}
