//! What C sees of vigilo's events and alerts, and the types of the functions it gives for them:
//! the `#[repr(C)]` views (every pointer valid only during the call), the callback types and the
//! `deliver` return values.

use std::ffi::{c_char, c_int, c_void};

use crate::strings::vigilo_label;

/// Frees the user data given with a callback, once no call of the callback can run any more.
/// It must return (not end its thread or `longjmp` out).
#[allow(non_camel_case_types)]
pub type vigilo_free_fn = Option<unsafe extern "C-unwind" fn(user_data: *mut c_void)>;

/// What the pipeline decided or observed: the `kind` names it (`"transition"`, `"delivered"`,
/// `"failed"`, `"action_finished"` …, the same names as in the history), the other fields are
/// NULL (or 0) when they do not apply. Every pointer is valid only during the callback.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct vigilo_event {
    /// The event's kind, snake_case.
    pub kind: *const c_char,
    /// Increasing number within the monitor's history.
    pub seq: u64,
    /// When, in nanoseconds since the Unix epoch.
    pub at_unix_nanos: i64,
    /// The incident concerned, or 0.
    pub incident: u64,
    /// The rule, or NULL.
    pub rule: *const c_char,
    /// The item (`rule{labels}`), or NULL.
    pub item: *const c_char,
    /// The severity concerned (`"warning"` …), or NULL.
    pub severity: *const c_char,
    /// The route, or NULL.
    pub route: *const c_char,
    /// The channel, or NULL.
    pub channel: *const c_char,
    /// The action, or NULL.
    pub action: *const c_char,
    /// Human-readable detail (an error, a reason, a summary); never NULL.
    pub detail: *const c_char,
    /// The whole event as JSON; never NULL.
    pub json: *const c_char,
}

/// Receives each event of a monitor, on a thread of vigilo's, in order.
#[allow(non_camel_case_types)]
pub type vigilo_event_callback =
    Option<unsafe extern "C-unwind" fn(user_data: *mut c_void, event: *const vigilo_event)>;

/// An alert as a C channel receives it. Every pointer is valid only during the call.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct vigilo_alert {
    /// The rule's name.
    pub rule: *const c_char,
    /// The metric watched.
    pub metric: *const c_char,
    /// The severity now (`"normal"` when resolved).
    pub severity: *const c_char,
    /// The severity before; for a resolve, the severity it resolved from.
    pub previous: *const c_char,
    /// The highest severity the item's problem reached.
    pub peak: *const c_char,
    /// `"firing"` or `"resolved"`.
    pub status: *const c_char,
    /// Whether `value` holds the value that decided it.
    pub has_value: bool,
    /// The value, when `has_value`.
    pub value: f64,
    /// Whether `threshold` holds the threshold crossed.
    pub has_threshold: bool,
    /// The threshold, when `has_threshold`.
    pub threshold: f64,
    /// When the item entered its previous state, in nanoseconds since the Unix epoch.
    pub since_unix_nanos: i64,
    /// When this change happened, in nanoseconds since the Unix epoch.
    pub at_unix_nanos: i64,
    /// The pipeline's incident, or 0 (a digest of several items).
    pub incident: u64,
    /// Stable per item and change: deliver each key once.
    pub idempotency_key: *const c_char,
    /// Stable per item (empty for a digest).
    pub fingerprint: *const c_char,
    /// Item and rule labels, merged.
    pub labels: *const vigilo_label,
    /// How many labels.
    pub labels_len: usize,
    /// Summary, description, runbook … (name → text).
    pub annotations: *const vigilo_label,
    /// How many annotations.
    pub annotations_len: usize,
    /// Who should be told.
    pub recipients: *const *const c_char,
    /// How many recipients.
    pub recipients_len: usize,
    /// The whole alert as JSON.
    pub json: *const c_char,
}

/// `deliver` return value: delivered.
pub const VIGILO_DELIVERED: c_int = 0;
/// `deliver` return value: failed for now, retry with backoff (a timeout, a 5xx).
pub const VIGILO_DELIVERY_RETRYABLE: c_int = 1;
/// `deliver` return value: will never succeed, do not retry (bad address, 4xx).
pub const VIGILO_DELIVERY_PERMANENT: c_int = 2;
/// Room for the message a failing `deliver` writes into `message` (NUL included).
pub const VIGILO_MESSAGE_CAPACITY: usize = 1024;

/// Delivers one alert for a channel implemented in C. Returns [`VIGILO_DELIVERED`],
/// [`VIGILO_DELIVERY_RETRYABLE`] or [`VIGILO_DELIVERY_PERMANENT`]; on failure it may write a
/// NUL-terminated reason into `message` (room for `message_capacity` bytes).
#[allow(non_camel_case_types)]
pub type vigilo_deliver_fn = Option<
    unsafe extern "C-unwind" fn(
        user_data: *mut c_void,
        alert: *const vigilo_alert,
        message: *mut c_char,
        message_capacity: usize,
    ) -> c_int,
>;

/// The function inside a [`vigilo_event_callback`].
pub(crate) type EventFn = unsafe extern "C-unwind" fn(*mut c_void, *const vigilo_event);
/// The function inside a [`vigilo_deliver_fn`].
pub(crate) type DeliverFn =
    unsafe extern "C-unwind" fn(*mut c_void, *const vigilo_alert, *mut c_char, usize) -> c_int;
