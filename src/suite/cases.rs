//! The cases wing's storage, run by the suite on every kernel: cases opened, linked, taken and closed; the desk's marks (ratings, reopening, pings); screenshots waiting for consent; and the webhook's queue of case events.

use crate::cases::{CLOSED_RETENTION_SECS, NewCase, Opened, Side};
use crate::lang::Lang;
use crate::store::Store;

pub(super) fn new_case(user: u64, chat: i64) -> NewCase {
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
        in_hours: true,
    }
}

/// One open case per person, found by its messages and topic, taken
/// and closed once each; closed cases go after their retention.
pub(super) async fn cases(store: &Store) {
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
    // The first staff answer is noted once; later ones leave it.
    let answered = store.first_answer(case.id, 150).await.unwrap().unwrap();
    assert_eq!(answered.first_answer_at, Some(150));
    assert_eq!(store.first_answer(case.id, 160).await.unwrap(), None);
    assert_eq!(
        store.case(case.id).await.unwrap().unwrap().first_answer_at,
        Some(150)
    );
    let taken = store
        .take_case(case.id, "Ann", 8, 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.taken_by.as_deref(), Some("Ann"));
    assert_eq!(
        store.take_case(case.id, "Bob", 9, 200).await.unwrap(),
        None,
        "taken once"
    );
    assert_eq!((taken.post, taken.topic), (Some(55), Some(501)));
    assert_eq!(store.open_case_of(7).await.unwrap(), Some(taken.clone()));
    let closed = store.close_case(case.id, 200).await.unwrap().unwrap();
    assert!(closed.closed);
    assert_eq!(store.close_case(case.id, 201).await.unwrap(), None);
    assert_eq!(store.take_case(case.id, "Bob", 9, 200).await.unwrap(), None);
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

/// The desk's marks on a case: a rating once, by its person, of a closed
/// case, 1 to 5; a closed case reopened in its topic unless its person
/// opened another meanwhile; each kind of ping marked once per silence.
pub(super) async fn case_desk(store: &Store) {
    use crate::cases::store::Rated;
    let Opened::New(case) = store.open_case(&new_case(7, 7), 100).await.unwrap() else {
        panic!("a new case");
    };
    store.set_case_post(case.id, 55, Some(501)).await.unwrap();
    // Nobody answered: one ping marks it, the next finds it marked.
    assert!(store.mark_nudged(case.id, None).await.unwrap());
    assert!(!store.mark_nudged(case.id, None).await.unwrap());
    // An idle ping is for a taken case waiting on staff.
    assert!(!store.mark_nudged(case.id, Some(150)).await.unwrap());
    store
        .take_case(case.id, "Ann", 8, 160)
        .await
        .unwrap()
        .unwrap();
    store
        .case_written(case.id, Side::Person, 170)
        .await
        .unwrap();
    assert!(store.mark_nudged(case.id, Some(170)).await.unwrap());
    assert!(!store.mark_nudged(case.id, Some(170)).await.unwrap());
    // The person writes again: a new silence, pinged once more.
    store
        .case_written(case.id, Side::Person, 180)
        .await
        .unwrap();
    assert!(store.mark_nudged(case.id, Some(180)).await.unwrap());
    // A staff answer leaves it waiting for the person: no idle ping.
    store.case_written(case.id, Side::Staff, 190).await.unwrap();
    assert!(!store.mark_nudged(case.id, Some(190)).await.unwrap());

    // Not rated while open, nor by another person, nor out of range.
    assert!(matches!(
        store.rate_case(case.id, 7, 4).await.unwrap(),
        Rated::Refused
    ));
    store.close_case(case.id, 200).await.unwrap().unwrap();
    assert!(!store.mark_nudged(case.id, None).await.unwrap(), "closed");
    assert!(matches!(
        store.rate_case(case.id, 8, 4).await.unwrap(),
        Rated::Refused
    ));
    for stars in [0, 6] {
        assert!(matches!(
            store.rate_case(case.id, 7, stars).await.unwrap(),
            Rated::Refused
        ));
    }
    assert!(matches!(
        store.rate_case(case.id + 100, 7, 4).await.unwrap(),
        Rated::Refused
    ));
    let Rated::Now(rated) = store.rate_case(case.id, 7, 4).await.unwrap() else {
        panic!("rated");
    };
    assert_eq!(rated.desk.rating, Some(4));
    assert!(matches!(
        store.rate_case(case.id, 7, 5).await.unwrap(),
        Rated::Already
    ));
    assert_eq!(
        store.case(case.id).await.unwrap().unwrap().desk.rating,
        Some(4)
    );

    // Reopened: open again for its person, in the same topic, among the
    // open cases, with its pings to come again; once.
    let reopened = store.reopen_case(case.id, 300).await.unwrap().unwrap();
    assert!(!reopened.closed);
    assert_eq!((reopened.post, reopened.topic), (Some(55), Some(501)));
    assert_eq!(reopened.desk.reopened, 1);
    assert_eq!(store.open_case_of(7).await.unwrap(), Some(reopened.clone()));
    let active = store.active_cases().await.unwrap();
    assert_eq!(active.iter().map(|c| c.id).collect::<Vec<_>>(), [case.id]);
    assert_eq!(store.reopen_case(case.id, 301).await.unwrap(), None);
    // Closed again, and a new case opened meanwhile: not reopened.
    store.close_case(case.id, 400).await.unwrap().unwrap();
    let Opened::New(newer) = store.open_case(&new_case(7, 7), 410).await.unwrap() else {
        panic!("a new case");
    };
    assert_eq!(store.reopen_case(case.id, 420).await.unwrap(), None);
    assert_eq!(
        store.open_case_of(7).await.unwrap().map(|c| c.id),
        Some(newer.id)
    );
    assert_eq!(store.reopen_case(case.id + 100, 420).await.unwrap(), None);
}

/// A case's screenshots wait for the person's answer: each taken once
/// and only by them, put back when it could not be sent, at most
/// `MOST_PENDING` at a time, gone after `PENDING_SECS` or when the case
/// closes.
pub(super) async fn case_photos(store: &Store) {
    use crate::cases::photos::{Kept, MOST_PENDING, PENDING_SECS};
    let Kept::Waiting(first) = store
        .keep_photo(3, 7, "f1", Some("码 <redacted>"), 100)
        .await
        .unwrap()
    else {
        panic!("kept");
    };
    let Kept::Waiting(second) = store.keep_photo(3, 7, "f2", None, 200).await.unwrap() else {
        panic!("kept");
    };
    assert_ne!(first, second);
    let waiting = store.case_photos(3, 200).await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert_eq!(waiting[0].caption.as_deref(), Some("码 <redacted>"));
    // Another person, or another case, takes nothing.
    assert_eq!(store.take_photo(3, first, 8, 300).await.unwrap(), None);
    assert_eq!(store.take_photo(4, first, 7, 300).await.unwrap(), None);
    let taken = store
        .take_photo(3, first, 7, 300)
        .await
        .unwrap()
        .expect("waiting");
    assert_eq!(taken.file_id, "f1");
    assert_eq!(
        store.take_photo(3, first, 7, 301).await.unwrap(),
        None,
        "taken once"
    );
    // A send that failed puts it back, still due to go when it would have.
    store.put_back_photo(3, taken.clone(), 302).await.unwrap();
    assert_eq!(store.case_photos(3, 302).await.unwrap().len(), 2);
    assert_eq!(
        store
            .take_photo(3, first, 7, 100 + PENDING_SECS + 1)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .case_photos(3, 100 + PENDING_SECS + 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let last = store
        .take_photo(3, second, 7, 200 + PENDING_SECS)
        .await
        .unwrap();
    assert_eq!(last.map(|p| p.file_id).as_deref(), Some("f2"));
    // At most so many wait at once.
    for n in 0..MOST_PENDING {
        let kept = store
            .keep_photo(5, 7, &format!("g{n}"), None, 1000)
            .await
            .unwrap();
        assert!(matches!(kept, Kept::Waiting(_)), "{n}");
    }
    assert_eq!(
        store.keep_photo(5, 7, "over", None, 1000).await.unwrap(),
        Kept::Full
    );
    // Closing the case forgets them all.
    store.forget_case_photos(5).await.unwrap();
    assert!(store.case_photos(5, 1000).await.unwrap().is_empty());
    // Ids are never given twice, so an old prompt never picks a new one.
    let Kept::Waiting(again) = store.keep_photo(5, 7, "h", None, 1001).await.unwrap() else {
        panic!("kept");
    };
    assert!(again > second);
    // What has expired goes at the next prune.
    store.prune(1001 + PENDING_SECS + 1).await.unwrap();
    assert!(
        store
            .case_photos(5, crate::store::ANY_TIME)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Case events wait for the webhook in the order they were queued; one is
/// claimed by one process at a time, due again when its claim lapses or
/// after a failed try, and forgotten a week after it was queued.
pub(super) async fn case_events(store: &Store) {
    use crate::cases::events::{Kind, new_id};
    use crate::cases::webhook::queue::KEPT_SECS;
    let ids: Vec<String> = (0..3).map(|_| new_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        let body = format!("{{\"n\":{n}}}");
        store
            .queue_case_event(id, 7, Kind::Message, &body, 100)
            .await
            .unwrap();
    }
    assert_eq!(store.case_events_queued().await.unwrap(), 3);
    assert_eq!(store.next_case_event().await.unwrap(), Some(100));
    assert!(
        store
            .due_case_events(99, 50)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    let due = store.due_case_events(100, 50).await.unwrap();
    let got: Vec<&str> = due.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!due.more);
    let first = &due.events[0];
    assert_eq!((first.case, first.kind.as_str()), (7, "case.message"));
    assert_eq!((first.body.as_str(), first.tries), ("{\"n\":0}", 0));
    // Two at most per look: the rest follow.
    assert!(store.due_case_events(100, 2).await.unwrap().more);

    // Claimed by one process, the others lose the race and do not see it.
    assert!(store.claim_case_event(first, "a", 100, 160).await.unwrap());
    assert!(!store.claim_case_event(first, "b", 100, 160).await.unwrap());
    let due = store.due_case_events(100, 50).await.unwrap();
    assert_eq!(due.events.len(), 2);
    assert!(due.events.iter().all(|e| e.id != first.id));
    // Given back after a failed try by the one that holds it, not by another.
    store
        .retry_case_event(&first.id, "b", 100, 105)
        .await
        .unwrap();
    assert_eq!(
        store.due_case_events(150, 50).await.unwrap().events.len(),
        2
    );
    store
        .retry_case_event(&first.id, "a", 100, 105)
        .await
        .unwrap();
    assert_eq!(
        store.due_case_events(104, 50).await.unwrap().events.len(),
        2
    );
    let due = store.due_case_events(105, 50).await.unwrap();
    assert_eq!(due.events.len(), 3);
    assert_eq!(
        (due.events[0].id.as_str(), due.events[0].tries),
        (first.id.as_str(), 1)
    );

    // Delivered: gone.
    store.remove_case_event(&first.id, 105).await.unwrap();
    assert_eq!(store.case_events_queued().await.unwrap(), 2);

    // A claim whose process died lapses, and the event is due again.
    let second = due.events[1].clone();
    assert!(
        store
            .claim_case_event(&second, "a", 105, 130)
            .await
            .unwrap()
    );
    assert_eq!(
        store.due_case_events(129, 50).await.unwrap().events.len(),
        1
    );
    let due = store.due_case_events(131, 50).await.unwrap();
    assert_eq!(due.events.len(), 2);
    assert_eq!(due.events[0].id, second.id);
    assert!(
        store
            .claim_case_event(&due.events[0], "b", 131, 190)
            .await
            .unwrap()
    );

    // A week on, what is left is forgotten.
    let later = 100 + KEPT_SECS + 1;
    let due = store.due_case_events(later, 50).await.unwrap();
    assert!(due.events.is_empty());
    assert_eq!(due.expired, 2);
    assert_eq!(store.case_events_queued().await.unwrap(), 0);
    assert_eq!(store.next_case_event().await.unwrap(), None);
}
