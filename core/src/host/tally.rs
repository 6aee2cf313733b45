//! What every host item's refresh shares: the shortest window for a rate, and the tally of
//! what a refresh wrote.

use std::time::Duration;

use super::HostError;

/// The shortest window over which a rate (disk and network bytes per second, this process's
/// CPU) is computed. A refresh closer than this to the previous reading leaves the rate's
/// series as they were and reports it on a later refresh. It matches sysinfo's own minimum
/// between two CPU readings on Linux.
pub const MIN_RATE_WINDOW: Duration = Duration::from_millis(200);

/// Counts what a refresh did and keeps the first error, so one failing item does not stop
/// the others.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) written: usize,
    pub(crate) removed: usize,
    pub(crate) pending: usize,
    pub(crate) first_error: Option<HostError>,
}

impl Tally {
    /// Adds the outcome of writing some series.
    pub(crate) fn wrote(&mut self, result: Result<usize, HostError>) {
        match result {
            Ok(n) => self.written += n,
            Err(e) => self.fail(e),
        }
    }

    pub(crate) fn fail(&mut self, error: HostError) {
        self.first_error.get_or_insert(error);
    }
}
