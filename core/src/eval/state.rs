//! The severity state of one item (one rule on one series) and how a sample moves it.
//!
//! Each level of the rule progresses on its own:
//! - **entering**: the value is past the level's threshold; the crossing time is kept
//!   (`holding_since`). Each completed hold period is one *occurrence* (a breach that goes on
//!   counts again at every further multiple of the duration); with `occurrences = N` the level
//!   becomes active when N occurrences completed within the level's `within` window. A value
//!   back on the good side before then resets the hold.
//! - **active**: it stays active until the value is back past the level's *clear* threshold
//!   (hysteresis) for the rule's `clear_for` duration.
//!
//! The item's severity is the highest active level. No data, empty windows, the rule's schedule
//! and flap detection sit on top: no fresh sample for `no_data.after` forces the no-data
//! severity; an empty window resolves the item unless the rule keeps it; outside its schedule a
//! rule holds every item at Normal (or, with `outside_schedule = "suppress"`, evaluates but reports
//! nothing until the window opens); more than `flap.changes` changes within `flap.within` hold
//! notifications until the changes fall to half that. `rules/SEMANTICS.md` has the timelines.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::transition::Told;
use crate::Severity;
use crate::clock::Timestamp;
use crate::metrics::{Labels, WatchBounds};
use crate::rules::aggregation::Reaction;
use crate::rules::{Comparison, EmptyWindow, Level, Rule, WhenClosed};

/// One level's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LevelState {
    /// The value has been past the threshold since then (not yet active).
    holding_since: Option<Timestamp>,
    /// Hold periods of the current hold already counted as occurrences: a breach that goes on
    /// counts once more at each further multiple of the level's duration.
    #[serde(default)]
    holds: u32,
    /// When past holds completed, for `occurrences` (boxed: most levels never need it).
    #[allow(clippy::box_collection)] // 8 bytes instead of 32 in the hot per-item state
    episodes: Option<Box<VecDeque<Timestamp>>>,
    active: bool,
    /// The value has been past the clear threshold since then (while active).
    clearing_since: Option<Timestamp>,
}

/// How many whole `hold` periods fit in `elapsed` (`hold` > 0).
fn whole_periods(elapsed: Duration, hold: Duration) -> u32 {
    u32::try_from(elapsed.as_nanos() / hold.as_nanos().max(1)).unwrap_or(u32::MAX)
}

impl LevelState {
    fn reset(&mut self) {
        self.holding_since = None;
        self.holds = 0;
        self.active = false;
        self.clearing_since = None;
    }

    /// When the current hold next completes a period, if it is still to count.
    fn next_hold_end(&self, level: &Level) -> Option<Timestamp> {
        let since = self.holding_since.filter(|_| !self.active)?;
        if level.hold.is_zero() && self.holds > 0 {
            return None; // without a duration a breach counts once, at its crossing
        }
        Some(since + level.hold.saturating_mul(self.holds.saturating_add(1)))
    }

    /// Moves this level with value `v` at `t`; returns the moment it flipped, if it did.
    fn step(
        &mut self,
        level: &Level,
        c: Comparison,
        clear_for: Duration,
        v: f64,
        t: Timestamp,
    ) -> Option<Timestamp> {
        if self.active {
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
            return Some(done);
        }
        if !c.fires(v, level.threshold) {
            self.holding_since = None;
            self.holds = 0;
            return None;
        }
        let since = *self.holding_since.get_or_insert(t);
        let done = since + level.hold;
        if t < done {
            return None;
        }
        if level.occurrences <= 1 {
            self.holds = 1;
            self.active = true;
            self.clearing_since = None;
            return Some(done);
        }
        // Each completed hold period is one occurrence (the condition was observed to hold that
        // many times); without a duration, one per crossing.
        let completed = if level.hold.is_zero() {
            1
        } else {
            whole_periods(t.since(since), level.hold)
        };
        let needed = level.occurrences;
        // Only the last `needed` periods can matter: skip the rest of a very long hold.
        self.holds = self.holds.max(completed.saturating_sub(needed));
        let episodes = self.episodes.get_or_insert_with(Box::default);
        while self.holds < completed {
            self.holds += 1;
            let end = since + level.hold.saturating_mul(self.holds);
            episodes.push_back(end);
            if let Some(within) = level.within {
                // Occurrences older than the window no longer count; the newest always does.
                while episodes.len() > 1 && episodes.front().is_some_and(|&e| e < end - within) {
                    episodes.pop_front();
                }
            }
            while episodes.len() > needed as usize {
                episodes.pop_front();
            }
            if episodes.len() >= needed as usize {
                self.active = true;
                self.clearing_since = None;
                return Some(end);
            }
        }
        None
    }
}

/// Saved states waiting for their item's series to be bound, and until when they wait.
#[derive(Default)]
pub(crate) struct Restored {
    pub(crate) states: HashMap<(String, Labels), ItemState>,
    /// What anomaly rules' items had learned, by rule identity and labels.
    pub(crate) learned: HashMap<(String, Labels), crate::rules::aggregation::Learned>,
    /// After this moment, states whose series has not come back are given up: an item that
    /// had been reported is reported resolved.
    pub(crate) until: Option<Timestamp>,
}

/// Where a rule's schedule stands at the moment of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Period {
    /// Inside a window (always, for a rule without a schedule).
    pub open: bool,
    /// When the current window opened, or closed (`None` without a schedule, or when too far
    /// back to matter).
    pub since: Option<Timestamp>,
}

impl Period {
    /// A rule without a schedule.
    pub(crate) const ALWAYS: Period = Period {
        open: true,
        since: None,
    };
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
    /// Outside the rule's schedule, not evaluated (`outside_schedule = "resolve"`).
    pub inactive: bool,
    /// Outside the rule's schedule, evaluated but not reported (`outside_schedule = "suppress"`).
    #[serde(default)]
    pub suppressed: bool,
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
            suppressed: false,
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

    /// The no-data clock starts again at `now` (a state given back after a restart: whatever
    /// was recorded while the program was down cannot be known). A no-data state in force stays.
    pub(crate) fn restart_clock(&mut self, now: Timestamp) {
        self.first_seen = now;
    }

    /// Makes what this state says was reported agree with what the pipeline holds after a
    /// restart: `told` is the item's open incident (`None`: it has none). The incident is the
    /// truth of what was told, so `notified` takes its severity; the next evaluation reports
    /// whatever differs from it (a resolve, a change of severity), and nothing when the item
    /// still fires at that severity.
    ///
    /// `saved` says whether this state was saved by the last run (a checkpoint): when it is at
    /// least as recent as the incident's last change, its levels are kept (they are the newer
    /// truth of what the item was doing); otherwise, or without a saved state, the levels are
    /// rebuilt from the incident: every level of the rule up to its severity active (a hold in
    /// progress restarts), or no data in force.
    pub(crate) fn reconcile(&mut self, rule: &Rule, told: Option<&Told>, saved: bool) {
        let Some(t) = told else {
            // Nothing is open: whatever this state says it reported never reached the pipeline
            // (or was resolved since). Report afresh whatever it is now.
            self.notified = Severity::Normal;
            self.notified_no_data = false;
            return;
        };
        let current = saved && self.notified_since >= t.at;
        if !current {
            self.reset_levels();
            self.no_data = t.no_data;
            if !t.no_data {
                for level in rule.levels.iter().filter(|l| l.severity <= t.severity) {
                    let state = &mut self.levels[index(level.severity)];
                    state.active = true;
                    state.holds = 1;
                }
            }
            self.severity = t.severity;
            self.since = t.at;
            self.flapping = false;
            self.changes = None;
        }
        self.notified = t.severity;
        self.notified_no_data = t.no_data;
        self.notified_since = t.at;
    }

    /// Moves the state to time `t` with the aggregated `value` (`None` when there is none:
    /// no sample yet, or an empty window); returns the change to report, if any.
    pub(crate) fn update(
        &mut self,
        rule: &Rule,
        t: Timestamp,
        value: Option<f64>,
        last_fresh: Option<Timestamp>,
        period: Period,
    ) -> Option<Change> {
        if value.is_some() {
            self.value = value;
        }
        let mut at = t;
        let previous = self.severity;
        let was_no_data = self.no_data;
        let was_suppressed = self.suppressed;
        let stale_since = last_fresh.unwrap_or(self.first_seen);
        // Only a record ends no data: with none seen at all (a placeholder, a state restored
        // after a restart), an item in no data stays there.
        let silent =
            |after: Duration| t >= stale_since + after || (self.no_data && last_fresh.is_none());
        let suppress = rule.when_closed() == WhenClosed::Suppress;
        self.suppressed = !period.open && suppress;
        self.inactive = !period.open && !suppress;
        let severity = if self.inactive {
            self.no_data = false;
            self.reset_levels();
            Severity::Normal
        } else if let Some(nd) = rule.no_data().filter(|nd| silent(nd.after)) {
            if !self.no_data {
                at = stale_since + nd.after;
            }
            self.no_data = true;
            self.reset_levels();
            nd.severity
        } else {
            self.no_data = false;
            match value {
                Some(v) => {
                    let mut flipped: Option<Timestamp> = None;
                    for level in &rule.levels {
                        let state = &mut self.levels[index(level.severity)];
                        if let Some(when) = state.step(level, rule.comparison, rule.clear_for, v, t)
                        {
                            flipped = Some(flipped.map_or(when, |f| f.max(when)));
                        }
                    }
                    if let Some(f) = flipped {
                        at = f;
                    }
                }
                // The window emptied (traffic stopped): no value, and by default no alert.
                None if !rule.window.is_zero() && rule.empty_window() == EmptyWindow::Resolve => {
                    self.value = None;
                    self.reset_levels();
                }
                None => {}
            }
            rule.levels
                .iter()
                .rev()
                .find(|l| self.levels[index(l.severity)].active)
                .map_or(Severity::Normal, |l| l.severity)
        };
        let changed = severity != previous || self.no_data != was_no_data;
        let mut at = at.min(t);
        if let Some(opened) = period.since.filter(|_| period.open) {
            if was_suppressed && !changed {
                // Held while the window was closed: reported now, as of its opening.
                at = self.since;
            }
            // Nothing is stamped before the window it is reported in.
            at = at.max(opened);
        }
        if changed {
            self.severity = severity;
            self.since = at;
            if rule.flap().is_some() {
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
        if let Some(flap) = rule.flap() {
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
        if self.suppressed || !(flapping_changed || (differs && !self.flapping)) {
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
            if let Some(end) = s.next_hold_end(level) {
                consider(end);
            }
            if let (true, Some(c)) = (s.active, s.clearing_since) {
                consider(c + rule.clear_for);
            }
        }
        if let Some(nd) = rule.no_data().filter(|_| !self.no_data) {
            consider(last_fresh.unwrap_or(self.first_seen) + nd.after);
        }
        if let (Some(flap), true, Some(&oldest)) = (
            rule.flap(),
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
        if self.no_data {
            // Any record ends no data: wake on every value.
            return WatchBounds::ANY_RECORD;
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
        // Windowed aggregations other than `last` react at once at most in the entering
        // direction; most only at sweeps.
        match rule.aggregation.reaction(rule.comparison) {
            Reaction::Both => {}
            Reaction::Entering => toward_good = f64::NEG_INFINITY,
            Reaction::Sweeps => {
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
