//! Watches on the evaluator's side: sampling a series, arming the bounds its items need, and
//! reacting when a record crosses them.
//!
//! Arming races with recording threads: a value recorded just before the bounds are stored
//! does not fire them. After storing bounds the evaluator issues one heavy barrier (for all the
//! series armed in a sweep, a batch of watch events or a run of deadlines together) and asks
//! each series whether anything was recorded that the new bounds would have caught; the
//! recorders' light barrier makes that answer reliable (see `metrics/watch.rs`). A series that
//! missed is sampled and evaluated at once.

use super::evaluator::{Evaluator, Watched};
use crate::clock::Timestamp;
use crate::metrics::{MetricKind, Value, WatchBounds, WatchEvent};
use vigilo_collector::sync;

/// The shortest time between two bindings of new series outside a tick.
pub(super) const REBIND_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

impl Evaluator {
    pub(super) fn drain_watch_events(&mut self, now: Timestamp) {
        if self.registry.take_watch_overflow() {
            // Events were lost: every watched series is re-sampled and re-armed.
            for w in &mut self.series {
                w.armed = None;
            }
            self.sweep(now);
        }
        while let Ok(event) = self.watch_receiver().try_recv() {
            self.crossing_event(event, now);
        }
        self.finish_arming(now);
    }

    /// A watch fired: sample that series and evaluate the items reading it, now (and any other
    /// event already queued, so that one barrier covers their re-arming).
    pub(crate) fn handle_event(&mut self, event: WatchEvent, now: Timestamp) {
        self.crossing_event(event, now);
        while let Ok(event) = self.watch_receiver().try_recv() {
            self.crossing_event(event, now);
        }
        self.finish_arming(now);
        self.outbox.flush();
    }

    fn crossing_event(&mut self, event: WatchEvent, now: Timestamp) {
        self.count_wakeup();
        if event.is_series_added() {
            self.bind_new_series(now);
            return;
        }
        if let Some(&s) = self.index.get(&event.series) {
            self.handle_crossing(s, Some(event.value), now);
        }
    }

    /// Series `s` crossed a bound (with the recorded value, if known): sample it, evaluate its
    /// items, and stage its new bounds (armed by the next `finish_arming`).
    pub(super) fn handle_crossing(&mut self, s: usize, value: Option<f64>, now: Timestamp) {
        let Some(w) = self.series.get_mut(s) else {
            return;
        };
        w.armed = None;
        match (w.reader.kind(), value) {
            (MetricKind::Histogram, _) | (_, None) => w.sample(now),
            (_, Some(v)) => {
                // This record is the fresh sample: consume the flag so the next sweep does not
                // count it again (no data is timed from here).
                w.reader.take_fresh();
                w.window.push_scalar(now, v, true);
            }
        }
        let (start, end) = (w.users_start as usize, w.users_end as usize);
        for u in start..end {
            let Some(&i) = self.users.get(u) else { break };
            let Some(r) = self.items.get(i as usize).map(|it| it.rule as usize) else {
                continue;
            };
            let period = self.period(r, now);
            self.evaluate(i as usize, now, period);
        }
        self.stage(s);
    }

    /// Stores series `s`'s new bounds now; the check for a record that raced with the store
    /// comes in `finish_arming`.
    pub(super) fn stage(&mut self, s: usize) {
        if let Some(bounds) = self.store_bounds(s) {
            self.arming.push((s, bounds));
        }
    }

    /// Between ticks, binds series added to the registry since the last binding, at most every
    /// [`REBIND_EVERY`] (a program creating series in a loop must not keep the evaluator
    /// rebinding), and samples, evaluates and arms the new ones at once: a series created
    /// already past a threshold is reported then, not at the next tick.
    pub(super) fn bind_new_series(&mut self, now: Timestamp) {
        if self.generation == Some(self.registry.generation()) {
            return;
        }
        if self
            .last_rebind
            .is_some_and(|last| now < last + REBIND_EVERY)
        {
            return; // `next_deadline` includes the moment it may run again
        }
        self.last_rebind = Some(now);
        let known: std::collections::HashSet<_> = self.index.keys().copied().collect();
        self.rebind(now);
        let added: Vec<usize> = (0..self.series.len())
            .filter(|&s| !known.contains(&self.series[s].id))
            .collect();
        for s in added {
            self.handle_crossing(s, None, now);
        }
        self.finish_arming(now);
    }

    /// When [`bind_new_series`](Self::bind_new_series) may run next, if series wait for it.
    pub(super) fn rebind_due(&self) -> Option<Timestamp> {
        if self.generation == Some(self.registry.generation()) {
            return None;
        }
        Some(
            self.last_rebind
                .map_or(Timestamp::EPOCH, |t| t + REBIND_EVERY),
        )
    }

    /// Stages every series whose bounds changed, then finishes arming them.
    pub(super) fn arm_all(&mut self, now: Timestamp) {
        for s in 0..self.series.len() {
            self.stage(s);
        }
        self.finish_arming(now);
    }

    /// One heavy barrier for every series staged since the last call, then a re-read of each:
    /// a series a record slipped past (recorded between its sample and its arming) is sampled,
    /// evaluated and staged again, for a few rounds at most (a series recorded that fast is
    /// read again by the next sweep in any case).
    pub(super) fn finish_arming(&mut self, now: Timestamp) {
        for _ in 0..4 {
            if self.arming.is_empty() {
                return;
            }
            let staged = std::mem::take(&mut self.arming);
            sync::heavy_barrier();
            for &(s, bounds) in &staged {
                if self.missed(s, bounds) {
                    self.handle_crossing(s, None, now);
                }
            }
            // Keep the larger of the two buffers for the next round.
            if self.arming.is_empty() {
                self.arming = staged;
                self.arming.clear();
            }
        }
        self.arming.clear();
    }

    /// Stores the bounds series `s`'s items need, if they changed or are unknown; the bounds
    /// stored, if any. Counters have no watch and are never armed.
    fn store_bounds(&mut self, s: usize) -> Option<WatchBounds> {
        let w = self.series.get(s)?;
        if !w.dirty && w.armed.is_some() {
            return None;
        }
        let mut bounds = WatchBounds::NONE;
        let users = self
            .users
            .get(w.users_start as usize..w.users_end as usize)
            .unwrap_or_default();
        for &i in users {
            if let Some(item) = self.items.get(i as usize) {
                bounds.upper = bounds.upper.min(item.bounds.upper);
                bounds.lower = bounds.lower.max(item.bounds.lower);
            }
        }
        let w = self.series.get_mut(s)?;
        w.dirty = false;
        if w.armed == Some(bounds) {
            return None;
        }
        w.armed = Some(bounds);
        w.reader.arm(bounds).then_some(bounds)
    }

    /// After a heavy barrier: did a record slip past `bounds` on series `s`?
    fn missed(&self, s: usize, bounds: WatchBounds) -> bool {
        self.series
            .get(s)
            .is_some_and(|w| w.reader.missed(bounds, w.histogram_count))
    }
}

impl Watched {
    /// Reads the series into its window.
    pub(super) fn sample(&mut self, now: Timestamp) {
        let w = self;
        match w.reader.kind() {
            MetricKind::Histogram => {
                // The count first: whatever is recorded after it shows as a moved count.
                w.histogram_count = w.reader.histogram_count().unwrap_or(0);
                if let Value::Histogram(h) = w.reader.value() {
                    w.window.push_histogram(now, h);
                }
            }
            MetricKind::Counter => {
                if let Some(v) = w.reader.scalar() {
                    // A counter is recorded when it moved: one that stops counting goes silent.
                    let fresh = w.window.last_value() != Some(v);
                    w.window.push_scalar(now, v, fresh);
                }
            }
            MetricKind::Gauge => {
                if let Some(v) = w.reader.scalar() {
                    let fresh = w.reader.take_fresh();
                    w.window.push_scalar(now, v, fresh);
                }
            }
        }
    }
}
