//! The pipeline's sections of the configuration: what they load, and located errors.

use std::time::Duration;

use vigilo::Severity;
use vigilo::config::{Config, ConfigError};
use vigilo::pipeline::{AddressKind, OutsideSchedule, PluginSource, Window};

fn error(text: &str) -> String {
    match Config::from_str_named(text, "vigilo.toml") {
        Ok(_) => panic!("loaded but should have failed:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(text: &str, line: usize, words: &[&str]) {
    let e = error(text);
    assert!(
        e.starts_with(&format!("vigilo.toml:{line}:")),
        "expected line {line}: {e}"
    );
    for w in words {
        assert!(e.contains(w), "expected {w:?} in: {e}");
    }
}

const BASE: &str = r#"
[recipients]
kim = { email = "kim@example.com", phone = "+82-10-0000-0000" }
[groups]
oncall = ["kim"]
[[channel]]
name = "mail"
plugin = "email"
address = "email"
smtp = { server = "127.0.0.1", port = 2525, tls = "none" }
config = { from = "vigilo@example.com" }
retry = { attempts = 3, backoff = "500ms" }
fallback = "hook"
[[channel]]
name = "hook"
path = "plugins/hook.wasm"
allowed_hosts = ["127.0.0.1:9000"]
deadline = "1s"
memory_limit = "16MiB"
rate_limit = { count = 30, per = "1m" }
workers = 2
config = { url = "http://127.0.0.1:9000/alerts" }
"#;

#[test]
fn everything_loads() {
    let text = format!(
        r#"{BASE}
[notify]
group_wait = "10s"
channel_failing_after = 5
[[rule]]
name = "cpu"
metric = "cpu"
[rule.warning]
threshold = 1
[[route]]
name = "ops"
rules = ["cpu"]
min_severity = "warning"
match = {{ team = "=~ops|sre" }}
channels = ["mail", "hook"]
recipients = ["oncall"]
group_by = ["rule", "host"]
schedule = {{ timezone = "Asia/Seoul", hours = ["09:00-18:00"], days = ["mon-fri"] }}
outside_schedule = "drop"
[[route.escalation]]
after = "15m"
recipients = ["kim"]
channels = ["hook"]
[[route]]
name = "rest"
default = true
channels = ["hook"]
[[inhibit]]
source = {{ rules = ["cpu"], min_severity = "critical" }}
target = {{ match = {{ team = "ops" }} }}
equal = ["host"]
[[maintenance]]
name = "backup"
match = {{ host = "db1" }}
schedule = {{ hours = ["02:00-03:00"] }}
[[maintenance]]
name = "move"
start = "2026-12-01T00:00:00Z"
end = "2026-12-01T04:00:00Z"
[[action]]
name = "restart"
plugin = "exec-recovery"
exec_grants = [{{ command = "/usr/bin/systemctl", args = ["restart", "nginx"] }}]
config = {{ command = "/usr/bin/systemctl", args = ["restart", "nginx"] }}
[[recovery]]
rules = ["cpu"]
severities = ["critical"]
action = "restart"
cooldown = "10m"
max_attempts = 1
"#
    );
    let c = Config::from_str_named(&text, "vigilo.toml")
        .unwrap_or_else(|e| panic!("{}", e.with_excerpt()));
    let p = &c.pipeline;
    assert_eq!(p.notify.group_wait, Duration::from_secs(10));
    assert_eq!(p.notify.channel_failing_after, 5);
    let mail = &p.channels[0];
    assert_eq!(mail.source, PluginSource::Bundled("email".into()));
    assert_eq!(mail.address, Some(AddressKind::Email));
    assert_eq!(mail.retry.attempts, 3);
    assert_eq!(mail.fallback.as_deref(), Some("hook"));
    assert_eq!(mail.plugin.smtp.as_ref().map(|s| s.port), Some(Some(2525)));
    let hook = &p.channels[1];
    assert_eq!(hook.source, PluginSource::File("plugins/hook.wasm".into()));
    assert_eq!(hook.plugin.memory_limit, 16 << 20);
    assert_eq!(hook.plugin.config["url"], "http://127.0.0.1:9000/alerts");
    assert_eq!(hook.rate_limit.map(|r| r.count), Some(30));
    assert_eq!(hook.workers, 2);
    let ops = &p.routes[0];
    assert_eq!(
        ops.selector.severities.as_deref().map(<[Severity]>::len),
        Some(4)
    );
    assert_eq!(
        ops.group_wait,
        Duration::from_secs(10),
        "[notify] default for a grouping route"
    );
    assert_eq!(ops.outside_schedule, OutsideSchedule::Drop);
    assert_eq!(ops.escalation[0].after, Duration::from_secs(900));
    assert!(p.routes[1].default);
    assert_eq!(
        p.routes[1].group_wait,
        Duration::ZERO,
        "no group_by: at once"
    );
    assert!(matches!(p.maintenance[1].window, Window::Once { .. }));
    assert_eq!(p.actions[0].plugin.exec_grants.len(), 1);
    assert_eq!(p.recoveries[0].max_attempts, 1);
    assert_eq!(p.people_of(&["oncall".into()]), ["kim"]);
    // Paths of a file are relative to its folder.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigilo.toml");
    std::fs::write(&path, &text).unwrap();
    let c = Config::from_file(&path).unwrap();
    assert_eq!(
        c.pipeline.channels[1].plugin.path,
        dir.path().join("plugins/hook.wasm")
    );
}

#[test]
fn an_unknown_channel_in_a_route_points_at_it() {
    assert_error(
        &format!("{BASE}\n[[route]]\nname = \"ops\"\nchannels = [\"mail\", \"pager\"]\n"),
        26,
        &[
            "route \"ops\"",
            "key `channels`",
            "unknown channel \"pager\"",
            "defined: hook, mail",
        ],
    );
}

#[test]
fn an_unknown_recipient_group_points_at_it() {
    assert_error(
        &format!(
            "{BASE}\n[[route]]\nname = \"ops\"\nchannels = [\"mail\"]\nrecipients = [\"on-call\"]\n"
        ),
        27,
        &["route \"ops\"", "unknown recipient \"on-call\"", "[groups]"],
    );
    assert_error(
        "[recipients]\nkim = { email = \"k@x\" }\n[groups]\nops = [\"kim\", \"lee\"]\n",
        4,
        &["unknown recipient \"lee\""],
    );
}

#[test]
fn an_unknown_action_points_at_it() {
    assert_error(
        "[[action]]\nname = \"restart\"\n[[recovery]]\naction = \"reboot\"\n",
        4,
        &[
            "recovery #1",
            "unknown action \"reboot\"",
            "defined: restart",
        ],
    );
}

#[test]
fn a_bad_time_zone_points_at_it() {
    assert_error(
        &format!(
            "{BASE}\n[[route]]\nname = \"ops\"\nchannels = [\"mail\"]\nschedule = {{ timezone = \"Asia/Soul\" }}\n"
        ),
        27,
        &[
            "route \"ops\"",
            "schedule.timezone",
            "unknown time zone \"Asia/Soul\"",
        ],
    );
}

#[test]
fn other_mistakes_are_located_too() {
    // An unknown key in a channel.
    assert_error(
        "[[channel]]\nname = \"x\"\nurl = \"http://x\"\n",
        3,
        &["channel \"x\"", "unknown field `url`"],
    );
    // A channel cannot run commands.
    assert_error(
        "[[channel]]\nname = \"x\"\nexec_grants = []\n",
        3,
        &["unknown field `exec_grants`"],
    );
    // plugin and path together.
    assert_error(
        "[[channel]]\nname = \"x\"\nplugin = \"webhook\"\npath = \"a.wasm\"\n",
        4,
        &["either `plugin`", "not both"],
    );
    // A fallback to nowhere, and to itself.
    assert_error(
        "[[channel]]\nname = \"x\"\nfallback = \"y\"\n",
        3,
        &["unknown channel \"y\""],
    );
    assert_error(
        "[[channel]]\nname = \"x\"\nfallback = \"x\"\n",
        3,
        &["its own fallback"],
    );
    // A route naming a rule that does not exist.
    assert_error(
        "[[channel]]\nname = \"x\"\n[[route]]\nname = \"r\"\nrules = [\"cpuu\"]\nchannels = [\"x\"]\n",
        5,
        &["unknown rule \"cpuu\""],
    );
    // Two default routes.
    assert_error(
        "[[channel]]\nname = \"x\"\n[[route]]\nname = \"a\"\ndefault = true\nchannels = [\"x\"]\n[[route]]\nname = \"b\"\ndefault = true\nchannels = [\"x\"]\n",
        9,
        &["only one route can be the default", "route \"a\" is"],
    );
    // Escalation tiers out of order.
    assert_error(
        "[recipients]\nk = {}\n[[channel]]\nname = \"x\"\n[[route]]\nname = \"a\"\nchannels = [\"x\"]\n[[route.escalation]]\nafter = \"1h\"\nrecipients = [\"k\"]\n[[route.escalation]]\nafter = \"10m\"\nrecipients = [\"k\"]\n",
        11,
        &["in order of `after`"],
    );
    // A maintenance window with neither schedule nor times, and with end before start.
    assert_error(
        "[[maintenance]]\nname = \"m\"\n",
        1,
        &["needs either `schedule`"],
    );
    assert_error(
        "[[maintenance]]\nname = \"m\"\nstart = \"2026-12-01T04:00:00Z\"\nend = \"2026-12-01T00:00:00Z\"\n",
        4,
        &["`end` must be after `start`"],
    );
    // A bad duration and a bad severity.
    assert_error(
        "[notify]\ngroup_wait = \"soon\"\n",
        2,
        &["group_wait", "soon"],
    );
    let e = Config::from_str_named("[[channel]]\nname = \"x\"\n[[route]]\nname = \"r\"\nchannels = [\"x\"]\nmin_severity = \"urgent\"\n", "vigilo.toml").unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { .. }));
    assert!(e.to_string().starts_with("vigilo.toml:6:"), "{e}");
}

#[test]
fn the_example_configuration_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pipeline.toml");
    let c = Config::from_file(&path).unwrap_or_else(|e| panic!("{}", e.with_excerpt()));
    let p = &c.pipeline;
    assert_eq!(p.channels.len(), 3);
    assert_eq!(p.routes.len(), 3);
    assert_eq!(p.routes[0].escalation.len(), 2);
    assert!(p.routes[2].default);
    assert_eq!(p.maintenance.len(), 2);
    assert_eq!(p.recoveries[0].action, "restart-nginx");
    assert_eq!(
        p.addresses(&["oncall".into()], Some(AddressKind::Phone)),
        ["+82-10-1234-5678", "+82-10-8765-4321"]
    );
    assert!(
        p.unrouted_rules(&c.rules).is_empty(),
        "the default route reaches every rule"
    );
}

#[test]
fn the_example_configuration_error_in_its_header_is_true() {
    // The header of examples/pipeline.toml quotes the error a typo in a route gives: check it.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pipeline.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let quoted = text
        .lines()
        .find_map(|l| l.strip_prefix("#   "))
        .filter(|l| l.starts_with("examples/pipeline.toml:"))
        .unwrap()
        .trim_end_matches(" …")
        .to_owned();
    let typo = text.replacen("channels = [\"sms\"]", "channels = [\"pagr\"]", 1);
    let err = Config::from_str_named(&typo, "examples/pipeline.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&quoted),
        "header says {quoted:?}, the error is {err:?}"
    );
}

#[test]
fn a_channel_and_an_action_cannot_share_a_name() {
    assert_error(
        "[[channel]]\nname = \"x\"\n[[action]]\nname = \"x\"\n",
        4,
        &["action \"x\"", "channels and actions share one plugin host"],
    );
}

#[test]
fn a_rule_cannot_take_the_name_of_a_meta_alert() {
    for name in ["vigilo_store_failing", "vigilo_channel_failing"] {
        assert_error(
            &format!("[[rule]]\nname = \"{name}\"\nmetric = \"m\"\n[rule.info]\nthreshold = 1\n"),
            2,
            &[name, "reserved"],
        );
    }
}
