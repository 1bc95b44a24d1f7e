//! The operators' dashboard and alert rules (`deploy/`) held to what the bot exports: the dashboard's JSON parses, every metric its queries and the rules' expressions name is one the running binary serves at /metrics, the funnel and the store's waiting figures count, and `promtool` accepts the rules, their unit tests and the dashboard's queries.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use icp_sms_doctor::app::Settings;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::telegram::Options;
use icp_sms_doctor::tree::UiButton;
use serde_json::Value;

use crate::bot::ALICE;
use crate::fake_api::FakeApi;
use crate::http::get;
use crate::scene::{Scene, data_of, data_to, labels, memory, options, within};
use crate::support::real_tree;
use crate::webhook::free_address;

const DASHBOARD: &str = "deploy/grafana-dashboard.json";
const ALERTS: &str = "deploy/prometheus-alerts.yml";
const ALERT_TESTS: &str = "deploy/prometheus-alerts.test.yml";

/// The staff chat cases go to.
const STAFF: i64 = -100_900;

/// A metric every Prometheus has beside what the bot exports.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

fn crate_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

// ---- What the bot exports ----------------------------------------------

/// The names a scrape of `text` lets a query use: each sample's name, and
/// for each `# TYPE` the names its type is queried by (a counter's
/// `_total` and `_created`, a histogram's `_bucket`, `_sum`, `_count`, an
/// info's `_info`), so a family without samples yet counts too.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut words = declared.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                panic!("a TYPE line without a name and type: {line}");
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                "summary" => &["", "_sum", "_count", "_created"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Scrapes /metrics on `listen` until it holds every one of `lines`,
/// for at most 5 s (a press is counted a moment before its edit is
/// shown, but the scrape may still come first); the last text scraped.
async fn metrics_with(listen: SocketAddr, lines: &[String]) -> String {
    let mut text = String::new();
    for _ in 0..250 {
        let (status, body) = get(listen, "/metrics").await.expect("/metrics answers");
        assert_eq!(status, 200, "{body}");
        text = body;
        if lines.iter().all(|l| text.contains(l.as_str())) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing: Vec<_> = lines
        .iter()
        .filter(|l| !text.contains(l.as_str()))
        .collect();
    panic!("not in /metrics: {missing:?}\n{text}");
}

// ---- What the dashboard and the rules use -------------------------------

/// The metric names a PromQL expression uses: its identifiers once string
/// literals, label matchers (`{…}`), ranges (`[…]`), grouping label lists
/// (`by (…)`, `on (…)`…), Grafana's variables (`$…`), numbers and
/// durations, function calls and keywords are left out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 7] = ["and", "or", "unless", "bool", "offset", "inf", "nan"];
    const LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Skips from an opening bracket to past its match.
    let skip = |mut i: usize, open: char, close: char| {
        let mut depth = 0;
        while i < chars.len() {
            if chars[i] == open {
                depth += 1;
            } else if chars[i] == close {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        panic!("unbalanced {open} in {expr}");
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => i = skip(i, '{', '}'),
            '[' => i = skip(i, '[', ']'),
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = skip(i, '{', '}');
                }
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || ".+-".contains(chars[i])) {
                    // A sign belongs to the number only after its exponent.
                    if "+-".contains(chars[i]) && !matches!(chars[i - 1], 'e' | 'E') {
                        break;
                    }
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_:".contains(chars[i])) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                // A call, or an aggregation grouped before its argument
                // (`sum by (le) (…)`).
                let rest: String = chars[next..].iter().take(8).collect();
                let called = chars.get(next) == Some(&'(')
                    || ["by", "without"].iter().any(|w| {
                        rest.strip_prefix(w)
                            .is_some_and(|r| r.starts_with([' ', '(']))
                    });
                if LISTS.contains(&word.as_str()) {
                    if called {
                        i = skip(next, '(', ')');
                    }
                } else if !called && !KEYWORDS.contains(&word.to_lowercase().as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every query of the dashboard (in rows too), with its panel's title.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, found: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_else(|| {
                    panic!("panel {title:?}: a target without an expr: {target}")
                });
                found.push((title.clone(), expr.to_string()));
            }
            walk(&panel["panels"], found);
        }
    }
    let mut found = Vec::new();
    walk(&dashboard["panels"], &mut found);
    found
}

/// The alert rules of the rules file, each as its `alert:` name and the
/// lines up to the next; comment lines left out. (No YAML parser is a
/// dependency: `promtool check rules` reads it as Prometheus does.)
fn alert_rules(text: &str) -> Vec<(String, Vec<String>)> {
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            rules.push((name.trim().to_string(), Vec::new()));
        } else if let Some((_, lines)) = rules.last_mut() {
            lines.push(trimmed.to_string());
        }
    }
    rules
}

/// A rule's field (`expr`, `for`, `severity`…): the text after `name:`.
fn field<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}:");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
}

/// Every metric the dashboard's queries, its instance variable and the
/// alert rules name, with where each was found.
fn names_used() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&crate_file(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"));
    let mut used = Vec::new();
    for (title, expr) in dashboard_queries(&dashboard) {
        for name in metric_names(&expr) {
            used.push((format!("{DASHBOARD}: panel {title:?}"), name));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(query) = variable["definition"].as_str() {
            let metric = query
                .strip_prefix("label_values(")
                .and_then(|q| q.split(',').next())
                .unwrap_or_else(|| panic!("a variable query that is not label_values: {query}"));
            used.push((
                format!("{DASHBOARD}: variable {}", variable["name"]),
                metric.trim().to_string(),
            ));
        }
    }
    for (alert, lines) in alert_rules(&crate_file(ALERTS)) {
        let expr = field(&lines, "expr").unwrap_or_else(|| panic!("{alert}: no expr"));
        for name in metric_names(expr) {
            used.push((format!("{ALERTS}: {alert}"), name));
        }
    }
    used
}

#[test]
fn promql_names_are_read_from_expressions() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, call) (rate(a_bucket{instance=~"$instance", x="y(z"}[$__rate_interval]))) / on() group_left(v) b_total offset 5m > bool 1e-9 and c or ${var} unless up"#,
    );
    let want: BTreeSet<String> = ["a_bucket", "b_total", "c", "up"].map(String::from).into();
    assert_eq!(names, want);
    assert!(
        metric_names(r#"sum(increase(x_total[30m])) == 0 and on() sum(up{job="j"}) > 0"#)
            .contains("x_total")
    );
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_on_a_datasource_and_an_instance_variable() {
    let dashboard: Value = serde_json::from_str(&crate_file(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"));
    assert!(dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(variable("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(variable("DS_PROMETHEUS")["query"], "prometheus");
    assert_eq!(variable("instance")["type"], "query");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{queries:?}");
    for (title, expr) in &queries {
        // Every query follows the instance variable.
        assert!(
            expr.contains(r#"instance=~"$instance""#),
            "panel {title:?}: {expr}"
        );
    }
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}");
        }
    }
    assert!(panels >= 15, "{panels} panels");
}

#[test]
fn every_alert_rule_waits_and_says_how_bad_and_what_to_do() {
    let rules = alert_rules(&crate_file(ALERTS));
    let names: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    for alert in [
        "IcpSmsDoctorDown",
        "IcpSmsDoctorNoUpdates",
        "IcpSmsDoctorTooMany429",
        "IcpSmsDoctorInboxBacklogGrowing",
        "IcpSmsDoctorStoreErrors",
        "IcpSmsDoctorStoreRefusesWrites",
        "IcpSmsDoctorCaseWaiting",
    ] {
        assert!(names.contains(&alert), "no {alert} in {names:?}");
    }
    for (alert, lines) in &rules {
        for name in ["expr", "for", "severity", "summary", "description"] {
            assert!(field(lines, name).is_some(), "{alert}: no {name}");
        }
        let severity = field(lines, "severity").unwrap_or_default();
        assert!(
            ["critical", "warning"].contains(&severity),
            "{alert}: severity {severity}"
        );
    }
}

/// The binary's own /metrics, after a conversation through a category
/// to an end, "not solved", and "solved" at the end it led to: the
/// funnel counts each stage in its category, and every metric the
/// dashboard and the alert rules name is one it exports.
#[tokio::test]
async fn the_dashboard_and_the_rules_name_only_what_the_bot_exports() {
    within(async {
        let tree = real_tree();
        let ui = tree.ui();
        let api = FakeApi::start().await;
        let listen = free_address();
        let bot = crate::health::launch(&api, "memory", listen);
        api.wait_polling().await;

        let chat = ALICE.private_chat();
        api.send_as(&ALICE, &chat, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let presses = [
            "not_received",
            "nr_not_submitted",
            // "Not solved" at that end leads on here.
            "contact_provider",
        ];
        for (n, to) in presses.iter().enumerate() {
            let menu = api.last_bot_message(ALICE.id as i64);
            api.press(&ALICE, &menu, &data_to(&menu, to));
            api.wait_for("editMessageText", n + 1).await;
        }
        let end = api.last_bot_message(ALICE.id as i64);
        api.press(
            &ALICE,
            &end,
            &data_of(&end, ui.button(UiButton::Solved, Lang::Zh)),
        );
        api.wait_for("editMessageText", presses.len() + 1).await;

        // Each stage in the category the conversation went through, the
        // end "not solved" led to (which several categories share) too.
        let counted = |stage: &str, n: u32| {
            // The whole line: 1 is not 10.
            format!("icp_sms_doctor_funnel_{stage}_total{{category=\"not_received\"}} {n}\n")
        };
        let mut want = vec![
            counted("started", 1),
            counted("ends_reached", 2),
            counted("not_solved", 1),
            counted("solved", 1),
            "icp_sms_doctor_inbox_backlog 0".to_string(),
            "icp_sms_doctor_cases_waiting 0".to_string(),
            "icp_sms_doctor_cases_oldest_wait_seconds 0".to_string(),
        ];
        // Every category of the dialogue is there, counted or at 0.
        for entry in tree.categories() {
            let id = &tree.node(*entry).id;
            want.push(format!(
                "icp_sms_doctor_funnel_solved_total{{category=\"{id}\"}}"
            ));
        }
        let text = metrics_with(listen, &want).await;
        let out = bot.stop().await;
        assert!(out.status.success(), "{out:?}");

        let exported = exported_names(&text);
        for name in [
            "icp_sms_doctor_updates_total",
            "icp_sms_doctor_store_call_seconds_bucket",
            "icp_sms_doctor_build_info",
            "process_cpu_seconds_total",
        ] {
            assert!(exported.contains(name), "{name} in {exported:?}");
        }
        let used = names_used();
        let unknown: Vec<String> = used
            .iter()
            .filter(|(_, name)| {
                !exported.contains(name) && !PROMETHEUS_OWN.contains(&name.as_str())
            })
            .map(|(place, name)| format!("{place}: {name}"))
            .collect();
        assert!(
            unknown.is_empty(),
            "metrics the bot does not export:\n{}\nit exports: {exported:?}",
            unknown.join("\n")
        );
        // Each new figure is on the dashboard or in a rule.
        let used: BTreeSet<&str> = used.iter().map(|(_, n)| n.as_str()).collect();
        for figure in [
            "icp_sms_doctor_inbox_backlog",
            "icp_sms_doctor_cases_waiting",
            "icp_sms_doctor_cases_oldest_wait_seconds",
            "icp_sms_doctor_funnel_started_total",
            "icp_sms_doctor_funnel_ends_reached_total",
            "icp_sms_doctor_funnel_solved_total",
            "icp_sms_doctor_funnel_not_solved_total",
        ] {
            assert!(used.contains(figure), "{figure} is used nowhere");
        }
    })
    .await;
}

/// The store-wide figures as /metrics reads them at a scrape, on a
/// hand-moved clock: a case handed to the staff and not taken, 90 s
/// later, and an update recorded and not done.
#[tokio::test]
async fn cases_waiting_and_the_inbox_backlog_are_read_from_the_store_at_each_scrape() {
    within(async {
        let tree = Arc::new(real_tree());
        let ui = tree.ui().clone();
        let store = memory();
        let clock = Clock::manual(1_800_000_000);
        let listen = free_address();
        let settings = Settings {
            support_chat: Some(STAFF),
            ..Settings::default()
        };
        let options = Options {
            metrics_listen: Some(listen),
            ..options()
        };
        let scene =
            Scene::with_options(tree, store.clone(), clock.clone(), settings, options).await;
        let listen = scene.metrics_listen().expect("a metrics address");
        let api = scene.api.clone();
        let alice = ALICE.id as i64;
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        for (n, to) in ["not_received", "nr_not_submitted"].iter().enumerate() {
            let menu = api.last_bot_message(alice);
            api.press(&ALICE, &menu, &data_to(&menu, to));
            api.wait_for("editMessageText", n + 1).await;
        }
        let end = api.last_bot_message(alice);
        api.press(
            &ALICE,
            &end,
            &data_of(&end, ui.button(UiButton::Handoff, Lang::Zh)),
        );
        let confirm = ui.button(UiButton::HandoffConfirm, Lang::Zh).to_string();
        let consent = loop {
            let last = api.last_bot_message(alice);
            if labels(&last).contains(&confirm) {
                break last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        api.press(&ALICE, &consent, &data_of(&consent, &confirm));
        metrics_with(listen, &["icp_sms_doctor_cases_waiting 1".to_string()]).await;

        clock.advance(90);
        let now = clock.now();
        assert!(store.inbox_put(7, "{}", "another", now).await.expect("put"));
        metrics_with(
            listen,
            &[
                "icp_sms_doctor_cases_waiting 1".to_string(),
                "icp_sms_doctor_cases_oldest_wait_seconds 90".to_string(),
                "icp_sms_doctor_inbox_backlog 1".to_string(),
            ],
        )
        .await;
        scene.stop().await;
    })
    .await;
}

/// Where `promtool` is installed: the rules pass `promtool check rules`
/// and their unit tests (`promtool test rules`), and every dashboard
/// query parses as PromQL (written into a rules file as a recording
/// rule, Grafana's variables given values). Without it the test says
/// so and passes; under CI (`CI=true`) it fails.
#[test]
fn promtool_accepts_the_rules_their_tests_and_the_dashboards_queries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let promtool = |args: &[&str]| {
        std::process::Command::new("promtool")
            .args(args)
            .current_dir(root)
            .output()
    };
    if promtool(&["--version"]).is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and promtool is missing: .ci/run installs it (Debian's prometheus)");
        }
        eprintln!("SKIPPED: promtool not found; the alert rules were not checked by it");
        return;
    }
    let run = |args: &[&str]| {
        let out = promtool(args).expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["check", "rules", ALERTS]);
    run(&["test", "rules", ALERT_TESTS]);

    let dashboard: Value = serde_json::from_str(&crate_file(DASHBOARD)).expect("JSON");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, (_, expr)) in dashboard_queries(&dashboard).iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&expr).expect("a JSON string is YAML");
        rules.push_str(&format!(
            "      - record: dashboard_query_{n}\n        expr: {quoted}\n"
        ));
    }
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-queries.yml");
    std::fs::write(&file, rules).expect("written");
    run(&["check", "rules", file.to_str().expect("a UTF-8 path")]);
}
