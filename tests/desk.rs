//! The desk around a case, end to end on the fake Bot API: statuses and /case, internal notes and /reply, /send and canned replies, the rating after close, reopening by the person's next words, and pings for cases that wait.

use icp_sms_doctor::app::{NudgeWaits, Settings};
use icp_sms_doctor::callback::Action;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::markup;
use icp_sms_doctor::stats::FactKind;
use icp_sms_doctor::tree::{UiButton, UiText};
use serde_json::Value;

use crate::bot::{ALICE, BOB, EVE, GROUP};
use crate::case_webhook::{Receiver, hooked};
use crate::cases::{
    ANN, STAFF, alert, ask_for_a_person, head, person_lang, press_on, sent_to, staffed,
};
use crate::fake_api::{FakeApi, Person, supergroup};
use crate::scene::{Scene, data_of, labels, memory, text_of, within};
use crate::support::real_tree;

/// Monday 2027-01-04 10:00 in Shanghai.
const MONDAY_10: i64 = 1_799_028_000;

/// Messages of the bot's in `chat` whose text holds `needle`.
fn count_in(api: &FakeApi, chat: i64, needle: &str) -> usize {
    let needle = markup::to_html(needle);
    api.calls_of("sendMessage")
        .iter()
        .filter(|c| c.ok && c.body["chat_id"].as_i64() == Some(chat))
        .filter(|c| c.body["text"].as_str().is_some_and(|t| t.contains(&needle)))
        .count()
}

/// An English speaker, not on the team.
const CAROL: Person = Person {
    id: 1004,
    name: "Carol",
    language_code: "en-GB",
};

/// The first line of a case's message in the staff chat, in `staff`'s
/// language: `工单 #1`, `Case #1`.
fn case_tag(staff: Lang, case: u64) -> String {
    let header = real_tree().ui().text(UiText::CaseHeader, staff).to_string();
    let first = header.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    first
        .trim()
        .trim_matches('*')
        .replace("{case}", &case.to_string())
}

/// The longest stretch of `text` between its placeholders: a piece a
/// filled-in message is sure to hold.
fn fixed_part(text: &str) -> String {
    text.split(['{', '}'])
        .step_by(2)
        .max_by_key(|piece| piece.chars().count())
        .unwrap_or("")
        .to_string()
}

/// The desk's settings with the staff chat speaking `staff`.
fn desk_in(staff: Lang, settings: Settings) -> Settings {
    Settings {
        default_lang: staff,
        ..settings
    }
}

/// Opens `person`'s case (#`case`) from their private chat; the case's
/// message in the (forum) staff chat, which speaks `staff`, and its topic.
async fn open_case_of(api: &FakeApi, person: &Person, staff: Lang, case: u64) -> (Value, i64) {
    let ui = real_tree().ui().clone();
    api.set_member(STAFF, ANN.id, "member");
    api.make_forum(STAFF);
    let consent = ask_for_a_person(api, person, &person.private_chat()).await;
    let agree = ui.button(UiButton::HandoffConfirm, person_lang(person));
    press_on(api, person, &consent, agree);
    let header = sent_to(api, STAFF, &case_tag(staff, case)).await;
    let opened = ui.text(UiText::HandoffOpened, person_lang(person));
    sent_to(api, person.id as i64, &head(opened, 8)).await;
    let topic = header["message_thread_id"].as_i64().expect("a topic");
    (header, topic)
}

/// The kinds of the events the receiver has had, once it has had `n`.
async fn kinds(receiver: &Receiver, n: usize) -> Vec<String> {
    receiver
        .wait_for(n)
        .await
        .iter()
        .map(|e| e.kind())
        .collect()
}

/// What was said in each chat, in order: what the test typed and
/// pressed there, and what the bot sent or changed there (and, in the
/// person's chat, the alerts their presses got).
pub(crate) struct Transcript {
    said: Vec<(usize, &'static str, String)>,
    /// The calls before this one are not shown.
    from: usize,
}

/// A message longer than this many lines is shown by its first line.
const SHOWN_LINES: usize = 15;

impl Transcript {
    /// A transcript from now on.
    fn new(api: &FakeApi) -> Self {
        Transcript {
            said: Vec::new(),
            from: api.call_count(),
        }
    }

    /// Notes something done in the chat `chat` (as `render` names it),
    /// before the calls it causes.
    fn did(&mut self, api: &FakeApi, chat: &'static str, line: String) {
        self.said.push((api.call_count(), chat, line));
    }

    /// Each chat's exchange as plain text, a line a message: `chats` names
    /// them by id, the person's first.
    fn render(&self, api: &FakeApi, chats: &[(i64, &'static str)]) -> String {
        let calls = api.calls();
        let mut out = String::new();
        for (n, (id, name)) in chats.iter().enumerate() {
            out.push_str(&format!("{name}:\n"));
            let mut said = self
                .said
                .iter()
                .filter(|(_, chat, _)| chat == name)
                .peekable();
            for (i, call) in calls.iter().enumerate().skip(self.from) {
                while let Some((_, _, line)) = said.next_if(|(at, _, _)| *at <= i) {
                    out.push_str(&format!("  {line}\n"));
                }
                let text = call.body["text"].as_str();
                let here = call.body["chat_id"].as_i64() == Some(*id);
                match (call.method.as_str(), text) {
                    _ if !call.ok => {}
                    ("sendmessage", Some(text)) if here => {
                        out.push_str(&format!("  bot: {}{}\n", plain(text), buttons(&call.body)));
                    }
                    ("editmessagetext", Some(text)) if here => {
                        // A long message changed: its first line and the
                        // last, where the change is.
                        let text = plain(text);
                        let lines: Vec<&str> = text.lines().map(str::trim).collect();
                        let text = match lines.as_slice() {
                            [first, .., last] if lines.len() > 3 => format!("{first} … {last}"),
                            _ => text.clone(),
                        };
                        let keys = buttons(&call.body);
                        out.push_str(&format!("  bot (changes its message): {text}{keys}\n"));
                    }
                    ("answercallbackquery", Some(text)) if n == 0 => {
                        out.push_str(&format!("  bot (alert): {}\n", plain(text)));
                    }
                    _ => {}
                }
            }
            for (_, _, line) in said {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}

/// A message's HTML as its reader sees it: tags dropped, entities read,
/// each line after the first indented.
fn plain(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let lines: Vec<&str> = text.trim().lines().collect();
    if lines.len() > SHOWN_LINES {
        return format!("{} … ({} more lines)", lines[0], lines.len() - 1);
    }
    lines.join("\n    ")
}

/// A message's buttons, ` [a] [b]`, if it has any.
fn buttons(body: &Value) -> String {
    let rows = body["reply_markup"]["inline_keyboard"].as_array();
    let labels: Vec<String> = rows
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .map(|l| format!("[{l}]"))
        .collect();
    if labels.is_empty() {
        String::new()
    } else {
        format!("\n    {}", labels.join(" "))
    }
}

/// A case from open to rated, as `person` (in their language) and the
/// staff chat see it; the exchange, written out.
pub(crate) async fn case_from_open_to_rated(person: &Person) -> String {
    let tree = real_tree();
    let ui = tree.ui();
    let lang = person_lang(person);
    let store = memory();
    let receiver = Receiver::start(&[]).await;
    let settings = hooked(receiver.url());
    let scene = Scene::with(store.clone(), Clock::manual(MONDAY_10), settings).await;
    let api = scene.api.clone();
    let me = person.id as i64;
    let chat = person.private_chat();
    let staff = supergroup(STAFF, true);
    api.set_member(STAFF, ANN.id, "member");
    api.make_forum(STAFF);
    let consent = ask_for_a_person(&api, person, &chat).await;
    let mut log = Transcript::new(&api);
    let (mine, staff_chat) = match lang {
        Lang::Zh => ("Alice's private chat", "The staff chat, case #1's topic"),
        Lang::En => ("Carol's private chat", "The staff chat, case #1's topic"),
    };
    let people = [(me, mine), (STAFF, staff_chat)];
    let says = |log: &mut Transcript, text: &str| {
        log.did(&api, mine, format!("{}: {text}", person.name));
        api.send_as(person, &chat, text, None);
    };
    let staff_did = |log: &mut Transcript, line: &str| {
        log.did(&api, staff_chat, format!("Ann: {line}"));
    };

    // Consent given: the case reaches the staff chat, in a topic.
    let agree = ui.button(UiButton::HandoffConfirm, lang);
    log.did(&api, mine, format!("{}: [{agree}]", person.name));
    press_on(&api, person, &consent, agree);
    let header = sent_to(&api, STAFF, "工单 #1").await;
    let topic = header["message_thread_id"].as_i64().expect("a topic");
    sent_to(&api, me, &head(ui.text(UiText::HandoffOpened, lang), 8)).await;

    // Open, nobody has it yet: /case says so, with the button to close.
    says(&mut log, "/case");
    let status = head(ui.text(UiText::CaseStatusOpen, lang), 5);
    let status = sent_to(&api, me, &status).await;
    assert!(text_of(&status).contains("#1"));
    assert_eq!(
        Action::parse(&data_of(&status, ui.button(UiButton::CaseCloseMine, lang))),
        Some(Action::CaseClose { case: 1 })
    );

    // Ann takes it; /case names her.
    staff_did(
        &mut log,
        &format!("[{}]", ui.button(UiButton::CaseTake, Lang::Zh)),
    );
    press_on(&api, &ANN, &header, ui.button(UiButton::CaseTake, Lang::Zh));
    sent_to(&api, me, "Ann").await;
    says(&mut log, "/case");
    let taken = ui.text(UiText::CaseStatusTaken, lang);
    let taken = taken.replace("{case}", "1").replace("{staff}", "Ann");
    sent_to(&api, me, &taken).await;

    // A note in the topic stays there; a reply to the case's message
    // reaches the person, and the case then waits for them.
    let note = "内部：号码可能是虚拟运营商的";
    staff_did(&mut log, note);
    api.send_as(&ANN, &staff, note, Some(topic));
    let asked = "请问你的手机号是哪家运营商的？";
    staff_did(&mut log, &format!("(replying to the case) {asked}"));
    api.reply_as(&ANN, &header, asked);
    sent_to(&api, me, asked).await;
    assert_eq!(count_in(&api, me, "虚拟运营商"), 0, "a note reached them");
    says(&mut log, "/case");
    let waiting = ui.text(UiText::CaseStatusWaiting, lang);
    let waiting = waiting.replace("{case}", "1").replace("{staff}", "Ann");
    sent_to(&api, me, &waiting).await;

    // Their answer goes back to the topic.
    let answer = "China Mobile, 中国移动";
    says(&mut log, answer);
    let back = sent_to(&api, STAFF, answer).await;
    assert_eq!(back["message_thread_id"].as_i64(), Some(topic));

    // Canned replies: listed, an unknown one answered, one sent in the
    // person's language.
    for typed in ["/canned", "/canned newest", "/canned resend_limit"] {
        staff_did(&mut log, typed);
        api.send_as(&ANN, &staff, typed, Some(topic));
        let answered = match typed {
            "/canned" => sent_to(&api, STAFF, "need_newest_code").await,
            "/canned newest" => {
                let unknown = head(ui.text(UiText::StaffCannedUnknown, Lang::Zh), 4);
                sent_to(&api, STAFF, &unknown).await
            }
            _ => {
                let canned = tree.canned()["resend_limit"].get(lang);
                sent_to(&api, me, &head(canned, 12)).await
            }
        };
        if typed == "/canned" {
            assert!(text_of(&answered).contains("resend_limit"));
        }
    }

    // /send: a step that does not exist gets close ones; one that does
    // lands the person there, with its buttons, in their language.
    staff_did(&mut log, "/send nr_resnd");
    api.send_as(&ANN, &staff, "/send nr_resnd", Some(topic));
    let near = sent_to(&api, STAFF, "nr_resnd").await;
    assert!(text_of(&near).contains("nr_resend"), "{}", text_of(&near));
    staff_did(&mut log, "/send nr_resend");
    api.send_as(&ANN, &staff, "/send nr_resend", Some(topic));
    sent_to(&api, STAFF, &head(ui.text(UiText::StaffSent, Lang::Zh), 3)).await;
    sent_to(&api, me, ui.text(UiText::CaseStepSent, lang)).await;
    let node = tree.node(tree.get("nr_resend").unwrap());
    let step = sent_to(&api, me, node.text.get(lang).lines().next().unwrap()).await;
    assert!(!labels(&step).is_empty(), "the step comes with its buttons");

    // Ann closes; the person is asked for a score, once.
    let header = api.message(STAFF, header["message_id"].as_i64().unwrap());
    staff_did(
        &mut log,
        &format!("[{}]", ui.button(UiButton::CaseClose, Lang::Zh)),
    );
    press_on(
        &api,
        &ANN,
        &header,
        ui.button(UiButton::CaseClose, Lang::Zh),
    );
    let ask = sent_to(&api, me, ui.text(UiText::CaseRateAsk, lang)).await;
    assert_eq!(labels(&ask), ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]);
    log.did(&api, mine, format!("{}: [4 ★]", person.name));
    press_on(&api, person, &ask, "4 ★");
    let thanks = ui.text(UiText::CaseRated, lang).replace("{stars}", "4");
    sent_to(&api, me, &thanks).await;
    let told = ui.text(UiText::CaseRatedStaff, Lang::Zh);
    let told = told.replace("{case}", "1").replace("{stars}", "4");
    sent_to(&api, STAFF, &told).await;
    // The old question pressed again: rated already.
    let again = format!("{}: [5 ★] (the same question again)", person.name);
    log.did(&api, mine, again);
    api.press(person, &ask, &data_of(&ask, "5 ★"));
    assert_eq!(
        alert(&api, 1).await,
        ui.text(UiText::CaseRatedAlready, lang)
    );
    let facts = store.facts(0).await.unwrap();
    let rated: Vec<_> = facts
        .iter()
        .filter(|f| f.kind == FactKind::CaseRated)
        .collect();
    assert_eq!(rated.len(), 1);
    assert_eq!(rated[0].detail, "4:Ann");
    assert_eq!(rated[0].node, "nr_not_submitted");

    // /stats shows it by the end and by who took the case.
    api.send_as(&EVE, &EVE.private_chat(), "/stats", None);
    let stats = sent_to(&api, EVE.id as i64, "Ann: 4.0 / 1").await;
    assert!(text_of(&stats).contains("(nr_not_submitted): 4.0 / 1"));
    let mut transcript = log.render(&api, &people);

    // The webhook got each event of the case, in order.
    let events = receiver.wait_for(8).await;
    let kinds: Vec<String> = events.iter().map(|e| e.kind()).collect();
    let message = "case.message".to_string();
    assert_eq!(
        kinds,
        [
            "case.opened".to_string(),
            "case.taken".to_string(),
            message.clone(),
            message.clone(),
            message.clone(),
            message,
            "case.closed".to_string(),
            "case.rated".to_string(),
        ]
    );
    transcript.push_str("The case webhook:\n");
    for event in &events {
        let body = event.json();
        let (kind, status) = (body["type"].as_str().unwrap(), &body["case"]["status"]);
        let data = serde_json::to_string(&body["data"]).unwrap();
        transcript.push_str(&format!("  {kind} (status {status}) {data}\n"));
    }
    assert_eq!(events[7].json()["data"]["stars"], 4);
    scene.stop().await;
    transcript
}

/// The English exchange, for `docs/behaviour.md` (see `docs.rs`).
pub(crate) fn transcript_for_docs() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let transcript = runtime.block_on(within(case_from_open_to_rated(&CAROL)));
    format!("```text\n{transcript}```\n")
}

#[tokio::test]
async fn a_case_from_open_to_rated_as_the_person_and_the_staff_see_it_in_chinese() {
    within(async {
        case_from_open_to_rated(&ALICE).await;
    })
    .await;
}

#[tokio::test]
async fn a_case_from_open_to_rated_as_the_person_and_the_staff_see_it_in_english() {
    within(async {
        let transcript = case_from_open_to_rated(&CAROL).await;
        assert!(transcript.contains("  Carol: /case\n"), "{transcript}");
        assert!(transcript.contains("  bot: Your case #1"), "{transcript}");
        assert!(transcript.contains("  bot: 工单 #1\n"), "{transcript}");
    })
    .await;
}

/// Closing, then words soon after: the same case reopens, in its topic.
/// Past the window, words go to the conversation, and asking for a
/// person again opens a new case in a topic of its own. The webhook
/// hears each step, the reopening by the person.
async fn reopening(person: &Person, staff: Lang) {
    let ui = real_tree().ui().clone();
    let lang = person_lang(person);
    let receiver = Receiver::start(&[]).await;
    let settings = desk_in(staff, hooked(receiver.url()));
    let scene = Scene::with(memory(), Clock::manual(MONDAY_10), settings).await;
    let api = scene.api.clone();
    let me = person.id as i64;
    let chat = person.private_chat();
    let (header, topic) = open_case_of(&api, person, staff, 1).await;
    press_on(&api, &ANN, &header, ui.button(UiButton::CaseClose, staff));
    sent_to(&api, me, ui.text(UiText::CaseRateAsk, lang)).await;

    // An hour later they write again: the same case, in the same topic.
    scene.advance(3600).await;
    let again = "又提示验证码错误了 / the code is refused again";
    api.send_as(person, &chat, again, None);
    let reopened = ui.text(UiText::CaseReopened, lang).replace("{case}", "1");
    sent_to(&api, me, &reopened).await;
    let relayed = sent_to(&api, STAFF, again).await;
    assert_eq!(relayed["message_thread_id"].as_i64(), Some(topic));
    sent_to(
        &api,
        STAFF,
        &fixed_part(ui.text(UiText::CaseReopenedStaff, staff)),
    )
    .await;
    let reopen = api.wait_for("reopenForumTopic", 1).await;
    assert_eq!(reopen[0].body["message_thread_id"].as_i64(), Some(topic));
    // Its message has its buttons back.
    let header = api.message(STAFF, header["message_id"].as_i64().unwrap());
    assert!(labels(&header).contains(&ui.button(UiButton::CaseClose, staff).to_string()));
    assert_eq!(api.calls_of("createForumTopic").len(), 1);

    // Closed again a while later; past the window, their words go to the
    // conversation.
    scene.advance(600).await;
    press_on(&api, &ANN, &header, ui.button(UiButton::CaseClose, staff));
    sent_to(
        &api,
        STAFF,
        &fixed_part(ui.text(UiText::CaseClosedStaff, staff)),
    )
    .await;
    scene.advance(3 * 3600).await;
    let staff_before = api.bot_messages(STAFF).len();
    let to_me = |calls: &[crate::fake_api::Call]| {
        calls
            .iter()
            .filter(|c| c.method == "sendmessage" && c.body["chat_id"].as_i64() == Some(me))
            .count()
    };
    let before = to_me(&api.calls());
    api.send_as(person, &chat, "收不到短信 / no SMS came", None);
    // The conversation answers them (the router's reading of their words).
    api.watch_until(|calls| to_me(calls) > before).await;
    let answer = api.bot_messages(me).pop().unwrap();
    assert!(!text_of(&answer).contains("#1"), "{}", text_of(&answer));
    assert_eq!(api.bot_messages(STAFF).len(), staff_before);
    assert_eq!(count_in(&api, me, &reopened), 1);

    // Asking for a person again opens case #2, in a topic of its own.
    let consent = ask_for_a_person(&api, person, &chat).await;
    press_on(
        &api,
        person,
        &consent,
        ui.button(UiButton::HandoffConfirm, lang),
    );
    let second = sent_to(&api, STAFF, &case_tag(staff, 2)).await;
    assert_ne!(second["message_thread_id"].as_i64(), Some(topic));
    assert_eq!(api.calls_of("createForumTopic").len(), 2);

    // The webhook heard each step, in order.
    let kinds = kinds(&receiver, 6).await;
    let expected = [
        "case.opened",
        "case.closed",
        "case.reopened",
        "case.message",
        "case.closed",
        "case.opened",
    ];
    assert_eq!(kinds, expected);
    let events = receiver.wait_for(6).await;
    let reopened = events[2].json();
    assert_eq!(reopened["case"]["id"], 1);
    assert_eq!(reopened["case"]["status"], "open");
    assert_eq!(reopened["data"]["side"], "person");
    assert_eq!(events[5].json()["case"]["id"], 2);
    scene.stop().await;
}

#[tokio::test]
async fn words_soon_after_closing_reopen_the_case_and_later_ones_do_not_in_chinese() {
    within(reopening(&ALICE, Lang::Zh)).await;
}

#[tokio::test]
async fn words_soon_after_closing_reopen_the_case_and_later_ones_do_not_in_english() {
    within(reopening(&CAROL, Lang::En)).await;
}

/// Pings in a staff chat that speaks `staff`, about `person`'s case.
async fn pings(person: &Person, staff: Lang) {
    let ui = real_tree().ui().clone();
    let settings = Settings {
        nudges: NudgeWaits {
            unanswered: Some(10 * 60),
            idle: Some(30 * 60),
        },
        ..desk_in(staff, staffed())
    };
    let scene = Scene::with(memory(), Clock::manual(MONDAY_10), settings).await;
    let api = scene.api.clone();
    let me = person.id as i64;
    let (header, _) = open_case_of(&api, person, staff, 1).await;
    let unanswered = fixed_part(ui.text(UiText::CaseNudge, staff));
    let pinged = |api: &FakeApi| count_in(api, STAFF, &unanswered);
    scene.advance(9 * 60).await;
    assert_eq!(pinged(&api), 0, "not before its wait");
    scene.advance(2 * 60).await;
    let nudge = sent_to(&api, STAFF, &unanswered).await;
    assert!(text_of(&nudge).contains("#1"));
    scene.advance(3600).await;
    assert_eq!(pinged(&api), 1, "once");

    // Taken, and the person writes: after 30 min, Ann is pinged by mention.
    press_on(&api, &ANN, &header, ui.button(UiButton::CaseTake, staff));
    sent_to(&api, me, "Ann").await;
    let words = "请问还要等多久 / how much longer?";
    api.send_as(person, &person.private_chat(), words, None);
    sent_to(&api, STAFF, words).await;
    let waits_on_ann = fixed_part(ui.text(UiText::CaseNudgeIdle, staff));
    let idle = |api: &FakeApi| count_in(api, STAFF, &waits_on_ann);
    scene.advance(29 * 60).await;
    assert_eq!(idle(&api), 0);
    scene.advance(2 * 60).await;
    let ping = sent_to(&api, STAFF, &waits_on_ann).await;
    let mention = format!("tg://user?id={}", ANN.id);
    assert!(text_of(&ping).contains(&mention), "{}", text_of(&ping));
    // Once per silence; Ann's answer leaves the case waiting for them.
    api.reply_as(&ANN, &header, "马上处理 / on it");
    sent_to(&api, me, "马上处理 / on it").await;
    scene.advance(3 * 3600).await;
    assert_eq!(idle(&api), 1);
    scene.stop().await;
}

#[tokio::test]
async fn a_waiting_case_is_pinged_once_and_an_idle_one_to_whoever_took_it_in_chinese() {
    within(pings(&ALICE, Lang::Zh)).await;
}

#[tokio::test]
async fn a_waiting_case_is_pinged_once_and_an_idle_one_to_whoever_took_it_in_english() {
    within(pings(&CAROL, Lang::En)).await;
}

/// The person closes their case from /case: the staff are told, the
/// person rates it from the same message, and the webhook says who closed.
async fn closing_by_the_person(person: &Person, staff: Lang) {
    let ui = real_tree().ui().clone();
    let lang = person_lang(person);
    let store = memory();
    let receiver = Receiver::start(&[]).await;
    let settings = desk_in(staff, hooked(receiver.url()));
    let scene = Scene::with(store.clone(), Clock::manual(MONDAY_10), settings).await;
    let api = scene.api.clone();
    let me = person.id as i64;
    let chat = person.private_chat();
    let (header, _) = open_case_of(&api, person, staff, 1).await;
    press_on(&api, &ANN, &header, ui.button(UiButton::CaseTake, staff));
    sent_to(&api, me, "Ann").await;
    api.send_as(person, &chat, "/case", None);
    let taken = fixed_part(ui.text(UiText::CaseStatusTaken, lang));
    let status = sent_to(&api, me, &taken).await;
    press_on(
        &api,
        person,
        &status,
        ui.button(UiButton::CaseCloseMine, lang),
    );
    let done = sent_to(&api, me, ui.text(UiText::CaseClosedDone, lang)).await;
    assert_eq!(done["message_id"], status["message_id"], "said in place");
    assert_eq!(labels(&done), ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]);
    sent_to(&api, STAFF, ui.text(UiText::CaseClosedByPerson, staff)).await;
    press_on(&api, person, &done, "5 ★");
    let thanks = ui.text(UiText::CaseRated, lang).replace("{stars}", "5");
    sent_to(&api, me, &thanks).await;
    let told = ui.text(UiText::CaseRatedStaff, staff);
    sent_to(
        &api,
        STAFF,
        &told.replace("{case}", "1").replace("{stars}", "5"),
    )
    .await;
    let facts = store.facts(0).await.unwrap();
    let rated: Vec<_> = facts
        .iter()
        .filter(|f| f.kind == FactKind::CaseRated)
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(rated, ["5:Ann"]);

    let events = receiver.wait_for(4).await;
    let kinds: Vec<String> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        ["case.opened", "case.taken", "case.closed", "case.rated"]
    );
    let closed = events[2].json();
    assert_eq!(closed["data"]["side"], "person");
    assert_eq!(closed["case"]["status"], "closed");
    assert_eq!(events[3].json()["data"]["stars"], 5);
    scene.stop().await;
}

#[tokio::test]
async fn a_person_closes_their_own_case_and_rates_it_in_chinese() {
    within(closing_by_the_person(&ALICE, Lang::Zh)).await;
}

#[tokio::test]
async fn a_person_closes_their_own_case_and_rates_it_in_english() {
    within(closing_by_the_person(&CAROL, Lang::En)).await;
}

/// Staff commands and scores where they do not belong, from `person`
/// and in a staff chat that speaks `staff`: each a clear answer, none
/// reaching anyone it should not.
async fn wrong_places(person: &Person, staff: Lang) {
    let tree = real_tree();
    let ui = tree.ui();
    let lang = person_lang(person);
    let store = memory();
    let settings = desk_in(staff, staffed());
    let scene = Scene::with(store.clone(), Clock::manual(MONDAY_10), settings).await;
    let api = scene.api.clone();
    let me = person.id as i64;
    let chat = person.private_chat();
    // /send from a person, in their own chat.
    api.send_as(person, &chat, "/send nr_resend", None);
    sent_to(&api, me, ui.text(UiText::StaffOnly, lang)).await;
    // /case with no case.
    api.send_as(person, &chat, "/case", None);
    sent_to(&api, me, ui.text(UiText::CaseNone, lang)).await;

    let (header, topic) = open_case_of(&api, person, staff, 1).await;
    let staff_chat = supergroup(STAFF, true);
    // A staff command about no case: outside any topic, replying to nothing.
    api.send_as(&ANN, &staff_chat, "/reply 你好", None);
    sent_to(&api, STAFF, ui.text(UiText::StaffNoCase, staff)).await;
    // /reply with nothing to say; /send with no step.
    api.send_as(&ANN, &staff_chat, "/reply", Some(topic));
    sent_to(
        &api,
        STAFF,
        &head(ui.text(UiText::StaffReplyUsage, staff), 8),
    )
    .await;
    api.send_as(&ANN, &staff_chat, "/send", Some(topic));
    sent_to(
        &api,
        STAFF,
        &head(ui.text(UiText::StaffSendUsage, staff), 8),
    )
    .await;
    // Words replying to one of the bot's notes stay with the staff; a
    // mistyped command replying to the case's message is not relayed.
    api.send_as(&ANN, &staff_chat, "/canned", Some(topic));
    let list = sent_to(&api, STAFF, "need_newest_code").await;
    api.reply_as(&ANN, &list, "这个列表该更新了");
    api.reply_as(&ANN, &header, "/clsoe");
    sent_to(&api, STAFF, ui.text(UiText::StaffCommandUnknown, staff)).await;
    api.reply_as(&ANN, &header, "好的，我看一下");
    sent_to(&api, me, "好的，我看一下").await;
    assert_eq!(
        count_in(&api, me, "列表"),
        0,
        "a reply to a note reached them"
    );
    assert_eq!(
        count_in(&api, me, "clsoe"),
        0,
        "a mistyped command reached them"
    );
    // A forged score for a case still open, and made-up score data:
    // refused, and nothing reaches the staff.
    api.send_as(person, &chat, "/case", None);
    let status = head(ui.text(UiText::CaseStatusOpen, lang), 5);
    let status = sent_to(&api, me, &status).await;
    api.press(
        person,
        &status,
        &Action::CaseRate { case: 1, stars: 5 }.encode(),
    );
    assert_eq!(alert(&api, 1).await, ui.text(UiText::CaseRateRefused, lang));
    let answered = api.calls_of("answerCallbackQuery").len();
    api.press(person, &status, "e:1:9");
    api.wait_for("answerCallbackQuery", answered + 1).await;
    let rated = fixed_part(ui.text(UiText::CaseRatedStaff, staff));
    assert_eq!(count_in(&api, STAFF, &rated), 0);

    // In a group, another member's score buttons are not theirs.
    press_on(&api, &ANN, &header, ui.button(UiButton::CaseClose, staff));
    let mine = sent_to(&api, me, ui.text(UiText::CaseRateAsk, lang)).await;
    let group = supergroup(GROUP, false);
    let consent = ask_for_a_person(&api, &BOB, &group).await;
    press_on(
        &api,
        &BOB,
        &consent,
        ui.button(UiButton::HandoffConfirm, Lang::Zh),
    );
    let bobs = sent_to(&api, STAFF, &case_tag(staff, 2)).await;
    press_on(&api, &ANN, &bobs, ui.button(UiButton::CaseClose, staff));
    let ask = sent_to(&api, GROUP, ui.text(UiText::CaseRateAsk, Lang::Zh)).await;
    api.press(person, &ask, &data_of(&ask, "1 ★"));
    assert_eq!(alert(&api, 2).await, ui.text(UiText::NotYourMenu, lang));
    // Nor is a score for Bob's case forged onto their own question.
    let forged = Action::CaseRate { case: 2, stars: 1 }.encode();
    api.press(person, &mine, &forged);
    assert_eq!(alert(&api, 3).await, ui.text(UiText::CaseRateRefused, lang));
    assert_eq!(count_in(&api, STAFF, &rated), 0);
    let facts = store.facts(0).await.unwrap();
    assert!(
        facts.iter().all(|f| f.kind != FactKind::CaseRated),
        "{facts:?}"
    );
    assert_eq!(store.case(2).await.unwrap().unwrap().desk.rating, None);
    scene.stop().await;
}

#[tokio::test]
async fn staff_commands_and_scores_in_the_wrong_place_get_a_clear_answer_in_chinese() {
    within(wrong_places(&ALICE, Lang::Zh)).await;
}

#[tokio::test]
async fn staff_commands_and_scores_in_the_wrong_place_get_a_clear_answer_in_english() {
    within(wrong_places(&CAROL, Lang::En)).await;
}
