//! The runner: reads the two groups' series from a [`Registry`] on a [`Clock`], closes
//! intervals, and publishes the score and the verdict as series.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::report::{CanaryReport, IntervalResult, Scored};
use super::score::{self, Data, Side};
use super::spec::CanarySpec;
use super::{CanaryError, SCORE_SERIES, VERDICT_SERIES};
use crate::Registry;
use crate::clock::{Clock, Timestamp};
use crate::metrics::{HistogramSnapshot, MetricKind, SeriesId, SeriesReader, Value};

/// The canary's (0) and the baseline's (1) groups.
const GROUPS: usize = 2;

/// One series of one group, with what was read of it.
struct Tracked {
    id: SeriesId,
    reader: SeriesReader,
    /// A histogram as it was when the current interval started (empty if it appeared after
    /// the run's start).
    interval_start: HistogramSnapshot,
    /// A counter's last total and when it was read.
    last: Option<(f64, Timestamp)>,
}

/// One metric in one group.
#[derive(Default)]
struct Group {
    series: Vec<Tracked>,
    kind: Option<MetricKind>,
    /// Counter rates or gauge values sampled in the current interval.
    interval_samples: Vec<f64>,
    /// The same since the run started, sorted at each interval's end.
    run_samples: Vec<f64>,
    /// A histogram metric's observations in the intervals closed so far, merged.
    run_histogram: Option<HistogramSnapshot>,
}

/// A canary run in progress. Create it with [`CanaryRun::start`] when the canary and the
/// baseline are deployed, then call [`tick`](Self::tick) at least once per
/// [`step`](CanarySpec::step) (more often is harmless: a tick before
/// [`next_wakeup`](Self::next_wakeup) only notices new series). Each tick past an interval's
/// end closes it: its own comparison is added to the report, the comparison since the start is
/// redone, and its score is published as the gauge `vigilo_canary_score{canary="<name>"}`.
/// When the last interval closes the run is complete and the verdict is published as
/// `vigilo_canary_verdict{canary="<name>"}` (0 pass, 1 marginal, 2 fail); starting a run
/// removes both series of an earlier run of the same name, so a rule on them (e.g.
/// `vigilo_canary_verdict` above 1.5 → Critical) sees each run's verdict once it is final.
///
/// Counters are sampled as per-second rates over each step, gauges as values, per series; a
/// group's samples are pooled. Histograms are read at each interval's end: a group's
/// observations in the interval are the deltas of its series, merged. Series that appear during
/// the run join it (a histogram's observations all count, as it appeared after the previous
/// tick); a series removed during the run leaves it: its observations of the intervals already
/// closed stay in the run's data, those of the current interval are lost.
pub struct CanaryRun {
    spec: CanarySpec,
    registry: Registry,
    clock: Arc<dyn Clock>,
    start: Timestamp,
    interval_start: Timestamp,
    next_sample: Timestamp,
    generation: u64,
    index: HashMap<String, usize>,
    /// Per metric of the spec, per group.
    groups: Vec<[Group; GROUPS]>,
    intervals: Vec<IntervalResult>,
    overall: Scored,
    complete: bool,
}

impl std::fmt::Debug for CanaryRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryRun")
            .field("canary", &self.spec.name)
            .field("start", &self.start)
            .field("intervals", &self.intervals.len())
            .field("complete", &self.complete)
            .finish()
    }
}

impl CanaryRun {
    /// Validates `spec`, removes the published series of an earlier run of the same name, and
    /// starts the run now: every matching series is read as it is at this moment.
    pub fn start(
        spec: CanarySpec,
        registry: &Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<CanaryRun, CanaryError> {
        spec.validate()?;
        let labels = [("canary", spec.name.as_str())];
        registry.remove(SCORE_SERIES, &labels);
        registry.remove(VERDICT_SERIES, &labels);
        let now = clock.now();
        let index = spec
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| (m.metric.clone(), i))
            .collect();
        let groups = spec.metrics.iter().map(|_| Default::default()).collect();
        let overall = score::score(&spec, Vec::new());
        let mut run = CanaryRun {
            registry: registry.clone(),
            clock,
            start: now,
            interval_start: now,
            next_sample: now,
            // Differs from any generation, so the first tick binds.
            generation: u64::MAX,
            index,
            groups,
            intervals: Vec::new(),
            overall,
            complete: false,
            spec,
        };
        run.bind(true);
        run.sample(now);
        Ok(run)
    }

    /// The definition being run.
    pub fn spec(&self) -> &CanarySpec {
        &self.spec
    }

    /// True once the last interval has closed.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// When the next tick has something to do: the next sample or the end of the interval.
    pub fn next_wakeup(&self) -> Timestamp {
        self.next_sample.min(self.interval_end())
    }

    fn interval_end(&self) -> Timestamp {
        let end = self.interval_start + self.spec.interval;
        end.min(self.start + self.spec.duration)
    }

    /// Notices new series, samples counters and gauges when a step is due, and closes the
    /// intervals that have ended. Returns how many intervals it closed. Errors only when the
    /// score or verdict series cannot be written (the registry's cardinality limit).
    pub fn tick(&mut self) -> Result<usize, CanaryError> {
        if self.complete {
            return Ok(0);
        }
        let now = self.clock.now();
        self.bind(false);
        if now >= self.next_sample {
            self.sample(now);
        }
        let mut closed = 0;
        while !self.complete && now >= self.interval_end() {
            self.close_interval()?;
            closed += 1;
        }
        Ok(closed)
    }

    /// Runs the rest of the run on a thread of its own (`vigilo-canary`), ticking at each
    /// [`next_wakeup`](Self::next_wakeup) (sleeping at most a second at a time, in real time,
    /// so it suits the system clock; drive a run on a manual clock with [`tick`](Self::tick)),
    /// and hands back the final report.
    pub fn spawn(
        mut self,
    ) -> std::io::Result<std::thread::JoinHandle<Result<CanaryReport, CanaryError>>> {
        std::thread::Builder::new()
            .name("vigilo-canary".to_owned())
            .spawn(move || {
                while !self.complete {
                    self.tick()?;
                    let wait = self.next_wakeup().since(self.clock.now());
                    std::thread::sleep(
                        wait.clamp(Duration::from_millis(1), Duration::from_secs(1)),
                    );
                }
                Ok(self.report())
            })
    }

    /// The report so far (final once [`is_complete`](Self::is_complete)).
    pub fn report(&self) -> CanaryReport {
        CanaryReport {
            canary: self.spec.name.clone(),
            start: self.start,
            end: self.intervals.last().map_or(self.start, |i| i.end),
            complete: self.complete,
            pass: self.spec.pass,
            marginal: self.spec.marginal,
            result: self.overall.clone(),
            intervals: self.intervals.clone(),
        }
    }

    /// Tracks the series of the spec's metrics that appeared since the last look, and drops
    /// those removed. At the start, histograms are read as they are; later, a new series is
    /// read from empty (it appeared after the previous tick).
    fn bind(&mut self, at_start: bool) {
        let generation = self.registry.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let mut live: HashSet<SeriesId> = HashSet::new();
        for reader in self.registry.readers() {
            let Some(&m) = self.index.get(&**reader.name()) else {
                continue;
            };
            let g = match reader.labels().get(&self.spec.label) {
                Some(v) if v == self.spec.canary => 0,
                Some(v) if v == self.spec.baseline => 1,
                _ => continue,
            };
            let id = reader.id();
            live.insert(id);
            let Some(group) = self.groups.get_mut(m).and_then(|gs| gs.get_mut(g)) else {
                continue;
            };
            if group.series.iter().any(|s| s.id == id) {
                continue;
            }
            let start = match reader.value() {
                Value::Histogram(h) if at_start => h,
                _ => HistogramSnapshot::empty(),
            };
            group.kind = Some(reader.kind());
            group.series.push(Tracked {
                id,
                reader,
                interval_start: start,
                last: None,
            });
        }
        for group in self.groups.iter_mut().flatten() {
            group.series.retain(|s| live.contains(&s.id));
        }
    }

    /// Samples every counter (as a rate since its last reading) and gauge.
    fn sample(&mut self, now: Timestamp) {
        for group in self.groups.iter_mut().flatten() {
            for s in &mut group.series {
                let Some(value) = s.reader.scalar() else {
                    continue;
                };
                let sample = match s.reader.kind() {
                    MetricKind::Gauge => Some(value),
                    _ => {
                        let rate = s.last.and_then(|(before, at)| {
                            let secs = now.since(at).as_secs_f64();
                            // A counter that went down was reset: no rate for this step.
                            (secs > 0.0 && value >= before).then(|| (value - before) / secs)
                        });
                        s.last = Some((value, now));
                        rate
                    }
                };
                if let Some(v) = sample.filter(|v| v.is_finite()) {
                    group.interval_samples.push(v);
                }
            }
        }
        while self.next_sample <= now {
            self.next_sample = self.next_sample + self.spec.step;
        }
    }

    /// Closes the current interval: its own comparison, the comparison since the start, the
    /// score series, and the verdict series if it was the last one.
    fn close_interval(&mut self) -> Result<(), CanaryError> {
        let end = self.interval_end();
        let mut interval = Vec::with_capacity(self.spec.metrics.len());
        let mut overall = Vec::with_capacity(self.spec.metrics.len());
        for (metric, groups) in self.spec.metrics.iter().zip(self.groups.iter_mut()) {
            let [c, b] = groups;
            let window = (c.take_interval(), b.take_interval());
            interval.push(score::judge(
                &self.spec,
                metric,
                window.0.side(c),
                window.1.side(b),
            ));
            overall.push(score::judge(&self.spec, metric, c.run_side(), b.run_side()));
        }
        let index = u32::try_from(self.intervals.len()).unwrap_or(u32::MAX);
        self.intervals.push(IntervalResult {
            index,
            start: self.interval_start,
            end,
            result: score::score(&self.spec, interval),
        });
        self.overall = score::score(&self.spec, overall);
        self.interval_start = end;
        self.complete = end >= self.start + self.spec.duration;
        let labels = [("canary", self.spec.name.as_str())];
        self.registry
            .set_gauge(SCORE_SERIES, &labels, self.overall.score)?;
        if self.complete {
            self.registry
                .set_gauge(VERDICT_SERIES, &labels, self.overall.verdict.as_gauge())?;
        }
        Ok(())
    }
}

/// One group's data of one window, owned.
enum Window {
    Histogram(HistogramSnapshot),
    Samples(Vec<f64>),
    Nothing,
}

impl Window {
    fn side<'a>(&'a self, group: &Group) -> Side<'a> {
        Side {
            series: group.series.len(),
            data: match self {
                Window::Histogram(h) => Some(Data::Histogram(h)),
                Window::Samples(s) => Some(Data::Samples(s)),
                Window::Nothing => None,
            },
        }
    }
}

impl Group {
    /// The current interval's data, also added to the run's; starts the next interval.
    fn take_interval(&mut self) -> Window {
        match self.kind {
            Some(MetricKind::Histogram) => {
                let mut merged = HistogramSnapshot::empty();
                for s in &mut self.series {
                    if let Value::Histogram(now) = s.reader.value() {
                        merged.merge(&now.delta(&s.interval_start));
                        s.interval_start = now;
                    }
                }
                self.run_histogram
                    .get_or_insert_with(HistogramSnapshot::empty)
                    .merge(&merged);
                Window::Histogram(merged)
            }
            Some(_) => {
                let mut samples = std::mem::take(&mut self.interval_samples);
                self.run_samples.extend_from_slice(&samples);
                self.run_samples.sort_unstable_by(f64::total_cmp);
                samples.sort_unstable_by(f64::total_cmp);
                Window::Samples(samples)
            }
            None => Window::Nothing,
        }
    }

    /// The data since the run started (after [`take_interval`](Self::take_interval)).
    fn run_side(&self) -> Side<'_> {
        Side {
            series: self.series.len(),
            data: match (self.kind, &self.run_histogram) {
                (Some(MetricKind::Histogram), Some(h)) => Some(Data::Histogram(h)),
                (Some(MetricKind::Histogram), None) | (None, _) => None,
                (Some(_), _) => Some(Data::Samples(&self.run_samples)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::canary::{CanaryMetric, Direction, Verdict};
    use crate::clock::SystemClock;

    #[test]
    fn a_spawned_run_completes_on_the_system_clock() {
        let registry = Registry::new();
        let c = registry
            .histogram("l_seconds", &[("deployment", "canary")])
            .unwrap();
        let b = registry
            .histogram("l_seconds", &[("deployment", "baseline")])
            .unwrap();
        for i in 0..100 {
            c.record(f64::from(i));
            b.record(f64::from(i));
        }
        let mut spec = CanarySpec::new("t")
            .timing(Duration::from_millis(20), Duration::from_millis(40))
            .metric(CanaryMetric::new("l_seconds", Direction::HigherIsBad));
        spec.step = Duration::from_millis(10);
        let run = CanaryRun::start(spec, &registry, Arc::new(SystemClock)).unwrap();
        for i in 0..100 {
            c.record(f64::from(i));
            b.record(f64::from(i));
        }
        let report = run.spawn().unwrap().join().unwrap().unwrap();
        assert!(report.complete);
        assert_eq!(report.intervals.len(), 2);
        assert_eq!(report.verdict(), Verdict::Pass);
    }
}
