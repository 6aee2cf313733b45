//! The `vigilo-probes` thread: a current-thread tokio runtime running every probe on its own
//! interval (a hung server holds only its own probe, for at most its timeout), recording each
//! result into the registry.

use std::sync::Arc;

use parking_lot::Mutex;

use super::check::{ProbeResult, Prober};
use super::spec::{
    CERT_EXPIRY_METRIC, DURATION_METRIC, ProbeSpec, ProbeTarget, STATUS_METRIC, SUCCESS_METRIC,
};
use crate::metrics::{Gauge, MetricError, Registry};

/// One probe's series, and whether it was failing (to log changes only).
struct Recorder {
    name: String,
    success: Gauge,
    duration: Gauge,
    status: Option<Gauge>,
    expiry: Option<Gauge>,
    failing: Mutex<Option<String>>,
}

impl Recorder {
    fn new(spec: &ProbeSpec, registry: &Registry) -> Result<Recorder, MetricError> {
        let labels = spec.series_labels();
        let (status, expiry) = match &spec.target {
            ProbeTarget::Http(h) => (
                Some(registry.gauge(STATUS_METRIC, &labels)?),
                (h.url.scheme_str() == Some("https"))
                    .then(|| registry.gauge(CERT_EXPIRY_METRIC, &labels))
                    .transpose()?,
            ),
            ProbeTarget::Tcp(_) | ProbeTarget::Dns(_) => (None, None),
        };
        Ok(Recorder {
            name: spec.name.clone(),
            success: registry.gauge(SUCCESS_METRIC, &labels)?,
            duration: registry.gauge(DURATION_METRIC, &labels)?,
            status,
            expiry,
            failing: Mutex::new(None),
        })
    }

    fn record(&self, r: &ProbeResult) {
        self.duration.set(r.duration.as_secs_f64());
        if let (Some(g), Some(s)) = (&self.status, r.status) {
            g.set(f64::from(s));
        }
        if let (Some(g), Some(e)) = (&self.expiry, r.cert_expiry) {
            g.set(e);
        }
        self.success.set(if r.success { 1.0 } else { 0.0 });
        let mut failing = self.failing.lock();
        match (&*failing, &r.error) {
            (None, Some(e)) => {
                log::warn!(target: "vigilo::probes", "probe {} failing: {e}", self.name);
            }
            (Some(_), None) => {
                log::info!(target: "vigilo::probes", "probe {} succeeds again", self.name);
            }
            _ => {}
        }
        failing.clone_from(&r.error);
    }
}

/// Every `[[probe]]` of a configuration, run on a thread of its own.
pub struct ProbeRunner {
    probes: Arc<Vec<(Prober, Recorder)>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProbeRunner {
    /// Prepares every probe (a CA file that cannot be read refuses the start) and starts
    /// running them, each every `interval`, the first check at once.
    pub fn start(specs: &[ProbeSpec], registry: &Registry) -> Result<ProbeRunner, String> {
        let mut probes = Vec::with_capacity(specs.len());
        for spec in specs {
            let prober =
                Prober::new(spec.clone()).map_err(|e| format!("probe {}: {e}", spec.name))?;
            let recorder =
                Recorder::new(spec, registry).map_err(|e| format!("probe {}: {e}", spec.name))?;
            probes.push((prober, recorder));
        }
        let probes = Arc::new(probes);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the probes' runtime: {e}"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&probes);
        let thread = std::thread::Builder::new()
            .name("vigilo-probes".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for i in 0..shared.len() {
                        let shared = Arc::clone(&shared);
                        tasks.spawn(async move {
                            let Some((prober, recorder)) = shared.get(i) else {
                                return;
                            };
                            let mut every = tokio::time::interval(prober.spec.interval);
                            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            loop {
                                every.tick().await;
                                recorder.record(&prober.run().await);
                            }
                        });
                    }
                    let _ = stopped.await;
                    tasks.abort_all();
                });
            })
            .map_err(|e| format!("cannot start the probes' thread: {e}"))?;
        Ok(ProbeRunner {
            probes,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs every probe once now, on the caller's thread (all at once), records the results
    /// and returns them by name.
    pub fn run_now(&self) -> Vec<(String, ProbeResult)> {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return Vec::new();
        };
        let mut results = rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..self.probes.len() {
                let probes = Arc::clone(&self.probes);
                set.spawn(async move {
                    let result = match probes.get(i) {
                        Some((p, _)) => Some(p.run().await),
                        None => None,
                    };
                    (i, result)
                });
            }
            set.join_all().await
        });
        results.sort_by_key(|r| r.0);
        let mut out = Vec::with_capacity(results.len());
        for (i, result) in results {
            if let (Some((p, r)), Some(result)) = (self.probes.get(i), result) {
                r.record(&result);
                out.push((p.spec.name.clone(), result));
            }
        }
        out
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the thread (checks in flight are dropped).
    pub fn stop(mut self) {
        self.halt();
    }
}

impl Drop for ProbeRunner {
    fn drop(&mut self) {
        self.halt();
    }
}

impl std::fmt::Debug for ProbeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeRunner")
            .field("probes", &self.probes.len())
            .finish_non_exhaustive()
    }
}
