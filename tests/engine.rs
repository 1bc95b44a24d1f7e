//! The engine's behaviour on the small fixture tree: moving, going back,
//! starting over, and every kind of input it did not ask for.

use icp_sms_doctor::callback::Action;
use icp_sms_doctor::engine::{Command, Event, MAX_HISTORY, Session, step};
use icp_sms_doctor::lang::Lang;

use crate::support::{Chat, base_tree};

fn labels(chat: &Chat) -> Vec<Vec<String>> {
    chat.last
        .last()
        .map(|r| {
            r.buttons
                .iter()
                .map(|row| row.iter().map(|b| b.label.clone()).collect())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn diagnose_shows_the_entry_menu_without_back_or_start_over() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    assert_eq!(chat.last.len(), 1);
    assert_eq!(chat.at(), Some("menu"));
    assert_eq!(chat.text(), "Which one?");
    assert_eq!(
        labels(&chat),
        [
            ["Timeout"],
            ["Not received"],
            ["Mismatch"],
            ["Reset"],
            ["Other"]
        ]
    );
}

#[test]
fn an_answer_leads_to_its_node_and_an_end_offers_solved_not_solved_back_and_start_over() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    assert_eq!(chat.at(), Some("timeout"));
    assert_eq!(chat.text(), "Resubmit\n\nNext time\n\nChannels\n\nSafety");
    assert_eq!(
        labels(&chat),
        [["Solved", "Not solved"], ["Back", "Restart"]]
    );
    assert_eq!(chat.session.node.as_deref(), Some("timeout"));
    assert_eq!(chat.session.history, ["menu"]);
}

#[test]
fn back_returns_to_the_previous_step_one_at_a_time() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.tap("Not solved");
    assert_eq!(chat.at(), Some("reset"));
    chat.tap("Back");
    assert_eq!(chat.at(), Some("timeout"));
    chat.tap("Back");
    assert_eq!(chat.at(), Some("menu"));
    assert!(chat.session.history.is_empty());
}

#[test]
fn back_from_a_deep_link_with_no_history_returns_to_the_entry_menu() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/start mismatch");
    assert_eq!(chat.at(), Some("mismatch"));
    chat.tap("Back");
    assert_eq!(chat.at(), Some("menu"));
}

#[test]
fn start_over_clears_the_history_and_shows_the_entry_menu() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.tap("Not solved");
    chat.tap("Restart");
    assert_eq!(chat.at(), Some("menu"));
    assert_eq!(chat.session.node.as_deref(), Some("menu"));
    assert!(chat.session.history.is_empty());
}

#[test]
fn reset_clears_the_conversation_but_keeps_the_language() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.say("/reset");
    assert_eq!(chat.text(), "Reset");
    assert_eq!(chat.session, Session::new(Lang::En));
}

#[test]
fn solved_ends_the_conversation_with_the_closing_text() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.tap("Solved");
    assert_eq!(chat.text(), "Solved");
    assert!(chat.last[0].buttons.is_empty());
    assert_eq!(chat.session, Session::new(Lang::En));
}

#[test]
fn unknown_button_data_says_the_menu_is_out_of_date_and_shows_the_current_one() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    let before = chat.session.clone();
    // A node an older tree had and this one does not.
    chat.press("g:timeout:old_node");
    assert_eq!(chat.last.len(), 1);
    assert_eq!(chat.at(), Some("timeout"));
    assert!(
        chat.text().starts_with("Out of date\n\nResubmit"),
        "{}",
        chat.text()
    );
    assert_eq!(chat.session, before);
}

#[test]
fn tampered_button_data_gets_the_same_calm_answer() {
    let tree = base_tree();
    for data in [
        "",
        "garbage",
        "g:menu",
        "g:menu:timeout:x",
        "g:MENU:timeout",
        "s:",
        "l:fr",
        "b:menu\u{0}",
        &"g:menu:".repeat(20),
    ] {
        let mut chat = Chat::new(&tree, Lang::En);
        chat.say("/diagnose");
        let before = chat.session.clone();
        chat.press(data);
        assert!(chat.text().starts_with("Out of date"), "{data:?}");
        assert_eq!(chat.at(), Some("menu"), "{data:?}");
        assert_eq!(chat.session, before, "{data:?}");
    }
}

#[test]
fn an_edge_the_tree_does_not_have_is_refused() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    // Both nodes exist, but timeout's "not solved" leads to reset, and the
    // entry menu has no button to itself.
    for data in ["g:timeout:mismatch", "g:menu:menu", "s:menu", "b:menu"] {
        chat.press(data);
        assert!(chat.text().starts_with("Out of date"), "{data}");
        assert_eq!(chat.session.node.as_deref(), Some("menu"), "{data}");
    }
}

#[test]
fn back_from_a_menu_that_is_no_longer_current_is_out_of_date() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.tap("Not solved");
    chat.press("b:timeout");
    assert!(chat.text().starts_with("Out of date"));
    assert_eq!(chat.at(), Some("reset"));
}

#[test]
fn a_button_of_an_older_message_retraces_the_history_to_it() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.tap("Not solved");
    // The first menu's "Mismatch" button, still on screen above.
    chat.press("g:menu:mismatch");
    assert_eq!(chat.at(), Some("mismatch"));
    assert_eq!(chat.session.history, ["menu"]);
}

#[test]
fn a_button_pressed_after_reset_still_works() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.say("/reset");
    chat.press("g:menu:not_received");
    assert_eq!(chat.at(), Some("not_received"));
    assert_eq!(chat.session.history, ["menu"]);
}

#[test]
fn free_text_points_to_the_menu_and_keeps_the_position() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    chat.say("what a lovely day");
    assert_eq!(chat.last.len(), 1);
    assert!(chat.text().starts_with("Use the menu\n\nResubmit"));
    assert_eq!(chat.at(), Some("timeout"));
    assert_eq!(chat.session.history, ["menu"]);
}

#[test]
fn free_text_before_any_menu_shows_the_entry_menu() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::Zh);
    chat.say("今天天气真好");
    assert!(
        chat.text().starts_with("请用菜单\n\n哪种情况？"),
        "{}",
        chat.text()
    );
    assert_eq!(chat.at(), Some("menu"));
}

#[test]
fn an_unknown_command_is_named_in_the_answer_and_changes_nothing() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    let before = chat.session.clone();
    chat.say("/frobnicate now");
    assert_eq!(chat.text(), "Unknown /frobnicate");
    assert_eq!(chat.session, before);
}

#[test]
fn a_very_long_unknown_command_is_echoed_shortened() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    let long = format!("/{}", "x".repeat(10_000));
    chat.say(&long);
    assert_eq!(chat.text(), format!("Unknown /{}", "x".repeat(32)));
}

#[test]
fn empty_input_gets_its_own_answer() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    for line in ["", "   ", "\t\n"] {
        chat.say(line);
        assert_eq!(chat.text(), "Empty", "{line:?}");
        assert_eq!(chat.session, Session::new(Lang::En));
    }
}

#[test]
fn a_100_kb_message_is_refused_politely() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    let before = chat.session.clone();
    chat.say(&"短".repeat(100 * 1024 / 3));
    assert_eq!(chat.text(), "Over 4096");
    assert_eq!(chat.session, before);
}

#[test]
fn lang_with_a_code_switches_and_shows_the_current_step_again() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::Zh);
    chat.say("/diagnose");
    chat.tap("超时");
    chat.say("/lang en");
    assert_eq!(chat.session.lang, Lang::En);
    assert_eq!(chat.at(), Some("timeout"));
    assert!(chat.text().starts_with("English\n\nResubmit"));
    assert_eq!(labels(&chat)[1], ["Back", "Restart"]);
}

#[test]
fn lang_without_a_valid_code_offers_both_languages() {
    let tree = base_tree();
    for line in ["/lang", "/lang fr"] {
        let mut chat = Chat::new(&tree, Lang::Zh);
        chat.say(line);
        assert_eq!(chat.text(), "选择语言");
        assert_eq!(labels(&chat), [["中文", "English"]]);
        chat.tap("English");
        assert_eq!(chat.session.lang, Lang::En);
        assert!(chat.text().starts_with("English\n\nWhich one?"));
    }
}

#[test]
fn start_greets_and_shows_the_entry_menu() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/start");
    assert_eq!(chat.last.len(), 2);
    assert_eq!(chat.last[0].text, "Welcome");
    assert_eq!(chat.at(), Some("menu"));
}

#[test]
fn start_with_a_deep_link_opens_that_node_and_ignores_a_bad_one() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/start not_received");
    assert_eq!(chat.last.len(), 1);
    assert_eq!(chat.at(), Some("not_received"));
    chat.say("/start no_such_node");
    assert_eq!(chat.last[0].text, "Welcome");
    assert_eq!(chat.at(), Some("menu"));
}

#[test]
fn help_answers_and_changes_nothing() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    let before = chat.session.clone();
    chat.say("/help");
    assert_eq!(chat.text(), "Help");
    assert_eq!(chat.session, before);
}

#[test]
fn the_summary_lists_the_answers_chosen_on_the_way() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Not received");
    chat.tap("Not solved");
    assert_eq!(chat.at(), Some("mismatch"));
    assert!(
        chat.text().starts_with(
            "Compare the details - Not received\n- Not solved\n\nNext time\n\nChannels"
        ),
        "{}",
        chat.text()
    );
}

#[test]
fn the_summary_says_so_when_nothing_was_chosen() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::Zh);
    chat.say("/start mismatch");
    assert!(
        chat.text().starts_with("核对信息 无\n\n下次\n\n渠道"),
        "{}",
        chat.text()
    );
}

#[test]
fn a_session_at_a_node_an_edited_tree_dropped_starts_from_the_menu() {
    let tree = base_tree();
    let session = Session {
        node: Some("removed_node".into()),
        lang: Lang::En,
        history: vec!["menu".into(), "gone_too".into()],
        picks: vec![0, 0],
        asking: None,
        conv: 0,
    };
    let (session, replies) = step(&tree, session, Event::Text("hello"));
    assert_eq!(replies[0].node.as_deref(), Some("menu"));
    assert_eq!(session.node.as_deref(), Some("menu"));
    assert!(session.history.is_empty());
    let (_, replies) = step(&tree, session, Event::Command(Command::Diagnose));
    assert_eq!(replies[0].node.as_deref(), Some("menu"));
}

#[test]
fn history_stays_bounded_through_loops() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    for _ in 0..100 {
        chat.tap("Timeout");
        chat.tap("Not solved"); // to reset
        chat.tap("Not solved"); // to the entry menu
    }
    chat.tap("Timeout");
    chat.tap("Not solved");
    assert_eq!(chat.at(), Some("reset"));
    assert_eq!(chat.session.history.len(), MAX_HISTORY);
    chat.tap("Back");
    assert_eq!(chat.at(), Some("timeout"));
}

#[test]
fn a_session_survives_serialization_unchanged() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.say("/diagnose");
    chat.tap("Timeout");
    let json = serde_json::to_string(&chat.session).expect("serializes");
    let back: Session = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, chat.session);
}

#[test]
fn text_in_a_group_with_personal_data_asks_for_it_to_be_deleted() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.send(Event::GroupText("code 123456 never arrived"));
    assert_eq!(chat.last[0].text, "Please delete it");
    assert_eq!(chat.last.len(), 2);
}

#[test]
fn a_clear_description_is_routed_straight_to_its_branch() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::Zh);
    chat.say("短信一直收不到");
    assert_eq!(chat.at(), Some("not_received"));
    assert!(
        chat.text().starts_with("像是：没收到\n\n检查信号"),
        "{}",
        chat.text()
    );
    assert_eq!(labels(&chat).last().unwrap(), &["不是这个"]);
}

#[test]
fn a_candidate_button_opens_its_node_and_a_tampered_one_is_out_of_date() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::En);
    chat.press("j:mismatch");
    assert_eq!(chat.at(), Some("mismatch"));
    assert!(chat.session.history.is_empty());
    chat.press("j:no_such_node");
    assert!(chat.text().starts_with("Out of date"));
    assert_eq!(chat.at(), Some("mismatch"));
}

#[test]
fn a_vague_description_gets_candidates_to_choose_from() {
    let tree = base_tree();
    let mut chat = Chat::new(&tree, Lang::Zh);
    // "一直" is the not-received example's, "超过" the timeout one's: too
    // little to be sure of either.
    chat.say("一直超过");
    assert_eq!(chat.text(), "是哪个？");
    assert_eq!(chat.last[0].node, None);
    let offered = labels(&chat);
    assert_eq!(offered.last().map(|row| row[0].as_str()), Some("不是这个"));
    assert!(offered.iter().any(|row| row[0] == "超时"), "{offered:?}");
    chat.tap("超时");
    assert_eq!(chat.at(), Some("timeout"));
}

#[test]
fn the_arrival_question_opens_and_closes_and_scheduling_is_left_to_the_bot() {
    use icp_sms_doctor::tree::UiText;
    let tree = crate::support::real_tree();
    let ui = tree.ui();
    let open = Event::Command(Command::Start(Some("to_new_sms")));
    let (session, _) = step(&tree, Session::new(Lang::En), open);
    let (session, replies) = step(
        &tree,
        session,
        Event::Press(Action::parse("r:to_new_sms").as_ref()),
    );
    assert_eq!(session.asking.as_deref(), Some("to_new_sms"));
    assert_eq!(replies[0].text, ui.text(UiText::RemindAsk, Lang::En));
    // Back from the question shows the menu it replaced, question closed.
    let (session, replies) = step(
        &tree,
        session,
        Event::Press(Action::parse("t:to_new_sms").as_ref()),
    );
    assert_eq!(session.asking, None);
    assert_eq!(replies[0].node.as_deref(), Some("to_new_sms"));
    // Setting reminders is the conversation's, with the store: reaching
    // the engine, such data is out of date.
    let (_, replies) = step(&tree, session, Event::Press(Action::parse("a:2").as_ref()));
    assert!(
        replies[0]
            .text
            .starts_with(ui.text(UiText::MenuOutdated, Lang::En))
    );
    // A reminder asked of a node that offers none is made-up data.
    let (_, replies) = step(
        &tree,
        Session::new(Lang::En),
        Event::Press(Action::parse("r:timeout").as_ref()),
    );
    assert!(
        replies[0]
            .text
            .starts_with(ui.text(UiText::MenuOutdated, Lang::En))
    );
}
