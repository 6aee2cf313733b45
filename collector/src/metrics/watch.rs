//! Watches: bounds the evaluator arms on a gauge or histogram series so that a record crossing
//! one wakes it at once instead of at the next tick.
//!
//! Both bounds live in one `AtomicU64` as two `f32`s (upper in the high half, lower in the low
//! half), so the record path pays one relaxed load and a compare. An exact `f64` threshold is
//! rounded *outward* to `f32` (the upper bound down, the lower bound up), so a value that crosses
//! the exact threshold always crosses the stored one; a value between the two wakes the evaluator
//! needlessly, and the evaluator's exact comparison then finds nothing changed.
//!
//! A watch fires once: the record that crosses a bound swaps the watch back to unarmed and sends a
//! [`WatchEvent`]. The evaluator re-arms with the bounds of the state it finds.
//!
//! **Arming against a concurrent record** is a store-buffering handshake. The recorder stores the
//! value, then loads the bounds; the evaluator stores the bounds, then re-reads the value
//! (`SeriesReader::missed`). With relaxed accesses alone both could read the old state: the
//! recorder sees no watch, the evaluator the old value, and the crossing waits for the next tick.
//! A barrier between the store and the load on each side rules that out: the recorder's is a
//! light barrier (a compiler fence), the evaluator's a heavy, process-wide one (`crate::sync`), so
//! the record path pays no fence instruction. Whichever barrier comes first in their total order,
//! the other side sees what was stored before it. The loom model in `loom.rs` checks it.

use std::sync::atomic::{AtomicBool, AtomicU64 as StdAtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Sender, TrySendError};

use super::series::SeriesId;
use crate::sync::AtomicU64;

/// The packed value of an unarmed watch: upper +inf, lower -inf.
const UNARMED: u64 = ((f32::INFINITY.to_bits() as u64) << 32) | f32::NEG_INFINITY.to_bits() as u64;

/// The bounds to arm on a series: a record at or above `upper`, or at or below `lower`, fires.
#[derive(Debug, Clone, Copy, PartialEq)]
#[doc(hidden)]
pub struct WatchBounds {
    /// Fire when a value reaches this or more (`f64::INFINITY` for none).
    pub upper: f64,
    /// Fire when a value reaches this or less (`f64::NEG_INFINITY` for none).
    pub lower: f64,
}

impl WatchBounds {
    /// Nothing fires.
    pub const NONE: WatchBounds = WatchBounds {
        upper: f64::INFINITY,
        lower: f64::NEG_INFINITY,
    };

    /// Fires on any record (upper -inf, lower +inf): for a series whose next sample, whatever
    /// its value, changes something (an item in no data).
    pub const ANY_RECORD: WatchBounds = WatchBounds {
        upper: f64::NEG_INFINITY,
        lower: f64::INFINITY,
    };

    /// True for bounds that every value crosses.
    pub fn is_any_record(self) -> bool {
        self.upper == f64::NEG_INFINITY || self.lower == f64::INFINITY
    }

    /// True if `value` is at or past a bound.
    pub fn crossed_by(self, value: f64) -> bool {
        value >= self.upper || value <= self.lower
    }

    fn pack(self) -> u64 {
        let upper = round_down(self.upper);
        let lower = round_up(self.lower);
        ((upper.to_bits() as u64) << 32) | lower.to_bits() as u64
    }
}

/// The largest `f32` not above `x` (NaN arms nothing).
fn round_down(x: f64) -> f32 {
    if x.is_nan() {
        return f32::INFINITY;
    }
    let f = x as f32;
    if f64::from(f) > x { f.next_down() } else { f }
}

/// The smallest `f32` not below `x` (NaN arms nothing).
fn round_up(x: f64) -> f32 {
    if x.is_nan() {
        return f32::NEG_INFINITY;
    }
    let f = x as f32;
    if f64::from(f) < x { f.next_up() } else { f }
}

/// A record crossed an armed bound.
#[derive(Debug, Clone, Copy, PartialEq)]
#[doc(hidden)]
pub struct WatchEvent {
    /// The series that crossed.
    pub series: SeriesId,
    /// The value recorded.
    pub value: f64,
}

/// Counts a value dropped from the named metric.
pub(crate) type DropCounter = Box<dyn Fn(&str) + Send + Sync>;

impl WatchEvent {
    /// The event that tells the evaluator a series was added (no real series has id 0).
    fn series_added() -> WatchEvent {
        WatchEvent {
            series: SeriesId(0),
            value: f64::NAN,
        }
    }

    /// True if this event only says that a series was added to the registry.
    pub fn is_series_added(&self) -> bool {
        self.series.0 == 0
    }
}

/// What the watchable series of one registry share: where fired watches go, and where dropped
/// values are counted.
#[derive(Default)]
pub(crate) struct Hub {
    sender: OnceLock<Sender<WatchEvent>>,
    /// Set when an event could not be queued; the evaluator then re-evaluates every watched rule.
    overflowed: AtomicBool,
    /// How many events could not be queued.
    events_dropped: StdAtomicU64,
    /// Counts a NaN or infinite value dropped by an infallible record (set by the registry).
    on_dropped_value: OnceLock<DropCounter>,
}

impl Hub {
    pub(crate) fn connect(&self, sender: Sender<WatchEvent>) -> bool {
        self.sender.set(sender).is_ok()
    }

    pub(crate) fn on_dropped_value(&self, count: DropCounter) {
        let _ = self.on_dropped_value.set(count);
    }

    /// True if events were lost since the last call; clears the flag.
    pub(crate) fn take_overflow(&self) -> bool {
        // Relaxed: the flag only asks for a full sweep; the sweep reads the series themselves.
        self.overflowed.swap(false, Ordering::Relaxed)
    }

    /// Wakes the evaluator: a series was added (it binds it at once rather than at its next
    /// tick).
    pub(crate) fn series_added(&self) {
        self.send(WatchEvent::series_added());
    }

    pub(crate) fn events_dropped(&self) -> u64 {
        // Relaxed: a statistic.
        self.events_dropped.load(Ordering::Relaxed)
    }

    fn send(&self, event: WatchEvent) {
        if let Some(sender) = self.sender.get() {
            match sender.try_send(event) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    // Relaxed: statistics and a sweep request, see `take_overflow`.
                    self.events_dropped.fetch_add(1, Ordering::Relaxed);
                    self.overflowed.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The watch of one series.
pub(crate) struct Watch {
    bounds: AtomicU64,
    hub: Arc<Hub>,
}

impl Watch {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        Watch {
            bounds: AtomicU64::new(UNARMED),
            hub,
        }
    }

    /// Stores new bounds. The caller re-reads the series after a heavy barrier (see the module
    /// comment) to catch a record that raced with this store.
    pub(crate) fn arm(&self, bounds: WatchBounds) {
        // Relaxed: ordered with the recorder by the barrier pair (module comment).
        self.bounds.store(bounds.pack(), Ordering::Relaxed);
    }

    pub(crate) fn disarm(&self) {
        // Relaxed: disarming may race with a record; a spurious wake-up is harmless.
        self.bounds.store(UNARMED, Ordering::Relaxed);
    }

    /// The record-path check, after the recorder's light barrier: one relaxed load and a compare
    /// when unarmed; two more compares, inline, when armed. Only a crossing leaves the fast path.
    #[inline]
    pub(crate) fn check(&self, value: f64, series: SeriesId) {
        // Relaxed: ordered with the evaluator's store by the barrier pair (module comment).
        let packed = self.bounds.load(Ordering::Relaxed);
        if packed == UNARMED {
            return;
        }
        let upper = f64::from(f32::from_bits((packed >> 32) as u32));
        let lower = f64::from(f32::from_bits(packed as u32));
        if value >= upper || value <= lower {
            self.fire(packed, value, series);
        }
    }

    #[cold]
    fn fire(&self, packed: u64, value: f64, series: SeriesId) {
        // Relaxed: the swap only decides which recorder reports this crossing; the channel
        // send carries the event itself.
        if self
            .bounds
            .compare_exchange(packed, UNARMED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.hub.send(WatchEvent { series, value });
        }
    }

    /// Counts a NaN or infinite value dropped from metric `name` (cold: only on bad input).
    #[cold]
    pub(crate) fn dropped(&self, name: &str) {
        if let Some(count) = self.hub.on_dropped_value.get() {
            count(name);
        }
    }
}

#[cfg(all(test, not(vigilo_loom)))]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_outward() {
        for x in [0.1, 80.0, 1e-30, 123456789.123, -0.7, 1e300, -1e300] {
            assert!(f64::from(round_down(x)) <= x, "{x}");
            assert!(f64::from(round_up(x)) >= x, "{x}");
        }
    }

    #[test]
    fn fires_once_per_arming() {
        let hub = Arc::new(Hub::default());
        let (tx, rx) = crossbeam_channel::bounded(4);
        hub.connect(tx);
        let watch = Watch::new(hub);
        let id = SeriesId(7);
        watch.check(100.0, id);
        assert!(rx.try_recv().is_err(), "unarmed watch fired");
        watch.arm(WatchBounds {
            upper: 0.8,
            lower: 0.2,
        });
        watch.check(0.5, id);
        watch.check(0.8, id);
        watch.check(0.9, id);
        assert_eq!(
            rx.try_recv(),
            Ok(WatchEvent {
                series: id,
                value: 0.8
            })
        );
        assert!(rx.try_recv().is_err(), "fired twice without re-arming");
        watch.arm(WatchBounds {
            upper: f64::INFINITY,
            lower: 0.2,
        });
        watch.check(0.2, id);
        assert_eq!(rx.try_recv().map(|e| e.value), Ok(0.2));
        watch.arm(WatchBounds::ANY_RECORD);
        watch.check(12.5, id);
        assert_eq!(rx.try_recv().map(|e| e.value), Ok(12.5));
    }
}
