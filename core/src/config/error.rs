//! Located configuration errors: file, line, column, key and reason.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::rules::RuleError;

/// A place in a configuration file: its name, a 1-based line and a 1-based column (in
/// characters). Displays as `name:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file's name as given (a path, or the name passed to
    /// [`Config::from_str_named`](super::Config::from_str_named)).
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// The text of that line, for excerpts.
    pub line_text: String,
    /// How many characters of the line the problem spans (at least 1).
    pub width: usize,
}

impl Location {
    /// The location of byte range `span` in `text`.
    pub(super) fn of(file: &str, text: &str, span: Range<usize>) -> Box<Location> {
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let end = span
            .end
            .clamp(start, (line_start + line_text.len()).max(start));
        let width = text.get(start..end).map_or(0, |s| s.chars().count());
        Box::new(Location {
            file: file.to_owned(),
            line: text[..start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            line_text: line_text.to_owned(),
            width: width.max(1),
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", clip(&self.file), self.line, self.column)
    }
}

/// The most characters of one piece of text from the configuration (a name, a key, a parser's
/// message) that an error quotes; longer ones keep their start and end.
const CLIP: usize = 200;
/// How many characters of the offending line an excerpt shows before the column …
const EXCERPT_BEFORE: usize = 60;
/// … and from the column on.
const EXCERPT_AFTER: usize = 100;

/// `text`, at most [`CLIP`] characters of it: so that an error about a 10 MB name or line is
/// not itself 10 MB long.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    let n = text.chars().count();
    if n <= CLIP {
        return text.into();
    }
    let keep = CLIP / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(n - keep).collect();
    format!("{head}[… {} characters left out …]{tail}", n - 2 * keep).into()
}

/// Why a configuration could not be loaded. Every variant but [`ConfigError::Read`] carries a
/// [`Location`], and displays like a compiler diagnostic:
///
/// ```text
/// rules.toml:14:13: rule "cpu", key `major.threshold`: thresholds out of order for comparison above: …
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read configuration: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{location}: TOML syntax error: {}", clip(message))]
    Syntax {
        /// Where.
        location: Box<Location>,
        /// What the TOML parser expected.
        message: String,
    },
    /// Valid TOML that is not a valid configuration: an unknown key, a missing key, a value of the
    /// wrong type or form (duration, percentage, severity, aggregation, time zone…).
    #[error("{location}: {}{}", context(within.as_deref(), key.as_deref()), clip(message))]
    Invalid {
        /// Where.
        location: Box<Location>,
        /// The rule or expectation the key is in, as printed: `rule "cpu"`, `rule #2` (a rule
        /// without a name), `expect "host_load1"`; `None` outside them.
        within: Option<String>,
        /// The key concerned, relative to the rule or expectation if there is one
        /// (`critical.for`), else from the top (`host.interval`).
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A rule that the rule builder refused (thresholds out of order, clear on the wrong side…).
    #[error("{location}: {}{}", context(Some(&format!("rule {:?}", clip(rule))), key.as_deref()), reason(rule, error))]
    Rule {
        /// Where.
        location: Box<Location>,
        /// The rule's name.
        rule: String,
        /// The key concerned, relative to the rule (`major.threshold`), if known.
        key: Option<String>,
        /// The builder's error.
        error: Box<RuleError>,
    },
    /// Two rules have the same name.
    #[error(
        "{location}: rule {:?}: duplicate rule name (first defined at line {}); rule names must be unique",
        clip(name), first.line
    )]
    DuplicateRule {
        /// Where the second one is named.
        location: Box<Location>,
        /// The name.
        name: String,
        /// Where the first one is named.
        first: Box<Location>,
    },
}

fn context(rule: Option<&str>, key: Option<&str>) -> String {
    let (rule, key) = (rule.map(clip), key.map(clip));
    match (rule, key) {
        (Some(r), Some(k)) => format!("{r}, key `{k}`: "),
        (Some(r), None) => format!("{r}: "),
        (None, Some(k)) => format!("key `{k}`: "),
        (None, None) => String::new(),
    }
}

/// The builder's message without its own `rule <name>: ` prefix (the context already names it).
fn reason(rule: &str, error: &RuleError) -> String {
    let text = error.to_string();
    let text = text
        .strip_prefix(&format!("rule {rule}: "))
        .unwrap_or(&text);
    clip(text).into_owned()
}

impl ConfigError {
    /// Where the problem is, unless the file could not be read at all.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { location, .. }
            | ConfigError::Invalid { location, .. }
            | ConfigError::Rule { location, .. }
            | ConfigError::DuplicateRule { location, .. } => Some(location),
        }
    }

    /// The message followed by the offending line with the problem underlined, as compilers
    /// print it:
    ///
    /// ```text
    /// rules.toml:14:13: rule "cpu", key `major.threshold`: thresholds out of order …
    ///    |
    /// 14 | threshold = 0.7
    ///    |             ^^^
    /// ```
    ///
    /// Bounded, however long the line: the excerpt shows at most 60 characters before the
    /// column and 100 from it (`…` marks the cut), and every piece of the configuration the
    /// message quotes is cut to 200 characters; the line and column stay exact.
    pub fn with_excerpt(&self) -> String {
        let Some(at) = self.location() else {
            return self.to_string();
        };
        let gutter = " ".repeat(at.line.to_string().len());
        let total = at.line_text.chars().count();
        let column = (at.column - 1).min(total);
        let first = column.saturating_sub(EXCERPT_BEFORE);
        let last = (column + EXCERPT_AFTER).min(total);
        let shown: String = at
            .line_text
            .chars()
            .skip(first)
            .take(last - first)
            .collect();
        let (open, close) = (
            if first > 0 { "…" } else { "" },
            if last < total { "…" } else { "" },
        );
        let caret = column - first + open.chars().count();
        let width = at.width.clamp(1, (last - column).max(1));
        format!(
            "{self}\n{gutter} |\n{} | {open}{shown}{close}\n{gutter} | {}{}",
            at.line,
            " ".repeat(caret),
            "^".repeat(width)
        )
    }
}

/// One step of a path into the document.
enum Step {
    Key(String),
    /// An array element: its index and, for tables, its `name` or `metric`.
    Index(usize, Option<String>),
}

/// For a byte offset, the rule or expectation it falls in (`rule "cpu"`, `rule #2`) and the key
/// path below it (`critical.for`), or from the top if it is in neither (`host.interval`).
pub(super) fn path_at(text: &str, offset: usize) -> (Option<String>, Option<String>) {
    let Ok(root) = DeTable::parse(text) else {
        return (None, None);
    };
    let mut steps = Vec::new();
    if !walk_table(root.get_ref(), offset, &mut steps) {
        return (None, None);
    }
    let mut rule = None;
    let mut rest = &steps[..];
    if let [Step::Key(k), Step::Index(i, label), tail @ ..] = &steps[..]
        && matches!(
            k.as_str(),
            "rule"
                | "expect"
                | "channel"
                | "route"
                | "action"
                | "recovery"
                | "inhibit"
                | "maintenance"
                | "slo"
        )
    {
        rule = Some(match label {
            Some(l) => format!("{k} {l:?}"),
            None => format!("{k} #{}", i + 1),
        });
        rest = tail;
    }
    let mut key = String::new();
    for step in rest {
        match step {
            Step::Key(k) => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Step::Index(i, _) => key.push_str(&format!("[{i}]")),
        }
    }
    (rule, (!key.is_empty()).then_some(key))
}

fn walk_table(table: &DeTable<'_>, offset: usize, steps: &mut Vec<Step>) -> bool {
    for (k, v) in table {
        steps.push(Step::Key(k.get_ref().to_string()));
        if k.span().contains(&offset) || walk_value(v, offset, steps) {
            return true;
        }
        steps.pop();
    }
    false
}

fn walk_value(value: &Spanned<DeValue<'_>>, offset: usize, steps: &mut Vec<Step>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) if walk_table(t, offset, steps) => return true,
        DeValue::Array(a) => {
            for (i, element) in a.iter().enumerate() {
                let label = element.get_ref().as_table().and_then(|t| {
                    t.get("name")
                        .or_else(|| t.get("metric"))
                        .and_then(|v| v.get_ref().as_str())
                        .map(str::to_owned)
                });
                steps.push(Step::Index(i, label));
                if walk_value(element, offset, steps) {
                    return true;
                }
                steps.pop();
            }
        }
        _ => {}
    }
    value.span().contains(&offset)
}

/// The names a level table answers to: English, and the seed product's Korean (serde aliases on
/// the raw rule).
const LEVEL_NAMES: [(&str, &str); 5] = [
    ("info", "무해"),
    ("warning", "주의"),
    ("minor", "위험"),
    ("major", "긴급"),
    ("critical", "치명"),
];

/// A field given twice under two of its names, as serde reports it (`duplicate field `major``,
/// placed at the enclosing table): the span of the later key, its name and the earlier one's.
pub(super) fn duplicate_key(
    text: &str,
    offset: usize,
    field: &str,
) -> Option<(Range<usize>, String, String)> {
    let names: Vec<&str> = LEVEL_NAMES
        .iter()
        .find(|(en, ko)| *en == field || *ko == field)
        .map_or_else(|| vec![field], |&(en, ko)| vec![en, ko]);
    let root = DeTable::parse(text).ok()?;
    let mut found = Vec::new();
    collect_duplicates(root.get_ref(), 0..text.len(), &names, &mut found);
    // The table the error points into, else the first such table.
    let pick = found
        .iter()
        .position(|(table, ..)| table.contains(&offset))
        .unwrap_or(0);
    found
        .into_iter()
        .nth(pick)
        .map(|(_, span, later, earlier)| (span, later, earlier))
}

type Duplicate = (Range<usize>, Range<usize>, String, String);

fn collect_duplicates(
    table: &DeTable<'_>,
    span: Range<usize>,
    names: &[&str],
    found: &mut Vec<Duplicate>,
) {
    let mut keys: Vec<(Range<usize>, String)> = table
        .keys()
        .filter(|k| names.contains(&k.get_ref().as_ref()))
        .map(|k| (k.span(), k.get_ref().to_string()))
        .collect();
    keys.sort_by_key(|(s, _)| s.start);
    if let [(_, earlier), .., (later_span, later)] = &keys[..] {
        found.push((span, later_span.clone(), later.clone(), earlier.clone()));
    }
    for value in table.values() {
        collect_in_value(value, names, found);
    }
}

fn collect_in_value(value: &Spanned<DeValue<'_>>, names: &[&str], found: &mut Vec<Duplicate>) {
    match value.get_ref() {
        DeValue::Table(t) => collect_duplicates(t, value.span(), names, found),
        DeValue::Array(a) => a.iter().for_each(|v| collect_in_value(v, names, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_on_a_huge_line_is_short_and_still_exact() {
        // One 10 MB line, the problem in its middle: a stray `;` after a long value.
        let long = "x".repeat(5_000_000);
        let before = format!("interval = \"{long}\" ");
        let text = format!("[host]\n{before}; {}", "y".repeat(5_000_000));
        let err = text.parse::<crate::config::Config>().err().unwrap();
        let shown = err.with_excerpt();
        assert!(shown.len() < 1_000, "{} bytes", shown.len());
        let at = err.location().unwrap();
        let column = before.chars().count() + 1;
        assert_eq!((at.line, at.column), (2, column));
        assert!(shown.contains(&format!("<string>:2:{column}")), "{shown}");
        // The caret is under the column, in the excerpt.
        let lines: Vec<&str> = shown.lines().collect();
        let (code, marks) = (lines[lines.len() - 2], lines[lines.len() - 1]);
        let caret = marks.find('^').unwrap();
        assert_eq!(code.chars().nth(caret), Some(';'), "{code}\n{marks}");
    }

    #[test]
    fn a_huge_name_is_cut_in_the_message() {
        let name = "n".repeat(1_000_000);
        let text = format!(
            "[[rule]]\nname = \"{name}\"\nmetric = \"m\"\n[[rule]]\nname = \"{name}\"\nmetric = \"m\"\n"
        );
        let err = text.parse::<crate::config::Config>().err().unwrap();
        let shown = err.with_excerpt();
        assert!(
            shown.len() < 2_000,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
        assert!(shown.contains("characters left out"), "{shown}");
    }
}
