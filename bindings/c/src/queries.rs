//! Asking a running monitor: the status board, coverage, incidents and history as JSON, and
//! acting on incidents: acknowledge, silence.

use std::ffi::{c_char, c_int};

use vigilo::pipeline::{AckRequest, HistoryQuery, IncidentId, SilenceId, SilenceRequest};

use crate::args::{flag, millis, non_null};
use crate::error::{Failure, fail, guard, vigilo_status};
use crate::monitor::{lookup, monitor_failure, vigilo_monitor};
use crate::strings::{c_labels, c_str, give_string, vigilo_label};

/// The running monitor's status board.
fn status(monitor: *const vigilo_monitor) -> Result<vigilo::monitor::MonitorStatus, Failure> {
    lookup(monitor)?
        .running()?
        .status()
        .map_err(monitor_failure)
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The status board as JSON: every item worst first, open incidents, silences, coverage and
/// the pipeline's counters (the fields of `vigilo::monitor::MonitorStatus`). `*out` is the
/// caller's: free it with `vigilo_string_free`.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_status_json(
    monitor: *const vigilo_monitor,
    out: *mut *mut c_char,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(out, "out")?;
        let status = status(monitor)?;
        // SAFETY: per this function's contract.
        unsafe { give_string(out, &status.to_json()) }
    })
}

/// Where the monitor's `[http]` endpoint (Prometheus exposition at `/metrics`, status board at
/// `/`) listens, as `host:port`: the port the system chose when the configuration says 0.
/// `VIGILO_STATUS_NOT_FOUND` if the configuration has no `[http]` section. Free `*out` with
/// `vigilo_string_free`.
///
/// # Safety
/// As [`vigilo_monitor_status_json`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_http_address(
    monitor: *const vigilo_monitor,
    out: *mut *mut c_char,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(out, "out")?;
        let address = lookup(monitor)?.running()?.http_address().ok_or_else(|| {
            fail(
                vigilo_status::NotFound,
                "the configuration has no [http] section: no endpoint runs",
            )
        })?;
        // SAFETY: per this function's contract.
        unsafe { give_string(out, &address.to_string()) }
    })
}

/// The coverage report as JSON: expected items no rule watches, rules whose items never
/// reported, rules no route reaches. Free `*out` with `vigilo_string_free`.
///
/// # Safety
/// As [`vigilo_monitor_status_json`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_coverage_json(
    monitor: *const vigilo_monitor,
    out: *mut *mut c_char,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(out, "out")?;
        let status = status(monitor)?;
        // SAFETY: per this function's contract.
        unsafe { give_string(out, &json(&status.coverage)) }
    })
}

/// The open incidents as a JSON array, oldest first. Free `*out` with `vigilo_string_free`.
///
/// # Safety
/// As [`vigilo_monitor_status_json`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_incidents_json(
    monitor: *const vigilo_monitor,
    out: *mut *mut c_char,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(out, "out")?;
        let incidents = lookup(monitor)?
            .running()?
            .incidents()
            .map_err(monitor_failure)?;
        // SAFETY: per this function's contract.
        unsafe { give_string(out, &json(&incidents)) }
    })
}

/// The latest `limit` events of the history (newest last) as a JSON array, only incident
/// `incident`'s if it is not 0, only rule `rule`'s if it is not NULL. Free `*out` with
/// `vigilo_string_free`.
///
/// # Safety
/// As [`vigilo_monitor_status_json`]; `rule` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_history_json(
    monitor: *const vigilo_monitor,
    incident: u64,
    rule: *const c_char,
    limit: usize,
    out: *mut *mut c_char,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(out, "out")?;
        let running = lookup(monitor)?.running()?;
        let mut query = HistoryQuery::latest(limit);
        if incident != 0 {
            query.incident = Some(IncidentId(incident));
        }
        if !rule.is_null() {
            // SAFETY: per this function's contract.
            query.rule = Some(unsafe { c_str(rule, "rule") }?.to_owned());
        }
        let events = running.history(query).map_err(monitor_failure)?;
        // SAFETY: per this function's contract.
        unsafe { give_string(out, &json(&events)) }
    })
}

/// Acknowledges open incident `incident` as `by` (required) with `comment` (NULL for none):
/// its repeats and escalations stop. It lapses after `expires_after_ms` milliseconds (0:
/// when the incident resolves); unless `sticky` (0 or 1; any other value is refused with
/// `VIGILO_STATUS_INVALID_ARGUMENT`), a rise in severity clears it.
/// `VIGILO_STATUS_NOT_FOUND` if no open incident has that number.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`; `by` is NUL-terminated, `comment` NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_ack(
    monitor: *const vigilo_monitor,
    incident: u64,
    by: *const c_char,
    comment: *const c_char,
    expires_after_ms: u64,
    sticky: c_int,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(by, "by")?;
        let sticky = flag(sticky, "sticky")?;
        let running = lookup(monitor)?.running()?;
        // SAFETY: per this function's contract.
        let by = unsafe { c_str(by, "by") }?.to_owned();
        let comment = if comment.is_null() {
            String::new()
        } else {
            // SAFETY: per this function's contract.
            unsafe { c_str(comment, "comment") }?.to_owned()
        };
        let request = AckRequest {
            by,
            comment,
            expires_after: (expires_after_ms > 0).then(|| millis(expires_after_ms)),
            sticky,
        };
        running
            .ack(IncidentId(incident), request)
            .map_err(monitor_failure)
    })
}

/// Removes incident `incident`'s acknowledgement. `VIGILO_STATUS_NOT_FOUND` if no open
/// incident has that number.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_unack(
    monitor: *const vigilo_monitor,
    incident: u64,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        let running = lookup(monitor)?.running()?;
        running.unack(IncidentId(incident)).map_err(monitor_failure)
    })
}

/// Silences, from now for `duration_ms` milliseconds, the alerts of rule `rule` (NULL: any
/// rule) whose labels match every one of `matchers` (each value in the configuration's form:
/// `"value"`, `"!=value"`, `"=~regex"`, `"!~regex"`), as `by` with `comment` (NULL for none).
/// Writes the silence's id to `*out_id` (may be NULL).
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`; `rule` and `comment` are NULL or
/// NUL-terminated, `by` NUL-terminated; `matchers` points to `matchers_len` labels (or is NULL
/// with 0); `out_id` is NULL or valid for a write.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the C signature: one argument per field
pub unsafe extern "C" fn vigilo_monitor_silence(
    monitor: *const vigilo_monitor,
    rule: *const c_char,
    matchers: *const vigilo_label,
    matchers_len: usize,
    duration_ms: u64,
    by: *const c_char,
    comment: *const c_char,
    out_id: *mut u64,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        non_null(by, "by")?;
        if matchers_len > 0 {
            non_null(matchers, "matchers")?;
        }
        let running = lookup(monitor)?.running()?;
        if duration_ms == 0 {
            return Err(fail(
                vigilo_status::InvalidArgument,
                "a silence needs a duration above zero",
            ));
        }
        // SAFETY: per this function's contract.
        let by = unsafe { c_str(by, "by") }?;
        let comment = if comment.is_null() {
            ""
        } else {
            // SAFETY: per this function's contract.
            unsafe { c_str(comment, "comment") }?
        };
        let mut request = SilenceRequest::new(by, comment, millis(duration_ms));
        if !rule.is_null() {
            // SAFETY: per this function's contract.
            request = request.rule(unsafe { c_str(rule, "rule") }?);
        }
        // SAFETY: per this function's contract.
        for (label, spec) in unsafe { c_labels(matchers, matchers_len, "matchers") }? {
            request = request.matcher(label, spec);
        }
        let id = running.silence(request).map_err(monitor_failure)?;
        if !out_id.is_null() {
            // SAFETY: non-null and writable per this function's contract.
            unsafe { out_id.write(id.0) };
        }
        Ok(())
    })
}

/// Ends silence `id` now. `VIGILO_STATUS_NOT_FOUND` if there is none.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_expire_silence(
    monitor: *const vigilo_monitor,
    id: u64,
) -> vigilo_status {
    guard(|| {
        non_null(monitor, "monitor")?;
        let running = lookup(monitor)?.running()?;
        running
            .expire_silence(SilenceId(id))
            .map_err(monitor_failure)
    })
}
