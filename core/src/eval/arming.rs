//! Watches on the evaluator's side: sampling a series, arming the bounds its items need, and
//! reacting when a record crosses them.
//!
//! Arming races with recording threads: a value recorded just before the bounds are stored
//! does not fire them. After storing bounds the evaluator issues one heavy barrier (for all the
//! series armed in a sweep together) and asks each series whether anything was recorded that
//! the new bounds would have caught; the recorders' light barrier makes that answer reliable
//! (see `metrics/watch.rs`). A series that missed is sampled and evaluated at once.

use super::evaluator::{Evaluator, Watched};
use crate::clock::Timestamp;
use crate::metrics::{MetricKind, Value, WatchBounds, WatchEvent};
use crate::sync;

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
            self.handle_event(event, now);
        }
    }

    /// A watch fired: sample that series and evaluate the items reading it, now.
    pub(crate) fn handle_event(&mut self, event: WatchEvent, now: Timestamp) {
        self.count_wakeup();
        if let Some(&s) = self.index.get(&event.series) {
            self.handle_crossing(s, Some(event.value), now);
        }
        self.outbox.flush();
    }

    /// Series `s` crossed a bound (with the recorded value, if known): sample it, evaluate its
    /// items, re-arm; again if a record already slipped past the new bounds (bounded).
    pub(super) fn handle_crossing(&mut self, s: usize, mut value: Option<f64>, now: Timestamp) {
        for _ in 0..4 {
            let Some(w) = self.series.get_mut(s) else {
                return;
            };
            w.armed = None;
            match (w.reader.kind(), value) {
                (MetricKind::Histogram, _) | (_, None) => w.sample(now),
                (_, Some(v)) => {
                    // This record is the fresh sample: consume the flag so the next sweep does
                    // not count it again (no data is timed from here).
                    w.reader.take_fresh();
                    w.window.push_scalar(now, v, true);
                }
            }
            for u in 0..self.series[s].users.len() {
                let (r, i) = self.series[s].users[u];
                let period = self.period(r, now);
                self.evaluate(r, i, now, period);
            }
            if !self.arm_one(s) {
                return;
            }
            value = None;
        }
    }

    /// Arms every series whose bounds changed, with one heavy barrier for all of them, and
    /// handles those a record slipped past.
    pub(super) fn arm_all(&mut self, now: Timestamp) {
        let mut armed = std::mem::take(&mut self.arming);
        armed.clear();
        for s in 0..self.series.len() {
            if let Some(bounds) = self.store_bounds(s) {
                armed.push((s, bounds));
            }
        }
        if !armed.is_empty() {
            sync::heavy_barrier();
        }
        for &(s, bounds) in &armed {
            if self.missed(s, bounds) {
                self.handle_crossing(s, None, now);
            }
        }
        self.arming = armed;
    }

    /// Arms series `s` if its bounds changed or are unknown; true if a record slipped past them
    /// (recorded between sampling and arming).
    pub(super) fn arm_one(&mut self, s: usize) -> bool {
        match self.store_bounds(s) {
            Some(bounds) => {
                sync::heavy_barrier();
                self.missed(s, bounds)
            }
            None => false,
        }
    }

    /// Stores the bounds series `s`'s items need, if they changed or are unknown; the bounds
    /// stored, if any. Counters have no watch and are never armed.
    fn store_bounds(&mut self, s: usize) -> Option<WatchBounds> {
        let w = self.series.get(s)?;
        if !w.dirty && w.armed.is_some() {
            return None;
        }
        let mut bounds = WatchBounds::NONE;
        for &(r, i) in &w.users {
            if let Some(item) = self.rules.get(r).and_then(|b| b.items.get(i)) {
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
