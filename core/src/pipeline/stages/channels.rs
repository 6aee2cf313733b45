//! The channels of the delivery stage: each channel's threads, its health (consecutive
//! failures and the "channel failing" meta-alert) and its rate limit (tokens, and what it held
//! back, summed up when it allows again).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::Severity;
use crate::alert::{Alert, Channel};
use crate::clock::Timestamp;
use crate::metrics::Labels;
use crate::pipeline::effects::{Effect, Effects};
use crate::pipeline::event::{Event, EventKind};
use crate::pipeline::incident::IncidentId;
use crate::pipeline::notification::{HeldBack, set_key};
use crate::pipeline::settings::{ChannelConfig, NotifyConfig, RateLimit, RetryPolicy};
use crate::pipeline::timers::Timer;
use crate::pipeline::workers::{DeliveryJob, Done, Pool, channel_pool};
use crate::pipeline::{CHANNEL_FAILING_RULE, PipelineError, RATE_LIMITED_RULE};

/// A channel: its settings, its threads, its health, its rate limit.
struct ChannelState {
    config: ChannelConfig,
    channel: Arc<dyn Channel>,
    pool: Pool<DeliveryJob>,
    consecutive_failures: u32,
    /// Its "channel failing" meta-alert is raised.
    failing: bool,
    tokens: f64,
    refilled_at: Timestamp,
    /// What the rate limit held back, summed up when it allows again.
    held: HeldBack,
    summary_armed: bool,
}

/// Every configured channel.
#[derive(Default)]
pub(crate) struct Channels {
    map: HashMap<String, ChannelState>,
}

impl Channels {
    /// Starts the threads of every configured channel, keeping those whose settings and
    /// implementation did not change.
    pub(crate) fn install(
        &mut self,
        configs: &[ChannelConfig],
        impls: &HashMap<String, Arc<dyn Channel>>,
        results: &crossbeam_channel::Sender<Done>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        // New threads first: if one cannot start, nothing has changed (the new ones go).
        let mut fresh = HashMap::new();
        for c in configs {
            let imp = impls
                .get(&c.name)
                .ok_or_else(|| PipelineError::MissingChannel(c.name.clone()))?;
            let kept = self.map.get(&c.name).is_some_and(|old| {
                old.config.workers == c.workers && Arc::ptr_eq(&old.channel, imp)
            });
            if kept {
                continue;
            }
            let pool = channel_pool(Arc::clone(imp), c.workers, results.clone())
                .map_err(PipelineError::Spawn)?;
            fresh.insert(
                c.name.clone(),
                ChannelState {
                    config: c.clone(),
                    channel: Arc::clone(imp),
                    pool,
                    consecutive_failures: 0,
                    failing: false,
                    tokens: c.rate_limit.map_or(0.0, |r| f64::from(r.count)),
                    refilled_at: now,
                    held: HeldBack::default(),
                    summary_armed: false,
                },
            );
        }
        let mut channels = HashMap::new();
        for c in configs {
            let state = match fresh.remove(&c.name) {
                Some(new) => new,
                None => match self.map.remove(&c.name) {
                    Some(mut old) => {
                        old.config = c.clone();
                        old
                    }
                    None => continue, // not reached: every channel is fresh or kept
                },
            };
            channels.insert(c.name.clone(), state);
        }
        self.map = channels;
        Ok(())
    }

    pub(crate) fn contains(&self, channel: &str) -> bool {
        self.map.contains_key(channel)
    }

    pub(crate) fn config(&self, channel: &str) -> Option<&ChannelConfig> {
        self.map.get(channel).map(|c| &c.config)
    }

    /// The channel that takes what `channel` could not deliver.
    pub(crate) fn fallback(&self, channel: &str) -> Option<String> {
        self.config(channel).and_then(|c| c.fallback.clone())
    }

    pub(crate) fn retry(&self, channel: &str) -> RetryPolicy {
        self.config(channel).map(|c| c.retry).unwrap_or_default()
    }

    /// Hands a delivery to the channel's threads; false if it has none.
    pub(crate) fn send(&self, channel: &str, job: DeliveryJob) -> bool {
        self.map.get(channel).is_some_and(|c| c.pool.send(job))
    }

    /// The channel's meta-alert stays open after a restart: the channel is taken to be failing
    /// still, until it delivers again. False if there is no such channel any more.
    pub(crate) fn resume_failing(&mut self, channel: &str, threshold: u32) -> bool {
        match self.map.get_mut(channel) {
            Some(ch) => {
                ch.failing = true;
                ch.consecutive_failures = threshold;
                true
            }
            None => false,
        }
    }

    /// The channel delivered: its failures are forgotten and its meta-alert resolves.
    pub(crate) fn healthy(
        &mut self,
        channel: &str,
        meta: Severity,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let Some(ch) = self.map.get_mut(channel) else {
            return;
        };
        ch.consecutive_failures = 0;
        if std::mem::take(&mut ch.failing) {
            let mut e = Event::new(EventKind::ChannelFailing, now);
            e.channel = Some(channel.to_owned());
            e.detail = "resolved: the channel delivers again".into();
            fx.event(e);
            fx.push(Effect::Transition(
                channel_transition(channel, Severity::Normal, meta, "delivers again", now),
                None,
            ));
        }
    }

    /// The channel failed an attempt: after `notify.channel_failing_after` in a row, its
    /// meta-alert is raised (never sent to it).
    pub(crate) fn failed(
        &mut self,
        channel: &str,
        error: &str,
        notify: &NotifyConfig,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let threshold = notify.channel_failing_after.max(1);
        let severity = notify.meta_severity;
        let Some(ch) = self.map.get_mut(channel) else {
            return;
        };
        ch.consecutive_failures += 1;
        if ch.consecutive_failures < threshold || ch.failing {
            return;
        }
        ch.failing = true;
        let failures = ch.consecutive_failures;
        let mut e = Event::new(EventKind::ChannelFailing, now);
        e.channel = Some(channel.to_owned());
        e.detail = format!("{failures} attempts in a row failed: {error}");
        fx.event(e);
        fx.push(Effect::Transition(
            channel_transition(
                channel,
                severity,
                severity,
                &format!("{failures} delivery attempts in a row failed; last: {error}"),
                now,
            ),
            Some(channel.to_owned()),
        ));
    }

    /// Takes one token of the channel's rate limit; false if none is left.
    pub(crate) fn take_token(&mut self, channel: &str, now: Timestamp) -> bool {
        let Some(ch) = self.map.get_mut(channel) else {
            return true;
        };
        let Some(limit) = ch.config.rate_limit else {
            return true;
        };
        refill(ch, limit, now);
        if ch.tokens >= 1.0 {
            ch.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Holds a notification back; the summary goes out when a token is back.
    pub(crate) fn hold(
        &mut self,
        channel: &str,
        alert: &Alert,
        incidents: &[IncidentId],
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let Some(ch) = self.map.get_mut(channel) else {
            return;
        };
        let Some(limit) = ch.config.rate_limit else {
            return;
        };
        ch.held.add(alert, now);
        let arm = !ch.summary_armed;
        ch.summary_armed = true;
        let wait = token_wait(ch.tokens, limit);
        let mut e = Event::new(EventKind::RateLimited, now);
        e.incident = incidents.first().copied();
        e.rule = Some(alert.rule.clone());
        e.channel = Some(channel.to_owned());
        e.key = Some(alert.idempotency_key.clone());
        e.detail = format!(
            "rate limit {} per {} reached: held back",
            limit.count,
            crate::duration::format_duration(limit.per)
        );
        fx.event(e);
        if arm {
            fx.timer(now + wait, Timer::RateSummary(Arc::from(channel)));
        }
    }

    /// The rate limit may send again: one notification summing up what it held back.
    /// Returns the summary to send, if one may go now (else its timer is set again).
    pub(crate) fn rate_summary(
        &mut self,
        channel: &str,
        identity: &str,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Option<Alert> {
        let ch = self.map.get_mut(channel)?;
        let limit = ch.config.rate_limit?;
        ch.summary_armed = false;
        if ch.held.count == 0 {
            return None;
        }
        refill(ch, limit, now);
        if ch.tokens < 1.0 {
            ch.summary_armed = true;
            let wait = token_wait(ch.tokens, limit);
            fx.timer(now + wait, Timer::RateSummary(Arc::from(channel)));
            return None;
        }
        ch.tokens -= 1.0;
        let held = std::mem::take(&mut ch.held);
        let summary = format!(
            "{} notification(s) held back by the rate limit of channel {channel} since {}",
            held.count,
            held.since.unwrap_or(now)
        );
        let mut alert = held.into_alert(RATE_LIMITED_RULE, channel, summary, now);
        let what = format!("rate:{channel}:{}", now.as_nanos());
        set_key(&mut alert, &what, identity);
        Some(alert)
    }

    /// At stop: closes every pool and waits for its threads (however long a call takes).
    pub(crate) fn close(&mut self) {
        for c in std::mem::take(&mut self.map).into_values() {
            c.pool.close();
        }
    }
}

/// The transition of channel `channel`'s meta-alert to `to` (`meta` is the meta-alerts'
/// severity, what a resolve resolves from).
fn channel_transition(
    channel: &str,
    to: Severity,
    meta: Severity,
    summary: &str,
    now: Timestamp,
) -> crate::eval::Transition {
    let from = if to == Severity::Normal {
        meta
    } else {
        Severity::Normal
    };
    meta_transition(
        CHANNEL_FAILING_RULE,
        "vigilo_channel_failures",
        Labels::from_pairs(&[("channel", channel)]),
        (from, to),
        format!("alert channel {channel}: {summary}"),
        now,
    )
}

/// A transition of one of the pipeline's own meta-alerts, `(from, to)` at `now`.
pub(crate) fn meta_transition(
    rule: &str,
    metric: &str,
    labels: Labels,
    (from, to): (Severity, Severity),
    summary: String,
    now: Timestamp,
) -> crate::eval::Transition {
    crate::eval::Transition {
        rule: Arc::from(rule),
        metric: Arc::from(metric),
        labels,
        rule_labels: BTreeMap::new(),
        from,
        to,
        value: None,
        threshold: None,
        since: now,
        at: now,
        no_data: false,
        flapping: false,
        annotations: BTreeMap::from([("summary".to_owned(), summary)]),
    }
}

fn refill(ch: &mut ChannelState, limit: RateLimit, now: Timestamp) {
    let per = limit.per.as_secs_f64().max(1e-9);
    let elapsed = now.since(ch.refilled_at).as_secs_f64();
    ch.tokens = (ch.tokens + elapsed / per * f64::from(limit.count)).min(f64::from(limit.count));
    ch.refilled_at = now;
}

fn token_wait(tokens: f64, limit: RateLimit) -> Duration {
    let per_token = limit.per.as_secs_f64() / f64::from(limit.count.max(1));
    Duration::from_secs_f64(((1.0 - tokens).max(0.0) * per_token).max(0.001))
}
