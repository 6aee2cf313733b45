//! Calls into C: the event callback (transitions, deliveries, action outcomes and every other
//! decision of the pipeline) and channels implemented in C.
//!
//! Each event subscription has its own thread, so events reach a callback in order and a slow
//! callback holds only its own thread. A C channel's `deliver` is called for the pipeline's
//! delivery threads for that channel. Either way the C function itself runs on a runner
//! thread ([`crate::runner`]), marked while it runs, so that a callback destroying its own
//! monitor (which would wait for itself) is refused instead, and a callback that ends its
//! thread (`pthread_exit`) ends only that runner.

use std::ffi::{CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crossbeam_channel::{Receiver, Sender, select};
use vigilo::alert::{Alert, AlertStatus, Channel, DeliveryError};
use vigilo::pipeline::Event;

use crate::runner::{Call, Gone, Runner};
use crate::strings::{c_string, vigilo_label};
use crate::views::{
    DeliverFn, EventFn, VIGILO_DELIVERED, VIGILO_DELIVERY_PERMANENT, VIGILO_DELIVERY_RETRYABLE,
    VIGILO_MESSAGE_CAPACITY, vigilo_alert, vigilo_event, vigilo_free_fn,
};

/// The caller's user data: the API's contract makes the caller responsible for it being usable
/// from the threads that run the callbacks.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the user data is only handed back to the caller's own callbacks and free function;
// the header documents that they run on vigilo's threads, so the caller must make it usable
// there (which is the usual contract of a C callback API).
unsafe impl Send for UserData {}
// SAFETY: as above; vigilo never dereferences it.
unsafe impl Sync for UserData {}

/// A callback's user data and how to free it, freed when the holder drops.
pub(crate) struct Owned {
    pub(crate) data: UserData,
    pub(crate) free: vigilo_free_fn,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            let data = self.data.0;
            // SAFETY: the caller gave `free` for `data`; it runs once, after the last callback.
            // Not inside `catch_unwind`: a C function cannot panic, and a forced unwind must
            // not be caught (the header says `free_user_data` must return).
            unsafe { free(data) };
        }
    }
}

fn opt(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// One event subscription: a thread calling `callback` for each event.
pub(crate) struct Subscription {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Subscription {
    pub(crate) fn start(
        token: usize,
        events: Receiver<Event>,
        callback: EventFn,
        user: Owned,
    ) -> std::io::Result<Subscription> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let runner = Runner::spawn()?;
        let thread = std::thread::Builder::new()
            .name("vigilo-c-events".into())
            .spawn(move || {
                // `user` moves here and drops (its free function runs) when the loop ends,
                // after the runner (the callback's thread) has ended.
                let user = user;
                loop {
                    let event = select! {
                        recv(events) -> e => match e { Ok(e) => e, Err(_) => break },
                        recv(stopped) -> _ => break,
                    };
                    // Rust code only (the C call runs on the runner): a panic in it is a bug,
                    // which loses this event rather than the subscription.
                    let ran = catch_unwind(AssertUnwindSafe(|| {
                        deliver_event(token, &event, callback, user.data, &runner)
                    }));
                    // A callback that ended its thread (pthread_exit, an interpreter ending its
                    // threads at exit) is not called again: the subscription ends here.
                    if matches!(ran, Ok(Err(Gone))) {
                        break;
                    }
                }
                drop(runner);
            })?;
        Ok(Subscription {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread, after the callback running now (if any) returns.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Calls `callback` with `event` on `runner`; `Err(Gone)` if the callback ended the thread.
fn deliver_event(
    token: usize,
    event: &Event,
    callback: EventFn,
    user: UserData,
    runner: &Runner,
) -> Result<(), Gone> {
    let json = serde_json::to_string(event).unwrap_or_default();
    let kind = serde_json::to_value(event.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let owned = |s: &Option<String>| s.as_deref().map(c_string);
    let (kind, rule, item, route, channel, action) = (
        c_string(&kind),
        owned(&event.rule),
        owned(&event.item),
        owned(&event.route),
        owned(&event.channel),
        owned(&event.action),
    );
    let severity = event.severity.map(|s| c_string(s.name()));
    let (detail, json) = (c_string(&event.detail), c_string(&json));
    let view = vigilo_event {
        kind: kind.as_ptr(),
        seq: event.seq,
        at_unix_nanos: event.at.as_nanos(),
        incident: event.incident.map_or(0, |i| i.0),
        rule: opt(&rule),
        item: opt(&item),
        severity: opt(&severity),
        route: opt(&route),
        channel: opt(&channel),
        action: opt(&action),
        detail: detail.as_ptr(),
        json: json.as_ptr(),
    };
    let call = Call::Event {
        callback,
        user: user.0,
        event: &view,
    };
    // SAFETY: the caller registered `callback` for `user`; `view` and the strings it points to
    // live until `run` returns.
    unsafe { runner.run(token, call) }.map(|_| ())
}

/// Why a C channel is not called any more.
const ENDED: &str = "the C channel's deliver ended its thread (pthread_exit) instead of returning: not called again";

/// A channel implemented in C.
pub(crate) struct CChannel {
    pub(crate) name: String,
    pub(crate) deliver: DeliverFn,
    /// Idle runner threads (one per delivery running at once, kept for the next ones). Before
    /// `user`: fields drop in order, so the threads end before the user data is freed.
    pub(crate) runners: Mutex<Vec<Runner>>,
    /// Set once a `deliver` ended its thread: it is not called again.
    pub(crate) ended: std::sync::atomic::AtomicBool,
    pub(crate) user: Owned,
    pub(crate) token: usize,
}

impl CChannel {
    /// Runs `call` on an idle runner (or a new one); the runner goes back to the idle ones
    /// unless the callback ended its thread.
    fn run(&self, call: Call) -> Result<c_int, DeliveryError> {
        // Relaxed: a flag with nothing to publish; a call racing the first end is still made.
        if self.ended.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(DeliveryError::Permanent(ENDED.to_owned()));
        }
        let idle = self.runners.lock().pop();
        let runner = match idle {
            Some(r) => r,
            None => Runner::spawn().map_err(|e| {
                DeliveryError::Retryable(format!("cannot start a thread for the C channel: {e}"))
            })?,
        };
        // SAFETY: `deliver` was registered for this user data; the caller keeps the alert's
        // view and the message buffer alive until this returns.
        match unsafe { runner.run(self.token, call) } {
            Ok(outcome) => {
                self.runners.lock().push(runner);
                Ok(outcome)
            }
            Err(Gone) => {
                // Relaxed: as above.
                self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(DeliveryError::Permanent(ENDED.to_owned()))
            }
        }
    }
}

impl Channel for CChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let json = serde_json::to_string(alert).unwrap_or_default();
        let strings = |pairs: &std::collections::BTreeMap<String, String>| {
            pairs
                .iter()
                .map(|(k, v)| (c_string(k), c_string(v)))
                .collect::<Vec<_>>()
        };
        let (labels, annotations) = (strings(&alert.labels), strings(&alert.annotations));
        let as_c = |pairs: &[(CString, CString)]| {
            pairs
                .iter()
                .map(|(k, v)| vigilo_label {
                    name: k.as_ptr(),
                    value: v.as_ptr(),
                })
                .collect::<Vec<_>>()
        };
        let (c_labels, c_annotations) = (as_c(&labels), as_c(&annotations));
        let recipients: Vec<CString> = alert.recipients.iter().map(|r| c_string(r)).collect();
        let c_recipients: Vec<*const c_char> = recipients.iter().map(|r| r.as_ptr()).collect();
        let status = match alert.status {
            AlertStatus::Firing => c"firing",
            AlertStatus::Resolved => c"resolved",
        };
        let [
            rule,
            metric,
            severity,
            previous,
            peak,
            key,
            fingerprint,
            json,
        ] = [
            alert.rule.as_str(),
            alert.metric.as_str(),
            alert.severity.name(),
            alert.previous.name(),
            alert.peak.name(),
            alert.idempotency_key.as_str(),
            alert.fingerprint.as_str(),
            json.as_str(),
        ]
        .map(c_string);
        let view = vigilo_alert {
            rule: rule.as_ptr(),
            metric: metric.as_ptr(),
            severity: severity.as_ptr(),
            previous: previous.as_ptr(),
            peak: peak.as_ptr(),
            status: status.as_ptr(),
            has_value: alert.value.is_some(),
            value: alert.value.unwrap_or(f64::NAN),
            has_threshold: alert.threshold.is_some(),
            threshold: alert.threshold.unwrap_or(f64::NAN),
            since_unix_nanos: alert.since.as_nanos(),
            at_unix_nanos: alert.at.as_nanos(),
            incident: alert.incident.unwrap_or(0),
            idempotency_key: key.as_ptr(),
            fingerprint: fingerprint.as_ptr(),
            labels: c_labels.as_ptr(),
            labels_len: c_labels.len(),
            annotations: c_annotations.as_ptr(),
            annotations_len: c_annotations.len(),
            recipients: c_recipients.as_ptr(),
            recipients_len: c_recipients.len(),
            json: json.as_ptr(),
        };
        let mut message = vec![0 as c_char; VIGILO_MESSAGE_CAPACITY];
        // `view`, the strings and arrays it points to and `message` live until `run` returns.
        let outcome = self.run(Call::Deliver {
            deliver: self.deliver,
            user: self.user.data.0,
            alert: &view,
            message: message.as_mut_ptr(),
            capacity: message.len(),
        })?;
        // Whatever the callback wrote, the last byte ends the string.
        if let Some(last) = message.last_mut() {
            *last = 0;
        }
        let end = message.iter().position(|&b| b == 0).unwrap_or(0);
        let bytes: Vec<u8> = message[..end].iter().map(|&b| b as u8).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let reason = |what: &str| {
            if text.is_empty() {
                format!("the C channel reported {what} without a message")
            } else {
                text.clone()
            }
        };
        match outcome {
            VIGILO_DELIVERED => Ok(()),
            VIGILO_DELIVERY_RETRYABLE => Err(DeliveryError::Retryable(reason("a passing failure"))),
            VIGILO_DELIVERY_PERMANENT => {
                Err(DeliveryError::Permanent(reason("a permanent failure")))
            }
            other => Err(DeliveryError::Permanent(format!(
                "the C channel returned {other}, which is not one of VIGILO_DELIVERED (0), \
                 VIGILO_DELIVERY_RETRYABLE (1) or VIGILO_DELIVERY_PERMANENT (2)"
            ))),
        }
    }
}
