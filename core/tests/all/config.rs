//! The TOML configuration: what it loads, and how it reports mistakes (file, line, key, reason).

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::path::Path;
use std::time::Duration;

use vigilo::Severity;
use vigilo::config::{Config, ConfigError, Expectation};
use vigilo::host::HostConfig;
use vigilo::metrics::Labels;
use vigilo::rules::{Aggregation, Comparison, Flap, Level, Matcher, NoData, RuleError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Loads `text` as `rules.toml`, which must fail; returns the error.
fn error(text: &str) -> ConfigError {
    match Config::from_str_named(text, "rules.toml") {
        Ok(c) => panic!("loaded but should have failed: {c:?}\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the rendered error starts with `rules.toml:<line>:` and contains every `|`-separated
/// part of `words`.
fn assert_error(text: &str, line: usize, words: &str) -> ConfigError {
    let e = error(text);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("rules.toml:{line}:")),
        "expected line {line}: {msg}"
    );
    for w in words.split('|').map(str::trim) {
        assert!(msg.contains(w), "expected {w:?} in: {msg}");
    }
    assert_eq!(e.location().map(|l| l.line), Some(line), "{msg}");
    e
}

/// A valid CPU rule (15 lines); tests edit it and check the line the error names.
const CPU: &str = r#"[host]
interval = "1s"

[[rule]]
name = "cpu"
metric = "host_cpu_usage_ratio"
aggregation = "avg"
window = "1m"

[rule.warning]
threshold = 0.8
for = "1m"

[rule.major]
threshold = 0.9
"#;

#[test]
fn base_fixture_loads() -> TestResult {
    let c = Config::from_str_named(CPU, "rules.toml")?;
    assert_eq!(c.rules.len(), 1);
    assert_eq!(c.rules[0].aggregation(), Aggregation::Avg);
    Ok(())
}

#[test]
fn toml_syntax_error() {
    let e = assert_error(
        &CPU.replace("window = \"1m\"", "window = = \"1m\""),
        8,
        "rules.toml:8:10: | TOML syntax error",
    );
    assert!(matches!(e, ConfigError::Syntax { .. }));
    assert_error(
        "[[rule]]\nname = \"cpu\nmetric = \"m\"\n",
        2,
        "TOML syntax error",
    );
}

#[test]
fn unknown_key_is_named() {
    let e = assert_error(
        &CPU.replace("window", "windw"),
        8,
        "rules.toml:8:1: | rule \"cpu\" | `windw` | unknown field",
    );
    assert!(matches!(e, ConfigError::Invalid { .. }));
    assert_error(
        &CPU.replace("for =", "duration ="),
        12,
        "rule \"cpu\" | warning.duration | unknown field `duration`",
    );
    assert_error(
        &CPU.replace("interval", "intervall"),
        2,
        "key `host.intervall` | unknown field `intervall`",
    );
    assert_error(
        &format!("{CPU}\n[alerting]\nx = 1\n"),
        17,
        "key `alerting` | unknown field `alerting`",
    );
    assert_error(
        "[[expect]]\nmetric = \"host_load1\"\nevery = true\n",
        3,
        "expect \"host_load1\" | unknown field `every`",
    );
    // A level that does not exist: `normal` is the absence of every level.
    assert_error(
        &CPU.replace("[rule.major]", "[rule.normal]"),
        14,
        "rule \"cpu\" | unknown field `normal`",
    );
}

#[test]
fn unknown_aggregation() {
    assert_error(
        &CPU.replace("\"avg\"", "\"median\""),
        7,
        "rules.toml:7:15: | rule \"cpu\" | aggregation | unknown aggregation \"median\"",
    );
}

#[test]
fn thresholds_out_of_order() {
    let e = assert_error(
        &CPU.replace("threshold = 0.9", "threshold = 0.7"),
        15,
        "rule \"cpu\" | major.threshold | thresholds out of order for comparison above | warning has 0.8 but major has 0.7",
    );
    let ConfigError::Rule {
        rule, key, error, ..
    } = &e
    else {
        panic!("not a rule error: {e:?}");
    };
    assert_eq!(
        (rule.as_str(), key.as_deref()),
        ("cpu", Some("major.threshold"))
    );
    assert!(
        matches!(**error, RuleError::ThresholdOrder { .. }),
        "{error:?}"
    );
    // Below: each higher level needs a lower threshold.
    assert_error(
        &CPU.replace("name = \"cpu\"", "name = \"free\"\ncomparison = \"below\""),
        16,
        "rule \"free\" | out of order for comparison below | warning has 0.8 but major has 0.9",
    );
}

#[test]
fn bad_durations() {
    assert_error(
        &CPU.replace("for = \"1m\"", "for = \"1 minute\""),
        12,
        "rules.toml:12:7: | rule \"cpu\" | warning.for | invalid duration \"1 minute\"",
    );
    assert_error(
        &CPU.replace("window = \"1m\"", "window = \"5x\""),
        8,
        "rule \"cpu\" | `window` | invalid duration \"5x\" | unknown unit \"x\"",
    );
    assert_error(
        &CPU.replace("interval = \"1s\"", "interval = 5"),
        2,
        "host.interval | invalid type: integer `5`",
    );
}

#[test]
fn unknown_time_zone() {
    let text = CPU.replace(
        "window = \"1m\"\n",
        "window = \"1m\"\nschedule = { timezone = \"Mars/Olympus\", days = [\"mon-fri\"] }\n",
    );
    assert_error(
        &text,
        9,
        "rules.toml:9:25: | rule \"cpu\" | schedule.timezone | unknown time zone \"Mars/Olympus\"",
    );
    assert_error(
        &text
            .replace("Mars/Olympus", "UTC")
            .replace("mon-fri", "mon-funday"),
        9,
        "schedule.days | unknown day \"funday\"",
    );
}

#[test]
fn unknown_severity() {
    assert_error(
        &CPU.replace(
            "window = \"1m\"\n",
            "window = \"1m\"\nno_data = { after = \"2m\", severity = \"severe\" }\n",
        ),
        9,
        "rules.toml:9:38: | rule \"cpu\" | no_data.severity | unknown severity \"severe\"",
    );
}

#[test]
fn bad_percentage() {
    assert_error(
        &CPU.replace("threshold = 0.8", "threshold = \"seventy%\""),
        11,
        "rules.toml:11:13: | rule \"cpu\" | warning.threshold | bad percentage \"seventy%\"",
    );
    assert_error(
        &CPU.replace("threshold = 0.8", "threshold = \"0.8\""),
        11,
        "warning.threshold | is not a number | \"70%\"",
    );
}

#[test]
fn duplicate_rule_names() {
    let text = format!(
        "{CPU}\n[[rule]]\nname = \"cpu\"\nmetric = \"host_load1\"\n[rule.info]\nthreshold = 1\n"
    );
    let e = assert_error(
        &text,
        18,
        "rules.toml:18:8: | rule \"cpu\" | duplicate rule name | first defined at line 5",
    );
    assert!(matches!(e, ConfigError::DuplicateRule { .. }));
}

#[test]
fn missing_file_names_the_path() {
    let path = Path::new("/nonexistent/vigilo/rules.toml");
    let e = match Config::from_file(path) {
        Ok(_) => panic!("loaded a missing file"),
        Err(e) => e,
    };
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.location().is_none());
    let msg = e.to_string();
    assert!(
        msg.starts_with("/nonexistent/vigilo/rules.toml: cannot read"),
        "{msg}"
    );
}

#[test]
fn other_rule_problems_are_located() {
    // Aggregation without a window, and a window without an aggregation.
    assert_error(
        &CPU.replace("window = \"1m\"\n", ""),
        7,
        "`aggregation` | needs a window",
    );
    assert_error(
        &CPU.replace("aggregation = \"avg\"\n", ""),
        7,
        "`window` | windowed aggregation",
    );
    // Hysteresis on the firing side.
    assert_error(
        &CPU.replace("threshold = 0.9\n", "threshold = 0.9\nclear = 0.95\n"),
        16,
        "major.clear | clear threshold 0.95 of major must be at or below",
    );
    // Occurrences without a window.
    assert_error(
        &CPU.replace("for = \"1m\"", "for = \"1m\"\noccurrences = 3"),
        13,
        "warning.occurrences | needs a `within` window",
    );
    // Unknown template variable.
    assert_error(
        &CPU.replace(
            "window = \"1m\"\n",
            "window = \"1m\"\nannotations = { summary = \"{{valeu}}\" }\n",
        ),
        9,
        "annotations.summary | unknown variable {{valeu}}",
    );
    // Bad regex in a matcher.
    assert_error(
        &CPU.replace(
            "window = \"1m\"\n",
            "window = \"1m\"\nselect = { mount = \"=~(\" }\n",
        ),
        9,
        "select.mount | bad regex",
    );
    // Bad metric name, missing metric, rule with no levels.
    assert_error(
        &CPU.replace("host_cpu", "9host_cpu"),
        6,
        "`metric` | invalid metric name",
    );
    assert_error(
        &CPU.replace("metric = \"host_cpu_usage_ratio\"\n", ""),
        4,
        "rules.toml:4:1: | rule \"cpu\" | missing field `metric`",
    );
    let e = assert_error(
        "[[rule]]\nname = \"x\"\nmetric = \"m\"\n",
        1,
        "rule \"x\" | no levels",
    );
    assert!(
        !e.to_string().contains("rule x:"),
        "the builder's prefix is not repeated: {e}"
    );
    // Flap with zero changes.
    assert_error(
        &CPU.replace(
            "window = \"1m\"\n",
            "window = \"1m\"\nflap = { changes = 0, within = \"1m\" }\n",
        ),
        9,
        "`flap` | flap detection needs changes > 0",
    );
}

#[test]
fn host_and_evaluator_sections_are_checked() {
    assert_error(
        &CPU.replace("interval = \"1s\"", "interval = \"0s\""),
        1,
        "key `host` | interval must be greater than zero",
    );
    assert_error(
        "[evaluator]\ntick = \"0s\"\n",
        1,
        "evaluator.tick | greater than zero",
    );
    assert_error(
        "[registry]\nmax_series = \"many\"\n",
        2,
        "registry.max_series | invalid type",
    );
}

#[test]
fn excerpt_underlines_the_problem() {
    let e = error(&CPU.replace("\"avg\"", "\"median\""));
    let text = e.with_excerpt();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[2], "7 | aggregation = \"median\"");
    assert_eq!(lines[3], "  |               ^^^^^^^^");
}

#[test]
fn defaults_and_korean_level_names() -> TestResult {
    let c = Config::from_str_named(
        "[[rule]]\nname = \"r\"\nmetric = \"m\"\n[rule.\"주의\"]\nthreshold = \"70%\"\n[rule.\"치명\"]\nthreshold = 1\n",
        "ko.toml",
    )?;
    assert_eq!(c.host, HostConfig::default());
    assert_eq!(c.evaluator, vigilo::eval::EvaluatorConfig::default());
    let r = &c.rules[0];
    assert_eq!(r.aggregation(), Aggregation::Last);
    assert_eq!(r.comparison(), Comparison::Above);
    assert_eq!(r.clear_for(), Duration::ZERO);
    assert_eq!(
        r.levels(),
        [
            Level::new(Severity::Warning, 0.7),
            Level::new(Severity::Critical, 1.0)
        ]
    );
    assert!(c.expect.is_empty());
    // The same level twice, once in each language.
    assert_error(
        "[[rule]]\nname = \"r\"\nmetric = \"m\"\n[rule.\"긴급\"]\nthreshold = 1\n[rule.major]\nthreshold = 2\n",
        6,
        "rule \"r\" | key `major` | given twice | `긴급`",
    );
    Ok(())
}

#[test]
fn full_featured_rule() -> TestResult {
    let text = r#"
[[rule]]
name = "disk-root"
metric = "host_disk_usage_ratio"
select = { mount = "/", device = "!=tmpfs", fs = "=~ext.*" }
aggregation = "p99"
window = "5m"
comparison = "above"
clear_for = "30s"
labels = { team = "ops" }
annotations = { summary = "{{labels.mount}} at {{value}}", runbook = "https://runbooks.invalid/disk" }
flap = { changes = 5, within = "10m" }
no_data = { after = "2m", severity = "major" }
schedule = { timezone = "Asia/Seoul", hours = ["09:00-18:00"], days = ["mon-fri"] }
[rule.info]
threshold = 0.5
[rule.warning]
threshold = "70%"
[rule.minor]
threshold = 0.75
for = "10s"
[rule.major]
threshold = 0.8
for = "1m"
clear = 0.75
[rule.critical]
threshold = "95%"
for = "30s"
occurrences = 3
within = "10m"

[[expect]]
metric = "host_disk_usage_ratio"
select = { mount = "!~/boot.*" }
every_series = true
[[expect]]
metric = "host_cpu_usage_ratio"
"#;
    let c = Config::from_str_named(text, "full.toml")?;
    let r = &c.rules[0];
    assert_eq!(r.name(), "disk-root");
    assert_eq!(r.metric(), "host_disk_usage_ratio");
    assert_eq!(
        r.matchers(),
        [
            Matcher::parse("device", "!=tmpfs")?,
            Matcher::parse("fs", "=~ext.*")?,
            Matcher::parse("mount", "/")?,
        ]
    );
    assert!(r.selects(&Labels::from_pairs(&[
        ("mount", "/"),
        ("device", "sda1"),
        ("fs", "ext4")
    ])));
    assert_eq!(r.aggregation(), Aggregation::Percentile(0.99));
    assert_eq!(r.window(), secs(300));
    assert_eq!(r.comparison(), Comparison::Above);
    assert_eq!(r.clear_for(), secs(30));
    assert_eq!(r.labels().get("team").map(String::as_str), Some("ops"));
    assert_eq!(r.annotations().len(), 2);
    assert_eq!(
        r.annotations().get("summary").map(String::as_str),
        Some("{{labels.mount}} at {{value}}")
    );
    assert_eq!(
        r.flap(),
        Some(Flap {
            changes: 5,
            within: secs(600)
        })
    );
    assert_eq!(
        r.no_data(),
        Some(NoData {
            after: secs(120),
            severity: Severity::Major
        })
    );
    let schedule = vigilo::rules::Schedule::new("Asia/Seoul", &["09:00-18:00"], &["mon-fri"])?;
    assert_eq!(r.schedule(), Some(&schedule));
    assert_eq!(
        r.levels(),
        [
            Level::new(Severity::Info, 0.5),
            Level::new(Severity::Warning, 0.7),
            Level::new(Severity::Minor, 0.75).hold_for(secs(10)),
            Level::new(Severity::Major, 0.8)
                .hold_for(secs(60))
                .clear_at(0.75),
            Level::new(Severity::Critical, 0.95)
                .hold_for(secs(30))
                .occurrences(3, secs(600)),
        ]
    );
    assert_eq!(
        c.expect,
        [
            Expectation {
                metric: "host_disk_usage_ratio".into(),
                select: vec![Matcher::parse("mount", "!~/boot.*")?],
                every_series: true,
            },
            Expectation {
                metric: "host_cpu_usage_ratio".into(),
                select: vec![],
                every_series: false,
            },
        ]
    );
    Ok(())
}

#[test]
fn example_file_loads_with_the_seed_scenario() -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules.toml");
    let c = Config::from_file(&path)?;
    assert_eq!(c.host.interval, secs(1));
    let cpu = c
        .rules
        .iter()
        .find(|r| r.metric() == "host_cpu_usage_ratio")
        .ok_or("no CPU rule")?;
    assert_eq!(cpu.aggregation(), Aggregation::Last);
    assert_eq!(
        cpu.levels(),
        [
            Level::new(Severity::Warning, 0.7),
            Level::new(Severity::Major, 0.8).hold_for(secs(60)),
            Level::new(Severity::Critical, 0.95)
                .hold_for(secs(30))
                .occurrences(3, secs(600)),
        ]
    );
    for metric in [
        "host_memory_usage_ratio",
        "host_swap_usage_ratio",
        "host_disk_usage_ratio",
        "host_load1",
        "process_resident_memory_bytes",
    ] {
        assert!(
            c.rules.iter().any(|r| r.metric() == metric),
            "no rule on {metric}"
        );
    }
    let disk = c
        .rules
        .iter()
        .find(|r| r.metric() == "host_disk_usage_ratio")
        .ok_or("disk")?;
    assert!(
        disk.matchers().is_empty(),
        "the disk rule fans out over every mount"
    );
    let up = c
        .rules
        .iter()
        .find(|r| r.metric() == "host_process_up")
        .ok_or("process up")?;
    assert_eq!(up.comparison(), Comparison::Below);
    assert!(up.matchers().is_empty());
    assert_eq!(up.levels(), [Level::new(Severity::Critical, 1.0)]);

    let expected: Vec<(&str, bool)> = c
        .expect
        .iter()
        .map(|e| (e.metric.as_str(), e.every_series))
        .collect();
    for want in [
        ("host_cpu_usage_ratio", false),
        ("host_memory_usage_ratio", false),
        ("host_disk_usage_ratio", true),
        ("host_network_receive_bytes_per_second", false),
    ] {
        assert!(expected.contains(&want), "missing expectation {want:?}");
    }
    assert!(
        !c.rules
            .iter()
            .any(|r| r.metric() == "host_network_receive_bytes_per_second"),
        "network receive is left without a rule on purpose"
    );
    Ok(())
}

#[test]
fn parse_via_from_str() -> TestResult {
    let c: Config =
        "[[rule]]\nname = \"a\"\nmetric = \"m\"\n[rule.info]\nthreshold = -1\n".parse()?;
    assert_eq!(c.rules[0].levels()[0].threshold, -1.0);
    let e = match "nonsense".parse::<Config>() {
        Ok(_) => panic!("parsed nonsense"),
        Err(e) => e,
    };
    assert!(e.to_string().starts_with("<string>:1:"), "{e}");
    Ok(())
}

#[test]
fn empty_file_is_the_default() -> TestResult {
    assert_eq!(Config::from_str_named("", "empty.toml")?, Config::default());
    assert_eq!(
        Config::from_str_named("# only a comment\n", "c.toml")?,
        Config::default()
    );
    Ok(())
}

#[test]
fn crlf_and_odd_input_are_located_without_panicking() {
    let text = CPU.replace('\n', "\r\n").replace("\"avg\"", "\"median\"");
    let e = assert_error(&text, 7, "rules.toml:7:15: | unknown aggregation");
    assert!(e.with_excerpt().contains("7 | aggregation = \"median\"\n"));
    // Errors at the very end, after stray carriage returns, in multi-byte text.
    for text in [
        "[[rule]]\nname = \"x\"\r\r\n",
        "x = \"",
        "[[rule]]\nname = \"주의\"\nmetric = \"m\"\n",
        "\u{feff}[host]\ninterval = \"1분\"\n",
        "[[rule]]\r\r",
        "a.b.c = 1\n[a]\n",
    ] {
        let e = error(text);
        let _ = e.with_excerpt();
        assert!(e.location().is_some(), "{e}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Whatever the text, loading returns (never panics), and every error but a read error has a
    /// location inside the text.
    #[test]
    fn never_panics_on_edited_example(
        at in 0usize..4000,
        cut in 0usize..40,
        insert in "[\\[\\]=\"{},.%a-z0-9 \n주의]{0,12}",
    ) {
        let base = include_str!("../../../examples/rules.toml");
        let mut at = at.min(base.len());
        while !base.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + cut).min(base.len());
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        let text = format!("{}{}{}", &base[..at], insert, &base[end..]);
        if let Err(e) = Config::from_str_named(&text, "fuzz.toml") {
            let location = e.location().cloned();
            proptest::prop_assert!(location.is_some(), "{}", e);
            let line = location.map_or(0, |l| l.line);
            proptest::prop_assert!(line >= 1 && line <= text.lines().count() + 1, "{}", e);
            let _ = e.with_excerpt();
        }
    }
}
