//! Feeds the charts: a thread reads every item once per evaluator tick (at most once a
//! second), and every chart request reads them first (as a status request does), so a change
//! shows in the next chart drawn.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::Source;
use super::trends::Trends;

/// The thread reads at most this often.
const MIN_PERIOD: Duration = Duration::from_secs(1);

/// The charts' data and where it comes from.
pub(super) struct Charts {
    source: Arc<dyn Source>,
    trends: Mutex<Trends>,
}

impl Charts {
    pub(super) fn new(source: Arc<dyn Source>) -> Arc<Charts> {
        let trends = Trends::new(source.resolution());
        Arc::new(Charts {
            source,
            trends: Mutex::new(trends),
        })
    }

    /// Reads every item now.
    pub(super) fn sample(&self) {
        if let Ok(readings) = self.source.readings() {
            self.trends.lock().record(&readings);
        }
    }

    /// Runs `f` on the data.
    pub(super) fn with<T>(&self, f: impl FnOnce(&Trends) -> T) -> T {
        f(&self.trends.lock())
    }

    pub(super) fn source(&self) -> &dyn Source {
        &*self.source
    }
}

/// The thread reading every item once per tick.
pub(super) struct Sampler {
    stop: crossbeam_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub(super) fn start(charts: Arc<Charts>) -> std::io::Result<Sampler> {
        let period = charts.source.resolution().max(MIN_PERIOD);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("vigilo-http-charts".into())
            .spawn(move || {
                charts.sample();
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(period)
                {
                    charts.sample();
                }
            })?;
        Ok(Sampler {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
