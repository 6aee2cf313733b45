//! Strings and labels coming in from C, and strings going out.

use std::ffi::{CStr, CString, c_char};

use crate::args::array;
use crate::error::{Failure, fail, quietly, vigilo_status};

/// One label: a name and a value, both NUL-terminated UTF-8.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct vigilo_label {
    /// The label's name (`[a-zA-Z_][a-zA-Z0-9_]*`).
    pub name: *const c_char,
    /// Its value (any UTF-8).
    pub value: *const c_char,
}

/// A NUL-terminated UTF-8 string from C, borrowed.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the borrow.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(fail(vigilo_status::NullArgument, format!("{what} is NULL")));
    }
    // SAFETY: non-null, and NUL-terminated and alive by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        fail(
            vigilo_status::InvalidUtf8,
            format!("{what} is not UTF-8: {e}"),
        )
    })
}

/// `len` bytes of UTF-8 from C (not necessarily NUL-terminated), borrowed.
///
/// # Safety
/// `ptr` is NULL (then `len` must be 0) or points to `len` readable bytes that outlive the
/// borrow.
pub(crate) unsafe fn c_text<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        if len == 0 {
            return Ok("");
        }
        return Err(fail(vigilo_status::NullArgument, format!("{what} is NULL")));
    }
    array(ptr, len, what)?;
    // SAFETY: non-null, `len` readable bytes by the caller's contract (and a length that fits
    // one object).
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        fail(
            vigilo_status::InvalidUtf8,
            format!("{what} is not UTF-8: {e}"),
        )
    })
}

/// `n` labels from C.
///
/// # Safety
/// `labels` is NULL (then `n` must be 0) or points to `n` labels whose strings are valid as in
/// [`c_str`].
pub(crate) unsafe fn c_labels<'a>(
    labels: *const vigilo_label,
    n: usize,
    what: &str,
) -> Result<Vec<(&'a str, &'a str)>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if labels.is_null() {
        return Err(fail(
            vigilo_status::NullArgument,
            format!("{what} is NULL but its length is {n}"),
        ));
    }
    array(labels, n, what)?;
    // SAFETY: non-null, aligned, `n` labels by the caller's contract (a length that fits one
    // object).
    let labels = unsafe { std::slice::from_raw_parts(labels, n) };
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            // SAFETY: each label's strings are valid by the caller's contract.
            let name = unsafe { c_str(l.name, &format!("{what}[{i}].name")) }?;
            // SAFETY: as above.
            let value = unsafe { c_str(l.value, &format!("{what}[{i}].value")) }?;
            Ok((name, value))
        })
        .collect()
}

/// A C string for `s` (an interior NUL, impossible in a C string, becomes U+FFFD).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// Hands `s` to C: free it with [`vigilo_string_free`].
pub(crate) fn into_c(s: &str) -> *mut c_char {
    c_string(s).into_raw()
}

/// Writes `s` to `*out` for C (to be freed with [`vigilo_string_free`]).
///
/// # Safety
/// `out` is NULL or valid for a write.
pub(crate) unsafe fn give_string(out: *mut *mut c_char, s: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(fail(vigilo_status::NullArgument, "out is NULL"));
    }
    // SAFETY: non-null and writable by the caller's contract.
    unsafe { out.write(into_c(s)) };
    Ok(())
}

/// Frees a string vigilo returned (`*_json`, …). NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string vigilo returned and that was not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    quietly(|| {
        // SAFETY: `s` came from `CString::into_raw` (`into_c`) and is freed once.
        drop(unsafe { CString::from_raw(s) });
    });
}
