//! The team's figures: computed from a scripted set of facts, printed by `icp-sms-doctor stats` from a real SQLite file, and drawn on the tree by `graph --stats`.

use std::process::Command;

use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::stats::{Fact, FactKind, Figures, usage};
use icp_sms_doctor::store::Store;
use icp_sms_doctor::tree::graph::{Format, render};

use crate::scene::{db_path, within};
use crate::support::real_tree;

/// Three conversations: one solved at an end, one that went on past
/// "not solved" and stopped, one that stopped at the entry menu; and a
/// reminder set and sent, a case opened, a next-day "solved after all",
/// and three first staff answers.
fn scripted(at: i64) -> Vec<Fact> {
    use FactKind::*;
    let f = |kind, conv, node: &str, detail: &str| {
        Fact::new(at, kind, conv, node, Lang::Zh).with_detail(detail)
    };
    vec![
        f(Started, 1, "menu", "command"),
        f(Step, 1, "not_received", "menu"),
        f(Step, 1, "nr_not_submitted", "not_received"),
        f(Reached, 1, "nr_not_submitted", ""),
        f(Solved, 1, "nr_not_submitted", ""),
        f(Started, 2, "not_received", "text"),
        f(Step, 2, "nr_not_submitted", "not_received"),
        f(Reached, 2, "nr_not_submitted", ""),
        f(NotSolved, 2, "nr_not_submitted", ""),
        f(Step, 2, "contact_provider", "nr_not_submitted"),
        f(Reached, 2, "contact_provider", ""),
        f(Started, 3, "menu", "command"),
        f(ReminderSet, 0, "", ""),
        f(ReminderSent, 0, "", ""),
        f(HandoffOpened, 2, "contact_provider", ""),
        f(LaterSolved, 0, "contact_provider", ""),
        // Staff first answered one case opened inside office hours after
        // 10 minutes, two outside them after 50 minutes and 2 hours.
        f(StaffAnswered, 0, "contact_provider", "in:600"),
        f(StaffAnswered, 0, "contact_provider", "out:7200"),
        f(StaffAnswered, 0, "contact_provider", "out:3000"),
    ]
}

const SCRIPTED_EN: &str = "\
The last 7 days

Conversations started: 3
- The SMS never arrived (not_received): 2 (command 1, free text 1)
- No category reached: 1
Entries: command 2, free text 1
Reached an end: 2

Resolution rate per end (solved/answered):
- Application status (nr_not_submitted): 1/2 (50%)
Asked the next day, solved after all: 1/1 (100%)

Where conversations not marked solved stopped:
- Contact the provider (contact_provider): 1
- The problem (menu): 1

Reminders (set / delivered): 1 / 1
Handoffs (opened / closed): 1 / 0
Wait for the first staff answer (median, cases): opened inside office hours 10 min (1); outside them 50 min (2)";

#[test]
fn the_figures_of_a_scripted_set_of_conversations() {
    let tree = real_tree();
    let figures = Figures::of(&tree, &scripted(1_800_000_000), 7);
    assert_eq!(figures.conversations(), 3);
    assert_eq!(figures.reached_end, 2);
    assert_eq!(figures.ends["nr_not_submitted"], (1, 1));
    assert_eq!(figures.render(&tree, Lang::En), expected(&tree));
}

/// The scripted figures in English, with the briefs the real tree has
/// today (so editing a brief does not break this test).
fn expected(tree: &icp_sms_doctor::Tree) -> String {
    let brief = |id: &str| {
        let node = tree.get(id).unwrap_or_else(|| panic!("no node {id}"));
        tree.node(node)
            .brief
            .as_ref()
            .map_or(id.to_string(), |b| b.get(Lang::En).to_string())
    };
    SCRIPTED_EN
        .replace("Application status", &brief("nr_not_submitted"))
        .replace("Contact the provider", &brief("contact_provider"))
        .replace("The problem", &brief("menu"))
}

fn command(args: &[&str], database: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", database)
        .env("DIALOGS_DIR", "")
        .env("DEFAULT_LANG", "")
        .env("RUST_LOG", "")
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn the_stats_command_prints_the_figures_from_the_store() {
    let path = db_path("stats-command");
    let now = Clock::System.now();
    within(async {
        let store = Store::sqlite(&path).unwrap();
        store.record(&scripted(now - 3600)).await.unwrap();
        // A fact older than the period is left out.
        let old = Fact::new(now - 8 * 24 * 3600, FactKind::Started, 9, "menu", Lang::Zh)
            .with_detail("command");
        store.record(&[old]).await.unwrap();
    })
    .await;
    let tree = real_tree();
    let out = command(&["stats", "--days", "7", "--lang", "en"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", expected(&tree))
    );
    let refused = command(&["stats", "--days", "0"], &path);
    assert_eq!(refused.status.code(), Some(2));
}

#[tokio::test]
async fn graph_stats_draws_the_rates_and_counts_from_the_store() {
    let path = db_path("graph-stats");
    let now = Clock::System.now();
    let facts = scripted(now - 60);
    within(async {
        let store = Store::sqlite(&path).unwrap();
        store.record(&facts).await.unwrap();
    })
    .await;
    let out = command(&["graph", "--stats", "--lang", "en"], &path);
    assert_eq!(out.status.code(), Some(0));
    let drawn = String::from_utf8_lossy(&out.stdout);
    let tree = real_tree();
    assert_eq!(
        drawn,
        render(&tree, Format::Mermaid, Lang::En, Some(&usage(&facts)))
    );
    assert!(drawn.contains("solved 1/2 (50%)"), "{drawn}");
    assert!(drawn.contains("×2"), "{drawn}");
}
