//! `tracing` events and spans as metrics (feature `tracing`): a
//! [`tracing_subscriber::Layer`] that counts events by level and target and records span
//! durations into histograms, so rules such as "errors per second" work on a service's
//! existing `tracing` calls.
//!
//! - every event: `tracing_events_total{level, target}` + 1 (`level` is `error`, `warn`,
//!   `info`, `debug` or `trace`; which events reach the layer is the subscriber's filter);
//! - every span, when it closes: `tracing_span_duration_seconds{span, target}` records the time
//!   from its creation to its close (on the layer's [`Clock`]).
//!
//! **Bounded**: the names are the layer's ([`MetricsLayerBuilder::events_metric`],
//! [`MetricsLayerBuilder::spans_metric`]); the label values are `'static` callsite metadata (a
//! target, a span's name), never a field's value; a target may be cut to its first
//! [`target_depth`](MetricsLayerBuilder::target_depth) path segments (`app::db::pool` → `app::db`),
//! and past [`max_targets`](MetricsLayerBuilder::max_targets) distinct targets (64 by default) the
//! rest are counted under `target="other"`. So the layer adds at most 5 × `max_targets` event
//! series and `max_targets` × span names span series.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! use vigilo::Registry;
//! use vigilo::tracing_layer::MetricsLayer;
//!
//! let registry = Registry::new();
//! let subscriber = tracing_subscriber::registry().with(MetricsLayer::new(&registry));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::error!(target: "orders::db", "connection lost");
//! });
//! let errors = registry.snapshot();
//! let errors = errors.get("tracing_events_total", &[("level", "error"), ("target", "orders::db")]);
//! assert_eq!(errors.map(|s| s.value.as_f64()), Some(1.0));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::{Counter, Histogram, Registry};

/// The label value of targets past the limit.
const OTHER: &str = "other";

/// A `tracing-subscriber` layer feeding a [`Registry`] (see the [module](self) docs).
#[derive(Clone)]
pub struct MetricsLayer {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    clock: Arc<dyn Clock>,
    events_metric: String,
    spans_metric: String,
    max_targets: usize,
    target_depth: Option<usize>,
    /// Counters by level and target as seen (before the limit), so an event costs one lookup.
    events: papaya::HashMap<(Level, &'static str), Counter>,
    /// Histograms by span name and target as seen.
    spans: papaya::HashMap<(&'static str, &'static str), Histogram>,
    /// Targets given a label of their own so far (the limit's count).
    targets: papaya::HashSet<String>,
    labelled: AtomicUsize,
}

impl std::fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsLayer")
            .field("events_metric", &self.inner.events_metric)
            .field("spans_metric", &self.inner.spans_metric)
            .field("max_targets", &self.inner.max_targets)
            .field("target_depth", &self.inner.target_depth)
            .finish_non_exhaustive()
    }
}

impl MetricsLayer {
    /// A layer recording into `registry` with the default names and limits, spans timed on
    /// the system clock.
    pub fn new(registry: &Registry) -> Self {
        MetricsLayer::builder(registry).build()
    }

    /// A layer to configure: names, limits, clock.
    pub fn builder(registry: &Registry) -> MetricsLayerBuilder {
        MetricsLayerBuilder {
            registry: registry.clone(),
            clock: Arc::new(SystemClock),
            events_metric: "tracing_events_total".to_owned(),
            spans_metric: "tracing_span_duration_seconds".to_owned(),
            max_targets: 64,
            target_depth: None,
        }
    }
}

/// Configures a [`MetricsLayer`].
#[derive(Debug)]
pub struct MetricsLayerBuilder {
    registry: Registry,
    clock: Arc<dyn Clock>,
    events_metric: String,
    spans_metric: String,
    max_targets: usize,
    target_depth: Option<usize>,
}

impl MetricsLayerBuilder {
    /// The events counter's name (default `tracing_events_total`).
    pub fn events_metric(mut self, name: &str) -> Self {
        name.clone_into(&mut self.events_metric);
        self
    }

    /// The span-duration histogram's name (default `tracing_span_duration_seconds`).
    pub fn spans_metric(mut self, name: &str) -> Self {
        name.clone_into(&mut self.spans_metric);
        self
    }

    /// Distinct target labels at most (default 64); later targets count as `other`.
    pub fn max_targets(mut self, n: usize) -> Self {
        self.max_targets = n;
        self
    }

    /// Keeps only the first `segments` `::`-separated parts of a target (default: all).
    pub fn target_depth(mut self, segments: usize) -> Self {
        self.target_depth = Some(segments.max(1));
        self
    }

    /// Times spans on `clock` (a [`ManualClock`](crate::clock::ManualClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The layer. A metric name the registry refuses (or holds as another kind) is logged
    /// at the first event or span that needs it, and that event or span is not counted.
    pub fn build(self) -> MetricsLayer {
        MetricsLayer {
            inner: Arc::new(Inner {
                registry: self.registry,
                clock: self.clock,
                events_metric: self.events_metric,
                spans_metric: self.spans_metric,
                max_targets: self.max_targets,
                target_depth: self.target_depth,
                events: papaya::HashMap::new(),
                spans: papaya::HashMap::new(),
                targets: papaya::HashSet::new(),
                labelled: AtomicUsize::new(0),
            }),
        }
    }
}

impl Inner {
    /// The label value for `target`: cut to the depth, or `other` past the limit.
    fn target_label(&self, target: &str) -> String {
        let cut = match self.target_depth {
            Some(d) => target.split("::").take(d).collect::<Vec<_>>().join("::"),
            None => target.to_owned(),
        };
        let targets = self.targets.pin();
        if targets.contains(&cut) {
            return cut;
        }
        // Relaxed: a count that only bounds cardinality; two racing first events of new
        // targets may both see room, so the bound may be passed by the racing few.
        if self.labelled.fetch_add(1, Ordering::Relaxed) < self.max_targets {
            targets.insert(cut.clone());
            cut
        } else {
            self.labelled.fetch_sub(1, Ordering::Relaxed);
            OTHER.to_owned()
        }
    }

    fn count_event(&self, level: Level, target: &'static str) {
        let events = self.events.pin();
        if let Some(c) = events.get(&(level, target)) {
            c.increment();
            return;
        }
        let label = self.target_label(target);
        let level_name = level_name(level);
        match self.registry.counter(
            &self.events_metric,
            &[("level", level_name), ("target", &label)],
        ) {
            Ok(c) => {
                c.increment();
                events.insert((level, target), c);
            }
            Err(e) => log::warn!("tracing layer: cannot count events: {e}"),
        }
    }

    fn record_span(&self, name: &'static str, target: &'static str, seconds: f64) {
        let spans = self.spans.pin();
        if let Some(h) = spans.get(&(name, target)) {
            h.record(seconds);
            return;
        }
        let label = self.target_label(target);
        match self
            .registry
            .histogram(&self.spans_metric, &[("span", name), ("target", &label)])
        {
            Ok(h) => {
                h.record(seconds);
                spans.insert((name, target), h);
            }
            Err(e) => log::warn!("tracing layer: cannot time spans: {e}"),
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// When a span was created, kept in its extensions.
struct Opened(Timestamp);

impl<S> tracing_subscriber::Layer<S> for MetricsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let m = event.metadata();
        self.inner.count_event(*m.level(), m.target());
    }

    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(self.inner.clock.now()));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(opened) = span.extensions().get::<Opened>().map(|o| o.0) else {
            return;
        };
        let took = self.inner.clock.now().since(opened).as_secs_f64();
        let m = span.metadata();
        self.inner.record_span(m.name(), m.target(), took);
    }
}
