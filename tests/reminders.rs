//! Reminders and session expiry end to end: the real bot and scheduler
//! against the fake Bot API, on a clock the tests move by hand.

use std::sync::OnceLock;

use icp_sms_doctor::app::Settings;
use icp_sms_doctor::clock::{Clock, Instant};
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::markup;
use icp_sms_doctor::reminders::{self, DEFAULT_TIMEZONE};
use icp_sms_doctor::store::Store;
use icp_sms_doctor::tree::{Tree, UiButton, UiText};
use serde_json::{Value, json};

use crate::bot::{ALICE, BOB, EVE, GROUP};
use crate::fake_api::{FakeApi, Person, supergroup};
use crate::faulty::{Faulty, Op};
use crate::scene::{Scene, data_of, db_path, labels, memory, shows, text_of, within};
use crate::support::real_tree;

/// 2026-11-29 10:40 in Shanghai (02:40 UTC).
pub(crate) const T0: Instant = 1_795_920_000;
pub(crate) const HOUR: i64 = 3600;

/// The real dialogue, loaded once for all the lookups of texts.
pub(crate) fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(real_tree)
}

pub(crate) fn ui_text(which: UiText) -> String {
    tree().ui().text(which, Lang::Zh).to_string()
}

/// A time as the bot shows it, in Chinese and the default time zone.
fn time(at: Instant) -> String {
    reminders::format_time(tree(), Lang::Zh, DEFAULT_TIMEZONE, at)
}

/// A deadline as the bot shows it: the time and its zone.
fn deadline(at: Instant) -> String {
    reminders::format_deadline(tree(), Lang::Zh, DEFAULT_TIMEZONE, at)
}

/// A time left as the bot shows it.
fn left(secs: i64) -> String {
    reminders::format_left(tree(), Lang::Zh, 0, secs)
}

/// The first plan's line in a list for a reminder due at `due`.
fn reminder_line(due: Instant, until: Instant) -> String {
    let line = ui_text(UiText::ReminderLine)
        .replace("{number}", "1")
        .replace("{time}", &time(due))
        .replace("{deadline}", &time(until));
    markup::to_html(&line)
}

fn ui_button(which: UiButton) -> String {
    tree().ui().button(which, Lang::Zh).to_string()
}

/// The first line of a text, to recognise its messages by.
fn heading(which: UiText) -> String {
    let text = ui_text(which);
    let line = text.trim().lines().next().unwrap_or_default();
    line.split('{').next().unwrap_or_default().to_string()
}

/// The messages the bot sent to `chat` that start with `which`'s heading.
fn sent_with(api: &FakeApi, chat: i64, which: UiText) -> Vec<Value> {
    let heading = markup::to_html(&heading(which));
    api.calls_of("sendMessage")
        .into_iter()
        .map(|c| c.body)
        .filter(|b| b["chat_id"] == json!(chat) && text_of(b).contains(&heading))
        .collect()
}

pub(crate) fn id_of(message: &Value) -> i64 {
    message["message_id"].as_i64().expect("a message id")
}

/// Opens a node by deep link in a private chat and returns its menu.
pub(crate) async fn open_privately(api: &FakeApi, person: &Person, node: &str) -> Value {
    let before = api.calls_of("sendMessage").len();
    api.send_as(
        person,
        &person.private_chat(),
        &format!("/start {node}"),
        None,
    );
    api.wait_for("sendMessage", before + 1).await;
    api.last_bot_message(person.id as i64)
}

/// Presses a button and waits for the bot to answer the press.
async fn press(api: &FakeApi, person: &Person, message: &Value, data: &str) {
    let before = api.calls_of("answerCallbackQuery").len();
    api.press(person, message, data);
    api.wait_for("answerCallbackQuery", before + 1).await;
}

/// Presses and waits until the bot has also sent `sends` new messages and
/// made `edits` edits.
async fn press_then(
    api: &FakeApi,
    person: &Person,
    message: &Value,
    data: &str,
    sends: usize,
    edits: usize,
) {
    let (s, e) = (
        api.calls_of("sendMessage").len(),
        api.calls_of("editMessageText").len(),
    );
    api.press(person, message, data);
    api.wait_until(|calls| {
        let count = |m: &str| calls.iter().filter(|c| c.method == m).count();
        count("sendmessage") >= s + sends && count("editmessagetext") >= e + edits
    })
    .await;
}

/// Opens a node by deep link in a private chat and asks for a reminder
/// there; returns the menu message, which now holds the arrival question.
async fn ask_arrival_privately(api: &FakeApi, person: &Person, node: &str) -> Value {
    let menu = open_privately(api, person, node).await;
    press_then(api, person, &menu, &format!("r:{node}"), 0, 1).await;
    api.message(person.id as i64, id_of(&menu))
}

/// Sets window reminders from a private `to_new_sms` menu for an SMS that
/// arrived `hours` ago; returns the confirmation.
pub(crate) async fn remind_privately(api: &FakeApi, person: &Person, hours: u32) -> Value {
    let chat = person.id as i64;
    let question = ask_arrival_privately(api, person, "to_new_sms").await;
    press_then(api, person, &question, &format!("a:{hours}"), 1, 1).await;
    api.last_bot_message(chat)
}

#[tokio::test]
async fn scheduling_shows_the_deadline_and_time_left_and_reminds_before_it_closes() {
    within(async {
        let scene = Scene::with(memory(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        let menu = open_privately(&api, &ALICE, "to_new_sms").await;
        assert!(labels(&menu).contains(&ui_button(UiButton::RemindWindow)));
        press_then(&api, &ALICE, &menu, "r:to_new_sms", 0, 1).await;
        let question = api.message(chat, id_of(&menu));
        assert_eq!(text_of(&question), ui_text(UiText::RemindAsk));
        let ago = |hours: &str| ui_button(UiButton::ArrivedAgo).replace("{hours}", hours);
        assert_eq!(
            labels(&question),
            [
                ui_button(UiButton::ArrivedNow),
                ago("2"),
                ago("6"),
                ago("12"),
                ui_button(UiButton::Back),
            ]
        );
        // Two hours ago: the window closes at 08:40 tomorrow, 22 h from now.
        press_then(&api, &ALICE, &question, "a:2", 1, 1).await;
        let restored = api.message(chat, id_of(&menu));
        assert!(shows(tree(), &restored, "to_new_sms", Lang::Zh));
        let confirmation = api.last_bot_message(chat);
        let text = text_of(&confirmation);
        assert!(
            text.contains(&format!("<b>{}</b>", deadline(T0 + 22 * HOUR)))
                && text.contains(&left(22 * HOUR)),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "· {}\n· {}",
                time(T0 + 10 * HOUR),
                time(T0 + 20 * HOUR)
            )),
            "{text}"
        );
        assert_eq!(
            labels(&confirmation),
            [
                ui_button(UiButton::Verified),
                ui_button(UiButton::CancelReminders)
            ]
        );

        // Nothing falls before its time.
        scene.advance(10 * HOUR - 60).await;
        assert!(sent_with(&api, chat, UiText::Reminder).is_empty());
        scene.advance(60).await;
        let first = sent_with(&api, chat, UiText::Reminder);
        assert_eq!(first.len(), 1);
        assert!(text_of(&first[0]).contains(&left(12 * HOUR)));
        assert!(text_of(&first[0]).contains("https://beian.miit.gov.cn/"));
        assert!(!text_of(&first[0]).contains(&ui_text(UiText::ReminderLate)));
        scene.advance(10 * HOUR).await;
        let both = sent_with(&api, chat, UiText::Reminder);
        assert_eq!(both.len(), 2);
        assert!(text_of(&both[1]).contains(&left(2 * HOUR)));
        // Long after, still two.
        scene.advance(5 * HOUR).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 2);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_typed_time_answers_the_question_and_nonsense_asks_again() {
    within(async {
        let scene = Scene::with(memory(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        ask_arrival_privately(&api, &ALICE, "nr_found_fresh").await;
        api.send_as(&ALICE, &ALICE.private_chat(), "around 9-ish", None);
        api.wait_for("sendMessage", 2).await;
        let again = api.last_bot_message(chat);
        assert_eq!(text_of(&again), ui_text(UiText::TimeUnreadable));
        assert!(labels(&again).contains(&ui_button(UiButton::ArrivedNow)));
        api.send_as(&ALICE, &ALICE.private_chat(), "今天上午9点", None);
        api.wait_for("sendMessage", 3).await;
        let text = text_of(&api.last_bot_message(chat)).to_string();
        assert!(
            // 09:00 today: the window closes at 09:00 tomorrow.
            text.contains(&deadline(T0 + 22 * HOUR + 20 * 60))
                && text.contains(&left(22 * HOUR + 20 * 60)),
            "{text}"
        );
        // An arrival more than a day ago: the window has closed already,
        // and the way on is the timeout branch.
        ask_arrival_privately(&api, &ALICE, "to_new_sms").await;
        api.send_as(&ALICE, &ALICE.private_chat(), "前天上午9点", None);
        api.wait_for("sendMessage", 5).await;
        let closed = api.last_bot_message(chat);
        assert!(text_of(&closed).contains(&deadline(T0 - 24 * HOUR - 100 * 60)));
        assert_eq!(
            closed["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            "j:timeout"
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reminders_set_before_a_restart_are_sent_once_after_it() {
    within(async {
        let path = db_path("reminders-restart");
        let store: Store = Store::sqlite(&path).expect("a database");
        let mut scene = Scene::with(store, Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        remind_privately(&api, &ALICE, 0).await;
        scene.shut_down().await;

        let store: Store = Store::sqlite(&path).expect("a database");
        scene.relaunch(store.clone()).await;
        scene.settle(T0).await;
        scene.advance(12 * HOUR).await;
        let chat = ALICE.id as i64;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 1);
        scene.advance(30).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 1);
        scene.advance(10 * HOUR).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 2);
        assert_eq!(store.reminder_count().await.expect("counts"), 0);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_does_not_send_twice() {
    within(async {
        let path = db_path("reminders-crash");
        let sqlite: Store = Store::sqlite(&path).expect("a database");
        // Recording a sent reminder fails, and the process dies right then.
        let faulty = Faulty::new(sqlite, |op| op == Op::Finish);
        let mut scene = Scene::with(faulty.store(), Clock::manual(T0), Settings::default()).await;
        let (api, clock) = (scene.api.clone(), scene.clock.clone());
        remind_privately(&api, &ALICE, 0).await;
        clock.advance(12 * HOUR);
        faulty.wait_failures(1).await;
        let chat = ALICE.id as i64;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 1);
        scene.crash();

        let sqlite: Store = Store::sqlite(&path).expect("a database");
        scene.relaunch(sqlite.clone()).await;
        scene.advance(60).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 1);
        // The plan's other reminder is untouched and still comes, once.
        scene.advance(10 * HOUR).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 2);
        scene.advance(HOUR).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 2);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_reminder_due_while_down_comes_late_and_a_closed_window_gets_one_note() {
    within(async {
        let path = db_path("reminders-late");
        let open = || -> Store { Store::sqlite(&path).expect("a database") };
        let mut scene = Scene::with(open(), Clock::manual(T0), Settings::default()).await;
        let (api, clock) = (scene.api.clone(), scene.clock.clone());
        remind_privately(&api, &ALICE, 0).await;
        remind_privately(&api, &BOB, 0).await;
        scene.shut_down().await;

        // Down from T0 to T0+13h: Alice's first reminder is late, and sent.
        clock.advance(13 * HOUR);
        scene.relaunch(open()).await;
        scene.settle(clock.now()).await;
        let alice = ALICE.id as i64;
        let late = sent_with(&api, alice, UiText::ReminderLate);
        assert_eq!(late.len(), 1);
        assert!(text_of(&late[0]).contains(&left(11 * HOUR)));
        scene.shut_down().await;

        // Down past the deadline: both reminders still owed are replaced by
        // one note each, pointing to the timeout branch.
        clock.advance(12 * HOUR);
        let store = open();
        scene.relaunch(store.clone()).await;
        scene.settle(clock.now()).await;
        for person in [&ALICE, &BOB] {
            let chat = person.id as i64;
            let notes = sent_with(&api, chat, UiText::WindowClosed);
            assert_eq!(notes.len(), 1, "{}", person.name);
            assert_eq!(
                notes[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
                "j:timeout"
            );
        }
        assert_eq!(
            sent_with(&api, BOB.id as i64, UiText::ReminderLate).len(),
            1
        );
        assert_eq!(store.reminder_count().await.expect("counts"), 0);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reminders_are_listed_and_cancelled_and_verified_stops_the_rest() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        let private = ALICE.private_chat();
        api.send_as(&ALICE, &private, "/reminders", None);
        api.wait_for("sendMessage", 1).await;
        assert_eq!(
            text_of(&api.last_bot_message(chat)),
            ui_text(UiText::RemindersNone)
        );

        remind_privately(&api, &ALICE, 0).await;
        let sends = api.calls_of("sendMessage").len();
        api.send_as(&ALICE, &private, "/reminders", None);
        api.wait_for("sendMessage", sends + 1).await;
        let list = api.last_bot_message(chat);
        // One plan, numbered 1, with its two reminders.
        assert!(
            text_of(&list).contains(&reminder_line(T0 + 12 * HOUR, T0 + 24 * HOUR)),
            "{}",
            text_of(&list)
        );
        assert!(text_of(&list).contains(&reminder_line(T0 + 22 * HOUR, T0 + 24 * HOUR)));
        let cancel = ui_button(UiButton::CancelNumbered).replace("{number}", "1");
        assert_eq!(labels(&list), std::slice::from_ref(&cancel));
        press_then(&api, &ALICE, &list, &data_of(&list, &cancel), 0, 1).await;
        assert_eq!(
            text_of(&api.message(chat, id_of(&list))),
            ui_text(UiText::RemindersCancelled)
        );
        scene.advance(23 * HOUR).await;
        assert!(sent_with(&api, chat, UiText::Reminder).is_empty());

        // "Done — verified" on the first reminder cancels the second.
        remind_privately(&api, &ALICE, 0).await;
        scene.advance(12 * HOUR).await;
        let reminder = api.last_bot_message(chat);
        assert!(text_of(&reminder).contains(&markup::to_html(&heading(UiText::Reminder))));
        let verified = data_of(&reminder, &ui_button(UiButton::Verified));
        press_then(&api, &ALICE, &reminder, &verified, 0, 1).await;
        assert_eq!(
            text_of(&api.message(chat, id_of(&reminder))),
            ui_text(UiText::Verified)
        );
        scene.advance(12 * HOUR).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 1);
        assert_eq!(store.reminder_count().await.expect("counts"), 0);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reset_asks_whether_to_keep_pending_reminders() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        let private = ALICE.private_chat();
        remind_privately(&api, &ALICE, 0).await;
        let sends = api.calls_of("sendMessage").len();
        api.send_as(&ALICE, &private, "/reset", None);
        api.wait_for("sendMessage", sends + 1).await;
        let ask = api.last_bot_message(chat);
        assert!(text_of(&ask).contains(&ui_text(UiText::ResetKeepAsk).replace("{count}", "2")));
        assert_eq!(
            labels(&ask),
            [
                ui_button(UiButton::KeepReminders),
                ui_button(UiButton::DropReminders)
            ]
        );
        press_then(&api, &ALICE, &ask, "k", 0, 1).await;
        assert_eq!(
            store
                .pending_reminders(Some(chat), ALICE.id)
                .await
                .expect("list")
                .len(),
            2
        );

        api.send_as(&ALICE, &private, "/reset", None);
        api.wait_for("sendMessage", sends + 2).await;
        let ask = api.last_bot_message(chat);
        press_then(&api, &ALICE, &ask, "d", 0, 1).await;
        assert_eq!(
            text_of(&api.message(chat, id_of(&ask))),
            ui_text(UiText::RemindersCancelled)
        );
        assert!(
            store
                .pending_reminders(Some(chat), ALICE.id)
                .await
                .expect("list")
                .is_empty()
        );
        // With nothing pending, /reset just resets.
        api.send_as(&ALICE, &private, "/reset", None);
        api.wait_for("sendMessage", sends + 3).await;
        assert_eq!(
            text_of(&api.last_bot_message(chat)),
            ui_text(UiText::ResetDone)
        );
        scene.stop().await;
    })
    .await;
}

/// Walks a member through the group menus to window reminders set now.
async fn remind_in_group(api: &FakeApi, person: &Person) {
    let group = supergroup(GROUP, false);
    let sends = api.calls_of("sendMessage").len();
    api.send_as(person, &group, "/diagnose", None);
    api.wait_for("sendMessage", sends + 1).await;
    let menu_id = id_of(&api.last_bot_message(GROUP));
    for data in [
        "g:menu:timeout",
        "g:timeout:to_new_sms",
        "r:to_new_sms",
        "a:0",
    ] {
        let menu = api.message(GROUP, menu_id);
        let sends = usize::from(data == "a:0");
        press_then(api, person, &menu, data, sends, 1).await;
    }
}

#[tokio::test]
async fn reminders_go_privately_when_possible_and_otherwise_to_the_group_with_a_mention() {
    within(async {
        let scene = Scene::with(memory(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        // Alice has started the bot privately; Bob never has.
        open_privately(&api, &ALICE, "menu").await;
        remind_in_group(&api, &ALICE).await;
        remind_in_group(&api, &BOB).await;
        scene.advance(12 * HOUR).await;

        assert_eq!(sent_with(&api, ALICE.id as i64, UiText::Reminder).len(), 1);
        let in_group = api
            .bot_messages(GROUP)
            .into_iter()
            .filter(|m| text_of(m).contains(&markup::to_html(&heading(UiText::Reminder))))
            .collect::<Vec<_>>();
        assert_eq!(in_group.len(), 1);
        let bobs = &in_group[0];
        assert!(
            text_of(bobs).starts_with(&format!("<a href=\"tg://user?id={}\">Bob</a>\n", BOB.id)),
            "{}",
            text_of(bobs)
        );
        // Only Bob may cancel his reminders.
        let cancel = data_of(bobs, &ui_button(UiButton::CancelReminders));
        press(&api, &EVE, bobs, &cancel).await;
        let answers = api.calls_of("answerCallbackQuery");
        assert_eq!(answers.last().expect("an answer").body["show_alert"], true);
        press_then(&api, &BOB, bobs, &cancel, 0, 1).await;
        assert_eq!(
            text_of(&api.message(GROUP, id_of(bobs))),
            ui_text(UiText::RemindersCancelled)
        );
        scene.advance(10 * HOUR).await;
        assert_eq!(sent_with(&api, GROUP, UiText::Reminder).len(), 1);
        assert_eq!(sent_with(&api, ALICE.id as i64, UiText::Reminder).len(), 2);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_person_who_blocked_the_bot_is_reminded_in_the_group_instead() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        open_privately(&api, &ALICE, "menu").await;
        remind_in_group(&api, &ALICE).await;
        api.fail_next(
            "sendMessage",
            axum::http::StatusCode::FORBIDDEN,
            json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
        );
        scene.advance(12 * HOUR).await;
        let in_group = sent_with(&api, GROUP, UiText::Reminder);
        assert_eq!(in_group.len(), 1);
        assert!(text_of(&in_group[0]).contains(&format!("tg://user?id={}", ALICE.id)));
        assert!(!store.has_private_chat(ALICE.id).await.expect("a lookup"));
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_new_code_reminder_comes_after_the_wait_and_leads_to_window_reminders() {
    within(async {
        let scene = Scene::with(memory(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        let menu = open_privately(&api, &ALICE, "to_wait_sms").await;
        assert!(labels(&menu).contains(&ui_button(UiButton::RemindNewCode)));
        press_then(&api, &ALICE, &menu, "w:to_wait_sms", 1, 0).await;
        let set = api.last_bot_message(chat);
        assert!(
            text_of(&set).contains(&time(T0 + HOUR)),
            "{}",
            text_of(&set)
        );
        scene.advance(HOUR).await;
        let reminder = api.last_bot_message(chat);
        assert!(text_of(&reminder).contains(&markup::to_html(&heading(UiText::NewCodeReminder))));
        let came = data_of(&reminder, &ui_button(UiButton::CodeArrived));
        press_then(&api, &ALICE, &reminder, &came, 0, 1).await;
        let text = text_of(&api.message(chat, id_of(&reminder))).to_string();
        assert!(text.contains(&deadline(T0 + 25 * HOUR)), "{text}");
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_store_down_at_due_time_delays_a_reminder_but_does_not_lose_it() {
    within(async {
        let faulty = Faulty::new(memory(), |_| false);
        let scene = Scene::with(faulty.store(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        remind_privately(&api, &ALICE, 0).await;
        faulty.set_rule(|op| op.user().is_none());
        scene.advance(12 * HOUR).await;
        assert!(faulty.failures() > 0);
        let chat = ALICE.id as i64;
        assert!(sent_with(&api, chat, UiText::Reminder).is_empty());
        faulty.set_rule(|_| false);
        scene.advance(30).await;
        let sent = sent_with(&api, chat, UiText::Reminder);
        assert_eq!(sent.len(), 1);
        // Thirty seconds late is not worth calling late.
        assert!(!text_of(&sent[0]).contains(&ui_text(UiText::ReminderLate)));
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_time_typed_in_a_group_as_a_reply_answers_the_question() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        api.send_as(&BOB, &group, "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let menu_id = id_of(&api.last_bot_message(GROUP));
        for data in ["g:menu:timeout", "g:timeout:to_new_sms", "r:to_new_sms"] {
            let menu = api.message(GROUP, menu_id);
            press_then(&api, &BOB, &menu, data, 0, 1).await;
        }
        let question = api.message(GROUP, menu_id);
        assert_eq!(text_of(&question), ui_text(UiText::RemindAsk));
        // Without a mention or a reply, a time in the group is chatter.
        api.send_as(&BOB, &group, "09:30", None);
        let id = api.message_id();
        api.push(json!({"message": {
            "message_id": id, "date": 1_700_000_000, "chat": group,
            "from": BOB.user(), "text": "09:30", "reply_to_message": question,
        }}));
        api.wait_for("sendMessage", 2).await;
        let set = api.last_bot_message(GROUP);
        assert!(
            text_of(&set).contains(&deadline(T0 + 22 * HOUR + 50 * 60))
                && text_of(&set).contains(&left(22 * HOUR + 50 * 60)),
            "{}",
            text_of(&set)
        );
        // The answer replies to the member's message, which marks it as theirs.
        let sent = api.calls_of("sendMessage");
        assert_eq!(sent[1].body["reply_parameters"]["message_id"], json!(id));
        assert_eq!(
            store
                .pending_reminders(Some(GROUP), BOB.id)
                .await
                .expect("a list")
                .len(),
            2
        );
        assert_eq!(api.calls_of("sendMessage").len(), 2);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_question_typed_while_the_time_is_asked_goes_to_the_dialogue() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        ask_arrival_privately(&api, &ALICE, "to_new_sms").await;
        api.send_as(
            &ALICE,
            &ALICE.private_chat(),
            "页面提示信息不符怎么办",
            None,
        );
        api.wait_for("sendMessage", 2).await;
        let answer = api.last_bot_message(chat);
        assert_ne!(text_of(&answer), ui_text(UiText::TimeUnreadable));
        assert!(
            store
                .pending_reminders(None, ALICE.id)
                .await
                .expect("a list")
                .is_empty()
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_hour_without_morning_or_evening_is_read_early_and_can_be_corrected() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        ask_arrival_privately(&api, &ALICE, "to_new_sms").await;
        // At 10:40, "3点" could be 03:00 today or 15:00 yesterday: the
        // earlier is taken, and the answer says how to correct it.
        api.send_as(&ALICE, &ALICE.private_chat(), "3点", None);
        api.wait_for("sendMessage", 2).await;
        let text = text_of(&api.last_bot_message(chat)).to_string();
        // 15:00 yesterday, with the window until 15:00 today.
        let (yesterday_3pm, today_3am) = (T0 - 19 * HOUR - 40 * 60, T0 - 7 * HOUR - 40 * 60);
        assert!(
            text.contains(&deadline(yesterday_3pm + 24 * HOUR)),
            "{text}"
        );
        let guessed = ui_text(UiText::TimeGuessed)
            .replace("{time}", &time(yesterday_3pm))
            .replace("{other}", &time(today_3am));
        assert!(text.contains(&markup::to_html(&guessed)), "{text}");
        assert_eq!(
            store
                .pending_reminders(None, ALICE.id)
                .await
                .expect("a list")
                .len(),
            1
        );
        // The question stays open: a time in 24-hour form replaces it.
        api.send_as(&ALICE, &ALICE.private_chat(), "03:00", None);
        api.wait_for("sendMessage", 3).await;
        let text = text_of(&api.last_bot_message(chat)).to_string();
        assert!(text.contains(&deadline(today_3am + 24 * HOUR)), "{text}");
        assert!(!text.contains(&markup::to_html(&guessed)), "{text}");
        assert_eq!(
            store
                .pending_reminders(None, ALICE.id)
                .await
                .expect("a list")
                .len(),
            2
        );
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_reminder_set_in_a_forum_topic_comes_back_to_it_and_is_listed_privately() {
    within(async {
        let scene = Scene::with(memory(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let forum = supergroup(GROUP, true);
        // Bob has started the bot privately, but blocked it since.
        open_privately(&api, &BOB, "menu").await;
        api.send_as(&BOB, &forum, "/diagnose", Some(77));
        api.wait_for("sendMessage", 2).await;
        let menu_id = id_of(&api.last_bot_message(GROUP));
        for data in ["g:menu:timeout", "g:timeout:to_new_sms", "r:to_new_sms", "a:0"] {
            let menu = api.message(GROUP, menu_id);
            press_then(&api, &BOB, &menu, data, usize::from(data == "a:0"), 1).await;
        }
        // In the private chat, /reminders lists what was set in the group.
        let bob = BOB.id as i64;
        api.send_as(&BOB, &BOB.private_chat(), "/reminders", None);
        api.wait_for("sendMessage", 4).await;
        let list = api.last_bot_message(bob);
        assert!(
            text_of(&list).contains(&reminder_line(T0 + 12 * HOUR, T0 + 24 * HOUR)),
            "{}",
            text_of(&list)
        );
        api.fail_next(
            "sendMessage",
            axum::http::StatusCode::FORBIDDEN,
            json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
        );
        scene.advance(12 * HOUR).await;
        let in_group = sent_with(&api, GROUP, UiText::Reminder);
        assert_eq!(in_group.len(), 1);
        assert_eq!(in_group[0]["message_thread_id"], json!(77));
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_reminder_whose_reply_was_lost_is_sent_again_marked_and_only_once() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        remind_privately(&api, &ALICE, 0).await;
        // Telegram posts the reminder, but the connection breaks before
        // its answer arrives: it may have been delivered, or not, so it
        // goes once more, saying so.
        api.lose_next_reply("sendMessage");
        scene.advance(12 * HOUR).await;
        let chat = ALICE.id as i64;
        let sent = sent_with(&api, chat, UiText::Reminder);
        assert_eq!(sent.len(), 2);
        let marker = markup::to_html(&ui_text(UiText::SentAgain));
        assert!(!text_of(&sent[0]).starts_with(&marker));
        assert!(
            text_of(&sent[1]).starts_with(&marker),
            "{}",
            text_of(&sent[1])
        );
        // And it counts as sent: nothing more of it later.
        scene.advance(60).await;
        scene.advance(60).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 2);
        // Only the plan's later reminder is left, and it still comes.
        assert_eq!(store.reminder_count().await.expect("counts"), 1);
        scene.advance(10 * HOUR).await;
        assert_eq!(sent_with(&api, chat, UiText::Reminder).len(), 3);
        scene.stop().await;
    })
    .await;
}

/// Issue 14's odd inputs: made-up reminder data sets nothing, "verified"
/// for a plan that is not the person's claims no cancellation, and a
/// reminder button of a node that offers none gets no console sentence.
#[tokio::test]
async fn forged_reminder_buttons_set_nothing_and_claim_nothing() {
    within(async {
        let store = memory();
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let chat = ALICE.id as i64;
        let menu = open_privately(&api, &ALICE, "to_new_sms").await;
        // No arrival question is open, and 4294967295 h is no answer of it.
        press_then(&api, &ALICE, &menu, "a:4294967295", 0, 1).await;
        let shown = api.message(chat, id_of(&menu));
        assert!(text_of(&shown).starts_with(&markup::to_html(&ui_text(UiText::MenuOutdated))));
        // An hour the question offers, but with no question open.
        let shown = api.message(chat, id_of(&menu));
        press_then(&api, &ALICE, &shown, "a:2", 0, 0).await;
        api.wait_for("answerCallbackQuery", 2).await;
        assert_eq!(store.reminder_count().await.unwrap(), 0);
        // Bob's plan, pressed by Alice: verified, but nothing cancelled.
        remind_privately(&api, &BOB, 0).await;
        let plan = store.pending_reminders(None, BOB.id).await.unwrap()[0].plan;
        let shown = api.message(chat, id_of(&menu));
        press_then(&api, &ALICE, &shown, &format!("v:{plan}"), 0, 1).await;
        let verified = api.message(chat, id_of(&menu));
        assert_eq!(text_of(&verified), ui_text(UiText::VerifiedNoneLeft));
        assert!(
            !store
                .pending_reminders(None, BOB.id)
                .await
                .unwrap()
                .is_empty()
        );
        // A new-code reminder asked of a node that offers none.
        let timeout = open_privately(&api, &ALICE, "timeout").await;
        press_then(&api, &ALICE, &timeout, "w:timeout", 0, 1).await;
        let shown = api.message(chat, id_of(&timeout));
        assert!(!text_of(&shown).contains(&ui_text(UiText::RemindersConsole)));
        assert!(text_of(&shown).starts_with(&markup::to_html(&ui_text(UiText::MenuOutdated))));
        scene.stop().await;
    })
    .await;
}
