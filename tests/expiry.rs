//! Idle conversations closed end to end: menus edited, rows deleted, on a clock the tests move by hand.

use icp_sms_doctor::app::Settings;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::markup;
use icp_sms_doctor::store::Store;
use icp_sms_doctor::tree::UiText;

use crate::bot::{ALICE, BOB, EVE, GROUP};
use crate::fake_api::{Person, supergroup};
use crate::reminders::{HOUR, T0, id_of, open_privately, remind_privately, tree, ui_text};
use crate::scene::{Scene, db_path, text_of, within};

#[tokio::test]
async fn idle_sessions_end_with_their_menu_edited_and_their_rows_deleted() {
    within(async {
        let path = db_path("expiry");
        let store: Store = Store::sqlite(&path).expect("a database");
        let settings = Settings {
            session_idle_secs: HOUR,
            ..Settings::default()
        };
        let scene = Scene::with(store.clone(), Clock::manual(T0), settings).await;
        let api = scene.api.clone();
        let private_menu = open_privately(&api, &ALICE, "timeout").await;
        let group = supergroup(GROUP, false);
        api.send_as(&BOB, &group, "/diagnose", None);
        api.wait_for("sendMessage", 2).await;
        let group_menu = api.last_bot_message(GROUP);
        // Eve's pending reminders keep her session open past the idle time.
        remind_privately(&api, &EVE, 0).await;
        assert_eq!(store.counts().await.expect("counts").sessions, 3);

        scene.advance(2 * HOUR).await;
        let ended = markup::to_html(&ui_text(UiText::SessionEnded));
        for (chat, menu) in [(ALICE.id as i64, &private_menu), (GROUP, &group_menu)] {
            let now = api.message(chat, id_of(menu));
            assert_eq!(text_of(&now), ended);
            assert!(now.get("reply_markup").is_none(), "buttons left: {now}");
        }
        assert_eq!(store.counts().await.expect("counts").sessions, 1);

        // Once her reminders are sent, Eve's session closes too: her menu
        // is closed, and the confirmation below it is left as it was.
        let eve = EVE.id as i64;
        let confirmation = api.last_bot_message(eve);
        scene.advance(22 * HOUR).await;
        scene.advance(60).await;
        let counts = store.counts().await.expect("counts");
        let reminders = store.reminder_count().await.expect("counts");
        assert_eq!((counts.sessions, reminders, counts.menus), (0, 0, 0));
        let eves = api.bot_messages(eve);
        let ended_en = markup::to_html(tree().ui().text(UiText::SessionEnded, Lang::En));
        assert_eq!(text_of(&eves[0]), ended_en);
        assert!(eves[0].get("reply_markup").is_none());
        assert_eq!(api.message(eve, id_of(&confirmation)), confirmation);
        // A closed conversation starts afresh: the session is saved before
        // its menu is sent.
        let sent = api.calls_of("sendMessage").len();
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", sent + 1).await;
        assert_eq!(store.counts().await.expect("counts").sessions, 1);
        scene.stop().await;
    })
    .await;
}

#[tokio::test]
async fn many_conversations_expire_back_to_an_empty_store() {
    within(async {
        let path = db_path("expiry-many");
        let store: Store = Store::sqlite(&path).expect("a database");
        let scene = Scene::with(store.clone(), Clock::manual(T0), Settings::default()).await;
        let api = scene.api.clone();
        let group = supergroup(GROUP, false);
        let people: Vec<Person> = (0..150)
            .map(|i| Person {
                id: 50_000 + i,
                name: "P",
                language_code: "zh-hans",
            })
            .collect();
        for person in &people {
            api.send_as(person, &person.private_chat(), "/diagnose", None);
            api.send_as(person, &group, "/diagnose", None);
        }
        api.wait_for("sendMessage", 2 * people.len()).await;
        // Each session is saved before its menu is sent.
        assert_eq!(store.counts().await.expect("counts").sessions, 300);
        // They close in paced batches, a few seconds of the clock apart.
        scene.advance(25 * HOUR).await;
        let mut steps = 0;
        while store.counts().await.expect("counts").sessions > 0 {
            assert!(steps < 100, "the sessions are not being closed");
            scene.advance(5).await;
            steps += 1;
        }
        api.wait_for("editMessageText", 300).await;
        let counts = store.counts().await.expect("counts");
        assert_eq!((counts.sessions, counts.menus), (0, 0));
        // No menu is left with buttons.
        let ended = markup::to_html(&ui_text(UiText::SessionEnded));
        let menus = api.all_bot_messages();
        assert_eq!(menus.len(), 300);
        assert!(
            menus
                .iter()
                .all(|m| text_of(m) == ended && m.get("reply_markup").is_none())
        );
        scene.stop().await;
    })
    .await;
}
