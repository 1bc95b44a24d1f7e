//! One test suite for everything stored — the store's own things and the features' (reminders, cases, facts) — run on every kernel: memory, a fresh SQLite file, and a fresh `redis-server` (when one is installed).

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cases::Opened;
use crate::clock::Instant;
use crate::conversation::KEEPS_OPEN;
use crate::engine::Session;
use crate::lang::Lang;
use crate::redis_server::RedisServer;
use crate::reminders::{Kind, NewReminder};
use crate::stats::store::{Waiting, later_key};
use crate::stats::{Fact, FactKind, LATER_SECS, Later, MAX_DAYS};
use crate::store::kernel::redis::RedisKernel;
use crate::store::kernel::sqlite::SqliteKernel;
use crate::store::kernel::{Batch, Kernel};
use crate::store::{
    Answer, Entry, INBOX_RETENTION_SECS, MENU_RETENTION_SECS, PRIVATE_CHAT_RETENTION_SECS, Posted,
    SessionKey, Store, StoreError, Write,
};

mod apart;
mod cases;

use cases::{case_desk, case_events, case_photos, cases, new_case};

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
        .save(key, &at("timeout", Lang::En), false, 100)
        .await
        .unwrap();
    assert_eq!(
        store.load(key).await.unwrap(),
        Some(at("timeout", Lang::En))
    );
    assert_eq!(store.person_lang(7).await.unwrap(), None);
    store
        .save(key, &at("reset", Lang::Zh), true, 100)
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
        .save(other, &at("menu", Lang::Zh), false, 100)
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
        .save(key, &Session::new(Lang::Zh), false, 100)
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
        conv: 0,
        node: String::new(),
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
    assert_eq!(store.reminder_count().await.unwrap(), 0);
}

/// Idle sessions: found, closed unless active again, with their menus.
async fn expiry(store: &Store) {
    let quiet = SessionKey { chat: 3, user: 3 };
    let busy = SessionKey { chat: -9, user: 4 };
    let waiting = SessionKey { chat: -9, user: 5 };
    store
        .save(quiet, &at("timeout", Lang::En), false, 100)
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
        .save(busy, &at("timeout", Lang::Zh), false, 100)
        .await
        .unwrap();
    store
        .save(waiting, &at("to_new_sms", Lang::Zh), false, 100)
        .await
        .unwrap();
    store
        .set_reminders(-9, 5, &[window(-9, 5, 9_000)])
        .await
        .unwrap();
    // The person in their private chat is known to have started the bot.
    assert!(store.has_private_chat(3).await.unwrap());
    assert!(!store.has_private_chat(4).await.unwrap());
    let idle = store.idle_sessions(100, 10, &KEEPS_OPEN).await.unwrap();
    let keys: Vec<SessionKey> = idle.iter().map(|i| i.key).collect();
    assert_eq!(keys.len(), 2, "a pending reminder keeps a session alive");
    assert!(keys.contains(&quiet) && keys.contains(&busy));
    let quiet_idle = idle.iter().find(|i| i.key == quiet).unwrap();
    assert_eq!((quiet_idle.menu, quiet_idle.lang), (Some(41), Lang::En));
    // Activity after the scan keeps the session.
    store
        .save(busy, &at("reset", Lang::Zh), false, 150)
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

/// What /metrics reads of the store: the open cases nobody has taken
/// (how many, and when the oldest was opened), and the inbox's entries
/// not done.
async fn waiting(store: &Store) {
    assert_eq!(store.cases_waiting().await.unwrap(), (0, None));
    let Opened::New(first) = store.open_case(&new_case(7, 7), 100).await.unwrap() else {
        panic!("a new case");
    };
    let Opened::New(second) = store.open_case(&new_case(8, 8), 150).await.unwrap() else {
        panic!("a new case");
    };
    assert_eq!(store.cases_waiting().await.unwrap(), (2, Some(100)));
    // Asked again: still one case, waiting since it was opened.
    store.open_case(&new_case(7, 7), 160).await.unwrap();
    assert_eq!(store.cases_waiting().await.unwrap(), (2, Some(100)));
    store
        .take_case(first.id, "Ann", 8, 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.cases_waiting().await.unwrap(), (1, Some(150)));
    // Closed untaken (the person ended it): no longer waiting.
    store.close_case(second.id, 170).await.unwrap().unwrap();
    store.close_case(first.id, 180).await.unwrap().unwrap();
    assert_eq!(store.cases_waiting().await.unwrap(), (0, None));

    assert_eq!(store.inbox_backlog().await.unwrap(), 0);
    assert!(store.inbox_put(30, "{}", "p", 1000).await.unwrap());
    assert!(store.inbox_put(31, "{}", "p", 1000).await.unwrap());
    assert_eq!(store.inbox_backlog().await.unwrap(), 2);
    store.inbox_done(&[30], 1001).await.unwrap();
    assert_eq!(store.inbox_backlog().await.unwrap(), 1);
}

/// Facts are kept with every field, the dialogue's version included, read
/// by time, recorded with a session in one write, and pruned after the
/// longest period.
async fn facts(store: &Store) {
    let key = SessionKey { chat: 7, user: 7 };
    let mut step = Fact::new(1000, FactKind::Step, 42, "timeout", Lang::En).with_detail("menu");
    let mut also = Batch::new(1000);
    crate::stats::store::record_into(&mut also, "v1", std::slice::from_ref(&step));
    step.version = "v1".to_string();
    let write = Write {
        remember_lang: false,
        now: 1000,
        answer: None,
        also,
    };
    let loaded = store.load_step(key).await.unwrap();
    let session = at("timeout", Lang::En);
    store
        .save_step(key, &session, write, &loaded, true)
        .await
        .unwrap();
    assert_eq!(store.load(key).await.unwrap(), Some(session));
    let mut solved = Fact::new(2000, FactKind::Solved, 42, "to_console", Lang::Zh);
    store
        .record("v2", std::slice::from_ref(&solved))
        .await
        .unwrap();
    solved.version = "v2".to_string();
    assert_eq!(
        store.facts(0).await.unwrap(),
        vec![step.clone(), solved.clone()]
    );
    assert_eq!(store.facts(1500).await.unwrap(), vec![solved.clone()]);
    let kept = 1000 + i64::from(MAX_DAYS) * 24 * 3600;
    store.prune_facts(kept).await.unwrap();
    assert_eq!(store.facts(0).await.unwrap().len(), 2);
    store.prune_facts(kept + 1).await.unwrap();
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
        .save(key, &at("out_of_checks", Lang::Zh), false, 1000)
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
    let idle = store
        .idle_sessions(i64::MAX, 10, &KEEPS_OPEN)
        .await
        .unwrap();
    assert!(idle.iter().all(|i| i.key != key), "{idle:?}");
    store.prune(1000 + 2 * LATER_SECS - 1).await.unwrap();
    assert!(
        store
            .idle_sessions(i64::MAX, 10, &KEEPS_OPEN)
            .await
            .unwrap()
            .is_empty()
    );
    store.prune(1000 + 2 * LATER_SECS + 1).await.unwrap();
    assert_eq!(
        store
            .idle_sessions(i64::MAX, 10, &KEEPS_OPEN)
            .await
            .unwrap()
            .len(),
        1
    );
    // Asked again, then the person is back: a step reads the question
    // with the session and drops it in the same write.
    store.ask_later(&question).await.unwrap();
    let loaded = store.load_step_with(key, &[later_key(key)]).await.unwrap();
    let waiting = loaded.with[0].clone().and_then(Waiting::of);
    let mut also = Batch::new(1001);
    waiting
        .expect("the question is read with the session")
        .drop_if_asked_before(&mut also, key, 1001);
    let write = Write {
        remember_lang: false,
        now: 1001,
        answer: None,
        also,
    };
    store
        .save_step(key, &at("timeout", Lang::Zh), write, &loaded, true)
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

/// Updates recorded together: each new one once (an id given twice is a
/// repeat the second time), one recorded before a repeat, and all of them
/// open until done.
async fn inbox_together(store: &Store) {
    assert!(
        store
            .inbox_put(20, "{\"update_id\":20}", "p", 1000)
            .await
            .unwrap()
    );
    let entries = [
        (21, "{\"update_id\":21}"),
        (20, "{\"update_id\":20}"),
        (22, "{\"update_id\":22}"),
        (21, "{\"update_id\":21}"),
    ];
    let new = store.inbox_put_many(&entries, "p", 1001).await.unwrap();
    assert_eq!(new, [true, false, true, false]);
    let open: Vec<i64> = store
        .inbox_open("q", 2000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(open, [20, 21, 22]);
    // Nothing new: nothing written, every one a repeat.
    let again = store
        .inbox_put_many(&entries[..2], "p", 1002)
        .await
        .unwrap();
    assert_eq!(again, [false, false]);
    let one = store
        .inbox_put_many(&[(23, "{}")], "p", 1003)
        .await
        .unwrap();
    assert_eq!(one, [true]);
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

/// A session write that expects a version is made only if no other write
/// came between: compare and set, for processes sharing the store.
async fn versions(store: &Store) {
    let key = SessionKey { chat: -5, user: 9 };
    let cas = |session: Session, expected: u64, now: Instant| async move {
        store
            .save_answering(key, &session, false, now, None, Some(expected))
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
        .save(key, &at("reset", Lang::Zh), false, 6)
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
            .save(key, &at("menu", Lang::Zh), false, now)
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
            .save(key, &at("timeout", Lang::Zh), false, now)
            .await
            .unwrap();
    }
    assert!(
        store
            .idle_sessions(299, 10, &KEEPS_OPEN)
            .await
            .unwrap()
            .is_empty()
    );
    let idle = store.idle_sessions(300, 10, &KEEPS_OPEN).await.unwrap();
    assert_eq!(
        idle.iter()
            .map(|i| (i.key, i.updated_at))
            .collect::<Vec<_>>(),
        [(key, 300)]
    );
    // An hour later the place moves with the step.
    store
        .save(key, &at("timeout", Lang::Zh), false, 3_900)
        .await
        .unwrap();
    assert!(
        store
            .idle_sessions(3_899, 10, &KEEPS_OPEN)
            .await
            .unwrap()
            .is_empty()
    );
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
    case_photos,
    case_desk,
    waiting,
    facts,
    later,
    menus_pruned,
    inbox,
    inbox_together,
    private_chats_pruned,
    versions,
    unreadable,
    idle_by_the_last_step,
    case_events,
);
