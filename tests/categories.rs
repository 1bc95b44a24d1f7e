//! A fifth category added as data alone: a copy of `dialogs/` with a made-up topic, walked in the console and through the bot.
//!
//! Nothing in the program names the categories; `category = true` in the
//! dialogue does. These tests prove it by adding one the code has never
//! heard of and changing no Rust.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use icp_sms_doctor::app::Settings;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::eval;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::{UiButton, UiText};
use serde_json::Value;

use crate::bot::ALICE;
use crate::scene::{Scene, data_of, data_to, labels, memory, text_of, within};
use crate::support::{copy_of_dialogs, run_binary};

/// The made-up topic: one question and two ends.
const FIFTH: &str = r#"
[[node]]
id = "footer"
category = true
text = { zh = "网站底部显示备案号了吗？", en = "Does the site footer show the filing number?" }

[[node.button]]
label = { zh = "显示了", en = "Yes" }
goto = "footer_shown"

[[node.button]]
label = { zh = "没有", en = "No" }
goto = "footer_missing"

[[node]]
id = "footer_shown"
end = true
not_solved = "contact_provider"
text = { zh = "1. 核对号码与记录一致。", en = "1. Check that the number matches the record." }

[[node]]
id = "footer_missing"
end = true
not_solved = "contact_provider"
text = { zh = "1. 在底部加上备案号。", en = "1. Add the filing number to the footer." }
"#;

/// The same topic whose only answer leads back to the entry menu.
const FIFTH_WITHOUT_END: &str = r#"
[[node]]
id = "footer"
category = true
text = { zh = "网站底部显示备案号了吗？", en = "Does the site footer show the filing number?" }

[[node.button]]
label = { zh = "回到开始", en = "Back to the start" }
goto = "menu"
"#;

/// A copy of the repository's `dialogs/` with `extra` as a file of its own
/// and a button to "footer" on the entry menu.
fn dialogs_with(name: &str, extra: &str) -> PathBuf {
    let dir = copy_of_dialogs(name);
    // The entry menu's buttons end where its next node begins.
    let menu = fs::read_to_string(dir.join("menu.toml")).expect("menu.toml");
    let next = menu
        .find("\n[[node]]\nid = \"unsure\"")
        .expect("the triage follows");
    let button = "\n[[node.button]]\nlabel = { zh = \"备案号没显示\", en = \"Filing number not shown\" }\ngoto = \"footer\"\n";
    let menu = format!("{}{button}{}", &menu[..next], &menu[next..]);
    fs::write(dir.join("menu.toml"), menu).expect("menu.toml written");
    fs::write(dir.join("footer.toml"), extra).expect("footer.toml written");
    dir
}

#[test]
fn a_fifth_category_is_listed_in_menu_order_and_accepted_by_the_evaluation() {
    let dir = dialogs_with("fifth", FIFTH);
    let tree = icp_sms_doctor::load_tree(Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = tree
        .categories()
        .iter()
        .map(|c| tree.node(*c).id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["timeout", "not_received", "mismatch", "reset", "footer"]
    );
    // The evaluation accepts its id as a label.
    let samples = eval::parse(&tree, "footer\t网站底部没有备案号\n").expect("a known label");
    assert_eq!(samples[0].label, "footer");
}

#[test]
fn a_fifth_category_is_walked_to_its_end_in_the_console() {
    let dir = dialogs_with("fifth-console", FIFTH);
    let input = "{\"text\":\"/diagnose\"}\n{\"press\":\"g:menu:footer\"}\n{\"press\":\"g:footer:footer_missing\"}\n";
    let out = run_binary(&["console", "--json"], &dir, input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object"))
        .collect();
    let nodes: Vec<&str> = replies.iter().filter_map(|r| r["node"].as_str()).collect();
    assert_eq!(nodes, ["menu", "footer", "footer_missing"]);
    let end = replies[2]["text"].as_str().expect("a text");
    assert!(end.contains("在底部加上备案号"), "{end}");
    assert!(end.contains("https://beian.miit.gov.cn/"), "{end}");
}

#[tokio::test]
async fn a_fifth_category_is_walked_to_its_end_through_the_bot() {
    within(async {
        let dir = dialogs_with("fifth-bot", FIFTH);
        let tree = icp_sms_doctor::load_tree(Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
        let tree = Arc::new(tree);
        let settings = Settings::default();
        let scene = Scene::with_tree(tree.clone(), memory(), Clock::System, settings).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu = api.last_bot_message(chat);
        assert_eq!(labels(&menu).len(), 6);
        api.press(&ALICE, &menu, &data_to(&menu, "footer"));
        api.wait_for("editMessageText", 1).await;
        let question = api.last_bot_message(chat);
        assert!(text_of(&question).starts_with("网站底部显示备案号了吗"));
        api.press(&ALICE, &question, &data_to(&question, "footer_shown"));
        api.wait_for("editMessageText", 2).await;
        let end = api.last_bot_message(chat);
        assert!(text_of(&end).contains("核对号码与记录一致"));
        let ui = tree.ui();
        let solved = data_of(&end, ui.button(UiButton::Solved, Lang::Zh));
        api.press(&ALICE, &end, &solved);
        api.wait_for("editMessageText", 3).await;
        let closed = api.last_bot_message(chat);
        assert_eq!(text_of(&closed), ui.text(UiText::Solved, Lang::Zh));
        scene.stop().await;
    })
    .await;
}

#[test]
fn check_refuses_a_category_without_an_end() {
    let dir = dialogs_with("fifth-dead", FIFTH_WITHOUT_END);
    let out = run_binary(&["check"], &dir, b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("footer.toml:4: node \"footer\": a category must lead to an end"),
        "{stderr}"
    );
}
