//! One test suite for everything stored, run on every kernel: memory, a fresh SQLite file, and a fresh `redis-server` (when one is installed).

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::kernel::redis::RedisKernel;
use super::kernel::sqlite::SqliteKernel;
use super::kernel::{Batch, Kernel};
use super::redis_server::RedisServer;
use super::url::open;
use super::{
    Answer, Entry, INBOX_RETENTION_SECS, Later, MENU_RETENTION_SECS, PRIVATE_CHAT_RETENTION_SECS,
    Posted, Rates, SessionKey, Store, StoreError,
};
use crate::clock::Instant;
use crate::engine::Session;
use crate::handoff::{CLOSED_RETENTION_SECS, NewCase, Opened};
use crate::lang::Lang;
use crate::reminders::{Kind, NewReminder};
use crate::stats::{Fact, FactKind, LATER_SECS, MAX_DAYS};

pub(crate) fn at(node: &str, lang: Lang) -> Session {
    Session {
        node: Some(node.to_string()),
        lang,
        history: vec!["menu".to_string()],
        picks: vec![0],
        asking: None,
        conv: 0,
    }
}

/// A database file of its own for one test, removed afterwards.
pub(crate) struct TempDb(pub(super) PathBuf);

impl TempDb {
    pub(crate) fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "icp-sms-doctor-test-{}-{name}.db",
            std::process::id()
        ));
        let db = TempDb(path);
        db.clean();
        db
    }

    fn clean(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.clean();
    }
}

/// Sessions are kept per (chat, person), with the language and menu owners.
async fn sessions(store: &Store) {
    let key = SessionKey {
        chat: -100,
        user: 7,
    };
    assert_eq!(store.load(key).await.unwrap(), None);
    store
        .save(key, &at("timeout", Lang::En), false, &[], 100)
        .await
        .unwrap();
    assert_eq!(
        store.load(key).await.unwrap(),
        Some(at("timeout", Lang::En))
    );
    assert_eq!(store.person_lang(7).await.unwrap(), None);
    store
        .save(key, &at("reset", Lang::Zh), true, &[], 100)
        .await
        .unwrap();
    assert_eq!(store.person_lang(7).await.unwrap(), Some(Lang::Zh));
    assert_eq!(store.session_count().await.unwrap(), 1);
    // Another person in the same chat is another session.
    let other = SessionKey {
        chat: -100,
        user: 8,
    };
    store
        .save(other, &at("menu", Lang::Zh), false, &[], 100)
        .await
        .unwrap();
    assert_eq!(store.session_count().await.unwrap(), 2);
    // Group menus remember their owner.
    assert_eq!(store.menu_owner(-100, 55).await.unwrap(), None);
    store
        .remember_menu(-100, 55, 7, Posted::Menu, 100)
        .await
        .unwrap();
    assert_eq!(store.menu_owner(-100, 55).await.unwrap(), Some(7));
    store
        .remember_menu(-100, 56, 8, Posted::Note, 100)
        .await
        .unwrap();
    assert_eq!(store.menu_owner(-100, 56).await.unwrap(), Some(8));
    // A blank session removes the row.
    store
        .save(key, &Session::new(Lang::Zh), false, &[], 100)
        .await
        .unwrap();
    assert_eq!(store.load(key).await.unwrap(), None);
    assert_eq!(store.session_count().await.unwrap(), 1);
}

fn window(chat: i64, user: u64, due_at: Instant) -> NewReminder {
    NewReminder {
        chat,
        user,
        name: "Li".to_string(),
        lang: Lang::Zh,
        kind: Kind::Window,
        due_at,
        deadline: Some(due_at + 7200),
        thread: None,
    }
}

/// Reminders: plans, claims all or nothing, recovery, cancelling.
async fn reminders(store: &Store) {
    let plan = store
        .set_reminders(-5, 7, &[window(-5, 7, 1_000), window(-5, 7, 2_000)])
        .await
        .unwrap();
    let pending = store.pending_reminders(Some(-5), 7).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(store.pending_reminders(None, 7).await.unwrap(), pending);
    assert!(
        store
            .pending_reminders(Some(-6), 7)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(pending.iter().all(|r| r.plan == plan && r.name == "Li"));
    assert_eq!(store.next_due().await.unwrap(), Some(1_000));
    assert!(store.due_reminders(999, 10).await.unwrap().is_empty());
    let due = store.due_reminders(1_500, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // Someone else cannot cancel the plan.
    assert_eq!(store.cancel_plan(plan, 8).await.unwrap(), 0);
    // A claim is all or nothing, and only once, whoever asks.
    let ids = [due[0].id];
    assert!(store.claim_reminders(&ids, "a", 2_100).await.unwrap());
    assert!(!store.claim_reminders(&ids, "a", 2_100).await.unwrap());
    assert!(!store.claim_reminders(&ids, "b", 2_100).await.unwrap());
    assert_eq!(store.pending_reminders(Some(-5), 7).await.unwrap().len(), 1);
    store.release_reminders(&ids).await.unwrap();
    assert!(store.claim_reminders(&ids, "b", 2_100).await.unwrap());
    // A claim still running is never recovered, whoever looks.
    assert_eq!(store.recover_claimed(2_100).await.unwrap(), 0);
    assert!(store.due_reminders(1_500, 10).await.unwrap().is_empty());
    // One that ran out was left behind by a dead process: it may have
    // been sent, so it is removed, not sent again.
    assert_eq!(store.recover_claimed(2_101).await.unwrap(), 1);
    assert!(store.due_reminders(1_500, 10).await.unwrap().is_empty());
    // Plans are never numbered twice, even after their rows are gone.
    assert_eq!(store.cancel_plan(plan, 7).await.unwrap(), 1);
    let next = store
        .set_reminders(-5, 7, &[window(-5, 7, 3_000)])
        .await
        .unwrap();
    assert!(next > plan);
    // Setting a new plan replaces the pending one.
    let newest = store
        .set_reminders(-5, 7, &[window(-5, 7, 4_000)])
        .await
        .unwrap();
    let pending = store.pending_reminders(Some(-5), 7).await.unwrap();
    assert_eq!((pending.len(), pending[0].plan), (1, newest));
    assert_eq!(store.cancel_reminders(-5, 7).await.unwrap(), 1);
    assert_eq!(store.counts().await.unwrap().reminders, 0);
}

/// Idle sessions: found, closed unless active again, with their menus.
async fn expiry(store: &Store) {
    let quiet = SessionKey { chat: 3, user: 3 };
    let busy = SessionKey { chat: -9, user: 4 };
    let waiting = SessionKey { chat: -9, user: 5 };
    store
        .save(quiet, &at("timeout", Lang::En), false, &[], 100)
        .await
        .unwrap();
    store
        .remember_menu(3, 40, 3, Posted::Menu, 100)
        .await
        .unwrap();
    store
        .remember_menu(3, 41, 3, Posted::Menu, 100)
        .await
        .unwrap();
    // A reminder is not the menu to close.
    store
        .remember_menu(3, 42, 3, Posted::Note, 100)
        .await
        .unwrap();
    store
        .save(busy, &at("timeout", Lang::Zh), false, &[], 100)
        .await
        .unwrap();
    store
        .save(waiting, &at("to_new_sms", Lang::Zh), false, &[], 100)
        .await
        .unwrap();
    store
        .set_reminders(-9, 5, &[window(-9, 5, 9_000)])
        .await
        .unwrap();
    // The person in their private chat is known to have started the bot.
    assert!(store.has_private_chat(3).await.unwrap());
    assert!(!store.has_private_chat(4).await.unwrap());
    let idle = store.idle_sessions(100, 10).await.unwrap();
    let keys: Vec<SessionKey> = idle.iter().map(|i| i.key).collect();
    assert_eq!(keys.len(), 2, "a pending reminder keeps a session alive");
    assert!(keys.contains(&quiet) && keys.contains(&busy));
    let quiet_idle = idle.iter().find(|i| i.key == quiet).unwrap();
    assert_eq!((quiet_idle.menu, quiet_idle.lang), (Some(41), Lang::En));
    // Activity after the scan keeps the session.
    store
        .save(busy, &at("reset", Lang::Zh), false, &[], 150)
        .await
        .unwrap();
    assert!(!store.expire_session(busy, 100).await.unwrap());
    assert!(store.expire_session(quiet, 100).await.unwrap());
    assert_eq!(store.load(quiet).await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap().menus, 0);
    assert_eq!(store.counts().await.unwrap().sessions, 2);
    store.forget_private_chat(3).await.unwrap();
    assert!(!store.has_private_chat(3).await.unwrap());
}

fn new_case(user: u64, chat: i64) -> NewCase {
    NewCase {
        user,
        chat,
        thread: None,
        name: "Alice".into(),
        username: Some("alice".into()),
        lang: Lang::Zh,
        node: "contact_provider".into(),
        place: "private".into(),
        summary: "- 遇到的情况：没收到短信".into(),
    }
}

/// One open case per person, found by its messages and topic, taken
/// and closed once each; closed cases go after their retention.
async fn cases(store: &Store) {
    let Opened::New(case) = store.open_case(&new_case(7, 7), 100).await.unwrap() else {
        panic!("a new case");
    };
    assert_eq!(case.place, "private");
    assert!(!case.closed);
    let again = store.open_case(&new_case(7, -100), 101).await.unwrap();
    assert_eq!(again, Opened::Existing(case.clone()));
    let Opened::New(other) = store.open_case(&new_case(8, 8), 102).await.unwrap() else {
        panic!("another person's case");
    };
    assert_ne!(other.id, case.id);
    store.set_case_post(case.id, 55, Some(501)).await.unwrap();
    store.link_case_message(-900, 55, case.id).await.unwrap();
    assert_eq!(
        store.case_of_message(-900, 55).await.unwrap(),
        Some(case.id)
    );
    assert_eq!(store.case_of_message(-900, 56).await.unwrap(), None);
    assert_eq!(store.case_of_topic(501).await.unwrap(), Some(case.id));
    let taken = store.take_case(case.id, "Ann").await.unwrap().unwrap();
    assert_eq!(taken.taken_by.as_deref(), Some("Ann"));
    assert_eq!(
        store.take_case(case.id, "Bob").await.unwrap(),
        None,
        "taken once"
    );
    assert_eq!((taken.post, taken.topic), (Some(55), Some(501)));
    assert_eq!(store.open_case_of(7).await.unwrap(), Some(taken.clone()));
    let closed = store.close_case(case.id, 200).await.unwrap().unwrap();
    assert!(closed.closed);
    assert_eq!(store.close_case(case.id, 201).await.unwrap(), None);
    assert_eq!(store.take_case(case.id, "Bob").await.unwrap(), None);
    assert_eq!(store.open_case_of(7).await.unwrap(), None);
    // A closed case's topic still names it, so a late reply is answered.
    assert_eq!(store.case_of_topic(501).await.unwrap(), Some(case.id));
    // Closed, a person may open a new one.
    assert!(matches!(
        store.open_case(&new_case(7, 7), 300).await.unwrap(),
        Opened::New(_)
    ));
    // A month after closing, the case and its links are forgotten.
    store.prune(200 + CLOSED_RETENTION_SECS).await.unwrap();
    assert!(store.case(case.id).await.unwrap().is_some());
    store.prune(201 + CLOSED_RETENTION_SECS).await.unwrap();
    assert_eq!(store.case(case.id).await.unwrap(), None);
    assert_eq!(store.case_of_message(-900, 55).await.unwrap(), None);
    assert!(
        store.case(other.id).await.unwrap().is_some(),
        "open cases stay"
    );
}

/// Facts are kept with every field, read by time, recorded with a
/// session in one write, and pruned after the longest period.
async fn facts(store: &Store) {
    let key = SessionKey { chat: 7, user: 7 };
    let step = Fact::new(1000, FactKind::Step, 42, "timeout", Lang::En).with_detail("menu");
    store
        .save(
            key,
            &at("timeout", Lang::En),
            false,
            std::slice::from_ref(&step),
            1000,
        )
        .await
        .unwrap();
    let solved = Fact::new(2000, FactKind::Solved, 42, "to_console", Lang::Zh);
    store.record(std::slice::from_ref(&solved)).await.unwrap();
    assert_eq!(
        store.facts(0).await.unwrap(),
        vec![step.clone(), solved.clone()]
    );
    assert_eq!(store.facts(1500).await.unwrap(), vec![solved.clone()]);
    let kept = 1000 + i64::from(MAX_DAYS) * 24 * 3600;
    store.prune(kept).await.unwrap();
    assert_eq!(store.facts(0).await.unwrap().len(), 2);
    store.prune(kept + 1).await.unwrap();
    assert_eq!(store.facts(0).await.unwrap(), vec![solved]);
}

/// A next-day question falls due once, and the person coming back
/// before then drops it.
async fn later(store: &Store) {
    let key = SessionKey { chat: 7, user: 7 };
    let question = Later {
        chat: 7,
        user: 7,
        thread: None,
        name: "Alice".into(),
        lang: Lang::Zh,
        node: "out_of_checks".into(),
        conv: 9,
        due_at: 1000 + LATER_SECS,
    };
    store.ask_later(&question).await.unwrap();
    // The step that asked saves at the same time: the question stays.
    store
        .save(key, &at("out_of_checks", Lang::Zh), false, &[], 1000)
        .await
        .unwrap();
    assert_eq!(
        store.due_later(1000 + LATER_SECS - 1, 10).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.due_later(1000 + LATER_SECS, 10).await.unwrap(),
        vec![question.clone()]
    );
    assert!(store.take_later(7, 7).await.unwrap());
    assert!(!store.take_later(7, 7).await.unwrap(), "asked once");
    assert_eq!(store.due_later(i64::MAX, 10).await.unwrap(), vec![]);
    // Asked and unanswered, it keeps the session open, for a day.
    let idle = store.idle_sessions(i64::MAX, 10).await.unwrap();
    assert!(idle.iter().all(|i| i.key != key), "{idle:?}");
    store.prune(1000 + 2 * LATER_SECS - 1).await.unwrap();
    assert!(store.idle_sessions(i64::MAX, 10).await.unwrap().is_empty());
    store.prune(1000 + 2 * LATER_SECS + 1).await.unwrap();
    assert_eq!(store.idle_sessions(i64::MAX, 10).await.unwrap().len(), 1);
    // Asked again, then the person is back: nothing to ask.
    store.ask_later(&question).await.unwrap();
    store
        .save(key, &at("timeout", Lang::Zh), false, &[], 1001)
        .await
        .unwrap();
    assert_eq!(store.due_later(i64::MAX, 10).await.unwrap(), vec![]);
}

/// Menu owners are forgotten after their 30 days while the bot runs, not
/// only when the store opens: the tables stay bounded.
async fn menus_pruned(store: &Store) {
    store
        .remember_menu(-100, 1, 7, Posted::Menu, 1000)
        .await
        .unwrap();
    store
        .remember_menu(-100, 2, 7, Posted::Note, 1000)
        .await
        .unwrap();
    store
        .remember_menu(-100, 3, 8, Posted::Menu, 5000)
        .await
        .unwrap();
    store.prune(1000 + MENU_RETENTION_SECS).await.unwrap();
    assert_eq!(store.counts().await.unwrap().menus, 2);
    store.prune(1001 + MENU_RETENTION_SECS).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.menus, counts.notes), (1, 0));
    assert_eq!(store.menu_owner(-100, 1).await.unwrap(), None);
    assert_eq!(store.menu_owner(-100, 3).await.unwrap(), Some(8));
}

/// Updates are recorded once, their replies saved with the step, and what
/// a process ("p") left open found by the next one ("q").
async fn inbox(store: &Store) {
    let key = SessionKey { chat: 7, user: 7 };
    assert!(
        store
            .inbox_put(10, "{\"update_id\":10}", "p", 1000)
            .await
            .unwrap()
    );
    assert!(
        store
            .inbox_put(11, "{\"update_id\":11}", "p", 1000)
            .await
            .unwrap()
    );
    // A repeat of an id is recognised, and changes nothing.
    assert!(!store.inbox_put(10, "{}", "p", 1001).await.unwrap());
    // The step for 11 saves its replies with the session, in one write.
    let answer = Answer {
        entry: 11,
        replies: "[]".to_string(),
    };
    store
        .save_answering(
            key,
            &at("nr_wait", Lang::Zh),
            false,
            &[],
            1001,
            Some(&answer),
            None,
        )
        .await
        .unwrap();
    let open = store.inbox_open("q", 2000).await.unwrap();
    assert_eq!(
        open,
        vec![
            Entry {
                id: 10,
                body: "{\"update_id\":10}".to_string(),
                replies: None
            },
            Entry {
                id: 11,
                body: "{\"update_id\":11}".to_string(),
                replies: Some("[]".to_string())
            },
        ]
    );
    store.inbox_done(&[10, 11], 1002).await.unwrap();
    assert!(store.inbox_open("q", 2000).await.unwrap().is_empty());
    // A done id is still recognised for a day, then forgotten.
    assert!(!store.inbox_put(11, "{}", "p", 1003).await.unwrap());
    // An entry never done is dropped after a day too.
    assert!(store.inbox_put(12, "{}", "p", 1003).await.unwrap());
    store.prune(1002 + INBOX_RETENTION_SECS).await.unwrap();
    assert!(!store.inbox_put(11, "{}", "p", 1004).await.unwrap());
    store.prune(1004 + INBOX_RETENTION_SECS).await.unwrap();
    assert!(store.inbox_open("q", 2000).await.unwrap().is_empty());
    assert!(store.inbox_put(11, "{}", "p", 1005).await.unwrap());
}

/// A shared store hands a process the open entries of processes whose
/// heartbeat ran out (or never ran), and leaves alone those of a live one
/// and its own. (A store one process uses takes every open entry.)
async fn inbox_takeover(store: &Store) {
    let entry = |id: i64, replies: Option<&str>| Entry {
        id,
        body: format!("{{\"update_id\":{id}}}"),
        replies: replies.map(str::to_string),
    };
    for (id, owner) in [(1, "a"), (2, "b"), (3, "c"), (4, "a")] {
        let body = entry(id, None).body;
        assert!(store.inbox_put(id, &body, owner, 100).await.unwrap());
    }
    store.heartbeat("a", 200).await.unwrap();
    store.heartbeat("b", 150).await.unwrap();
    // "b" answered 2 in its step before it stopped.
    let answer = Answer {
        entry: 2,
        replies: "[1]".to_string(),
    };
    store
        .save_answering(
            SessionKey { chat: 2, user: 2 },
            &at("menu", Lang::Zh),
            false,
            &[],
            120,
            Some(&answer),
            None,
        )
        .await
        .unwrap();
    // At 150 "b" is still alive, "c" never beat: "a" takes 3 only.
    assert_eq!(
        store.inbox_open("a", 150).await.unwrap(),
        vec![entry(3, None)]
    );
    // At 151 "b" is gone too; 3 is "a"'s now, and stays so.
    assert_eq!(
        store.inbox_open("a", 151).await.unwrap(),
        vec![entry(2, Some("[1]"))]
    );
    assert!(store.inbox_open("a", 151).await.unwrap().is_empty());
    // "d" finds every entry held by a live "a".
    assert!(store.inbox_open("d", 200).await.unwrap().is_empty());
    store.inbox_done(&[3], 201).await.unwrap();
    // "a" stopped beating: "d" takes what is still open, oldest first.
    assert_eq!(
        store.inbox_open("d", 201).await.unwrap(),
        vec![entry(1, None), entry(2, Some("[1]")), entry(4, None)]
    );
    // They are "d"'s while "d" beats, and pass on when it stops.
    store.heartbeat("d", 500).await.unwrap();
    assert!(store.inbox_open("a", 500).await.unwrap().is_empty());
    assert_eq!(store.inbox_open("a", 501).await.unwrap().len(), 3);
}

/// A session write that expects a version is made only if no other write
/// came between: compare and set, for processes sharing the store.
async fn versions(store: &Store) {
    let key = SessionKey { chat: -5, user: 9 };
    let cas = |session: Session, expected: u64, now: Instant| async move {
        store
            .save_answering(key, &session, false, &[], now, None, Some(expected))
            .await
    };
    assert_eq!(store.load_versioned(key).await.unwrap(), (None, 0));
    // Nothing stored yet: a write expecting that succeeds once.
    cas(at("menu", Lang::Zh), 0, 1).await.unwrap();
    let (session, first) = store.load_versioned(key).await.unwrap();
    assert_eq!(session, Some(at("menu", Lang::Zh)));
    assert_ne!(first, 0);
    assert!(matches!(
        cas(at("timeout", Lang::Zh), 0, 2).await,
        Err(StoreError::Conflict)
    ));
    // Two writers read the same version; the second to write loses and
    // changes nothing.
    cas(at("timeout", Lang::Zh), first, 3).await.unwrap();
    assert!(matches!(
        cas(at("not_received", Lang::En), first, 4).await,
        Err(StoreError::Conflict)
    ));
    let (session, second) = store.load_versioned(key).await.unwrap();
    assert_eq!(session, Some(at("timeout", Lang::Zh)));
    assert_ne!(second, first);
    // It reads again and writes on the new version.
    cas(at("not_received", Lang::En), second, 5).await.unwrap();
    assert_eq!(
        store.load(key).await.unwrap(),
        Some(at("not_received", Lang::En))
    );
    // A write without a version is always made.
    store
        .save(key, &at("reset", Lang::Zh), false, &[], 6)
        .await
        .unwrap();
    let (_, third) = store.load_versioned(key).await.unwrap();
    assert!(![0, first, second].contains(&third));
}

async fn private_chats_pruned(store: &Store) {
    let save = |user: u64, now: Instant| async move {
        let key = SessionKey {
            chat: user as i64,
            user,
        };
        store
            .save(key, &at("menu", Lang::Zh), false, &[], now)
            .await
            .unwrap();
    };
    save(1, 1000).await;
    save(2, 1000).await;
    // Writing again a day or more later keeps the chat a year from then
    // (a step within a day of the last sighting does not write it again).
    save(2, 1000 + 2 * 24 * 3600).await;
    store
        .prune(1000 + PRIVATE_CHAT_RETENTION_SECS)
        .await
        .unwrap();
    assert!(store.has_private_chat(1).await.unwrap());
    store
        .prune(1001 + PRIVATE_CHAT_RETENTION_SECS)
        .await
        .unwrap();
    assert!(!store.has_private_chat(1).await.unwrap());
    assert!(store.has_private_chat(2).await.unwrap());
}

/// Steps minutes apart move a session's place in the index of sessions
/// once, not each time; the idle scan still goes by the last step.
async fn idle_by_the_last_step(store: &Store) {
    let key = SessionKey { chat: 4, user: 4 };
    for now in [100, 200, 300] {
        store
            .save(key, &at("timeout", Lang::Zh), false, &[], now)
            .await
            .unwrap();
    }
    assert!(store.idle_sessions(299, 10).await.unwrap().is_empty());
    let idle = store.idle_sessions(300, 10).await.unwrap();
    assert_eq!(
        idle.iter()
            .map(|i| (i.key, i.updated_at))
            .collect::<Vec<_>>(),
        [(key, 300)]
    );
    // An hour later the place moves with the step.
    store
        .save(key, &at("timeout", Lang::Zh), false, &[], 3_900)
        .await
        .unwrap();
    assert!(store.idle_sessions(3_899, 10).await.unwrap().is_empty());
    assert!(
        !store.expire_session(key, 300).await.unwrap(),
        "active since"
    );
    assert!(store.expire_session(key, 3_900).await.unwrap());
}

/// A step's record that cannot be read is reported once, then dropped:
/// the person starts afresh instead of meeting the error each time.
async fn unreadable(store: &Store) {
    let key = SessionKey { chat: 5, user: 6 };
    let mut batch = Batch::new(0);
    batch.put("s:5:6", "not json").index("sessions", "5:6", 0);
    store.kernel().commit(batch).await.unwrap();
    assert!(matches!(store.load(key).await, Err(StoreError::Corrupt(_))));
    assert_eq!(store.load(key).await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap().sessions, 0);
}

/// Two processes on one store claim a reminder once between them, and
/// neither recovers the other's running claim.
async fn claims_race(a: &Store, b: &Store) {
    for round in 0..20 {
        let new = NewReminder {
            thread: Some(3),
            ..window(-5, 7, 100)
        };
        a.set_reminders(-5, 7, &[new.clone(), new]).await.unwrap();
        let due = b.due_reminders(100, 10).await.unwrap();
        assert_eq!(due.len(), 2, "round {round}");
        assert_eq!(due[0].thread, Some(3));
        let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
        let (won_a, won_b) = tokio::join!(
            a.claim_reminders(&ids, "a", 200),
            b.claim_reminders(&ids, "b", 200)
        );
        assert!(won_a.unwrap() ^ won_b.unwrap(), "round {round}: one wins");
        assert_eq!(b.recover_claimed(200).await.unwrap(), 0);
        a.finish_reminders(&ids).await.unwrap();
    }
    assert_eq!(a.counts().await.unwrap().reminders, 0);
}

/// Every test runs under this bound: a wedged store fails the test
/// instead of hanging it.
pub(crate) async fn within<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("the store answered within 30 s")
}

fn on(kernel: impl Kernel + 'static) -> Store {
    Store::new(Arc::new(kernel), 3600)
}

/// A store on a test server, its keys under a prefix other than the
/// default (as another deployment sharing the server would have).
fn redis_store(server: &RedisServer) -> Store {
    on(RedisKernel::open_with_prefix(&server.url(), "test:").expect("the URL parses"))
}

/// Runs each case against every kernel: `memory::<case>`,
/// `sqlite::<case>` and `redis::<case>`. Each Redis case has a server of
/// its own; without `redis-server` installed they pass, saying on stderr
/// they were skipped.
macro_rules! every_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::within(super::$case(&crate::store::Store::memory())).await;
                }
            )*
        }

        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::TempDb::new(stringify!($case));
                    let kernel = super::SqliteKernel::open(&db.0).expect("the file opens");
                    super::within(super::$case(&super::on(kernel))).await;
                }
            )*
        }

        mod redis {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(server) = super::RedisServer::start() else {
                        return;
                    };
                    super::within(super::$case(&super::redis_store(&server))).await;
                }
            )*
        }
    };
}

every_backend!(
    sessions,
    reminders,
    expiry,
    cases,
    facts,
    later,
    menus_pruned,
    inbox,
    private_chats_pruned,
    versions,
    unreadable,
    idle_by_the_last_step,
);

/// A store others may share, with a second process's handle on it.
fn shared() -> Option<(RedisServer, Store, Store)> {
    let server = RedisServer::start()?;
    let (a, b) = (redis_store(&server), redis_store(&server));
    Some((server, a, b))
}

#[tokio::test]
async fn shared_inbox_takeover() {
    let Some((_server, store, _)) = shared() else {
        return;
    };
    within(inbox_takeover(&store)).await;
}

#[tokio::test]
async fn shared_claims_race() {
    let Some((_server, a, b)) = shared() else {
        return;
    };
    within(claims_race(&a, &b)).await;
}

/// Two processes share Telegram's limits for the bot as a whole.
#[tokio::test]
async fn shared_budget_for_the_bot() {
    let Some((_server, a, b)) = shared() else {
        return;
    };
    within(async {
        let rates = Rates {
            per_second: 5,
            private_burst: 20,
            group_per_second: 20,
            group_per_minute: 20,
            second_ms: 1000,
        };
        let (a, b) = (a.budget(rates).unwrap(), b.budget(rates).unwrap());
        for (budget, chat) in [(&a, 1), (&b, 2), (&a, -3), (&b, 4), (&a, 5)] {
            assert_eq!(budget.take(chat).await.unwrap(), None, "taken");
        }
        let wait = b.take(6).await.unwrap().expect("the sixth waits");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(a.take(7).await.unwrap().is_some(), "nothing was taken");
    })
    .await;
}

/// Chats have windows of their own: a private chat's burst, a group's
/// second and minute.
#[tokio::test]
async fn shared_budget_per_chat() {
    let Some((_server, store, _)) = shared() else {
        return;
    };
    within(async {
        let rates = Rates {
            per_second: 100,
            private_burst: 2,
            group_per_second: 3,
            group_per_minute: 4,
            // Long enough that a loaded machine takes the first few
            // within one.
            second_ms: 500,
        };
        let budget = store.budget(rates).unwrap();
        let take = |chat: i64| {
            let budget = budget.clone();
            async move { budget.take(chat).await.unwrap() }
        };
        assert_eq!((take(7).await, take(7).await), (None, None));
        let wait = take(7).await.expect("the third waits");
        assert!(wait <= Duration::from_millis(1000), "{wait:?}");
        for _ in 0..3 {
            assert_eq!(take(-9).await, None);
        }
        let wait = take(-9).await.expect("the fourth waits a second");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        tokio::time::sleep(wait).await;
        assert_eq!(take(-9).await, None);
        let wait = take(-9).await.expect("the fifth waits a minute");
        assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(take(-10).await, None);
    })
    .await;
}

/// One poller per shared store: a second process is refused until the
/// first gives the lease back.
#[tokio::test]
async fn shared_a_second_process_may_not_poll() {
    let Some((_server, a, b)) = shared() else {
        return;
    };
    within(async {
        a.hold_poller().await.unwrap();
        a.hold_poller().await.unwrap();
        let Err(StoreError::InUse(place)) = b.hold_poller().await else {
            panic!("the second process is refused");
        };
        assert_eq!(place.display().to_string(), a.describe());
        a.release_poller().await.unwrap();
        b.hold_poller().await.unwrap();
        assert!(matches!(a.hold_poller().await, Err(StoreError::InUse(_))));
    })
    .await;
}

/// A memory or SQLite store shares no budget.
#[tokio::test]
async fn only_a_shared_store_has_a_budget() {
    let rates = Rates {
        per_second: 1,
        private_burst: 1,
        group_per_second: 1,
        group_per_minute: 1,
        second_ms: 1000,
    };
    assert!(Store::memory().budget(rates).is_none());
    assert!(!Store::memory().is_shared());
}

/// Redis down, hung, or never there: every call fails (none hangs or
/// panics) without showing the password.
async fn fails(store: &Store) {
    let key = SessionKey { chat: 1, user: 1 };
    let bound = |what: &str, failed: Result<(), StoreError>| {
        let e = failed.expect_err(what);
        assert!(!e.to_string().contains("pw"), "{e}");
    };
    let calls = async {
        bound("load", store.load(key).await.map(drop));
        bound(
            "save",
            store.save(key, &at("menu", Lang::Zh), false, &[], 1).await,
        );
        bound(
            "inbox_put",
            store.inbox_put(1, "{}", "p", 1).await.map(drop),
        );
        bound("inbox_open", store.inbox_open("p", 1).await.map(drop));
        bound("counts", store.counts().await.map(drop));
        bound("idle", store.idle_sessions(1, 1).await.map(drop));
        bound("claim", store.claim_reminders(&[1], "p", 1).await.map(drop));
        bound("poller", store.hold_poller().await);
        let rates = Rates {
            per_second: 1,
            private_burst: 1,
            group_per_second: 1,
            group_per_minute: 1,
            second_ms: 1000,
        };
        let budget = store.budget(rates).unwrap();
        bound("budget", budget.take(1).await.map(drop));
    };
    within(calls).await;
    assert!(!store.describe().contains("pw"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[tokio::test]
async fn redis_calls_fail_while_redis_is_down() {
    let url = format!("redis://:pw@127.0.0.1:{}/0", free_port());
    let store = on(RedisKernel::open(&url).unwrap());
    let down = within(store.load(SessionKey { chat: 1, user: 1 })).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    fails(&store).await;
}

/// Redis back after being down: calls succeed again without reopening
/// the store (the first one after may still fail).
#[tokio::test]
async fn redis_calls_succeed_again_once_redis_is_back() {
    let port = free_port();
    let store = on(RedisKernel::open(&format!("redis://127.0.0.1:{port}/0")).unwrap());
    let key = SessionKey { chat: 1, user: 1 };
    assert!(within(store.load(key)).await.is_err());
    let Some(_server) = RedisServer::start_on(port) else {
        return;
    };
    within(async {
        let mut tries = 0;
        while let Err(e) = store.save(key, &at("menu", Lang::Zh), false, &[], 1).await {
            tries += 1;
            assert!(tries < 20, "still failing: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(store.load(key).await.unwrap(), Some(at("menu", Lang::Zh)));
    })
    .await;
}

/// Redis hung (it accepts connections and never answers): the same, once
/// the timeouts have passed.
#[tokio::test]
async fn redis_calls_fail_while_redis_is_hung() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let store = on(RedisKernel::open(&format!("redis://127.0.0.1:{port}/0")).unwrap());
    let started = std::time::Instant::now();
    let failed = within(store.load(SessionKey { chat: 1, user: 1 })).await;
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    silent.abort();
}

/// Sessions and languages survive closing and reopening the file.
#[tokio::test]
async fn sqlite_sessions_survive_reopening_the_file() {
    within(async {
        let db = TempDb::new("reopen");
        let key = SessionKey { chat: 1, user: 1 };
        {
            let store = on(SqliteKernel::open(&db.0).unwrap());
            store
                .save(key, &at("mismatch", Lang::En), true, &[], 1)
                .await
                .unwrap();
        }
        let store = on(SqliteKernel::open(&db.0).unwrap());
        assert_eq!(
            store.load(key).await.unwrap(),
            Some(at("mismatch", Lang::En))
        );
        assert_eq!(store.person_lang(1).await.unwrap(), Some(Lang::En));
    })
    .await;
}

/// Another process holding the file's write lock for a while: a read goes
/// on, and a write waits for the lock (off the async workers) and then
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_waits_out_another_process_lock() {
    within(async {
        let db = TempDb::new("locked");
        let store = on(SqliteKernel::open(&db.0).unwrap());
        let (mine, theirs) = (
            SessionKey { chat: 1, user: 1 },
            SessionKey { chat: 2, user: 2 },
        );
        store
            .save(theirs, &at("reset", Lang::Zh), false, &[], 1)
            .await
            .unwrap();
        let other = rusqlite::Connection::open(&db.0).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert_eq!(
            store.load(theirs).await.unwrap(),
            Some(at("reset", Lang::Zh))
        );
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .save(mine, &at("timeout", Lang::En), false, &[], 2)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "the write did not wait for the lock");
        other.execute_batch("COMMIT").unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(
            store.load(mine).await.unwrap(),
            Some(at("timeout", Lang::En))
        );
    })
    .await;
}

#[test]
fn urls_pick_the_store() {
    assert!(open("memory").unwrap().describe().starts_with("memory"));
    // Redis opens without connecting, and never shows its password.
    let redis = open("redis://:secret@localhost:6379/2").unwrap();
    assert_eq!(redis.describe(), "redis at localhost:6379/2");
    assert!(redis.is_shared());
    assert!(
        open("rediss://user:secret@example.com:6380/0")
            .unwrap()
            .describe()
            .ends_with("(TLS)")
    );
    let Err(StoreError::Unsupported(shown)) = open("mysql://root:secret@localhost/db") else {
        panic!("only sqlite, memory and redis URLs open");
    };
    assert!(!shown.contains("secret"), "{shown}");
    let db = TempDb::new("url");
    let store = open(&format!("sqlite://{}", db.0.display())).unwrap();
    assert!(store.describe().contains("url.db"));
}

/// A file from before the kernel, a table per stored thing: everything in
/// it is there after opening, once, and the old tables are gone.
#[tokio::test]
async fn sqlite_an_old_file_is_brought_over_whole() {
    within(async {
        let db = TempDb::new("old-tables");
        let state = serde_json::to_string(&at("nr_wait", Lang::En)).unwrap();
        let old = rusqlite::Connection::open(&db.0).unwrap();
        old.execute_batch(&format!(
            "CREATE TABLE sessions (chat_id INTEGER, user_id INTEGER, state TEXT,
                 updated_at INTEGER, version INTEGER NOT NULL DEFAULT 0);
             INSERT INTO sessions VALUES (-100, 7, '{state}', 1000, 3), (5, 5, 'not json', 1000, 1);
             CREATE TABLE people (user_id INTEGER PRIMARY KEY, lang TEXT);
             INSERT INTO people VALUES (7, 'en');
             CREATE TABLE menus (chat_id, message_id, user_id, created_at);
             INSERT INTO menus VALUES (-100, 55, 7, 1000);
             CREATE TABLE notes (chat_id, message_id, user_id, created_at);
             CREATE TABLE private_chats (user_id INTEGER PRIMARY KEY, seen_at INTEGER);
             INSERT INTO private_chats VALUES (7, 1000);
             CREATE TABLE reminders (id INTEGER PRIMARY KEY AUTOINCREMENT, plan, chat_id,
                 user_id, name, lang, kind, due_at, deadline, thread_id,
                 claimed INTEGER NOT NULL DEFAULT 0, claimed_by TEXT, claimed_until INTEGER);
             INSERT INTO reminders VALUES (40, 39, -100, 7, 'Li', 'zh', 'window', 5000, 9000, 3, 0, NULL, NULL),
                 (41, 39, -100, 7, 'Li', 'zh', 'window', 1500, 9000, 3, 1, 'p', 1600);
             CREATE TABLE facts (at, kind, conv, node, detail, lang);
             INSERT INTO facts VALUES (900, 'step', 42, 'timeout', 'menu', 'en');
             CREATE TABLE later (chat_id, user_id, thread_id, name, lang, node, conv, due_at,
                 asked_at, asked INTEGER NOT NULL DEFAULT 0);
             INSERT INTO later VALUES (-100, 7, NULL, 'Li', 'zh', 'out_of_checks', 9, 90000, 3600, 0);
             CREATE TABLE cases (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id, chat_id, thread_id,
                 name, username, lang, node, place, summary, opened_at, taken_by, closed_at,
                 post, topic);
             INSERT INTO cases VALUES (12, 7, 7, NULL, 'Li', 'li', 'zh', 'contact_provider',
                 'private', '- path', 800, 'Ann', NULL, 66, 501);
             CREATE TABLE case_messages (chat_id, message_id, case_id);
             INSERT INTO case_messages VALUES (-900, 66, 12);
             CREATE TABLE inbox (update_id INTEGER PRIMARY KEY, body TEXT, replies TEXT,
                 received_at INTEGER NOT NULL, done_at INTEGER);
             INSERT INTO inbox VALUES (77, '{{\"update_id\":77}}', '[]', 1000, NULL),
                 (76, NULL, NULL, 999, 1000);"
        ))
        .unwrap();
        drop(old);

        for opening in 0..2 {
            let store = Store::sqlite(&db.0).unwrap();
            let key = SessionKey { chat: -100, user: 7 };
            assert_eq!(store.load(key).await.unwrap(), Some(at("nr_wait", Lang::En)));
            assert_eq!(store.person_lang(7).await.unwrap(), Some(Lang::En));
            assert!(store.has_private_chat(7).await.unwrap());
            assert_eq!(store.menu_owner(-100, 55).await.unwrap(), Some(7));
            let pending = store.pending_reminders(Some(-100), 7).await.unwrap();
            assert_eq!(
                pending.iter().map(|r| (r.id, r.plan, r.thread)).collect::<Vec<_>>(),
                [(40, 39, Some(3))],
                "opening {opening}"
            );
            assert_eq!(store.counts().await.unwrap().reminders, 2);
            let facts = store.facts(0).await.unwrap();
            assert_eq!(facts.len(), 1, "brought over once, opening {opening}");
            assert_eq!(facts[0].detail, "menu");
            assert_eq!(store.due_later(90000, 10).await.unwrap().len(), 1);
            let case = store.open_case_of(7).await.unwrap().expect("the open case");
            assert_eq!((case.id, case.taken_by.as_deref()), (12, Some("Ann")));
            assert_eq!(store.case_of_message(-900, 66).await.unwrap(), Some(12));
            assert_eq!(store.case_of_topic(501).await.unwrap(), Some(12));
            if opening == 0 {
                let open = store.inbox_open("q", 2000).await.unwrap();
                assert_eq!(
                    open,
                    vec![Entry {
                        id: 77,
                        body: "{\"update_id\":77}".to_string(),
                        replies: Some("[]".to_string())
                    }]
                );
                assert!(!store.inbox_put(76, "{}", "q", 1001).await.unwrap(), "a done id is known");
                // The claim ran out: recovered, not sent again.
                assert_eq!(store.recover_claimed(2000).await.unwrap(), 1);
                let next = store.set_reminders(-5, 8, &[window(-5, 8, 100)]).await.unwrap();
                assert!(next > 41, "ids go on after the old ones: {next}");
            }
        }
        let old = rusqlite::Connection::open(&db.0).unwrap();
        let left: i64 = old
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('sessions', 'reminders', 'inbox')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the old tables are gone");
    })
    .await;
}
