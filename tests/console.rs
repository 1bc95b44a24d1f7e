//! The console: the JSON Lines protocol for programs and the numbered menus
//! for people, including the binary itself on a pipe.

use std::io::Cursor;
use std::path::Path;

use icp_sms_doctor::console::{run_interactive, run_json};
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::{UiButton, UiText};
use serde_json::Value;

use crate::support::{base_tree, copy_of_dialogs, real_tree, run_binary};

fn json_session(lang: Lang, input: &str) -> Vec<Value> {
    let tree = real_tree();
    let mut out = Vec::new();
    run_json(&tree, lang, Cursor::new(input.as_bytes()), &mut out).expect("runs");
    String::from_utf8(out)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn diagnose_on_the_json_console_prints_the_entry_menu_as_one_line_with_five_choices() {
    let out = run_binary(
        &["console", "--json"],
        Path::new(""),
        b"{\"text\":\"/diagnose\"}\n",
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let menu: Value = serde_json::from_str(lines[0]).expect("one JSON object");
    assert_eq!(menu["node"], "menu");
    assert!(menu["text"].as_str().is_some_and(|t| !t.is_empty()));
    let rows = menu["buttons"].as_array().expect("rows of buttons");
    assert_eq!(rows.len(), 5);
    for row in rows {
        let button = &row[0];
        assert!(button["label"].as_str().is_some_and(|l| !l.is_empty()));
        assert!(
            button["data"]
                .as_str()
                .is_some_and(|d| d.starts_with("g:menu:"))
        );
    }
}

#[test]
fn each_output_line_has_exactly_node_text_and_buttons() {
    let lines = json_session(
        Lang::En,
        "{\"text\":\"/start\"}\n{\"press\":\"g:menu:timeout\"}\n",
    );
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let keys: Vec<&String> = line.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["buttons", "node", "text"]);
    }
    assert_eq!(lines[0]["node"], Value::Null);
    assert_eq!(lines[2]["node"], "timeout");
}

#[test]
fn a_press_follows_the_buttons_data() {
    let lines = json_session(
        Lang::Zh,
        "{\"text\":\"/diagnose\"}\n{\"press\":\"g:menu:not_received\"}\n{\"press\":\"b:not_received\"}\n",
    );
    let nodes: Vec<&Value> = lines.iter().map(|l| &l["node"]).collect();
    assert_eq!(nodes, ["menu", "not_received", "menu"]);
}

#[test]
fn invalid_json_gets_an_error_line_and_the_session_goes_on() {
    let long = "x".repeat(100 * 1024);
    let input = format!(
        "{{\"text\":\"/diagnose\"}}\nnot json\n\n{{\"text\": 5}}\n{{\"txt\":\"hi\"}}\n{{\"text\":\"a\",\"press\":\"h\"}}\n{{}}\n{long}\n{{\"press\":\"g:menu:reset\"}}\n"
    );
    let lines = json_session(Lang::En, &input);
    assert_eq!(lines.len(), 9);
    for bad in &lines[1..8] {
        assert_eq!(bad["node"], Value::Null);
        assert_eq!(bad["buttons"], Value::Array(vec![]));
        assert!(
            bad["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}"
        );
        assert!(
            bad["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("This line is not valid input JSON")),
            "{bad}"
        );
    }
    assert!(
        lines[1]["error"]
            .as_str()
            .expect("error")
            .starts_with("not JSON")
    );
    assert_eq!(lines[2]["error"], "empty line");
    for protocol_error in [&lines[3], &lines[4], &lines[5], &lines[6]] {
        assert!(
            protocol_error["error"]
                .as_str()
                .expect("error")
                .contains("exactly one key"),
            "{protocol_error}"
        );
    }
    // The menu from before the bad lines still works.
    assert_eq!(lines[8]["node"], "reset");
}

#[test]
fn a_100_kb_text_line_gets_a_clear_answer() {
    let input = format!(
        "{{\"text\":\"{}\"}}\n{{\"text\":\"/diagnose\"}}\n",
        "短".repeat(35_000)
    );
    let lines = json_session(Lang::En, &input);
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["text"].as_str().expect("text").contains("4096"));
    assert_eq!(lines[1]["node"], "menu");
}

#[test]
fn unknown_commands_and_empty_text_are_answered_on_the_json_console() {
    let lines = json_session(Lang::En, "{\"text\":\"/nope\"}\n{\"text\":\"  \"}\n");
    assert!(lines[0]["text"].as_str().expect("text").contains("/nope"));
    assert_eq!(
        lines[1]["text"],
        "Nothing was received. Type /diagnose or press a button."
    );
}

fn interactive(input: &str) -> String {
    let tree = base_tree();
    let mut out = Vec::new();
    run_interactive(&tree, Lang::Zh, Cursor::new(input), &mut out).expect("runs");
    String::from_utf8(out).expect("utf-8")
}

const ENTRY_MENU: &str =
    "哪种情况？\n  [1] 超时\n  [2] 没收到\n  [3] 不匹配\n  [4] 重置\n  [5] 其他\n";

#[test]
fn the_interactive_console_opens_on_the_entry_menu() {
    let out = interactive("");
    assert_eq!(out, format!("输入数字\n\n{ENTRY_MENU}\n> \n"));
}

#[test]
fn back_and_start_over_keep_their_keys_on_every_page() {
    // "2": the not-received end; "0" back to the menu; "3", "00".
    let out = interactive("2\n0\n3\n00\n");
    let keys = "  [0] 返回   [00] 重来\n";
    assert!(
        out.contains(&format!(
            "检查信号\n\n下次\n\n渠道\n\n安全\n  [1] 解决   [2] 未解决\n{keys}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "核对信息 - 不匹配\n\n下次\n\n渠道\n\n安全\n  [1] 解决   [2] 未解决\n{keys}"
        )),
        "{out}"
    );
    assert_eq!(out.matches(ENTRY_MENU).count(), 3, "{out}");
}

#[test]
fn bad_input_gets_one_line_and_the_keys_and_an_empty_line_nothing() {
    let out = interactive("2\n9\nhello\n\n\n");
    let end_keys = "  [1] 解决   [2] 未解决\n  [0] 返回   [00] 重来\n";
    // The page is not printed again, only the note and the keys.
    assert!(out.contains(&format!("> 没有 9\n{end_keys}")), "{out}");
    assert!(out.contains(&format!("> 请用菜单\n{end_keys}")), "{out}");
    assert_eq!(out.matches("检查信号").count(), 1, "{out}");
    assert!(!out.contains("空"), "an empty line is ignored: {out}");
}

#[test]
fn a_bare_code_gets_the_warning_not_a_button() {
    let out = interactive("123456\n");
    assert!(out.contains("> 别发个人信息\n"), "{out}");
    assert!(!out.contains("没有 123456"), "{out}");
}

#[test]
fn the_language_chosen_stays_after_a_reset() {
    let out = interactive("/lang en\n/reset\n9\n");
    assert!(out.contains("> Reset\n\nWhich one?"), "{out}");
    assert!(out.contains("> No 9\n"), "{out}");
}

#[test]
fn reset_and_language_leave_the_options_on_screen() {
    let out = interactive("/reset\n/lang en\n");
    assert!(out.contains(&format!("> 已重置\n\n{ENTRY_MENU}")), "{out}");
    assert!(
        out.contains("English\n\nWhich one?\n  [1] Timeout\n"),
        "{out}"
    );
}

#[test]
fn the_real_console_speaks_of_typing_not_of_telegram() {
    let tree = real_tree();
    let mut out = Vec::new();
    let input = "hello\n/help\n";
    run_interactive(&tree, Lang::En, Cursor::new(input), &mut out).expect("runs");
    let out = String::from_utf8(out).expect("utf-8");
    for telegram_only in ["press a button", "pressing the buttons", "in a group"] {
        assert!(
            !out.to_lowercase().contains(telegram_only),
            "{telegram_only}: {out}"
        );
    }
    assert!(out.contains("0 goes back a step, 00 starts over"), "{out}");
}

#[test]
fn reminders_are_worked_out_in_the_console_and_said_not_to_be_sent() {
    let tree = real_tree();
    let mut out = Vec::new();
    // The window reminder of to_new_sms, answered by a typed time.
    let input = "/start to_new_sms\n3\n2小时前\n";
    run_interactive(&tree, Lang::Zh, Cursor::new(input), &mut out).expect("runs");
    let out = String::from_utf8(out).expect("utf-8");
    let ui = tree.for_console();
    let ui = ui.ui();
    assert!(out.contains(ui.text(UiText::RemindAsk, Lang::Zh)), "{out}");
    let set = ui.text(UiText::RemindSet, Lang::Zh);
    assert!(out.contains(set.lines().next().unwrap_or(set)), "{out}");
    assert!(
        out.contains(ui.text(UiText::RemindDeliveryPrivate, Lang::Zh)),
        "{out}"
    );
    assert!(
        !out.contains(ui.text(UiText::RemindersConsole, Lang::Zh)),
        "{out}"
    );
}

#[test]
fn start_over_works_on_pages_that_show_no_such_key() {
    let tree = real_tree();
    let ui = tree.for_console();
    let ui = ui.ui();
    let menu = tree.node(tree.root()).text.get(Lang::En);
    // The question of when the SMS arrived shows `0` alone; `00` still
    // starts over, as the console's header says.
    let mut out = Vec::new();
    let input = "/start to_new_sms\n3\n00\n";
    run_interactive(&tree, Lang::En, Cursor::new(input), &mut out).expect("runs");
    let out = String::from_utf8(out).expect("utf-8");
    let (_, after_ask) = out
        .split_once(
            ui.text(UiText::RemindAsk, Lang::En)
                .lines()
                .next()
                .expect("a line"),
        )
        .expect("the arrival question");
    let (ask_page, after) = after_ask.split_once("\n> ").expect("a prompt");
    assert!(
        ask_page.contains("[0]") && !ask_page.contains("[00]"),
        "{ask_page}"
    );
    assert!(after.starts_with(menu), "00 did not start over: {after}");
}

#[test]
fn the_interactive_binary_survives_invalid_utf8_and_ends_at_eof() {
    let out = run_binary(
        &["console", "--lang", "en"],
        Path::new(""),
        b"/diagnose\n\xff\xfe\n1\n",
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(stdout.contains("I work with the options below"), "{stdout}");
    assert!(stdout.contains("A timeout means"), "{stdout}");
}

#[test]
fn a_broken_dialogs_folder_stops_the_console_with_status_2() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dialogs/dead_end"
    );
    let out = run_binary(
        &["console", "--json", "--dialogs-dir", dir],
        Path::new(""),
        b"{\"text\":\"/diagnose\"}\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dead end"));
}

#[test]
fn the_english_console_walks_to_an_end_and_back_with_the_fixed_keys() {
    let tree = real_tree();
    let mut out = Vec::new();
    // The SMS never arrived → not sure it was passed on (an end, the
    // fourth answer), back, then start over.
    let input = "2\n4\n0\n00\n";
    run_interactive(&tree, Lang::En, Cursor::new(input), &mut out).expect("runs");
    let out = String::from_utf8(out).expect("utf-8");
    let ui = tree.ui();
    let keys = format!(
        "  [0] {}   [00] {}\n",
        ui.button(UiButton::Back, Lang::En),
        ui.button(UiButton::Restart, Lang::En)
    );
    let end = format!(
        "  [1] {}   [2] {}\n{keys}",
        ui.button(UiButton::Solved, Lang::En),
        ui.button(UiButton::NotSolved, Lang::En)
    );
    assert!(out.contains(&end), "{out}");
    assert!(out.contains("https://beian.miit.gov.cn/"), "{out}");
    // Back from the end shows its question again, with the same keys.
    let question = tree
        .node(tree.get("not_received").expect("a node"))
        .text
        .get(Lang::En);
    assert_eq!(out.matches(question).count(), 2, "{out}");
    // Start over ends on the entry menu, as the console began.
    let entry = tree.node(tree.root()).text.get(Lang::En);
    assert_eq!(out.matches(entry).count(), 2, "{out}");
}

#[test]
fn the_arrival_question_is_answered_by_its_button_in_the_console() {
    let tree = real_tree();
    let mut out = Vec::new();
    // "3" asks for the reminder on to_new_sms's menu, "1" is "just now".
    let input = "/start to_new_sms\n3\n1\n";
    run_interactive(&tree, Lang::En, Cursor::new(input), &mut out).expect("runs");
    let out = String::from_utf8(out).expect("utf-8");
    let console = tree.for_console();
    let ui = console.ui();
    let set = ui.text(UiText::RemindSet, Lang::En);
    assert!(out.contains(set.lines().next().unwrap_or(set)), "{out}");
    assert!(
        out.contains(ui.text(UiText::RemindDeliveryPrivate, Lang::En)),
        "{out}"
    );
    assert!(
        out.contains(&format!("[1] {}", ui.button(UiButton::Verified, Lang::En))),
        "{out}"
    );
}

/// The "contact your provider" end's text, as the binary's JSON console
/// shows it in English with the dialogs of `dir` ("" for the built-in ones).
fn contact_end(dir: &Path) -> String {
    let input = [
        r#"{"text":"/lang en"}"#,
        r#"{"text":"/diagnose"}"#,
        r#"{"press":"g:menu:timeout"}"#,
        r#"{"press":"g:timeout:to_console"}"#,
        r#"{"press":"g:to_console:contact_provider"}"#,
    ]
    .join("\n");
    let out = run_binary(&["console", "--json"], dir, input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let last: Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["node"], "contact_provider", "{stdout}");
    last["text"].as_str().expect("a text").to_string()
}

#[test]
fn the_neutral_profile_speaks_of_your_access_provider_in_the_console() {
    let text = contact_end(Path::new(""));
    assert!(
        text.starts_with(
            "This needs your access provider to look at it from their side.\nOpen a ticket in their filing console"
        ),
        "{text}"
    );
    assert!(
        text.contains("· Progress during review: your access provider's filing console, or a ticket there\n· MIIT public service line"),
        "{text}"
    );
}

#[test]
fn an_example_profile_copied_in_names_the_provider_and_its_hotline_in_the_console() {
    let dir = copy_of_dialogs("console-huawei");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs/providers/huawei.toml"),
        dir.join("provider.toml"),
    )
    .expect("the example copied");
    let text = contact_end(&dir);
    assert!(
        text.starts_with(
            "This needs Huawei Cloud to look at it from their side.\nFiling hotline: 4000955988, extension 5\nOpen a ticket"
        ),
        "{text}"
    );
    assert!(
        text.contains("· Progress during review: Huawei Cloud's filing console, or a ticket there\n· Huawei Cloud filing hotline: 4000955988, extension 5\n"),
        "{text}"
    );
}
