//! The evaluator: samples the series rules reference, moves each item's state, reports changes.
//!
//! Layout for speed: every item lives in one arena (`Evaluator::items`) in sweep order (rule by
//! rule), and each rule holds the span of its items, so a sweep streams through one array
//! instead of one small allocation per rule; series live in a `Vec` in rule order and items
//! refer to them by a 32-bit index, so a sweep walks memory forwards. Each item caches the watch
//! bounds its state needs, and only series whose bounds changed are re-armed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use super::outbox::Outbox;
use super::state::{Change, ItemState, Period};
use super::window::Window;
use super::{EvalError, EvaluatorConfig, Transition};
use crate::clock::{Clock, Timestamp};
use crate::metrics::{Labels, Registry, SeriesId, SeriesReader, WatchBounds, WatchEvent};
use crate::rules::Rule;
use crate::rules::aggregation::Learned;

/// Counters describing the evaluator's work, visible in the status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvaluatorStats {
    /// Full sweeps done.
    pub ticks: u64,
    /// Item evaluations done (sweeps, watch wake-ups and deadlines).
    pub evaluations: u64,
    /// Watch events handled between ticks.
    pub watch_wakeups: u64,
    /// Transitions handed to the channel.
    pub transitions_sent: u64,
    /// Transitions waiting because the consumer is behind.
    pub transitions_backlogged: usize,
    /// Transitions dropped: backlog over its limit, or no consumer left.
    pub transitions_dropped: u64,
    /// Watch events the registry could not queue (each forced a full sweep).
    pub watch_events_dropped: u64,
    /// Duration of the last full sweep, in microseconds.
    pub last_tick_micros: u64,
    /// Rules loaded.
    pub rules: usize,
    /// Items (rule × series) evaluated.
    pub items: usize,
    /// Series sampled.
    pub watched_series: usize,
}

/// One item: a rule applied to one series (or a placeholder for a series that never reported).
pub(crate) struct Item {
    pub(crate) labels: Labels,
    /// Index of its rule in `Evaluator::rules`.
    pub(super) rule: u32,
    /// Index into the evaluator's series.
    pub(super) series: Option<u32>,
    pub(crate) state: ItemState,
    pub(super) deadline: Option<Timestamp>,
    pub(super) queued: Option<Timestamp>,
    /// The watch bounds this item's state needs, as last computed.
    pub(super) bounds: WatchBounds,
    /// When its series was last recorded, kept when the series is removed.
    pub(super) last_fresh: Option<Timestamp>,
    /// Stands for a rule whose series never reported, so no data can set in; dropped as soon as
    /// a series matches.
    pub(super) placeholder: bool,
    /// What an `anomaly` rule's item learned (none for other rules).
    pub(super) learned: Option<Box<Learned>>,
}

impl Item {
    pub(super) fn new(labels: Labels, rule: u32, now: Timestamp) -> Self {
        Item {
            rule,
            last_fresh: None,
            placeholder: false,
            labels,
            series: None,
            state: ItemState::new(now),
            deadline: None,
            queued: None,
            bounds: WatchBounds::NONE,
            learned: None,
        }
    }
}

/// A rule and its items.
pub(crate) struct Bound {
    pub(crate) rule: Arc<Rule>,
    /// Where its items are in the arena: `items_start..items_end`.
    items_start: u32,
    items_end: u32,
    /// Some series of the rule has had a fresh sample.
    pub(crate) ever_reported: bool,
    /// The rule's schedule at the last evaluation, valid until its next edge.
    period: Option<CachedPeriod>,
}

/// A rule's [`Period`] and the stretch of time it holds for.
#[derive(Debug, Clone, Copy)]
struct CachedPeriod {
    period: Period,
    from: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Bound {
    /// `metrics` holds the metric names of the rules bound so far: a rule on one of them
    /// shares it instead of keeping a copy.
    pub(super) fn new(mut rule: Rule, metrics: &mut std::collections::HashSet<Arc<str>>) -> Self {
        match metrics.get(&rule.metric) {
            Some(m) => rule.metric = Arc::clone(m),
            None => {
                metrics.insert(Arc::clone(&rule.metric));
            }
        }
        Bound {
            rule: Arc::new(rule),
            items_start: 0,
            items_end: 0,
            ever_reported: false,
            period: None,
        }
    }

    /// Where its items are in [`Evaluator::items`].
    pub(crate) fn span(&self) -> std::ops::Range<usize> {
        self.items_start as usize..self.items_end as usize
    }

    pub(super) fn set_span(&mut self, span: std::ops::Range<usize>) {
        // Saturates like `index_u32`.
        self.items_start = u32::try_from(span.start).unwrap_or(u32::MAX);
        self.items_end = u32::try_from(span.end).unwrap_or(u32::MAX);
    }

    /// Builds the transition for a change of `item` (`registry` tells the metric's unit).
    pub(super) fn transition(
        &self,
        item: &Item,
        change: Change,
        registry: &Registry,
    ) -> Transition {
        make_transition(&self.rule, item, change, registry)
    }
}

fn make_transition(rule: &Rule, item: &Item, change: Change, registry: &Registry) -> Transition {
    let value = if change.no_data {
        None
    } else {
        item.state.value
    };
    let unit = rule_unit(rule, registry);
    let mut annotations =
        rule.render_annotations(&item.labels, change.to, value, change.threshold, &unit);
    if let Some(v) = value {
        // What the aggregation says of the value (a time left, a band); the rule's own wins.
        for (k, text) in rule
            .aggregation()
            .annotations(v, change.at, item.learned.as_deref())
        {
            annotations.entry(k.to_owned()).or_insert(text);
        }
    }
    Transition {
        rule: Arc::clone(rule.shared_name()),
        metric: Arc::clone(rule.shared_metric()),
        labels: item.labels.clone(),
        rule_labels: rule.labels().clone(),
        from: change.from,
        to: change.to,
        value,
        threshold: change.threshold,
        since: change.since,
        at: change.at,
        no_data: change.no_data,
        flapping: change.flapping,
        annotations,
    }
}

/// The unit of `rule`'s values: its metric's described unit, or what the names say.
fn rule_unit(rule: &Rule, registry: &Registry) -> crate::units::Unit {
    let described = registry
        .description(rule.shared_metric())
        .and_then(|d| d.unit);
    rule.unit(described.as_deref(), registry.kind_of(rule.shared_metric()))
}

/// A sampled series.
pub(super) struct Watched {
    pub(super) id: SeriesId,
    pub(super) reader: SeriesReader,
    pub(super) window: Window,
    /// The items reading it: `Evaluator::users[users_start..users_end]` holds their indices.
    pub(super) users_start: u32,
    pub(super) users_end: u32,
    /// What is armed now (`None`: unknown, e.g. after the watch fired).
    pub(super) armed: Option<WatchBounds>,
    /// Some user's bounds changed since the last arming.
    pub(super) dirty: bool,
    /// A histogram's observation count read just before its last sample, to tell whether
    /// anything was recorded since (see `arming.rs`).
    pub(super) histogram_count: u64,
}

/// Decides every item's severity and reports each change on a bounded channel.
///
/// Drive it yourself with [`tick`](Self::tick) (a full sweep) and [`poll`](Self::poll)
/// (threshold crossings and due durations only), or hand it to its own thread with
/// [`spawn`](Self::spawn). It never blocks on the consumer: when the channel is full,
/// transitions wait in a backlog (counted in [`EvaluatorStats`]).
///
/// ```
/// use std::sync::Arc;
/// use vigilo::clock::{Clock, ManualClock, Timestamp};
/// use vigilo::eval::{Evaluator, EvaluatorConfig};
/// use vigilo::rules::{Level, Rule};
/// use vigilo::{Registry, Severity};
///
/// let registry = Registry::new();
/// let clock = ManualClock::new(Timestamp::from_secs(0));
/// let rule = Rule::builder("queue", "queue_depth").level(Level::new(Severity::Major, 100.0)).build()?;
/// let (mut evaluator, transitions) =
///     Evaluator::new(registry.clone(), vec![rule], Arc::new(clock.clone()), EvaluatorConfig::default())?;
///
/// let depth = registry.gauge("queue_depth", &[])?;
/// depth.set(10.0);
/// evaluator.tick(clock.now());
/// depth.set(250.0);                  // crosses the armed bound: no tick needed
/// evaluator.poll(clock.now());
/// let t = transitions.try_recv()?;
/// assert_eq!((t.from, t.to, t.value), (Severity::Normal, Severity::Major, Some(250.0)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Evaluator {
    pub(super) registry: Registry,
    clock: Arc<dyn Clock>,
    config: EvaluatorConfig,
    pub(crate) rules: Vec<Bound>,
    /// Every item, rule by rule in rule order (each rule's `span`).
    pub(crate) items: Vec<Item>,
    pub(super) series: Vec<Watched>,
    /// Item indices of each series' readers, series by series (each series' `users_*`).
    pub(super) users: Vec<u32>,
    pub(super) index: HashMap<SeriesId, usize, foldhash::fast::RandomState>,
    pub(super) generation: Option<u64>,
    watch_rx: Receiver<WatchEvent>,
    pub(super) outbox: Outbox,
    /// `(due, item index)`.
    pub(super) deadlines: BinaryHeap<Reverse<(Timestamp, u32)>>,
    /// Series whose new bounds are stored and wait for the heavy barrier and re-read of
    /// `finish_arming` (see `arming.rs`).
    pub(super) arming: Vec<(usize, WatchBounds)>,
    /// Saved item states waiting for their item to be bound (see `persist.rs`).
    pub(super) restored: super::state::Restored,
    stats: EvaluatorStats,
    /// When series were last bound between ticks, for the limit on how often that happens.
    pub(super) last_rebind: Option<Timestamp>,
}

/// Refuses a rule set the evaluator cannot run as written: two rules of one name, or a no-data
/// wait shorter than the tick (silence is noticed at ticks; a shorter wait would put a healthy
/// item in no data between two samples).
pub(super) fn check_rules(rules: &[Rule], config: &EvaluatorConfig) -> Result<(), EvalError> {
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        if !seen.insert(r.name()) {
            return Err(EvalError::DuplicateRule(r.name().to_owned()));
        }
        if let Some(nd) = r.no_data()
            && nd.after < config.tick
        {
            return Err(EvalError::Rule(crate::rules::RuleError::NoDataAfter {
                rule: r.name().to_owned(),
                after: nd.after,
                tick: Some(config.tick),
            }));
        }
    }
    Ok(())
}

impl Evaluator {
    /// An evaluator of `rules` over `registry`, and the receiver of its transitions.
    ///
    /// Fails if two rules share a name, or if the registry already feeds another evaluator (its
    /// watch channel has one consumer).
    pub fn new(
        registry: Registry,
        rules: Vec<Rule>,
        clock: Arc<dyn Clock>,
        config: EvaluatorConfig,
    ) -> Result<(Evaluator, Receiver<Transition>), EvalError> {
        check_rules(&rules, &config)?;
        let watch_rx = registry
            .watch_events(config.watch_capacity)
            .ok_or(EvalError::WatchTaken)?;
        let (tx, rx): (Sender<Transition>, _) =
            crossbeam_channel::bounded(config.channel_capacity.max(1));
        let outbox = Outbox::new(tx, config.backlog_limit);
        let evaluator = Evaluator {
            registry,
            clock,
            config,
            rules: bounds(rules),
            items: Vec::new(),
            series: Vec::new(),
            users: Vec::new(),
            index: HashMap::default(),
            generation: None,
            watch_rx,
            outbox,
            deadlines: BinaryHeap::new(),
            arming: Vec::new(),
            restored: super::state::Restored::default(),
            stats: EvaluatorStats::default(),
            last_rebind: None,
        };
        Ok((evaluator, rx))
    }

    /// Checks `rules` as an evaluator with `config` would take them (unique names, no-data
    /// waits no shorter than the tick), without changing anything.
    pub fn check(rules: &[Rule], config: &EvaluatorConfig) -> Result<(), EvalError> {
        check_rules(rules, config)
    }

    /// The clock the evaluator reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The settings.
    pub fn config(&self) -> &EvaluatorConfig {
        &self.config
    }

    /// The registry evaluated.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The rules, in load order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|b| &*b.rule)
    }

    /// The unit of `rule`'s values and thresholds (its metric's described unit, or what the
    /// names say; see [`crate::units`]).
    pub(crate) fn unit_of(&self, rule: &Rule) -> crate::units::Unit {
        rule_unit(rule, &self.registry)
    }

    /// Work counters.
    pub fn stats(&self) -> EvaluatorStats {
        let mut s = self.stats.clone();
        s.transitions_backlogged = self.outbox.backlog_len();
        s.transitions_dropped = self.outbox.dropped();
        s.transitions_sent = self.outbox.sent();
        s.watch_events_dropped = self.registry.watch_events_dropped();
        s.rules = self.rules.len();
        s.items = self.items.len();
        s.watched_series = self.series.len();
        s
    }

    /// A full sweep at `now`: handles pending watch events, binds new and vanished series,
    /// samples every referenced series, evaluates every item, re-arms watches and flushes.
    pub fn tick(&mut self, now: Timestamp) {
        let started = Instant::now();
        self.drain_watch_events(now);
        if self.generation != Some(self.registry.generation()) {
            self.rebind(now);
        }
        self.sweep(now);
        self.run_deadlines(now);
        self.expire_restored(now);
        self.outbox.flush();
        self.stats.ticks += 1;
        self.stats.last_tick_micros =
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    }

    /// Samples every series, evaluates every item, re-arms what changed.
    pub(super) fn sweep(&mut self, now: Timestamp) {
        for w in &mut self.series {
            w.sample(now);
        }
        for r in 0..self.rules.len() {
            let period = self.period(r, now);
            for i in self.rules[r].span() {
                self.evaluate(i, now, period);
            }
        }
        self.arm_all(now);
    }

    /// Between ticks: handles threshold crossings reported by watches and durations that have
    /// come due, without a full sweep.
    pub fn poll(&mut self, now: Timestamp) {
        self.bind_new_series(now);
        self.drain_watch_events(now);
        self.run_deadlines(now);
        self.outbox.flush();
    }

    /// The registry generation the rules were last bound at (`None` before the first sweep).
    pub(crate) fn bound_generation(&self) -> Option<u64> {
        self.generation
    }

    /// When the evaluator next needs to run for a duration to complete (besides ticks).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let item = self.deadlines.peek().map(|Reverse((t, _))| *t);
        let rebind = self.rebind_due();
        match (item, rebind) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Replaces the rule set. Rules whose [`identity`](Rule::identity) is unchanged keep their
    /// items' state; items of removed rules that were not Normal are reported resolved.
    pub fn reload(&mut self, rules: Vec<Rule>, now: Timestamp) -> Result<(), EvalError> {
        check_rules(&rules, &self.config)?;
        let items = self.take_items();
        let mut old: HashMap<String, (Bound, Vec<Item>)> = self
            .rules
            .drain(..)
            .zip(items)
            .map(|(b, items)| (b.rule.identity(), (b, items)))
            .collect();
        let mut metrics: std::collections::HashSet<Arc<str>> = old
            .values()
            .map(|(b, _)| Arc::clone(b.rule.shared_metric()))
            .collect();
        let mut kept = Vec::with_capacity(rules.len());
        let mut bounds = Vec::with_capacity(rules.len());
        for rule in rules {
            let (bound, items) = match old.remove(&rule.identity()) {
                Some((mut b, items)) => {
                    b.rule = Arc::new(rule);
                    b.period = None; // the schedule may have changed
                    (b, items)
                }
                None => (Bound::new(rule, &mut metrics), Vec::new()),
            };
            bounds.push(bound);
            kept.push(items);
        }
        self.rules = bounds;
        for (_, (bound, items)) in old {
            for mut item in items {
                if let Some(change) = item.state.resolve(now) {
                    self.outbox
                        .emit(bound.transition(&item, change, &self.registry));
                }
            }
        }
        self.rebind_from(kept, now);
        self.tick(now);
        Ok(())
    }

    pub(crate) fn watch_receiver(&self) -> &Receiver<WatchEvent> {
        &self.watch_rx
    }

    pub(super) fn count_wakeup(&mut self) {
        self.stats.watch_wakeups += 1;
    }

    /// Where rule `r`'s schedule stands at `now`: worked out at each window edge and cached
    /// between them, so an evaluation pays a compare.
    pub(super) fn period(&mut self, r: usize, now: Timestamp) -> Period {
        let Some(bound) = self.rules.get_mut(r) else {
            return Period::ALWAYS;
        };
        let Some(schedule) = bound.rule.schedule() else {
            return Period::ALWAYS;
        };
        if let Some(c) = &bound.period
            && c.from.is_none_or(|f| f <= now)
            && c.until.is_none_or(|u| now < u)
        {
            return c.period;
        }
        let open = schedule.is_active(now);
        let from = schedule.previous_change(now);
        let until = schedule.next_change(now);
        let period = Period { open, since: from };
        bound.period = Some(CachedPeriod {
            period,
            from,
            until,
        });
        period
    }

    /// Evaluates item `i` (an index into the arena) at `now`, its rule being in `period`.
    pub(super) fn evaluate(&mut self, i: usize, now: Timestamp, period: Period) {
        self.stats.evaluations += 1;
        let Some(item) = self.items.get_mut(i) else {
            return;
        };
        let Some(bound) = self.rules.get_mut(item.rule as usize) else {
            return;
        };
        let Bound {
            rule,
            ever_reported,
            ..
        } = bound;
        let window = item
            .series
            .and_then(|s| self.series.get(s as usize))
            .map(|w| &w.window);
        let value = window.and_then(|w| w.aggregate(rule.aggregation(), rule.window(), now));
        // An anomaly rule's item learns from the window's mean and judges it against its band.
        let value = match rule.aggregation().learns() {
            Some(a) => {
                item.learned
                    .get_or_insert_with(Box::default)
                    .observe(&a, rule.window(), now, value)
            }
            None => value,
        };
        // A series gone from the registry keeps its last sample time: no data is timed from it.
        let last_fresh = window.and_then(|w| w.last_fresh).or(item.last_fresh);
        item.last_fresh = last_fresh;
        let change = item.state.update(rule, now, value, last_fresh, period);
        let deadline = item.state.next_deadline(rule, now, last_fresh);
        item.deadline = deadline;
        if let Some(d) = deadline
            && item.queued.is_none_or(|q| d < q)
        {
            item.queued = Some(d);
            self.deadlines.push(Reverse((d, index_u32(i))));
        }
        let bounds = item.state.watch_bounds(rule);
        if bounds != item.bounds {
            item.bounds = bounds;
            if let Some(w) = item.series.and_then(|s| self.series.get_mut(s as usize)) {
                w.dirty = true;
            }
        }
        if last_fresh.is_some() {
            *ever_reported = true;
        }
        if let Some(change) = change {
            self.outbox
                .emit(make_transition(rule, item, change, &self.registry));
        }
    }

    fn run_deadlines(&mut self, now: Timestamp) {
        while let Some(&Reverse((d, i))) = self.deadlines.peek() {
            if d > now {
                break;
            }
            self.deadlines.pop();
            let i = i as usize;
            let Some(item) = self.items.get_mut(i) else {
                continue;
            };
            if item.queued != Some(d) {
                continue; // superseded by an earlier entry for the same item
            }
            item.queued = None;
            match item.deadline {
                Some(due) if due <= now => {
                    let r = item.rule as usize;
                    let period = self.period(r, now);
                    self.evaluate(i, now, period);
                    if let Some(s) = self.items.get(i).and_then(|it| it.series) {
                        self.stage(s as usize);
                    }
                }
                Some(later) => {
                    item.queued = Some(later);
                    self.deadlines.push(Reverse((later, index_u32(i))));
                }
                None => {}
            }
        }
        self.finish_arming(now);
    }

    /// Every item as it stands now, rule by rule, read-only (the status board and the
    /// coverage report read them through this).
    pub fn items(&self) -> impl Iterator<Item = ItemView<'_>> {
        self.rules.iter().flat_map(move |bound| {
            self.items
                .get(bound.span())
                .unwrap_or_default()
                .iter()
                .map(move |item| ItemView {
                    rule: &bound.rule,
                    labels: &item.labels,
                    severity: item.state.severity,
                    value: item.state.value,
                    since: item.state.since,
                    flapping: item.state.flapping,
                    no_data: item.state.no_data,
                })
        })
    }

    /// Each rule, and whether some series of it has had a fresh sample.
    pub fn rules_reported(&self) -> impl Iterator<Item = (&Rule, bool)> {
        self.rules.iter().map(|b| (&*b.rule, b.ever_reported))
    }
}

/// One item (a rule on one series) as the evaluator holds it: read-only.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ItemView<'a> {
    /// Its rule.
    pub rule: &'a Rule,
    /// Its series' labels.
    pub labels: &'a Labels,
    /// Its severity now.
    pub severity: crate::Severity,
    /// The last value evaluated (kept while in no data).
    pub value: Option<f64>,
    /// When it entered its severity.
    pub since: Timestamp,
    /// It is flapping: changes are held until it settles.
    pub flapping: bool,
    /// It has had no fresh sample for its rule's no-data time.
    pub no_data: bool,
}

/// `i` as an arena index. Saturates at `u32::MAX`, which no arena reaches: 4 billion items
/// would take over a terabyte (288 B each).
pub(super) fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The rules' bounds, in a vector of their own: collecting in place would keep the rules'
/// larger buffer alive for the evaluator's lifetime. Rules on one metric share its name.
fn bounds(rules: Vec<Rule>) -> Vec<Bound> {
    let mut metrics = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(rules.len());
    out.extend(rules.into_iter().map(|r| Bound::new(r, &mut metrics)));
    out
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("stats", &self.stats())
            .finish()
    }
}
