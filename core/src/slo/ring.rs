//! A ring of time slots, each holding the events counted in it: `(counted, total)`, where
//! `counted` is good or bad events as the SLO's source says.

use serde::{Deserialize, Serialize};

/// Fixed-length slots of `slot` seconds; slot `k` covers `[k·slot, (k+1)·slot)` since the epoch.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    slot: i64,
    cells: Vec<(u64, u64)>,
    /// The newest slot written (its index since the epoch).
    newest: Option<i64>,
}

/// A ring as stored: its non-empty slots by index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingSnapshot {
    slot: i64,
    newest: Option<i64>,
    cells: Vec<(i64, u64, u64)>,
}

impl Ring {
    /// `len` slots of `slot` seconds (both at least 1).
    pub(super) fn new(slot: i64, len: usize) -> Ring {
        Ring {
            slot: slot.max(1),
            cells: vec![(0, 0); len.max(1)],
            newest: None,
        }
    }

    /// How many slots it has.
    #[cfg(test)]
    pub(super) fn slot_count(&self) -> usize {
        self.cells.len()
    }

    fn len(&self) -> i64 {
        i64::try_from(self.cells.len()).unwrap_or(i64::MAX)
    }

    fn cell(&mut self, index: i64) -> &mut (u64, u64) {
        let i = usize::try_from(index.rem_euclid(self.len())).unwrap_or(0);
        &mut self.cells[i]
    }

    /// Counts events in the slot of `at_secs`. A time before the newest slot (a clock that
    /// went back) counts in the newest slot.
    pub(super) fn add(&mut self, at_secs: i64, counted: u64, total: u64) {
        let index = at_secs.div_euclid(self.slot);
        let index = match self.newest {
            Some(newest) if index <= newest => newest,
            Some(newest) => {
                // Clear the slots skipped over (at most the whole ring).
                let from = (newest + 1).max(index - self.len() + 1);
                for k in from..=index {
                    *self.cell(k) = (0, 0);
                }
                self.newest = Some(index);
                index
            }
            None => {
                self.cells.fill((0, 0));
                self.newest = Some(index);
                index
            }
        };
        let c = self.cell(index);
        c.0 = c.0.saturating_add(counted);
        c.1 = c.1.saturating_add(total);
    }

    /// The events in the slots with indexes in `(until − n, until]` that the ring still holds.
    fn sum_slots(&self, until: i64, n: i64) -> (u64, u64) {
        let Some(newest) = self.newest else {
            return (0, 0);
        };
        let hi = until.min(newest);
        let lo = (until - n + 1).max(newest - self.len() + 1);
        let mut sum = (0u64, 0u64);
        for k in lo..=hi {
            let i = usize::try_from(k.rem_euclid(self.len())).unwrap_or(0);
            sum.0 = sum.0.saturating_add(self.cells[i].0);
            sum.1 = sum.1.saturating_add(self.cells[i].1);
        }
        sum
    }

    /// The events of the last `window_secs` at `now_secs`: the current slot and the ones
    /// before it, `ceil(window / slot)` in all.
    pub(super) fn sum_window(&self, now_secs: i64, window_secs: i64) -> (u64, u64) {
        let n = (window_secs + self.slot - 1).div_euclid(self.slot).max(1);
        self.sum_slots(now_secs.div_euclid(self.slot), n)
    }

    /// The events of the slots that start at or after `start_secs`, up to `now_secs`.
    pub(super) fn sum_since(&self, now_secs: i64, start_secs: i64) -> (u64, u64) {
        let first = (start_secs + self.slot - 1).div_euclid(self.slot);
        let until = now_secs.div_euclid(self.slot);
        self.sum_slots(until, until - first + 1)
    }

    /// The ring as stored.
    pub(super) fn snapshot(&self) -> RingSnapshot {
        let mut cells = Vec::new();
        if let Some(newest) = self.newest {
            for k in (newest - self.len() + 1)..=newest {
                let i = usize::try_from(k.rem_euclid(self.len())).unwrap_or(0);
                let (a, b) = self.cells[i];
                if a != 0 || b != 0 {
                    cells.push((k, a, b));
                }
            }
        }
        RingSnapshot {
            slot: self.slot,
            newest: self.newest,
            cells,
        }
    }

    /// Puts a stored ring's slots back (slots of another size are re-slotted by their start).
    pub(super) fn restore(&mut self, s: &RingSnapshot) {
        for &(k, a, b) in &s.cells {
            self.add(k.saturating_mul(s.slot), a, b);
        }
        if let Some(newest) = s.newest {
            self.add(newest.saturating_mul(s.slot), 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_sum_the_recent_slots_and_old_slots_are_cleared() {
        let mut r = Ring::new(60, 5);
        r.add(0, 1, 10);
        r.add(59, 1, 10);
        r.add(60, 2, 20);
        r.add(240, 4, 40);
        assert_eq!(r.sum_window(240, 300), (8, 80));
        assert_eq!(r.sum_window(240, 60), (4, 40));
        assert_eq!(r.sum_window(240, 120), (4, 40));
        // Slot 0 leaves the ring when slot 5 is written.
        r.add(300, 0, 0);
        assert_eq!(r.sum_window(300, 3600), (6, 60));
        // Reading later without writing: slots past the window are not counted.
        assert_eq!(r.sum_window(420, 120), (0, 0));
        // A jump longer than the ring clears it all.
        r.add(10_000, 1, 1);
        assert_eq!(r.sum_window(10_000, 3600), (1, 1));
        // A clock that goes back counts in the newest slot.
        r.add(50, 1, 1);
        assert_eq!(r.sum_window(10_000, 60), (2, 2));
    }

    #[test]
    fn since_and_snapshots() {
        let mut r = Ring::new(900, 10);
        for i in 0..8 {
            r.add(i * 900, 1, 2);
        }
        assert_eq!(r.sum_since(7 * 900, 3 * 900), (5, 10));
        assert_eq!(r.sum_since(7 * 900, 3 * 900 - 1), (5, 10));
        let s = r.snapshot();
        let mut back = Ring::new(900, 10);
        back.restore(&s);
        assert_eq!(back.sum_window(7 * 900, 8 * 900), (8, 16));
        // Into a shorter ring: the newest slots are kept.
        let mut short = Ring::new(900, 3);
        short.restore(&s);
        assert_eq!(short.sum_window(7 * 900, 8 * 900), (3, 6));
    }
}
