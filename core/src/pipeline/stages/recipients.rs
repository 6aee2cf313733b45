//! The recipients stage: the people a route, an escalation tier or a fallback names, expanded
//! from groups, with the address each channel needs and the window each person may be notified
//! in (`[recipients]` `schedule`, per channel if they wish). Outside their window a person is
//! skipped (someone else gets it), waits for their window (deferred), or is dropped, as they
//! configured; a notification that would reach nobody because everyone is outside their hours
//! waits for their windows instead of being lost.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::pipeline::settings::{AddressKind, OutsideHours, Person, people_of};

/// Who a notification on one channel reaches, now and later.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Addressed {
    /// Addresses to notify now.
    pub(crate) now: Vec<String>,
    /// Addresses whose window opens later, by the time it opens (and the people, for keys).
    pub(crate) later: BTreeMap<Timestamp, (Vec<String>, Vec<String>)>,
    /// Who was left out and why, one line each (`kim: outside kim's hours for sms (…): …`).
    pub(crate) skipped: Vec<String>,
}

/// People and groups of people.
#[derive(Default)]
pub(crate) struct Recipients {
    people: BTreeMap<String, Person>,
    groups: BTreeMap<String, Vec<String>>,
}

impl Recipients {
    pub(crate) fn new(
        people: BTreeMap<String, Person>,
        groups: BTreeMap<String, Vec<String>>,
    ) -> Recipients {
        Recipients { people, groups }
    }

    /// Who `names` reach on `channel` (whose addresses are of `kind`) at `now`.
    pub(crate) fn address(
        &self,
        names: &[String],
        channel: &str,
        kind: Option<AddressKind>,
        now: Timestamp,
    ) -> Addressed {
        let mut out = Addressed::default();
        let Some(kind) = kind else {
            return out; // the channel takes no recipients (a webhook whose URL says it all)
        };
        // People skipped for someone else; they wait if nobody is within their hours.
        let mut skipped: Vec<(Timestamp, &str, &str, String)> = Vec::new();
        for name in people_of(&self.groups, names) {
            let Some(person) = self.people.get(name) else {
                continue;
            };
            let Some(address) = person.addresses.get(&kind) else {
                continue; // nothing to reach them on this channel with
            };
            let Some(window) = person.window(channel).filter(|w| !w.is_active(now)) else {
                out.now.push(address.clone());
                continue;
            };
            let hours = format!("outside {name}'s hours for {channel} ({window})");
            let opens = window.next_change(now);
            match (person.outside, opens) {
                (OutsideHours::Drop, _) | (_, None) => {
                    out.skipped.push(format!("{name}: {hours}: dropped"))
                }
                (OutsideHours::Defer, Some(at)) => {
                    let e = out.later.entry(at).or_default();
                    e.0.push(address.clone());
                    e.1.push(name.to_owned());
                    out.skipped
                        .push(format!("{name}: {hours}: deferred to {at}"));
                }
                (OutsideHours::Skip, Some(at)) => skipped.push((at, name, address, hours)),
            }
        }
        let nobody = out.now.is_empty();
        for (at, name, address, hours) in skipped {
            if nobody {
                let e = out.later.entry(at).or_default();
                e.0.push(address.to_owned());
                e.1.push(name.to_owned());
                out.skipped.push(format!(
                    "{name}: {hours}: nobody else is within their hours, so it waits until {at}"
                ));
            } else {
                out.skipped.push(format!("{name}: {hours}: skipped"));
            }
        }
        out
    }
}
