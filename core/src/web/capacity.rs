//! What answered connections may do at once: `max_connections` answers (event streams and
//! writes included), and [`RESERVED`] more kept for `GET /metrics` and `GET /api/status`, so a
//! scrape and the status still get in while slow readers or event streams hold the rest.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Answers kept for scrapes and status reads beyond `max_connections`.
pub(super) const RESERVED: usize = 8;

pub(super) struct Capacity {
    general: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
}

impl Capacity {
    pub(super) fn new(max_connections: usize) -> Self {
        Capacity {
            general: Arc::new(Semaphore::new(max_connections.max(1))),
            reserved: Arc::new(Semaphore::new(RESERVED)),
        }
    }

    /// A place to answer in, held until the connection ends; `None`: answer 503.
    pub(super) fn take(&self, scrape_or_status: bool) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.general)
            .try_acquire_owned()
            .ok()
            .or_else(|| {
                scrape_or_status
                    .then(|| Arc::clone(&self.reserved).try_acquire_owned().ok())
                    .flatten()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_and_status_reads_have_places_of_their_own() {
        let c = Capacity::new(2);
        let held: Vec<_> = (0..2).filter_map(|_| c.take(false)).collect();
        assert_eq!(held.len(), 2);
        assert!(
            c.take(false).is_none(),
            "the board, a stream, a write: full"
        );
        let scrapes: Vec<_> = (0..RESERVED).filter_map(|_| c.take(true)).collect();
        assert_eq!(scrapes.len(), RESERVED);
        assert!(c.take(true).is_none());
        drop(held);
        assert!(c.take(false).is_some());
    }
}
