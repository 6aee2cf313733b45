//! The C API of vigilo (`include/vigilo.h`, generated from this crate by cbindgen): a monitor
//! created from TOML, metric handles, event callbacks, channels implemented in C, incidents.
//!
//! Conventions, everywhere:
//! - Handles are opaque pointers; whoever receives one owns it and frees it with the matching
//!   `*_free` function. Freeing NULL is a no-op.
//! - Every fallible function returns a [`vigilo_status`]; on failure [`vigilo_last_error`]
//!   gives the message (on the calling thread, until its next failing call).
//! - Every pointer argument is checked for NULL, every string for UTF-8; strings are
//!   NUL-terminated except where a length is taken (`vigilo_monitor_new`'s TOML).
//! - No panic crosses the boundary: one is caught and returned as `VIGILO_STATUS_PANIC`.
//! - Every function may be called from any thread; callbacks run on vigilo's threads and may
//!   call back into the API, except to stop or destroy their own monitor (refused: that would
//!   wait for themselves). A thread-bound counter ([`vigilo_counter_local`]) counts exactly from
//!   any thread too; only on the thread that made it is its add inline in the header.
//! - Strings vigilo returns (`*_json`) are freed with [`vigilo_string_free`].

#![allow(non_camel_case_types)] // the C names of the API (`vigilo_monitor` …) are the Rust names

mod args;
mod callbacks;
mod error;
mod local;
mod metrics;
mod monitor;
mod queries;
mod runner;
mod strings;
mod views;

pub use args::VIGILO_MAX_MILLIS;
pub use error::{VIGILO_ERROR_MAX, vigilo_last_error, vigilo_status, vigilo_status_name};
pub use local::*;
pub use metrics::*;
pub use monitor::*;
pub use queries::*;
pub use strings::{vigilo_label, vigilo_string_free};
pub use views::{
    VIGILO_DELIVERED, VIGILO_DELIVERY_PERMANENT, VIGILO_DELIVERY_RETRYABLE,
    VIGILO_MESSAGE_CAPACITY, vigilo_alert, vigilo_deliver_fn, vigilo_event, vigilo_event_callback,
    vigilo_free_fn,
};

use std::ffi::c_char;

/// The major version of this header and library.
pub const VIGILO_VERSION_MAJOR: u32 = 0;
/// The minor version.
pub const VIGILO_VERSION_MINOR: u32 = 1;
/// The patch version.
pub const VIGILO_VERSION_PATCH: u32 = 0;

/// The library's version, `"MAJOR.MINOR.PATCH"` (compare with the `VIGILO_VERSION_*` macros
/// of the header compiled against). Static; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn vigilo_version() -> *const c_char {
    static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"",
    };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_macros_match_the_package() {
        let v = format!(
            "{}.{}.{}",
            super::VIGILO_VERSION_MAJOR,
            super::VIGILO_VERSION_MINOR,
            super::VIGILO_VERSION_PATCH
        );
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        // SAFETY: a static NUL-terminated string.
        let lib = unsafe { std::ffi::CStr::from_ptr(super::vigilo_version()) };
        assert_eq!(lib.to_str().ok(), Some(v.as_str()));
    }
}
