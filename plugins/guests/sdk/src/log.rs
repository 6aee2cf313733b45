//! Logging into the host's log, tagged there with the plugin's name. The host caps the length
//! of each message. Functions take a `&str`; the macros take `format!` arguments:
//!
//! ```ignore
//! vigilo_plugin_sdk::log::info!("posted to {url}: {}", response.status);
//! ```

use crate::bindings::channel::vigilo::plugin::log as raw;

/// A log level, from `Trace` to `Error`.
pub use raw::Level;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    raw::log(level, message);
}

/// Logs at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vigilo_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vigilo_log_trace { ($($arg:tt)+) => { $crate::__vigilo_log!(Trace, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __vigilo_log_debug { ($($arg:tt)+) => { $crate::__vigilo_log!(Debug, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __vigilo_log_info { ($($arg:tt)+) => { $crate::__vigilo_log!(Info, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __vigilo_log_warn { ($($arg:tt)+) => { $crate::__vigilo_log!(Warn, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __vigilo_log_error { ($($arg:tt)+) => { $crate::__vigilo_log!(Error, $($arg)+) }; }

/// `debug!("…", args)`: logs a `format!` message at debug level.
#[doc(inline)]
pub use crate::__vigilo_log_debug as debug;
/// `error!("…", args)`: logs a `format!` message at error level.
#[doc(inline)]
pub use crate::__vigilo_log_error as error;
/// `info!("…", args)`: logs a `format!` message at info level.
#[doc(inline)]
pub use crate::__vigilo_log_info as info;
/// `trace!("…", args)`: logs a `format!` message at trace level.
#[doc(inline)]
pub use crate::__vigilo_log_trace as trace;
/// `warn!("…", args)`: logs a `format!` message at warn level.
#[doc(inline)]
pub use crate::__vigilo_log_warn as warn;
