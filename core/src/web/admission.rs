//! Who may hold a connection, and who is let go to make room.
//!
//! A connection is *waiting* from its accept until its request head has arrived, then
//! *answered*. Waiting connections are what a slow flood (slowloris: heads sent byte by byte)
//! piles up, so they are bounded on their own, and a connection that has waited long is closed
//! to make room for a new one rather than the new one refused: a client whose head arrives at
//! once (a scrape, the board) always gets in, even from the flood's own address.
//!
//! - per client (an IPv4 address, or an IPv6 /64): at most `max_per_client` connections, waiting
//!   or answered. Past it, the client's own connection waiting longest is closed (503) if it
//!   has waited [`GRACE`] or more; the new one is refused (503) if none of the client's
//!   connections is waiting; otherwise (its waiting ones are all younger) the new one is let in
//!   and the client's oldest go as they age. Closing only connections that have waited a while
//!   means a flood reconnecting at once never closes a head that is arriving now, and one
//!   client never makes another's connections go;
//! - all clients: at most `max_waiting` waiting connections; past it the connection waiting
//!   longest is closed (503), whatever its age (the bound on sockets and memory).
//!
//! What answered connections may do at once is [`super::capacity`]'s.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// How long a connection waits before its client's newer ones may close it.
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// Whose connections count together: an IPv4 address, or an IPv6 /64 (one host's usual
/// share), an IPv4-mapped IPv6 address as its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Client {
    V4(u32),
    V6(u64),
}

impl Client {
    pub(super) fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(u32::from(v4)),
                None => Client::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The bounds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_waiting: usize,
    pub(super) max_per_client: usize,
}

struct Entry {
    client: Client,
    waiting: bool,
    since: Instant,
    /// Told when the connection is let go.
    evict: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// Every connection by admission order (the lowest id has waited longest).
    connections: BTreeMap<u64, Entry>,
    per_client: HashMap<Client, usize>,
    waiting: usize,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.connections.remove(&id)?;
        if entry.waiting {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if let Some(n) = self.per_client.get_mut(&entry.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&entry.client);
            }
        }
        Some(entry)
    }

    /// The oldest waiting connection, of `client` only if given.
    fn oldest_waiting(&self, client: Option<Client>) -> Option<(u64, Instant)> {
        self.connections
            .iter()
            .find(|(_, e)| e.waiting && client.is_none_or(|c| e.client == c))
            .map(|(id, e)| (*id, e.since))
    }

    /// Lets connection `id` go, telling it.
    fn evict(&mut self, id: u64) {
        if let Some(tell) = self.remove(id).and_then(|mut e| e.evict.take()) {
            let _ = tell.send(());
        }
    }
}

/// The connections held now.
pub(super) struct Admission {
    limits: Limits,
    table: Mutex<Table>,
}

impl Admission {
    pub(super) fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission {
            limits: Limits {
                max_waiting: limits.max_waiting.max(1),
                max_per_client: limits.max_per_client.max(1),
            },
            table: Mutex::new(Table::default()),
        })
    }

    /// Admits a new connection from `ip`, accepted `now`, as waiting, making room as the
    /// module docs say, or `None`: refuse it (the client holds its limit and none of it is
    /// waiting).
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Option<Ticket> {
        let client = Client::of(ip);
        let mut table = self.table.lock();
        let held = table.per_client.get(&client).copied().unwrap_or(0);
        if held >= self.limits.max_per_client {
            match table.oldest_waiting(Some(client)) {
                None => return None,
                Some((id, since)) if now.saturating_duration_since(since) >= GRACE => {
                    table.evict(id);
                }
                Some(_) => {}
            }
        }
        if table.waiting >= self.limits.max_waiting
            && let Some((id, _)) = table.oldest_waiting(None)
        {
            table.evict(id);
        }
        let id = table.next;
        table.next += 1;
        let (tell, evicted) = oneshot::channel();
        table.connections.insert(
            id,
            Entry {
                client,
                waiting: true,
                since: now,
                evict: Some(tell),
            },
        );
        table.waiting += 1;
        *table.per_client.entry(client).or_insert(0) += 1;
        Some(Ticket {
            id,
            admission: Arc::clone(self),
            evicted,
        })
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let t = self.table.lock();
        (t.connections.len(), t.waiting)
    }
}

/// One admitted connection; dropping it frees its place.
pub(super) struct Ticket {
    id: u64,
    admission: Arc<Admission>,
    /// Completes when the connection was let go to make room.
    pub(super) evicted: oneshot::Receiver<()>,
}

impl Ticket {
    /// The request head arrived: the connection no longer waits (and is never let go to make
    /// room). False if it was let go just before.
    pub(super) fn head_arrived(&self) -> bool {
        let mut table = self.admission.table.lock();
        let Some(entry) = table.connections.get_mut(&self.id) else {
            return false;
        };
        if entry.waiting {
            entry.waiting = false;
            entry.evict = None;
            table.waiting = table.waiting.saturating_sub(1);
        }
        true
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.table.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn a_client_at_its_limit_loses_its_connection_waiting_longest_not_a_new_one() {
        let a = Admission::new(Limits {
            max_waiting: 100,
            max_per_client: 3,
        });
        let t0 = Instant::now();
        let later = t0 + GRACE;
        let mut first: Vec<Ticket> = (0..3).filter_map(|_| a.admit(ip("10.0.0.1"), t0)).collect();
        assert_eq!(first.len(), 3);
        // Its waiting ones are all young: the new one gets in, nobody goes yet.
        let young = a.admit(ip("10.0.0.1"), t0 + Duration::from_millis(10));
        assert!(young.is_some());
        assert!(first[0].evicted.try_recv().is_err());
        assert!(
            a.admit(ip("10.0.0.2"), t0).is_some(),
            "others are not refused"
        );
        // Once they have waited a while, each new one closes the oldest.
        let newest = a.admit(ip("10.0.0.1"), later);
        assert!(newest.is_some(), "the new connection gets in");
        assert!(
            first[0].evicted.try_recv().is_ok(),
            "the oldest waiting goes"
        );
        assert!(first[1].evicted.try_recv().is_err(), "only the oldest");
        assert!(!first[0].head_arrived(), "let go: its head comes too late");
        // Every connection of the client answered: nothing to let go, the new one is refused.
        for t in first
            .iter()
            .skip(1)
            .chain(young.iter())
            .chain(newest.iter())
        {
            assert!(t.head_arrived());
        }
        assert!(a.admit(ip("10.0.0.1"), later).is_none());
        assert!(
            a.admit(ip("10.0.0.3"), later).is_some(),
            "others are not refused"
        );
        // It holds 4 (one let in over its limit while the others were young): two must end.
        drop(newest);
        assert!(a.admit(ip("10.0.0.1"), later).is_none());
        drop(young);
        assert!(
            a.admit(ip("10.0.0.1"), later).is_some(),
            "a place freed is taken again"
        );
    }

    #[test]
    fn past_the_waiting_limit_the_longest_waiting_goes_whatever_its_age() {
        let a = Admission::new(Limits {
            max_waiting: 2,
            max_per_client: 100,
        });
        let now = Instant::now();
        let mut one: Vec<Ticket> = a.admit(ip("10.0.0.1"), now).into_iter().collect();
        let two = a.admit(ip("10.0.0.2"), now);
        assert!(two.as_ref().is_some_and(Ticket::head_arrived));
        let three = a.admit(ip("10.0.0.3"), now);
        let _four = a.admit(ip("10.0.0.4"), now);
        assert!(one[0].evicted.try_recv().is_ok(), "the longest waiting");
        assert!(three.is_some());
        assert_eq!(a.counts(), (3, 2), "the answered one stays");
    }

    #[test]
    fn ipv6_clients_are_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            Client::of(ip("2001:db8:1:2::1")),
            Client::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Client::of(ip("2001:db8:1:2::1")),
            Client::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Client::of(ip("::ffff:10.0.0.1")),
            Client::of(ip("10.0.0.1"))
        );
    }
}
