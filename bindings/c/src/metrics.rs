//! Metric handles and recording, through a monitor's registry.
//!
//! A handle is resolved once (by name and labels) and then records without any lookup, lock or
//! allocation after its first record from a thread; recording never fails: a NaN or an
//! infinity is dropped and counted in `vigilo_dropped_values_total{metric}`. Handles are
//! independent of the monitor's life: they stay valid (and keep their series alive) until
//! freed, and may be used from any thread.

use std::ffi::c_char;

use vigilo::{Counter, Gauge, Histogram, MetricError};

use crate::args::non_null;
use crate::error::{Failure, fail, guard, quietly, vigilo_status};
use crate::monitor::{lookup, vigilo_monitor};
use crate::strings::{c_labels, c_str, vigilo_label};

/// A counter series. Opaque.
pub struct vigilo_counter(pub(crate) Counter);
/// A gauge series. Opaque.
pub struct vigilo_gauge(Gauge);
/// A histogram series. Opaque.
pub struct vigilo_histogram(Histogram);

/// The pointer arguments of a series lookup, before any other work.
fn check_pointers(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
) -> Result<(), Failure> {
    non_null(monitor, "monitor")?;
    non_null(name, "name")?;
    if labels_len > 0 {
        non_null(labels, "labels")?;
    }
    Ok(())
}

fn metric_failure(e: MetricError) -> Failure {
    fail(vigilo_status::InvalidArgument, e.to_string())
}

/// Resolves `name{labels}` in the monitor's registry with `make`, and hands the result to C.
///
/// # Safety
/// As for the public functions below.
unsafe fn handle<T>(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    out: *mut *mut T,
    make: impl FnOnce(&vigilo::Registry, &str, &[(&str, &str)]) -> Result<T, MetricError>,
) -> vigilo_status {
    guard(|| {
        check_pointers(monitor, name, labels, labels_len)?;
        non_null(out, "out")?;
        let m = lookup(monitor)?;
        // SAFETY: per the caller's contract.
        let name = unsafe { c_str(name, "name") }?;
        // SAFETY: per the caller's contract.
        let labels = unsafe { c_labels(labels, labels_len, "labels") }?;
        let h = make(m.registry(), name, &labels).map_err(metric_failure)?;
        // SAFETY: non-null and writable per the caller's contract.
        unsafe { out.write(Box::into_raw(Box::new(h))) };
        Ok(())
    })
}

/// The counter `name{labels}` of the monitor's registry, created if new (before or after the
/// monitor starts). Fails with `VIGILO_STATUS_INVALID_ARGUMENT` for an invalid name or label,
/// a name registered as another kind, or the series limit. `*out` is the caller's: free it with
/// [`vigilo_counter_free`].
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`; `name` and every label's strings are
/// NUL-terminated; `labels` points to `labels_len` labels (or is NULL with 0); `out` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_counter(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    out: *mut *mut vigilo_counter,
) -> vigilo_status {
    // SAFETY: this function's contract is `handle`'s.
    unsafe {
        handle(monitor, name, labels, labels_len, out, |r, n, l| {
            r.counter(n, l).map(vigilo_counter)
        })
    }
}

/// The gauge `name{labels}` (starting at 0), as [`vigilo_monitor_counter`].
///
/// # Safety
/// As [`vigilo_monitor_counter`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_gauge(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    out: *mut *mut vigilo_gauge,
) -> vigilo_status {
    // SAFETY: this function's contract is `handle`'s.
    unsafe {
        handle(monitor, name, labels, labels_len, out, |r, n, l| {
            r.gauge(n, l).map(vigilo_gauge)
        })
    }
}

/// The histogram `name{labels}`, as [`vigilo_monitor_counter`].
///
/// # Safety
/// As [`vigilo_monitor_counter`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_histogram(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    out: *mut *mut vigilo_histogram,
) -> vigilo_status {
    // SAFETY: this function's contract is `handle`'s.
    unsafe {
        handle(monitor, name, labels, labels_len, out, |r, n, l| {
            r.histogram(n, l).map(vigilo_histogram)
        })
    }
}

/// Adds `n` to the counter. Lock-free; cannot fail. NULL is a no-op.
///
/// # Safety
/// `counter` is NULL or a live handle from [`vigilo_monitor_counter`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_counter_add(counter: *const vigilo_counter, n: u64) {
    // SAFETY: NULL or a live handle, per the contract.
    if let Some(c) = unsafe { counter.as_ref() } {
        c.0.add(n);
    }
}

/// The counter's total (0 for NULL).
///
/// # Safety
/// As [`vigilo_counter_add`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_counter_value(counter: *const vigilo_counter) -> u64 {
    // SAFETY: as above.
    unsafe { counter.as_ref() }.map_or(0, |c| c.0.value())
}

/// Frees a counter handle (the series stays in the registry). NULL is a no-op.
///
/// # Safety
/// `counter` is NULL or a handle from [`vigilo_monitor_counter`] not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_counter_free(counter: *mut vigilo_counter) {
    if !counter.is_null() {
        // SAFETY: from `Box::into_raw` in `handle`, freed once per the contract.
        quietly(|| drop(unsafe { Box::from_raw(counter) }));
    }
}

/// Sets the gauge; a NaN or infinity is dropped and counted. Lock-free. NULL is a no-op.
///
/// # Safety
/// `gauge` is NULL or a live handle from [`vigilo_monitor_gauge`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_gauge_set(gauge: *const vigilo_gauge, value: f64) {
    // SAFETY: NULL or a live handle, per the contract.
    if let Some(g) = unsafe { gauge.as_ref() } {
        g.0.set(value);
    }
}

/// Adds `delta` to the gauge (dropped and counted if it or the result is not finite).
///
/// # Safety
/// As [`vigilo_gauge_set`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_gauge_add(gauge: *const vigilo_gauge, delta: f64) {
    // SAFETY: as above.
    if let Some(g) = unsafe { gauge.as_ref() } {
        g.0.add(delta);
    }
}

/// The gauge's value (NaN for NULL).
///
/// # Safety
/// As [`vigilo_gauge_set`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_gauge_value(gauge: *const vigilo_gauge) -> f64 {
    // SAFETY: as above.
    unsafe { gauge.as_ref() }.map_or(f64::NAN, |g| g.0.value())
}

/// Frees a gauge handle. NULL is a no-op.
///
/// # Safety
/// `gauge` is NULL or a handle from [`vigilo_monitor_gauge`] not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_gauge_free(gauge: *mut vigilo_gauge) {
    if !gauge.is_null() {
        // SAFETY: from `Box::into_raw` in `handle`, freed once per the contract.
        quietly(|| drop(unsafe { Box::from_raw(gauge) }));
    }
}

/// Records one observation; a NaN or infinity is dropped and counted. Lock-free. NULL is a
/// no-op.
///
/// # Safety
/// `histogram` is NULL or a live handle from [`vigilo_monitor_histogram`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_histogram_record(histogram: *const vigilo_histogram, value: f64) {
    // SAFETY: NULL or a live handle, per the contract.
    if let Some(h) = unsafe { histogram.as_ref() } {
        h.0.record(value);
    }
}

/// The number of observations recorded (0 for NULL).
///
/// # Safety
/// As [`vigilo_histogram_record`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_histogram_count(histogram: *const vigilo_histogram) -> u64 {
    // SAFETY: as above.
    unsafe { histogram.as_ref() }.map_or(0, |h| h.0.snapshot().count())
}

/// Frees a histogram handle. NULL is a no-op.
///
/// # Safety
/// `histogram` is NULL or a handle from [`vigilo_monitor_histogram`] not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_histogram_free(histogram: *mut vigilo_histogram) {
    if !histogram.is_null() {
        // SAFETY: from `Box::into_raw` in `handle`, freed once per the contract.
        quietly(|| drop(unsafe { Box::from_raw(histogram) }));
    }
}

/// Runs `record` on the monitor's registry with the name and labels from C.
///
/// # Safety
/// As for the public functions below.
unsafe fn by_name(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    record: impl FnOnce(&vigilo::Registry, &str, &[(&str, &str)]) -> Result<(), MetricError>,
) -> vigilo_status {
    guard(|| {
        check_pointers(monitor, name, labels, labels_len)?;
        let m = lookup(monitor)?;
        // SAFETY: per the caller's contract.
        let name = unsafe { c_str(name, "name") }?;
        // SAFETY: per the caller's contract.
        let labels = unsafe { c_labels(labels, labels_len, "labels") }?;
        record(m.registry(), name, &labels).map_err(metric_failure)
    })
}

/// Adds `n` to the counter `name{labels}` without a handle (a lookup each time, no allocation
/// once the series exists).
///
/// # Safety
/// As [`vigilo_monitor_counter`], without `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_add_counter(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    n: u64,
) -> vigilo_status {
    // SAFETY: this function's contract is `by_name`'s.
    unsafe {
        by_name(monitor, name, labels, labels_len, |r, m, l| {
            r.add_counter(m, l, n)
        })
    }
}

/// Sets the gauge `name{labels}` without a handle; a NaN or infinity is refused with
/// `VIGILO_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As [`vigilo_monitor_add_counter`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_set_gauge(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    value: f64,
) -> vigilo_status {
    // SAFETY: this function's contract is `by_name`'s.
    unsafe {
        by_name(monitor, name, labels, labels_len, |r, m, l| {
            r.set_gauge(m, l, value)
        })
    }
}

/// Records into the histogram `name{labels}` without a handle; a NaN or infinity is refused
/// with `VIGILO_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As [`vigilo_monitor_add_counter`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_record_histogram(
    monitor: *const vigilo_monitor,
    name: *const c_char,
    labels: *const vigilo_label,
    labels_len: usize,
    value: f64,
) -> vigilo_status {
    // SAFETY: this function's contract is `by_name`'s.
    unsafe {
        by_name(monitor, name, labels, labels_len, |r, m, l| {
            r.record_histogram(m, l, value)
        })
    }
}
