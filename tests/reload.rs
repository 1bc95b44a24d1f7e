//! A dialogue reloaded while people are in it: sessions on a node that is gone start again politely.

use std::fs;
use std::sync::Arc;

use icp_sms_doctor::app::{App, Settings};
use icp_sms_doctor::callback::Action;
use icp_sms_doctor::clock::Clock;
use icp_sms_doctor::conversation::{self, Speaker};
use icp_sms_doctor::engine::Event;
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::store::SessionKey;
use icp_sms_doctor::tree::UiText;

use crate::scene::{memory, within};
use crate::support::{base_tree, fixtures};

fn person() -> Speaker {
    Speaker {
        key: SessionKey { chat: 7, user: 7 },
        name: "A".to_string(),
        language_code: Some("en".to_string()),
        thread: None,
        answering: None,
    }
}

#[tokio::test]
async fn a_session_on_a_node_the_new_dialogue_lacks_gets_the_entry_menu_with_a_note() {
    within(async {
        let app = App::new(
            Arc::new(base_tree()),
            memory(),
            Clock::System,
            Settings::default(),
        );
        let who = person();
        let opened = conversation::handle(&app, &who, Event::from_line("/start extra"))
            .await
            .expect("the store works");
        assert_eq!(opened[0].node.as_deref(), Some("extra"));

        // The same folder without the "extra" node and the button to it.
        let dir =
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reload-without-extra");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a folder");
        for name in ["ui.toml", "routes.toml", "provider.toml"] {
            fs::copy(fixtures().join("base").join(name), dir.join(name)).expect("copied");
        }
        let tree = fs::read_to_string(fixtures().join("base/tree.toml")).expect("tree.toml");
        let button =
            "[[node.button]]\nlabel = { zh = \"其他\", en = \"Other\" }\ngoto = \"extra\"\n";
        assert!(tree.contains(button));
        fs::write(dir.join("tree.toml"), tree.replace(button, "")).expect("written");
        let reloaded = app.reload(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(reloaded.get("extra").is_none());

        // A press on the old menu: it is out of date, and the entry menu shows.
        let replies =
            conversation::handle(&app, &who, Event::Press(Action::parse("b:extra").as_ref()))
                .await
                .expect("the store works");
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].node.as_deref(), Some("menu"));
        let note = reloaded.ui().text(UiText::MenuOutdated, Lang::En);
        assert!(replies[0].text.starts_with(note), "{}", replies[0].text);
    })
    .await;
}

#[test]
fn a_reload_with_problems_keeps_the_running_dialogue() {
    let app = App::new(
        Arc::new(base_tree()),
        memory(),
        Clock::System,
        Settings::default(),
    );
    let broken = fixtures().join("dead_end");
    assert!(app.reload(&broken).is_err());
    assert!(app.tree().get("extra").is_some());
}
