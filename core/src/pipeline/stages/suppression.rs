//! The suppression stage: everything that holds a notification back for a while, in one
//! place. Silences (created and expired through the API), maintenance windows (configured),
//! automatic inhibition (a higher severity on the same series) and declared inhibition
//! (`[[inhibit]]`: a firing source silences its dependants). One question answered here:
//! why is this incident held back now, if it is; and one timer: the next moment an answer may
//! change.

use std::collections::{BTreeMap, HashMap};

use crate::clock::Timestamp;
use crate::pipeline::PipelineError;
use crate::pipeline::effects::{Effect, Effects};
use crate::pipeline::event::{Event, EventKind};
use crate::pipeline::incident::{Incident, IncidentId};
use crate::pipeline::settings::{InhibitRule, Maintenance};
use crate::pipeline::silence::{Silence, SilenceId, SilenceRequest};
use crate::pipeline::store::StoreChange;
use crate::pipeline::timers::Timer;

use super::incidents::{Incidents, check_length};

/// Why a notification is held back.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) kind: EventKind,
    pub(crate) reason: String,
}

/// Silences, maintenance windows and inhibition.
#[derive(Default)]
pub(crate) struct Suppression {
    silences: BTreeMap<SilenceId, Silence>,
    next_silence: u64,
    maintenance: Vec<Maintenance>,
    inhibit: Vec<InhibitRule>,
    /// Per inhibit rule, how many firing sources have each value of the `equal` labels.
    index: Vec<HashMap<Vec<String>, u32>>,
    /// Per incident, the values under which each inhibit rule counts it as a source.
    sources: HashMap<IncidentId, Vec<Option<Vec<String>>>>,
    /// When held-back alerts are next looked at (a window or silence edge).
    recheck_at: Option<Timestamp>,
}

impl Suppression {
    /// Takes the configuration's maintenance windows and inhibit rules; the index is rebuilt by
    /// [`index`](Self::index) for every incident afterwards.
    pub(crate) fn configure(&mut self, maintenance: Vec<Maintenance>, inhibit: Vec<InhibitRule>) {
        self.maintenance = maintenance;
        self.index = vec![HashMap::new(); inhibit.len()];
        self.inhibit = inhibit;
        self.sources.clear();
    }

    /// Silences not yet ended.
    pub(crate) fn silences(&self) -> Vec<Silence> {
        self.silences.values().cloned().collect()
    }

    /// Why incident `inc` must not be notified now, if it must not: a silence, a maintenance
    /// window, a higher severity on the same series, or a declared dependency.
    pub(crate) fn held(
        &self,
        inc: &Incident,
        incidents: &Incidents,
        now: Timestamp,
    ) -> Option<Held> {
        let (rule, labels, severity) = (&*inc.item.rule, &inc.labels, inc.severity);
        if let Some(s) = self
            .silences
            .values()
            .find(|s| s.silences(now, rule, labels, severity))
        {
            return Some(Held {
                kind: EventKind::Silenced,
                reason: format!("silence {} by {} until {}", s.id, s.created_by, s.ends_at),
            });
        }
        if let Some(m) = self
            .maintenance
            .iter()
            .find(|m| m.window.is_active(now) && m.selector.selects(rule, labels, severity))
        {
            return Some(Held {
                kind: EventKind::Silenced,
                reason: format!("maintenance window {}", m.name),
            });
        }
        if let Some(higher) = incidents.higher_on_series(inc.id) {
            return Some(Held {
                kind: EventKind::Inhibited,
                reason: format!(
                    "{} is {} on the same series",
                    higher.item.rule, higher.severity
                ),
            });
        }
        let own = self.sources.get(&inc.id);
        for (i, r) in self.inhibit.iter().enumerate() {
            if !r.target.selects(rule, labels, severity) {
                continue;
            }
            let values = equal_values(&r.equal, labels);
            let sources = self
                .index
                .get(i)
                .and_then(|ix| ix.get(&values))
                .copied()
                .unwrap_or(0);
            let own = u32::from(own.and_then(|o| o.get(i)).cloned().flatten() == Some(values));
            if sources > own {
                return Some(Held {
                    kind: EventKind::Inhibited,
                    reason: format!("inhibited by a firing source of inhibit rule #{}", i + 1),
                });
            }
        }
        None
    }

    /// Keeps the inhibit rules' source counts in step with `inc` (opened, changed, resolved).
    pub(crate) fn index(&mut self, inc: &Incident) {
        if self.inhibit.is_empty() {
            return;
        }
        let sources = self
            .sources
            .entry(inc.id)
            .or_insert_with(|| vec![None; self.inhibit.len()]);
        for (i, rule) in self.inhibit.iter().enumerate() {
            let now_source = (inc.is_open()
                && rule
                    .source
                    .selects(&inc.item.rule, &inc.labels, inc.severity))
            .then(|| equal_values(&rule.equal, &inc.labels));
            if sources[i] == now_source {
                continue;
            }
            if let Some(old) = sources[i].take() {
                let index = &mut self.index[i];
                if let Some(n) = index.get_mut(&old) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        index.remove(&old);
                    }
                }
            }
            if let Some(new) = &now_source {
                *self.index[i].entry(new.clone()).or_insert(0) += 1;
            }
            sources[i] = now_source;
        }
        if !inc.is_open() {
            self.sources.remove(&inc.id);
        }
    }

    /// Creates a silence.
    pub(crate) fn silence(
        &mut self,
        req: SilenceRequest,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<SilenceId, PipelineError> {
        check_length("created_by", &req.created_by)?;
        check_length("comment", &req.comment)?;
        let id = SilenceId(self.next_silence + 1);
        let s = Silence::from_request(id, req, now).map_err(PipelineError::BadRequest)?;
        self.next_silence += 1;
        fx.timer(s.ends_at, Timer::SilenceEnd(id));
        if s.starts_at > now {
            fx.timer(s.starts_at, Timer::Recheck);
        }
        let mut e = Event::new(EventKind::SilenceCreated, now);
        e.detail = format!(
            "silence {id} by {} from {} to {}: {}",
            s.created_by, s.starts_at, s.ends_at, s.comment
        );
        fx.event(e);
        fx.save(StoreChange::Silence(Box::new(s.clone())));
        self.silences.insert(id, s);
        Ok(id)
    }

    /// Ends a silence; what it held and still fires is looked at again.
    pub(crate) fn expire(
        &mut self,
        id: SilenceId,
        now: Timestamp,
        by_request: bool,
        fx: &mut Effects,
    ) -> Result<(), PipelineError> {
        let s = self
            .silences
            .remove(&id)
            .ok_or(PipelineError::UnknownSilence(id))?;
        fx.save(StoreChange::SilenceRemoved(id));
        let mut e = Event::new(EventKind::SilenceExpired, now);
        e.detail = format!(
            "silence {id} by {} {}",
            s.created_by,
            if by_request {
                "expired by request"
            } else {
                "ended"
            }
        );
        fx.event(e);
        fx.push(Effect::Recheck);
        Ok(())
    }

    /// A silence's end came due.
    pub(crate) fn on_silence_end(&mut self, id: SilenceId, now: Timestamp, fx: &mut Effects) {
        if self.silences.get(&id).is_some_and(|s| s.ends_at <= now) {
            let _ = self.expire(id, now, false, fx);
        }
    }

    /// The recheck timer came due: it is not armed any more.
    pub(crate) fn on_recheck(&mut self, at: Timestamp) {
        if self.recheck_at == Some(at) {
            self.recheck_at = None;
        }
    }

    /// Sets a timer for the next change of any maintenance window or silence, so what they
    /// hold is looked at again when one ends.
    pub(crate) fn arm_recheck(&mut self, now: Timestamp, fx: &mut Effects) {
        let next = self
            .maintenance
            .iter()
            .filter_map(|m| m.window.next_change(now))
            .chain(
                self.silences
                    .values()
                    .flat_map(|s| [s.starts_at, s.ends_at])
                    .filter(|t| *t > now),
            )
            .min();
        if let Some(t) = next
            && self.recheck_at.is_none_or(|r| t < r || r <= now)
        {
            self.recheck_at = Some(t);
            fx.timer(t, Timer::Recheck);
        }
    }

    /// Takes up stored silences (those that ended while the pipeline was down are removed).
    pub(crate) fn restore(
        &mut self,
        stored: Vec<Silence>,
        last: u64,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        self.next_silence = self.next_silence.max(last);
        for mut s in stored {
            self.next_silence = self.next_silence.max(s.id.0);
            if s.compile().is_err() || s.ends_at <= now {
                fx.save(StoreChange::SilenceRemoved(s.id));
                continue;
            }
            fx.timer(s.ends_at, Timer::SilenceEnd(s.id));
            self.silences.insert(s.id, s);
        }
    }
}

fn equal_values(equal: &[String], labels: &BTreeMap<String, String>) -> Vec<String> {
    equal
        .iter()
        .map(|l| labels.get(l).cloned().unwrap_or_default())
        .collect()
}
