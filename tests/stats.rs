//! The team's figures: computed from a scripted set of facts, printed by `icp-sms-doctor stats` from a real SQLite file, and drawn on the tree by `graph --stats`.

use std::process::Command;

use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::stats::{Fact, FactKind, Figures, NodeFigures, usage};
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
Wait for the first staff answer (median, cases): opened inside office hours 10 min (1); outside them 50 min (2)

Per node (reached / stopped there / solved after):
- The problem (menu): 2 / 1 / 1
- Where the application stands (not_received): 2 / 0 / 1
- Application status (nr_not_submitted): 2 / 0 / 1
- Contact the provider (contact_provider): 1 / 1 / 0";

#[test]
fn the_figures_of_a_scripted_set_of_conversations() {
    let tree = real_tree();
    let figures = Figures::of(&tree, &scripted(1_800_000_000), 7);
    assert_eq!(figures.conversations(), 3);
    assert_eq!(figures.reached_end, 2);
    assert_eq!(figures.ends["nr_not_submitted"], (1, 1));
    // Conversation 1 went menu → not_received → nr_not_submitted and said
    // solved; 2 went on past "not solved" to contact_provider and stopped;
    // 3 stopped at the menu.
    assert_eq!(
        figures.nodes["menu"],
        NodeFigures {
            reached: 2,
            left: 1,
            solved_after: 1
        }
    );
    assert_eq!(
        figures.nodes["contact_provider"],
        NodeFigures {
            reached: 1,
            left: 1,
            solved_after: 0
        }
    );
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
        .replace("Where the application stands", &brief("not_received"))
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
        store
            .record(real_tree().version(), &scripted(now - 3600))
            .await
            .unwrap();
        // A fact older than the period is left out.
        let old = Fact::new(now - 8 * 24 * 3600, FactKind::Started, 9, "menu", Lang::Zh)
            .with_detail("command");
        store.record(real_tree().version(), &[old]).await.unwrap();
    })
    .await;
    let tree = real_tree();
    let out = command(&["stats", "--days", "7", "--lang", "en"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "Dialogue version {}\n\n{}\n",
            tree.version(),
            expected(&tree)
        )
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
        store.record(real_tree().version(), &facts).await.unwrap();
    })
    .await;
    let out = command(&["graph", "--stats", "--lang", "en"], &path);
    assert_eq!(out.status.code(), Some(0));
    let drawn = String::from_utf8_lossy(&out.stdout);
    let tree = real_tree();
    assert_eq!(
        drawn,
        render(
            &tree,
            Format::Mermaid,
            Lang::En,
            Some(&usage(&tree, &facts))
        )
    );
    assert!(drawn.contains("solved 1/2 (50%)"), "{drawn}");
    assert!(drawn.contains("×2"), "{drawn}");
}

/// Facts of two dialogue versions: the figures are the loaded one's unless
/// another is asked for, and name the other with its count; `none` picks
/// facts from before versions.
#[tokio::test]
async fn the_figures_are_of_one_dialogue_version_and_name_the_others() {
    let path = db_path("stats-versions");
    let now = Clock::System.now();
    let tree = real_tree();
    within(async {
        let store = Store::sqlite(&path).unwrap();
        store
            .record(tree.version(), &scripted(now - 3600))
            .await
            .unwrap();
        let before =
            Fact::new(now - 60, FactKind::Started, 8, "menu", Lang::Zh).with_detail("link");
        store
            .record("0123456789ab", std::slice::from_ref(&before))
            .await
            .unwrap();
        store.record("", &[before]).await.unwrap();
    })
    .await;
    let current = command(&["stats", "--lang", "en"], &path);
    let text = String::from_utf8_lossy(&current.stdout);
    assert!(
        text.starts_with(&format!(
            "Dialogue version {}; also recorded in this period: 0123456789ab ×1, none ×1",
            tree.version()
        )),
        "{text}"
    );
    assert!(text.contains("Conversations started: 3\n"), "{text}");
    let other = command(
        &["stats", "--lang", "en", "--dialogue", "0123456789ab"],
        &path,
    );
    let text = String::from_utf8_lossy(&other.stdout);
    assert!(
        text.starts_with("Dialogue version 0123456789ab; also recorded in this period: "),
        "{text}"
    );
    assert!(text.contains("Conversations started: 1\n"), "{text}");
    assert!(text.contains("deep link 1"), "{text}");
    let none = command(&["stats", "--lang", "en", "--dialogue", "none"], &path);
    let text = String::from_utf8_lossy(&none.stdout);
    assert!(text.contains("Conversations started: 1\n"), "{text}");
    // The picture takes the same choice.
    let drawn = command(
        &[
            "graph",
            "--stats",
            "--lang",
            "en",
            "--dialogue",
            "0123456789ab",
        ],
        &path,
    );
    let drawn = String::from_utf8_lossy(&drawn.stdout);
    assert!(
        drawn.contains("(menu)<br/>reached 1 · stopped here 1"),
        "{drawn}"
    );
}

/// A scripted run through the real binary on an SQLite file: two people
/// walk the dialogue, the dialogue is edited and reloaded, a third walks
/// it. The figures keep the two versions apart: by default those of the
/// edited dialogue, on request those of before, each naming the other.
/// `KEEP_STATS_RUN=<path>` keeps the database there, to draw it.
#[tokio::test]
async fn figures_of_a_run_before_and_after_a_dialogue_edit_stay_apart() {
    use icp_sms_doctor::tree::load::{load, read_dir};

    use crate::binary::{binary, terminate};
    use crate::bot::{ALICE, BOB, EVE};
    use crate::fake_api::FakeApi;
    use crate::scene::data_to;
    use crate::support::copy_of_dialogs;

    let dir = copy_of_dialogs("stats-run");
    let path = db_path("stats-run");
    let version_of = |dir: &std::path::Path| {
        load(&read_dir(dir).expect("the folder"))
            .expect("it loads")
            .version()
            .to_string()
    };
    let before = version_of(&dir);
    let after = within(async {
        let api = FakeApi::start().await;
        let mut child = binary()
            .env("TELOXIDE_TOKEN", "123:secretsecret")
            .env("TELOXIDE_API_URL", api.url.as_str())
            .env("DIALOGS_DIR", &dir)
            .env("DATABASE_URL", format!("sqlite://{}", path.display()))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // The log, to know when the reload is done.
        let mut log = crate::scene::Log::of(&mut child);
        api.wait_polling().await;
        let mut sent = 0;
        let mut edits = 0;
        let mut walk = async |person: &crate::fake_api::Person, to: &str| {
            api.send_as(person, &person.private_chat(), "/diagnose", None);
            sent += 1;
            api.wait_for("sendMessage", sent).await;
            let menu = api.last_bot_message(person.id as i64);
            api.press(person, &menu, &data_to(&menu, to));
            edits += 1;
            api.wait_for("editMessageText", edits).await;
        };
        walk(&ALICE, "not_received").await;
        walk(&BOB, "timeout").await;

        let menu_file = dir.join("menu.toml");
        let text = std::fs::read_to_string(&menu_file).expect("menu.toml");
        std::fs::write(&menu_file, format!("{text}\n# edited\n")).expect("edited");
        let after = version_of(&dir);
        crate::binary::send_signal(child.id(), "-HUP");
        log.wait_for("dialogs reloaded").await;
        walk(&EVE, "mismatch").await;
        let out = terminate(child).await;
        assert!(out.status.success());
        after
    })
    .await;
    assert_ne!(before, after);

    let stats = |version: Option<&str>| {
        let mut args = vec!["stats", "--lang", "en"];
        if let Some(v) = version {
            args.extend(["--dialogue", v]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
            .args(&args)
            .env("DATABASE_URL", &path)
            .env("DIALOGS_DIR", &dir)
            .env("DEFAULT_LANG", "")
            .env("RUST_LOG", "")
            .output()
            .expect("the binary runs");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let now = stats(None);
    eprintln!("{now}");
    assert!(
        now.starts_with(&format!(
            "Dialogue version {after}; also recorded in this period: {before} ×"
        )),
        "{now}"
    );
    assert!(now.contains("Conversations started: 1\n"), "{now}");
    assert!(now.contains("(mismatch): 1 / 1 / 0"), "{now}");
    let then = stats(Some(&before));
    eprintln!("{then}");
    assert!(
        then.starts_with(&format!(
            "Dialogue version {before}; also recorded in this period: {after} ×"
        )),
        "{then}"
    );
    assert!(then.contains("Conversations started: 2\n"), "{then}");
    assert!(then.contains("(not_received): 1 / 1 / 0"), "{then}");
    assert!(then.contains("(timeout): 1 / 1 / 0"), "{then}");
    assert!(!then.contains("(mismatch)"), "{then}");
    if let Some(keep) = std::env::var_os("KEEP_STATS_RUN") {
        std::fs::copy(&path, keep).expect("kept");
    }
}
