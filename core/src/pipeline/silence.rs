//! Silences: an operator's "do not notify about these until then", created and expired through
//! the API.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::settings::Selector;
use crate::Severity;
use crate::clock::Timestamp;
use crate::rules::Matcher;

/// A silence's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SilenceId(pub u64);

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a request to silence reads: which alerts, for how long, who and why.
///
/// ```
/// use std::time::Duration;
/// use vigilo::pipeline::SilenceRequest;
///
/// let s = SilenceRequest::new("kim", "replacing the disk", Duration::from_secs(3600))
///     .rule("disk")
///     .matcher("mount", "/data");
/// assert_eq!(s.matchers["mount"], "/data");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SilenceRequest {
    /// Rule names (exact; empty: any).
    pub rules: Vec<String>,
    /// Label matchers, in the configuration's form: label → `"value"`, `"!=value"`,
    /// `"=~regex"`, `"!~regex"`.
    pub matchers: BTreeMap<String, String>,
    /// When it starts (`None`: now).
    pub starts_at: Option<Timestamp>,
    /// How long it lasts from its start.
    pub duration: Duration,
    /// Who asked.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl SilenceRequest {
    /// A silence of everything (narrow it with [`rule`](Self::rule) and
    /// [`matcher`](Self::matcher)) from now for `duration`.
    pub fn new(created_by: &str, comment: &str, duration: Duration) -> Self {
        SilenceRequest {
            created_by: created_by.to_owned(),
            comment: comment.to_owned(),
            duration,
            ..SilenceRequest::default()
        }
    }

    /// Only alerts of this rule (repeat for several).
    pub fn rule(mut self, rule: &str) -> Self {
        self.rules.push(rule.to_owned());
        self
    }

    /// Only alerts whose label matches (`"value"`, `"!=value"`, `"=~regex"`, `"!~regex"`).
    pub fn matcher(mut self, label: &str, spec: &str) -> Self {
        self.matchers.insert(label.to_owned(), spec.to_owned());
        self
    }

    /// Starting at `t` instead of now.
    pub fn starting(mut self, t: Timestamp) -> Self {
        self.starts_at = Some(t);
        self
    }
}

/// An active or future silence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Silence {
    /// Its number.
    pub id: SilenceId,
    /// Rule names (empty: any).
    pub rules: Vec<String>,
    /// Label matchers as given.
    pub matchers: BTreeMap<String, String>,
    /// Start, inclusive.
    pub starts_at: Timestamp,
    /// End, exclusive.
    pub ends_at: Timestamp,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was created.
    pub created_at: Timestamp,
    #[serde(skip)]
    pub(crate) selector: Selector,
}

impl PartialEq for Silence {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.rules == other.rules
            && self.matchers == other.matchers
            && self.starts_at == other.starts_at
            && self.ends_at == other.ends_at
            && self.created_by == other.created_by
            && self.comment == other.comment
            && self.created_at == other.created_at
    }
}

impl Silence {
    /// Builds a silence from a request; fails on a bad matcher or an empty duration.
    pub(crate) fn from_request(
        id: SilenceId,
        req: SilenceRequest,
        now: Timestamp,
    ) -> Result<Self, String> {
        if req.duration.is_zero() {
            return Err("a silence needs a duration greater than zero".into());
        }
        if req.created_by.trim().is_empty() {
            return Err("a silence needs `created_by`: who is silencing".into());
        }
        let starts_at = req.starts_at.unwrap_or(now);
        let mut s = Silence {
            id,
            rules: req.rules,
            matchers: req.matchers,
            starts_at,
            ends_at: starts_at + req.duration,
            created_by: req.created_by,
            comment: req.comment,
            created_at: now,
            selector: Selector::default(),
        };
        s.compile()?;
        Ok(s)
    }

    /// Rebuilds the compiled matchers (after loading from a store).
    pub fn compile(&mut self) -> Result<(), String> {
        let matchers = self
            .matchers
            .iter()
            .map(|(l, spec)| Matcher::parse(l, spec).map_err(|e| format!("matcher {l}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        self.selector = Selector {
            rules: self.rules.clone(),
            matchers,
            severities: None,
        };
        Ok(())
    }

    /// True if active at `now` and matching the alert.
    pub fn silences(
        &self,
        now: Timestamp,
        rule: &str,
        labels: &BTreeMap<String, String>,
        severity: Severity,
    ) -> bool {
        self.is_active(now) && self.selector.selects(rule, labels, severity)
    }

    /// True between its start and its end.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}
