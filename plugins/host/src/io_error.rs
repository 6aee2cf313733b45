//! What a guest learns of a host-side I/O error: its message, never the host's internals.
//!
//! A failed stream operation (a response body cut short, a timeout while reading it) reaches
//! the guest as a `wasi:io/error` resource, whose `to-debug-string` wasmtime-wasi implements
//! with the error's `Debug` text. That text carries the host's Rust backtrace, with its source
//! file paths, whenever `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` is set in the host's
//! environment. This module replaces that one function in the linker: the guest gets the
//! error's message and its causes (`{:#}`), made inert and cut to the guest-text limit, and the
//! host's log keeps the full error if anyone needs it.

use wasmtime::component::{Linker, Resource};

use crate::state::HostState;

/// The `wasi:io` version wasmtime-wasi links (guests importing any 0.2.x reach it by semver).
const ERROR_INTERFACE: &str = "wasi:io/error@0.2.12";
const TO_DEBUG_STRING: &str = "[method]error.to-debug-string";

/// Replaces `wasi:io/error.to-debug-string` in `linker` (which must already hold wasmtime-wasi's
/// imports) with one that tells the guest the error's message only.
pub(crate) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut error = linker.instance(ERROR_INTERFACE)?;
    error.func_wrap(
        TO_DEBUG_STRING,
        |mut cx, (err,): (Resource<wasmtime::Error>,)| {
            let state: &mut HostState = cx.data_mut();
            let e = state.resource_table().get(&err)?;
            Ok((text(e),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The text a guest is given for a host error: its message and causes on one line, without a
/// backtrace (`Display`, never `Debug`), made inert and cut.
pub(crate) fn text(e: &wasmtime::Error) -> String {
    crate::limits::head(format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_has_no_backtrace_even_when_one_was_captured() {
        let e = wasmtime::Error::msg("connection reset").context("reading the response body");
        let t = text(&e);
        assert_eq!(t, "reading the response body: connection reset");
        assert!(!t.contains("backtrace") && !t.contains(".rs:"), "{t}");
    }
}
