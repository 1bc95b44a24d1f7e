//! The loader: one fixture folder per kind of mistake, each reported exactly,
//! with its file and line.

use std::process::Command;

use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::load::load;
use icp_sms_doctor::tree::report::Source;
use icp_sms_doctor::tree::{NodeKind, UiText};

use crate::support::{base_tree, load_case, problems_of};

const DIR: &str = "tests/fixtures/dialogs";

#[test]
fn the_base_fixture_is_a_valid_tree() {
    let tree = base_tree();
    assert_eq!(tree.len(), 6);
    assert_eq!(tree.end_count(), 5);
}

#[test]
fn a_duplicate_id_names_both_places() {
    // Files load in name order, so extra.toml's "timeout" comes first.
    assert_eq!(
        problems_of("duplicate_id"),
        format!(
            "{DIR}/base/tree.toml:27: node \"timeout\": duplicate id, first defined at {DIR}/duplicate_id/extra.toml:8"
        )
    );
}

#[test]
fn a_button_to_an_unknown_node_is_reported_at_its_goto() {
    assert_eq!(
        problems_of("unknown_target"),
        format!(
            "{DIR}/unknown_target/extra.toml:7: node \"extra\": button 1 goto \"nowhere\" names no node"
        )
    );
}

#[test]
fn not_solved_to_an_unknown_node_is_reported() {
    assert_eq!(
        problems_of("unknown_not_solved"),
        format!(
            "{DIR}/unknown_not_solved/extra.toml:4: node \"extra\": not_solved \"nowhere\" names no node"
        )
    );
}

#[test]
fn a_node_nothing_leads_to_is_unreachable() {
    assert_eq!(
        problems_of("unreachable"),
        format!("{DIR}/unreachable/extra.toml:8: node \"orphan\": unreachable from \"menu\"")
    );
}

#[test]
fn a_node_with_neither_buttons_nor_end_is_a_dead_end() {
    assert_eq!(
        problems_of("dead_end"),
        format!(
            "{DIR}/dead_end/extra.toml:2: node \"extra\": dead end: no buttons and no end = true"
        )
    );
}

#[test]
fn an_end_must_say_where_not_solved_leads() {
    assert_eq!(
        problems_of("end_without_not_solved"),
        format!(
            "{DIR}/end_without_not_solved/extra.toml:2: node \"extra\": an end needs not_solved = \"<node id>\" (where \"not solved\" leads), or final = true where the checks run out"
        )
    );
}

#[test]
fn a_final_end_cannot_also_say_where_not_solved_leads() {
    assert_eq!(
        problems_of("final_with_not_solved"),
        format!(
            "{DIR}/final_with_not_solved/extra.toml:5: node \"extra\": a final end has no \"not solved\": remove not_solved or final"
        )
    );
}

#[test]
fn a_text_that_sends_people_elsewhere_in_words_is_refused() {
    assert_eq!(
        problems_of("navigation_in_words"),
        [
            format!(
                "{DIR}/navigation_in_words/extra.toml:5: node \"extra\": text (zh) sends people elsewhere in words (\"主菜单\"): name the button with {{go:<node id>}}"
            ),
            format!(
                "{DIR}/navigation_in_words/extra.toml:6: node \"extra\": text (en) sends people elsewhere in words (\"main menu\"): name the button with {{go:<node id>}}"
            ),
            format!(
                "{DIR}/navigation_in_words/extra.toml:6: node \"extra\": text (en) sends people elsewhere in words (\"go back\"): name the button with {{go:<node id>}}"
            ),
        ]
        .join("\n")
    );
}

#[test]
fn a_go_marker_needs_a_button_of_its_node_leading_there() {
    let problem = |lang: &str, line: usize| {
        format!(
            "{DIR}/go_without_button/extra.toml:{line}: node \"extra\": text ({lang}) points at {{go:timeout}}, but no button of this node leads to \"timeout\""
        )
    };
    assert_eq!(
        problems_of("go_without_button"),
        [problem("zh", 5), problem("en", 6)].join("\n")
    );
}

#[test]
fn go_markers_become_the_labels_of_the_buttons_they_name() {
    let tree = load_case("go_marker").unwrap_or_else(|e| panic!("{e}"));
    let text = |id: &str, lang: Lang| {
        tree.node(tree.get(id).expect("node exists"))
            .text
            .get(lang)
            .to_string()
    };
    assert_eq!(
        text("extra", Lang::Zh),
        "超时了就点「超时了」，其他点「别的」。"
    );
    assert_eq!(
        text("extra", Lang::En),
        "Timed out? Press \"It timed out\". Anything else: \"Something else\"."
    );
    // "Not solved" is named by where it leads, in the ui.toml label.
    assert!(text("extra_end", Lang::Zh).ends_with("不行就点「未解决」。"));
    // The final end has "solved" alone; the reminder's assumption follows
    // the text.
    let last = tree.get("extra_last").expect("node exists");
    assert_eq!(tree.menu(last)[0].len(), 1);
    let end = tree.get("extra_end").expect("node exists");
    assert!(
        tree.body(end, Lang::En)
            .contains("press \"Not solved\".\n\nThe reminder comes in about an hour.")
    );
}

#[test]
fn a_text_may_tell_people_to_press_only_a_button_its_node_offers() {
    // Accepted in the fixture: a page's own words quoted alike in both
    // languages (点「短信核验」, click 「短信核验」), "solved", "not solved"
    // named with {go:…}, and the reminder's button without its emoji.
    assert_eq!(
        problems_of("press_without_button"),
        [
            format!(
                "{DIR}/press_without_button/extra.toml:8: node \"extra\": assumes (en) tells people to press \"Remind me soon\", but no button of this node's menu says that"
            ),
            format!(
                "{DIR}/press_without_button/extra.toml:9: node \"extra\": text (zh) tells people to press 「重新来过」, but no button of this node's menu says that"
            ),
            format!(
                "{DIR}/press_without_button/extra.toml:10: node \"extra\": text (en) tells people to press \"Start again\", but no button of this node's menu says that"
            ),
        ]
        .join("\n")
    );
}

#[test]
fn a_ui_text_may_tell_people_to_press_only_a_label_of_the_button_table() {
    // 点「已核验」 is the "verified" label; 点「短信核验」 a page's words.
    assert_eq!(
        problems_of("ui_press_without_button"),
        format!(
            "{DIR}/ui_press_without_button/ui.toml:35: text.remind_set (en) tells people to press \"Done\", but no label of [button] says that"
        )
    );
}

#[test]
fn every_end_carries_the_closing_advice_which_must_stay_short() {
    let tree = base_tree();
    for (id, node) in tree.nodes() {
        for lang in Lang::ALL {
            let body = tree.body(id, lang);
            let closing = tree.ui().text(UiText::Closing, lang);
            let is_end = matches!(node.kind, NodeKind::End { .. });
            assert_eq!(body.contains(closing), is_end, "{} {lang}", node.id);
        }
    }
    assert_eq!(
        problems_of("closing_too_long"),
        format!(
            "{DIR}/closing_too_long/ui.toml:149: text.closing (en) is 346 characters, over 300: every end carries it, so keep it to a line or two"
        )
    );
}

#[test]
fn a_reminder_must_say_what_its_timing_assumes() {
    assert_eq!(
        problems_of("remind_without_assumes"),
        format!(
            "{DIR}/remind_without_assumes/extra.toml:5: node \"extra\": offers a reminder but does not say what its timing assumes: add assumes = {{ zh = \"…\", en = \"…\" }}"
        )
    );
}

#[test]
fn an_end_cannot_have_buttons() {
    assert_eq!(
        problems_of("end_with_buttons"),
        format!(
            "{DIR}/end_with_buttons/extra.toml:7: node \"extra\": an end (end = true) cannot also have buttons"
        )
    );
}

#[test]
fn a_missing_translation_is_reported() {
    assert_eq!(
        problems_of("missing_translation"),
        format!(
            "{DIR}/missing_translation/extra.toml:5: node \"extra\": text is missing its en translation"
        )
    );
}

#[test]
fn a_blank_translation_counts_as_missing() {
    assert_eq!(
        problems_of("empty_translation"),
        format!("{DIR}/empty_translation/extra.toml:5: node \"extra\": text (en) is empty")
    );
}

#[test]
fn a_button_label_needs_both_languages() {
    assert_eq!(
        problems_of("missing_label_translation"),
        format!(
            "{DIR}/missing_label_translation/extra.toml:6: node \"extra\": button 1 is missing its zh translation"
        )
    );
}

#[test]
fn button_data_over_64_bytes_is_reported() {
    let id = "x".repeat(57);
    assert_eq!(
        problems_of("button_data_too_long"),
        format!(
            "{DIR}/button_data_too_long/extra.toml:2: node \"extra\": button data \"g:extra:{id}\" is 65 bytes, over Telegram's 64; use shorter ids"
        )
    );
}

#[test]
fn a_text_over_4096_characters_with_the_reminders_is_reported() {
    assert_eq!(
        problems_of("text_too_long"),
        format!(
            "{DIR}/text_too_long/extra.toml:2: node \"extra\": zh text is 4102 characters with the closing advice, channels and safety line, over Telegram's 4096"
        )
    );
}

#[test]
fn a_tree_without_categories_is_reported_at_the_entry_menu() {
    let problems = problems_of("no_category");
    assert!(
        problems.ends_with(&format!(
            "{DIR}/no_category/tree.toml:3: node \"menu\": no category: mark the entry node of each symptom with category = true"
        )),
        "{problems}"
    );
    // With no category, no route has one to lead into.
    assert!(
        problems.contains(&format!(
            "{DIR}/base/routes.toml:17: node \"timeout\": a route must lead into one of the categories"
        )),
        "{problems}"
    );
}

#[test]
fn a_category_without_an_end_is_reported_at_its_flag() {
    assert_eq!(
        problems_of("category_without_end"),
        format!(
            "{DIR}/category_without_end/tree.toml:49: node \"reset\": a category must lead to an end by its answers, without going back to the entry menu"
        )
    );
}

#[test]
fn unknown_keys_are_refused() {
    assert_eq!(
        problems_of("unknown_field"),
        format!(
            "{DIR}/unknown_field/extra.toml:5: unknown field `colour`, expected one of `id`, `text`, `end`, `not_solved`, `final`, `brief`, `remind`, `assumes`, `category`, `button`"
        )
    );
}

#[test]
fn a_syntax_error_is_reported_without_follow_on_noise() {
    assert_eq!(
        problems_of("syntax_error"),
        format!("{DIR}/syntax_error/extra.toml:4: invalid basic string, expected `\"`")
    );
}

#[test]
fn a_ui_file_that_does_not_parse_is_reported_at_its_mistake_not_as_missing() {
    // Found by the loader's property in tests/properties.rs: a duplicated
    // line of ui.toml also drew "missing: …" for the file, with no line.
    assert_eq!(
        problems_of("ui_syntax_error"),
        format!("{DIR}/ui_syntax_error/ui.toml:5: duplicate key")
    );
}

#[test]
fn ids_are_limited_to_lowercase_digits_and_underscores() {
    assert_eq!(
        problems_of("bad_id"),
        [
            format!(
                "{DIR}/bad_id/extra.toml:2: node \"Extra Node\": id may hold only a-z, 0-9 and _"
            ),
            format!("{DIR}/bad_id/extra.toml:2: node \"Extra Node\": unreachable from \"menu\""),
        ]
        .join("\n")
    );
}

#[test]
fn only_the_summary_placeholder_is_allowed_in_node_texts() {
    assert_eq!(
        problems_of("unknown_placeholder"),
        [
            format!("{DIR}/unknown_placeholder/extra.toml:5: node \"extra\": text (zh) has unknown placeholder {{name}}"),
            format!("{DIR}/unknown_placeholder/extra.toml:5: node \"extra\": text (en) has unknown placeholder {{name}}"),
        ]
        .join("\n")
    );
}

#[test]
fn ui_texts_are_checked_for_missing_and_unknown_keys() {
    assert_eq!(
        problems_of("missing_ui_text"),
        [
            format!("{DIR}/missing_ui_text/ui.toml:2: text.help is missing"),
            format!("{DIR}/missing_ui_text/ui.toml:24: unknown key text.colour"),
        ]
        .join("\n")
    );
}

#[test]
fn every_problem_is_collected_not_just_the_first() {
    assert_eq!(
        problems_of("many_problems"),
        [
            format!("{DIR}/many_problems/extra.toml:3: node \"extra\": text is missing its en translation"),
            format!("{DIR}/many_problems/extra.toml:7: node \"extra\": button 1 goto \"nowhere\" names no node"),
            format!("{DIR}/many_problems/extra.toml:10: node \"limbo\": dead end: no buttons and no end = true"),
            format!("{DIR}/many_problems/extra.toml:10: node \"limbo\": unreachable from \"menu\""),
        ]
        .join("\n")
    );
}

#[test]
fn check_exits_2_and_prints_every_problem() {
    let out = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .args(["check", &format!("{DIR}/no_category")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DIALOGS_DIR", "")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The folder alone lacks ui.toml, routes.toml and extra.toml's node.
    assert!(
        stderr.contains(&format!("{DIR}/no_category/ui.toml: missing")),
        "{stderr}"
    );
    assert!(
        stderr.contains("tree.toml:20: node \"menu\": button 4 goto \"extra\" names no node"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{DIR}/no_category/routes.toml: missing")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn check_accepts_the_repository_dialogs() {
    let out = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .args(["check", "dialogs"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn router_data_is_checked_against_the_tree() {
    assert_eq!(
        problems_of("route_problems"),
        [
            format!("{DIR}/route_problems/routes.toml:3: routing: confident, candidates, margin and none_margin lie between 0 and 1, with candidates ≤ confident"),
            format!("{DIR}/route_problems/routes.toml:14: node \"nowhere\": route names no node"),
            format!("{DIR}/route_problems/routes.toml:20: node \"menu\": a route must lead into one of the categories"),
            format!("{DIR}/route_problems/routes.toml:22: node \"menu\": keywords needs at least one en entry"),
            format!("{DIR}/route_problems/routes.toml:29: other_subjects: \"!!\" leaves nothing to match once normalized"),
            format!("{DIR}/route_problems/routes.toml:29: other_subjects: \"核验码错误\" is read as \"验证码错误\" (normalize.synonyms)"),
            format!("{DIR}/route_problems/routes.toml:33: filing_anchors: \"核验码\" is read as \"验证码\" (normalize.synonyms)"),
        ]
        .join("\n")
    );
}

#[test]
fn other_subjects_without_filing_anchors_are_reported() {
    assert_eq!(
        problems_of("subjects_without_anchors"),
        format!(
            "{DIR}/subjects_without_anchors/routes.toml:41: other_subjects needs filing_anchors: without them a message that names another service beside the filing would be left alone"
        )
    );
}

#[test]
fn reminders_outside_the_window_and_broken_time_patterns_are_reported() {
    assert_eq!(
        problems_of("bad_reminders"),
        [
            format!(
                "{DIR}/bad_reminders/extra.toml:6: node \"extra\": remind = \"sometimes\" is neither \"window\" nor \"new_code\""
            ),
            format!(
                "{DIR}/bad_reminders/ui.toml:135: reminders.before_deadline_hours needs at least one value, each from 1 to below window_hours"
            ),
            format!(
                "{DIR}/bad_reminders/ui.toml:135: reminders.new_code_wait_minutes lies between 1 and 1440"
            ),
            format!(
                "{DIR}/bad_reminders/ui.toml:141: reminders.time_format (zh) \"%m-%d %Q\" is not a valid strftime pattern"
            ),
        ]
        .join("\n")
    );
}

#[test]
fn console_wordings_must_name_a_text_and_keep_its_placeholders() {
    assert_eq!(
        problems_of("bad_console"),
        [
            format!(
                "{DIR}/bad_console/ui.toml:144: unknown key console.nonsense: it must name a text of [text]"
            ),
            format!(
                "{DIR}/bad_console/ui.toml:145: console.unknown_command (zh) must contain {{command}}"
            ),
            format!(
                "{DIR}/bad_console/ui.toml:145: console.unknown_command (en) must contain {{command}}"
            ),
        ]
        .join("\n")
    );
}

#[test]
fn check_map_lists_every_node_with_its_kind_title_and_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .args([
            "--default-lang",
            "en",
            "check",
            "--map",
            &format!("{DIR}/base"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DIALOGS_DIR", "")
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    // The OK line, then one line per node.
    assert_eq!(lines.len(), 1 + base_tree().len(), "{stdout}");
    let line_of = |id: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}: {stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line_of("menu"),
        "menu entry Which one? → timeout, not_received, mismatch, reset, extra"
    );
    assert_eq!(
        line_of("timeout"),
        "timeout category Resubmit not solved → reset"
    );
    assert_eq!(line_of("extra"), "extra end Other not solved → menu");
}

#[test]
fn check_names_the_node_a_mistyped_goto_most_likely_meant() {
    let dir = crate::support::copy_of_dialogs("mistyped-goto");
    let file = dir.join("not_received.toml");
    let text = std::fs::read_to_string(&file).expect("the dialogue");
    let typo = text.replacen("goto = \"nr_resend\"", "goto = \"nr_resnd\"", 1);
    assert_ne!(typo, text);
    std::fs::write(&file, typo).expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .arg("check")
        .arg(&dir)
        .env("DIALOGS_DIR", "")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("goto \"nr_resnd\" names no node; did you mean \"nr_resend\"?"),
        "{stderr}"
    );
}

/// The dialogue's version names what was loaded, not where from: the
/// built-in dialogs and a folder holding the same files agree, and any
/// edit, however small, makes another.
#[test]
fn the_dialogue_version_follows_the_files_not_their_folder() {
    use icp_sms_doctor::tree::load::{embedded, load, read_dir};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let built_in = load(&embedded()).expect("the built-in dialogs load");
    let folder = load(&read_dir(&root.join("dialogs")).expect("dialogs/")).expect("they load");
    assert_eq!(built_in.version(), folder.version());
    assert_eq!(built_in.version().len(), 12);
    assert!(built_in.version().bytes().all(|b| b.is_ascii_hexdigit()));
    let mut edited = embedded();
    let ui = edited
        .iter_mut()
        .find(|s| s.path.ends_with("/ui.toml"))
        .expect("ui.toml");
    ui.text.push_str("\n# a comment\n");
    let edited = load(&edited).expect("still loads");
    assert_ne!(edited.version(), built_in.version());
}

#[test]
fn a_profile_without_a_language_is_refused() {
    assert_eq!(
        problems_of("provider_missing_language"),
        format!(
            "{DIR}/provider_missing_language/provider.toml:2: name is missing its en translation"
        )
    );
}

#[test]
fn a_placeholder_that_names_nothing_is_reported_at_its_line() {
    assert_eq!(
        problems_of("provider_unknown_placeholder"),
        [
            format!("{DIR}/provider_unknown_placeholder/extra.toml:7: node \"extra\": text (zh) has {{provider.fax}}, which names nothing; the profile gives {{provider.name}}, {{provider.console}}, {{provider.ticket}}, {{provider.hotline}}, {{provider.escalation}}, {{provider.hours}}, {{provider.reply_within}}"),
            format!("{DIR}/provider_unknown_placeholder/extra.toml:10: node \"extra\": text (en) has {{provder.fax}}, which names nothing; the profile gives {{provider.name}}, {{provider.console}}, {{provider.ticket}}, {{provider.hotline}}, {{provider.escalation}}, {{provider.hours}}, {{provider.reply_within}}"),
        ]
        .join("\n")
    );
}

#[test]
fn profile_addresses_are_https_only() {
    assert_eq!(
        problems_of("provider_http_url"),
        [
            format!("{DIR}/provider_http_url/provider.toml:2: console \"http://console.example.com/beian\" is not an https:// address"),
            format!("{DIR}/provider_http_url/provider.toml:3: ticket \"not an address\" is not an address: relative URL without a base"),
        ]
        .join("\n")
    );
}

#[test]
fn office_hours_and_reply_times_that_do_not_parse_are_refused() {
    assert_eq!(
        problems_of("provider_bad_hours"),
        [
            format!("{DIR}/provider_bad_hours/provider.toml:2: hours \"Mon-Fri 9-18\": \"9-18\" is not a window such as 09:00-18:00 (write e.g. \"Mon-Fri 09:00-18:00\")"),
            format!("{DIR}/provider_bad_hours/provider.toml:4: reply_within \"soon\" is not a time such as \"2h\", \"30m\" or \"1h30m\" (at most a week)"),
        ]
        .join("\n")
    );
}

#[test]
fn an_unknown_time_zone_is_refused() {
    assert_eq!(
        problems_of("provider_unknown_zone"),
        format!(
            "{DIR}/provider_unknown_zone/provider.toml:3: time_zone \"Asia/Beijing\" is not an IANA time zone such as \"Asia/Shanghai\""
        )
    );
}

#[test]
fn an_optional_field_cannot_stand_in_a_numbered_step() {
    // Its line goes when the profile leaves the field out: the steps
    // would skip a number.
    assert_eq!(
        problems_of("provider_optional_step"),
        [
            format!("{DIR}/provider_optional_step/extra.toml:7: node \"extra\": text (zh): {{provider.hotline}} may be left out of the profile, which drops its line; put it on a line of its own, not a numbered step"),
            format!("{DIR}/provider_optional_step/extra.toml:10: node \"extra\": text (en): {{provider.hotline}} may be left out of the profile, which drops its line; put it on a line of its own, not a numbered step"),
        ]
        .join("\n")
    );
}

#[test]
fn a_folder_without_a_profile_is_refused() {
    let sources: Vec<Source> = ["extra.toml", "routes.toml", "tree.toml", "ui.toml"]
        .iter()
        .map(|name| Source {
            path: format!("{DIR}/base/{name}"),
            text: std::fs::read_to_string(format!("{DIR}/base/{name}")).expect("a fixture"),
        })
        .collect();
    let report = load(&sources).expect_err("no profile").to_string();
    assert_eq!(
        report,
        format!(
            "{DIR}/base/provider.toml: missing: it names the provider the texts speak for (dialogs/providers/ holds examples)"
        )
    );
}

#[test]
fn optional_fields_left_out_drop_their_lines_and_given_ones_fill_them() {
    let tree = load_case("provider_fields").unwrap_or_else(|e| panic!("{e}"));
    let extra = tree.get("extra").unwrap();
    assert_eq!(
        tree.node(extra).text.get(Lang::En),
        "Provider B can help.\nConsole: https://console.example.com/beian\nHours: Mon–Fri 09:00–18:00 (Asia/Shanghai)\nAsk provider B."
    );
    assert_eq!(
        tree.node(extra).text.get(Lang::Zh),
        "接入商乙可以帮你。\n控制台：https://console.example.com/beian\n工作时间：周一至周五 09:00–18:00（Asia/Shanghai）\n问接入商乙。"
    );
}

/// A dialogs folder copied before profiles existed still loads, speaking
/// for "your access provider" as the built-in dialogue does (its version
/// is the built-in one's too); only a profile given and broken is refused.
#[test]
fn a_folder_from_before_profiles_gets_the_neutral_one() {
    use icp_sms_doctor::tree::load::{embedded, load, read_dir};
    let dir = crate::support::copy_of_dialogs("no-profile");
    std::fs::remove_file(dir.join("provider.toml")).expect("the copy's profile");
    let tree = load(&read_dir(&dir).expect("the folder is read")).expect("it loads");
    let built_in = load(&embedded()).expect("the built-in dialogs");
    assert_eq!(tree.version(), built_in.version());
    let id = tree.get("contact_provider").expect("contact_provider");
    assert!(
        tree.node(id)
            .text
            .get(Lang::En)
            .contains("your access provider"),
        "{}",
        tree.node(id).text.get(Lang::En)
    );
}

#[test]
fn canned_replies_with_a_bad_name_a_missing_language_an_unknown_field_or_too_long_are_refused() {
    let fields = "{provider.name}, {provider.console}, {provider.ticket}, {provider.hotline}, {provider.escalation}, {provider.hours}, {provider.reply_within}";
    assert_eq!(
        problems_of("canned_problems"),
        [
            format!("{DIR}/canned_problems/canned.toml:7: canned.Need-Code: a name may hold only a-z, 0-9, _ and -, at most 32 characters"),
            format!("{DIR}/canned_problems/canned.toml:11: canned.no_english is missing its en translation"),
            format!("{DIR}/canned_problems/canned.toml:14: canned.too_long (zh) is 3600 characters, over 3500"),
            format!("{DIR}/canned_problems/canned.toml:19: canned.fax (zh) has {{provider.fax}}, which names nothing; the profile gives {fields}"),
            format!("{DIR}/canned_problems/canned.toml:20: canned.fax (en) has {{provider.fax}}, which names nothing; the profile gives {fields}"),
        ]
        .join("\n")
    );
}
