//! Coverage: expected items without a rule, unwatched series, rules that never reported.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use vigilo::Registry;
use vigilo::config::Config;
use vigilo::coverage::CoverageReport;
use vigilo::rules::Rule;

const CONFIG: &str = r#"
[[rule]]
name = "disk"
metric = "host_disk_usage_ratio"
select = { mount = "!~/boot.*" }
[rule.major]
threshold = "90%"

[[rule]]
name = "cpu"
metric = "host_cpu_usage_ratio"
[rule.warning]
threshold = "70%"

[[rule]]
name = "batch"
metric = "batch_last_success_seconds"
[rule.major]
threshold = 3600

[[expect]]
metric = "host_disk_usage_ratio"
every_series = true

[[expect]]
metric = "host_cpu_usage_ratio"

[[expect]]
metric = "host_network_receive_bytes_per_second"

[[expect]]
metric = "host_memory_usage_ratio"
"#;

#[test]
fn lists_unregistered_items_and_silent_rules() {
    let config: Config = CONFIG.parse().unwrap();
    let registry = Registry::new();
    for mount in ["/", "/data", "/boot/efi"] {
        registry
            .set_gauge("host_disk_usage_ratio", &[("mount", mount)], 0.5)
            .unwrap();
    }
    registry
        .set_gauge("host_cpu_usage_ratio", &[], 0.2)
        .unwrap();
    registry
        .set_gauge(
            "host_network_receive_bytes_per_second",
            &[("interface", "eth0")],
            10.0,
        )
        .unwrap();
    let rules: Vec<&Rule> = config.rules.iter().collect();
    let report = CoverageReport::from_registry(&registry, &rules, &config.expect);

    // 3 mounts + cpu + network + memory; covered: 2 mounts and cpu.
    assert_eq!((report.expected, report.registered), (6, 3));
    let missing: Vec<String> = report
        .missing
        .iter()
        .map(|m| {
            format!(
                "{}{} — {}",
                m.metric,
                m.labels.as_ref().map(|l| l.to_string()).unwrap_or_default(),
                m.reason
            )
        })
        .collect();
    assert_eq!(
        missing,
        vec![
            "host_disk_usage_ratio{mount=\"/boot/efi\"} — no rule watches this series",
            "host_network_receive_bytes_per_second — no rule watches this metric",
            "host_memory_usage_ratio — no series reports this metric and no rule watches it",
        ]
    );
    let unwatched: Vec<String> = report.unwatched.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        unwatched,
        vec![
            "host_disk_usage_ratio{mount=\"/boot/efi\"}",
            "host_network_receive_bytes_per_second{interface=\"eth0\"}"
        ]
    );
    assert_eq!(report.silent_rules, vec!["batch"]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["expected"], 6);
}

#[test]
fn evaluator_counts_a_rule_reported_only_after_a_fresh_sample() {
    use std::time::Duration;
    let config: Config = CONFIG.parse().unwrap();
    let mut test = vigilo::testing::RuleTest::new(config.rules.clone()).unwrap();
    // The series exists but was never recorded: the rule has not reported yet.
    test.registry()
        .gauge("batch_last_success_seconds", &[])
        .unwrap();
    test.advance_to(Duration::from_secs(1));
    let report = test.evaluator().coverage(&config.expect);
    assert!(report.silent_rules.contains(&"batch".to_owned()));
    test.gauge(
        Duration::from_secs(2),
        "batch_last_success_seconds",
        &[],
        10.0,
    )
    .unwrap();
    test.advance_to(Duration::from_secs(3));
    let report = test.evaluator().coverage(&config.expect);
    assert!(
        !report.silent_rules.contains(&"batch".to_owned()),
        "{report:?}"
    );
}
