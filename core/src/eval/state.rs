//! The severity state of one item (one rule on one series) and how a sample moves it.
//!
//! Each level of the rule progresses on its own:
//! - **entering**: the value is past the level's threshold; the crossing time is kept
//!   (`holding_since`). Once it has held for the level's duration, that is one *occurrence*;
//!   with `occurrences = N` the level becomes active when N occurrences completed within the
//!   level's `within` window. A value back on the good side before then resets the hold.
//! - **active**: it stays active until the value is back past the level's *clear* threshold
//!   (hysteresis) for the rule's `clear_for` duration.
//!
//! The item's severity is the highest active level. No data, the rule's schedule and flap
//! detection sit on top: no fresh sample for `no_data.after` forces the no-data severity; outside
//! its schedule a rule holds every item at Normal; more than `flap.changes` changes within
//! `flap.within` hold notifications until the changes fall to half that.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Severity;
use crate::clock::Timestamp;
use crate::metrics::WatchBounds;
use crate::rules::{Aggregation, Comparison, Level, Rule};

/// One level's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LevelState {
    /// The value has been past the threshold since then (not yet active).
    holding_since: Option<Timestamp>,
    /// The current hold has been counted as an occurrence.
    counted: bool,
    /// When past holds completed, for `occurrences` (boxed: most levels never need it).
    #[allow(clippy::box_collection)] // 8 bytes instead of 32 in the hot per-item state
    episodes: Option<Box<VecDeque<Timestamp>>>,
    active: bool,
    /// The value has been past the clear threshold since then (while active).
    clearing_since: Option<Timestamp>,
}

impl LevelState {
    fn reset(&mut self) {
        self.holding_since = None;
        self.counted = false;
        self.active = false;
        self.clearing_since = None;
    }

    /// Moves this level with value `v` at `t`; returns the moment it flipped, if it did.
    fn step(
        &mut self,
        level: &Level,
        c: Comparison,
        clear_for: std::time::Duration,
        v: f64,
        t: Timestamp,
    ) -> Option<Timestamp> {
        if !self.active {
            if !c.fires(v, level.threshold) {
                self.holding_since = None;
                self.counted = false;
                return None;
            }
            let since = *self.holding_since.get_or_insert(t);
            let done = since + level.hold;
            if t < done {
                return None;
            }
            if level.occurrences <= 1 {
                self.counted = true;
                self.active = true;
                self.clearing_since = None;
                return Some(done);
            }
            let episodes = self.episodes.get_or_insert_with(Box::default);
            if !self.counted {
                self.counted = true;
                episodes.push_back(done);
            }
            if let Some(within) = level.within {
                // Occurrences older than the window no longer count; the current one always does.
                while episodes.len() > 1 && episodes.front().is_some_and(|&e| e < t - within) {
                    episodes.pop_front();
                }
            }
            while episodes.len() > level.occurrences as usize {
                episodes.pop_front();
            }
            if episodes.len() >= level.occurrences as usize {
                self.active = true;
                self.clearing_since = None;
                return Some(done);
            }
            None
        } else {
            if c.fires(v, level.clear_threshold()) {
                self.clearing_since = None;
                return None;
            }
            let since = *self.clearing_since.get_or_insert(t);
            let done = since + clear_for;
            if t < done {
                return None;
            }
            self.reset();
            Some(done)
        }
    }
}

/// A change the evaluator reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub from: Severity,
    pub to: Severity,
    /// When `from` began.
    pub since: Timestamp,
    pub at: Timestamp,
    pub threshold: Option<f64>,
    pub no_data: bool,
    pub flapping: bool,
}

/// The state of one item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ItemState {
    levels: [LevelState; 5],
    pub severity: Severity,
    pub since: Timestamp,
    pub no_data: bool,
    pub flapping: bool,
    /// Outside the rule's schedule.
    pub inactive: bool,
    /// The last value evaluated.
    pub value: Option<f64>,
    /// What was last reported on the channel.
    pub notified: Severity,
    notified_no_data: bool,
    notified_since: Timestamp,
    /// When severity changes happened, for flap detection (only with a flap rule).
    #[allow(clippy::box_collection)] // 8 bytes instead of 32 in the hot per-item state
    changes: Option<Box<VecDeque<Timestamp>>>,
    /// When the item was first evaluated: the start of the no-data clock before any sample.
    pub first_seen: Timestamp,
}

fn index(s: Severity) -> usize {
    usize::from(s.number().saturating_sub(1)).min(4)
}

impl ItemState {
    pub(crate) fn new(now: Timestamp) -> Self {
        ItemState {
            levels: Default::default(),
            severity: Severity::Normal,
            since: now,
            no_data: false,
            flapping: false,
            inactive: false,
            value: None,
            notified: Severity::Normal,
            notified_no_data: false,
            notified_since: now,
            changes: None,
            first_seen: now,
        }
    }

    /// True if nothing about the item needs remembering: Normal, told Normal, no hold,
    /// occurrence or clearing in progress, no flap history.
    pub(crate) fn at_rest(&self) -> bool {
        self.severity == Severity::Normal
            && self.notified == Severity::Normal
            && !self.no_data
            && !self.notified_no_data
            && !self.flapping
            && self.changes.as_ref().is_none_or(|c| c.is_empty())
            && self.levels.iter().all(|l| {
                !l.active
                    && l.holding_since.is_none()
                    && l.clearing_since.is_none()
                    && l.episodes.as_ref().is_none_or(|e| e.is_empty())
            })
    }

    fn reset_levels(&mut self) {
        self.levels.iter_mut().for_each(LevelState::reset);
    }

    /// Moves the state to time `t` with the aggregated `value` (`None` when there is none yet);
    /// returns the change to report, if any.
    pub(crate) fn update(
        &mut self,
        rule: &Rule,
        t: Timestamp,
        value: Option<f64>,
        last_fresh: Option<Timestamp>,
        in_schedule: bool,
    ) -> Option<Change> {
        if value.is_some() {
            self.value = value;
        }
        let mut at = t;
        let previous = self.severity;
        let was_no_data = self.no_data;
        let stale_since = last_fresh.unwrap_or(self.first_seen);
        let severity = if !in_schedule {
            self.inactive = true;
            self.no_data = false;
            self.reset_levels();
            Severity::Normal
        } else if let Some(nd) = rule.no_data.filter(|nd| t >= stale_since + nd.after) {
            self.inactive = false;
            if !self.no_data {
                at = stale_since + nd.after;
            }
            self.no_data = true;
            self.reset_levels();
            nd.severity
        } else {
            self.inactive = false;
            self.no_data = false;
            if let Some(v) = value {
                let mut flipped: Option<Timestamp> = None;
                for level in &rule.levels {
                    let state = &mut self.levels[index(level.severity)];
                    if let Some(when) = state.step(level, rule.comparison, rule.clear_for, v, t) {
                        flipped = Some(flipped.map_or(when, |f| f.max(when)));
                    }
                }
                if let Some(f) = flipped {
                    at = f;
                }
            }
            rule.levels
                .iter()
                .rev()
                .find(|l| self.levels[index(l.severity)].active)
                .map_or(Severity::Normal, |l| l.severity)
        };
        let at = at.min(t);
        if severity != previous || self.no_data != was_no_data {
            self.severity = severity;
            self.since = at;
            if rule.flap.is_some() {
                self.changes.get_or_insert_with(Box::default).push_back(at);
            }
        }
        self.report(rule, t, at, previous)
    }

    /// Decides whether the current state is reported, applying flap detection.
    fn report(
        &mut self,
        rule: &Rule,
        t: Timestamp,
        at: Timestamp,
        previous: Severity,
    ) -> Option<Change> {
        let differs = self.severity != self.notified || self.no_data != self.notified_no_data;
        let mut flapping_changed = false;
        if let Some(flap) = rule.flap {
            let changes = self.changes.get_or_insert_with(Box::default);
            while changes.front().is_some_and(|&c| c <= t - flap.within) {
                changes.pop_front();
            }
            let n = changes.len();
            if !self.flapping && n > flap.changes as usize {
                self.flapping = true;
                flapping_changed = true;
            } else if self.flapping && n <= (flap.changes / 2) as usize {
                self.flapping = false;
                flapping_changed = true;
            }
        } else {
            self.changes = None;
        }
        if !(flapping_changed || (differs && !self.flapping)) {
            return None;
        }
        let threshold = if self.no_data {
            None
        } else if self.severity == Severity::Normal {
            rule.level(previous.max(self.notified))
                .map(Level::clear_threshold)
        } else {
            rule.level(self.severity).map(|l| l.threshold)
        };
        let change = Change {
            from: self.notified,
            to: self.severity,
            since: self.notified_since,
            at,
            threshold,
            no_data: self.no_data,
            flapping: self.flapping,
        };
        self.notified = self.severity;
        self.notified_no_data = self.no_data;
        self.notified_since = at;
        Some(change)
    }

    /// Reports the item resolved because it no longer exists (its series or rule is gone), if
    /// anything other than Normal was last reported.
    pub(crate) fn resolve(&mut self, now: Timestamp) -> Option<Change> {
        if self.notified == Severity::Normal && !self.notified_no_data {
            return None;
        }
        let change = Change {
            from: self.notified,
            to: Severity::Normal,
            since: self.notified_since,
            at: now,
            threshold: None,
            no_data: false,
            flapping: false,
        };
        self.severity = Severity::Normal;
        self.no_data = false;
        self.notified = Severity::Normal;
        self.notified_no_data = false;
        self.notified_since = now;
        Some(change)
    }

    /// The next moment this item's state changes with no new sample: a hold or clear duration
    /// completing, no data setting in, or flapping possibly ending.
    pub(crate) fn next_deadline(
        &self,
        rule: &Rule,
        now: Timestamp,
        last_fresh: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        // Only future moments: whatever was due at `now` has just been evaluated.
        let mut consider = |t: Timestamp| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if self.inactive {
            return None;
        }
        for level in &rule.levels {
            let s = &self.levels[index(level.severity)];
            match (s.active, s.holding_since, s.clearing_since) {
                (false, Some(h), _) if !s.counted => consider(h + level.hold),
                (true, _, Some(c)) => consider(c + rule.clear_for),
                _ => {}
            }
        }
        if let Some(nd) = rule.no_data.filter(|_| !self.no_data) {
            consider(last_fresh.unwrap_or(self.first_seen) + nd.after);
        }
        if let (Some(flap), true, Some(&oldest)) = (
            rule.flap,
            self.flapping,
            self.changes.as_ref().and_then(|c| c.front()),
        ) {
            consider(oldest + flap.within);
        }
        next
    }

    /// The bounds whose crossing by a new sample would change this item's state (for the
    /// registry's watch); infinite where nothing would.
    pub(crate) fn watch_bounds(&self, rule: &Rule) -> WatchBounds {
        let mut toward_bad = f64::INFINITY; // nearest threshold not yet entered
        let mut toward_good = f64::NEG_INFINITY; // nearest reset/clear bound
        let sign = if rule.comparison == Comparison::Above {
            1.0
        } else {
            -1.0
        };
        if self.inactive {
            return WatchBounds {
                upper: f64::INFINITY,
                lower: f64::NEG_INFINITY,
            };
        }
        for level in &rule.levels {
            let s = &self.levels[index(level.severity)];
            // Work in "badness" units (value × sign) so both directions share the logic.
            if s.active {
                toward_good = toward_good.max(sign * level.clear_threshold());
            } else if s.holding_since.is_some() {
                toward_good = toward_good.max(sign * level.threshold);
            } else {
                toward_bad = toward_bad.min(sign * level.threshold);
            }
        }
        // Windowed aggregations other than `last` only react at once in the entering direction.
        let entering_only = matches!(
            (rule.aggregation, rule.comparison),
            (Aggregation::Max, Comparison::Above)
                | (Aggregation::Min, Comparison::Below)
                | (Aggregation::Percentile(_), Comparison::Above)
        );
        match rule.aggregation {
            Aggregation::Last => {}
            _ if entering_only => toward_good = f64::NEG_INFINITY,
            _ => {
                return WatchBounds {
                    upper: f64::INFINITY,
                    lower: f64::NEG_INFINITY,
                };
            }
        }
        if sign > 0.0 {
            WatchBounds {
                upper: toward_bad,
                lower: toward_good,
            }
        } else {
            WatchBounds {
                upper: -toward_good,
                lower: -toward_bad,
            }
        }
    }
}
