//! What crosses the sandbox's boundary is bounded: an alert's fields are cut before they enter
//! the guest (so no input can exhaust a plugin's memory), and every string the guest hands back
//! (an error, an action's message and output) is cut before it reaches the caller.

use std::borrow::Cow;
use std::collections::BTreeMap;

use vigilo::alert::Alert;

use crate::inert;

/// The longest string a guest returns to the host (errors, messages, outputs).
pub(crate) const GUEST_TEXT: usize = 4096;
/// The longest label or annotation value an alert brings into the guest.
pub(crate) const FIELD: usize = 64 * 1024;
/// The longest rule or metric name, recipient or idempotency key brought into the guest.
pub(crate) const NAME: usize = 1024;
/// The most labels, annotations or recipients brought into the guest.
pub(crate) const ENTRIES: usize = 256;

/// The first [`GUEST_TEXT`] bytes of `s`, marked when cut, made inert ([`inert::line`]).
pub(crate) fn head(s: String) -> String {
    inert::line_owned(cut_head(s, GUEST_TEXT))
}

/// The last [`GUEST_TEXT`] bytes of `s` (for output tails), marked when cut, made inert with
/// its lines kept ([`inert::block`]).
pub(crate) fn tail(s: String) -> String {
    let s = match inert::block(&s) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(escaped) => escaped,
    };
    if s.len() <= GUEST_TEXT {
        return s;
    }
    let mut start = s.len() - GUEST_TEXT;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…({start} bytes cut) {}", &s[start..])
}

fn cut_head(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes cut)", &s[..end], s.len() - end)
}

/// `alert` with every field within the limits, and whether anything was cut.
pub(crate) fn cap_alert(alert: &Alert) -> (Cow<'_, Alert>, bool) {
    let over = |s: &str, max: usize| s.len() > max;
    let map_over = |m: &BTreeMap<String, String>| {
        m.len() > ENTRIES || m.iter().any(|(k, v)| over(k, NAME) || over(v, FIELD))
    };
    let needs = over(&alert.rule, NAME)
        || over(&alert.metric, NAME)
        || over(&alert.idempotency_key, NAME)
        || over(&alert.fingerprint, NAME)
        || map_over(&alert.labels)
        || map_over(&alert.annotations)
        || alert.recipients.len() > ENTRIES
        || alert.recipients.iter().any(|r| over(r, NAME));
    if !needs {
        return (Cow::Borrowed(alert), false);
    }
    let cap_map = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .take(ENTRIES)
            .map(|(k, v)| (cut_head(k.clone(), NAME), cut_head(v.clone(), FIELD)))
            .collect()
    };
    let mut a = alert.clone();
    a.rule = cut_head(a.rule, NAME);
    a.metric = cut_head(a.metric, NAME);
    a.idempotency_key = cut_head(a.idempotency_key, NAME);
    a.fingerprint = cut_head(a.fingerprint, NAME);
    a.labels = cap_map(&alert.labels);
    a.annotations = cap_map(&alert.annotations);
    a.recipients = alert
        .recipients
        .iter()
        .take(ENTRIES)
        .map(|r| cut_head(r.clone(), NAME))
        .collect();
    (Cow::Owned(a), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_character_boundaries() {
        let s = "é".repeat(GUEST_TEXT);
        let h = head(s.clone());
        assert!(
            h.len() < GUEST_TEXT + 40 && h.ends_with("bytes cut)"),
            "{}",
            h.len()
        );
        let t = tail(s);
        assert!(t.starts_with("…(") && t.len() < GUEST_TEXT + 40);
        assert_eq!(head("short".into()), "short");
    }
}
