//! Shares of the host's pooled instances: every loaded plugin keeps one for itself.
//!
//! The pooling allocator has `max_instances` instances for all plugins together. If they were
//! first come, first served, one plugin whose calls hang (up to `max_concurrent_calls` of them,
//! each until its wall-clock bound) could hold every instance, and a healthy plugin would fail
//! to instantiate. So each loaded plugin **reserves** one instance: a plugin's first call in
//! flight always runs in its own, and only its further concurrent calls draw on the
//! **shared** rest, `max_instances − loaded plugins`. A plugin can therefore never keep another
//! from running one call at a time, whatever it does, as long as no more plugins are loaded
//! than there are instances. Loading more is allowed but over-commits the reservations: the
//! host warns at load, naming the plugin and `[plugins] max_instances`, and such a host's calls
//! may then fail to instantiate when every instance is busy, as before reservations.
//!
//! A call that finds its own instance busy and no shared one free fails at once with
//! [`PluginError::NoInstance`](crate::PluginError::NoInstance) (not a fault of the plugin).
//!
//! Transient overshoot: an instance reserved or released while calls are running (a plugin
//! loaded while shared instances are all busy, one unloaded while its own instance is busy) may
//! count one instance beyond `max_instances` until those calls end, each within its wall-clock
//! bound; a call that meets the allocator's own limit then fails to instantiate, as before.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// The host's instances: how many, how many are reserved, how many shared ones are busy.
pub(crate) struct Shares {
    max: u32,
    counts: Mutex<Counts>,
}

struct Counts {
    /// Plugins holding a reservation.
    reserved: u32,
    /// Calls running in a shared instance.
    shared_busy: u32,
}

/// One plugin's reserved instance.
#[derive(Default)]
pub(crate) struct Own {
    /// The plugin holds a reservation (it is loaded).
    holds: AtomicBool,
    /// A call runs in it now.
    busy: AtomicBool,
}

/// A call's instance, given back when dropped.
pub(crate) enum Slot<'a> {
    Own(&'a Own),
    Shared(&'a Shares),
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        match self {
            // Release: pairs with the Acquire of the next call's `compare_exchange`.
            Slot::Own(own) => own.busy.store(false, Ordering::Release),
            Slot::Shared(shares) => {
                let mut c = shares.counts.lock();
                c.shared_busy = c.shared_busy.saturating_sub(1);
            }
        }
    }
}

impl Shares {
    /// Shares of `max` instances (at least one).
    pub(crate) fn new(max: u32) -> Shares {
        Shares {
            max: max.max(1),
            counts: Mutex::new(Counts {
                reserved: 0,
                shared_busy: 0,
            }),
        }
    }

    /// The pool's size, `max_instances`.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// Reserves an instance for a plugin being loaded. When every instance was already
    /// reserved, the reservation is still taken (the plugin loads) but over-commits the pool:
    /// the returned message says so, for the host to log.
    pub(crate) fn reserve(&self, own: &Own) -> Option<String> {
        let mut c = self.counts.lock();
        // AcqRel: a reservation taken once; the counts, under the lock, say how many.
        if !own.holds.swap(true, Ordering::AcqRel) {
            c.reserved += 1;
        }
        (c.reserved > self.max).then(|| {
            format!(
                "[plugins] max_instances = {} is less than the {} plugins loaded: not every \
                 plugin can keep a pooled instance of its own, and one plugin's calls may keep \
                 another from running; raise max_instances to at least {}",
                self.max, c.reserved, c.reserved
            )
        })
    }

    /// Gives back the reservation of a plugin being unloaded (its handles may still make calls:
    /// they then draw on the shared instances only).
    pub(crate) fn release(&self, own: &Own) {
        let mut c = self.counts.lock();
        // AcqRel: see `reserve`.
        if own.holds.swap(false, Ordering::AcqRel) {
            c.reserved = c.reserved.saturating_sub(1);
        }
    }

    /// An instance for one call of the plugin owning `own`: its own if free, else a shared one
    /// if any is free; `None` if neither.
    pub(crate) fn acquire<'a>(&'a self, own: &'a Own) -> Option<Slot<'a>> {
        // Acquire: pairs with the Release of the slot given back and of a reservation taken.
        if own.holds.load(Ordering::Acquire)
            && own
                .busy
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Some(Slot::Own(own));
        }
        let mut c = self.counts.lock();
        if c.reserved.saturating_add(c.shared_busy) < self.max {
            c.shared_busy += 1;
            return Some(Slot::Shared(self));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_plugin_cannot_take_the_instance_another_keeps() {
        let shares = Shares::new(4);
        let (stuck, healthy, other) = (Own::default(), Own::default(), Own::default());
        for o in [&stuck, &healthy, &other] {
            assert_eq!(shares.reserve(o), None);
        }
        // The stuck plugin's calls: its own instance, then the one shared, then nothing.
        let held: Vec<_> = (0..4).filter_map(|_| shares.acquire(&stuck)).collect();
        assert_eq!(held.len(), 2);
        // The others still get their own.
        let a = shares
            .acquire(&healthy)
            .expect("healthy keeps its instance");
        let b = shares.acquire(&other).expect("other keeps its instance");
        assert!(shares.acquire(&healthy).is_none(), "no shared one left");
        drop((a, b, held));
        assert!(shares.acquire(&healthy).is_some());
    }

    #[test]
    fn loading_beyond_the_pool_is_reported_and_unloading_frees_a_reservation() {
        let shares = Shares::new(2);
        let (a, b, c) = (Own::default(), Own::default(), Own::default());
        assert_eq!(shares.reserve(&a), None);
        assert_eq!(shares.reserve(&b), None);
        let e = shares.reserve(&c).unwrap();
        assert!(
            e.contains("max_instances = 2") && e.contains("3 plugins"),
            "{e}"
        );
        shares.release(&c);
        shares.release(&a);
        assert_eq!(shares.reserve(&c), None);
        // An unloaded plugin's handle draws on shared instances only: none is left.
        assert!(shares.acquire(&a).is_none());
    }
}
