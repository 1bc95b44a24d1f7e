//! A case's events for the outgoing webhook — opened, a message, taken, closed, rated, reopened — as the JSON a receiver reads, with a stable, versioned schema, queued in the store to be posted.
//!
//! Each place where a case changes makes a `CaseEvent` from the case
//! (`CaseEvent::new` and its builder methods) and hands it to `emit`, which
//! writes it to the queue with one store write when a webhook is
//! configured and does nothing otherwise; `webhook.rs` posts what is
//! queued. The body is made once, when the event is queued, so every try
//! posts the same bytes. `docs/case-webhook.md` documents every field.
//!
//! What a body holds is what the staff chat shows of the case, never more:
//! the person's Telegram id, name and username, where they asked, the
//! dialogue's node, and the text of a relayed message as relayed. Numbers
//! shaped like a code, a phone or an ID number, which the log's redaction
//! hides, are `<redacted>` here too, wherever they stand.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::Case;
use crate::app::App;
use crate::clock::Instant;
use crate::redact::personal_numbers;

/// The schema's version, the body's `schema`: raised only when a field
/// changes meaning or goes; fields may be added within a version.
pub(crate) const SCHEMA: u32 = 1;

/// The longest text a `message` event carries, in UTF-16 units as
/// Telegram counts them: the most the staff chat or the person is shown of
/// one message (a longer one is cut there, and here, with "…").
pub(crate) const MAX_TEXT_UNITS: usize = 3500;

/// What happened to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Opened, and posted to the staff chat.
    Opened,
    /// A message relayed, either way.
    Message,
    /// Taken by a member of the staff.
    Taken,
    /// Closed, by the staff or the person.
    Closed,
    /// Rated by the person after it closed.
    Rated,
    /// Opened again by the person after it closed.
    Reopened,
}

impl Kind {
    /// The body's `type`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Opened => "case.opened",
            Kind::Message => "case.message",
            Kind::Taken => "case.taken",
            Kind::Closed => "case.closed",
            Kind::Rated => "case.rated",
            Kind::Reopened => "case.reopened",
        }
    }
}

/// The case's status, as the body's `case.status` gives it: `open`,
/// `taken`, `waiting` (for the person, once staff answered) or `closed`.
pub(crate) fn status_of(case: &Case) -> &'static str {
    case.status().code()
}

/// An event about a case, ready to be queued: the case as it stands after
/// the change, and what the kind adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaseEvent {
    kind: Kind,
    case: CaseView,
    data: Data,
}

impl CaseEvent {
    /// An event of `kind` about `case`, as it stands now.
    pub(crate) fn new(kind: Kind, case: &Case) -> CaseEvent {
        CaseEvent {
            kind,
            case: CaseView::of(case),
            data: Data::default(),
        }
    }

    /// Done by a member of the staff, named as Telegram names them (for an
    /// anonymous administrator, the staff chat's title).
    pub(crate) fn by_staff(mut self, name: &str) -> CaseEvent {
        self.data.side = Some(Side::Staff);
        self.data.by = Some(clean(name).into_owned());
        self
    }

    /// Done by the person whose case it is.
    pub(crate) fn by_person(mut self) -> CaseEvent {
        self.data.side = Some(Side::Person);
        self.data.by = Some(PERSON.to_string());
        self
    }

    /// The text of a relayed message, as relayed: cut to `MAX_TEXT_UNITS`
    /// with "…", personal numbers `<redacted>`.
    pub(crate) fn text(mut self, text: &str) -> CaseEvent {
        let (kept, cut) = crate::markup::truncate_utf16(text, MAX_TEXT_UNITS);
        let mut text = clean(kept).into_owned();
        if cut {
            text.push('…');
        }
        self.data.text = Some(text);
        self
    }

    /// A screenshot relayed, with its caption as `text` when it has one;
    /// the picture itself never travels.
    pub(crate) fn photo(mut self, caption: Option<&str>) -> CaseEvent {
        self.data.photo = true;
        match caption.map(str::trim).filter(|c| !c.is_empty()) {
            Some(caption) => self.text(caption),
            None => self,
        }
    }

    /// The person's rating, from 1 to 5 stars.
    pub(crate) fn stars(mut self, stars: u8) -> CaseEvent {
        self.data.stars = Some(stars);
        self
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The case's id.
    pub(crate) fn case(&self) -> i64 {
        self.case.id
    }

    /// The body posted, with its id and the time it happened.
    pub(crate) fn body(&self, id: &str, at: Instant) -> String {
        let body = Body {
            schema: SCHEMA,
            id,
            kind: self.kind.name(),
            at: rfc3339(at),
            case: &self.case,
            data: &self.data,
        };
        // Strings, numbers and options only: it always serializes.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

/// `by` for what the person did.
const PERSON: &str = "person";

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Person,
    Staff,
}

/// What a kind adds: absent fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Data {
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<Side>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stars: Option<u8>,
    /// A screenshot was relayed (its caption, if any, is `text`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    photo: bool,
}

/// The case as the body gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct CaseView {
    id: i64,
    status: &'static str,
    lang: &'static str,
    /// The node of the dialogue the person stood at.
    node: String,
    /// Where they asked, in words for the staff.
    place: String,
    opened_at: String,
    taken_by: Option<String>,
    person: Person,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Person {
    /// Their Telegram user id.
    id: u64,
    name: String,
    username: Option<String>,
}

impl CaseView {
    fn of(case: &Case) -> CaseView {
        CaseView {
            id: case.id,
            status: status_of(case),
            lang: case.lang.code(),
            node: case.node.clone(),
            place: clean(&case.place).into_owned(),
            opened_at: rfc3339(case.opened_at),
            taken_by: case.taken_by.as_deref().map(|by| clean(by).into_owned()),
            person: Person {
                id: case.user,
                name: clean(&case.name).into_owned(),
                username: case.username.clone(),
            },
        }
    }
}

/// The body, fields in the order the docs give them.
#[derive(Serialize)]
struct Body<'a> {
    schema: u32,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    at: String,
    case: &'a CaseView,
    data: &'a Data,
}

/// Free text as it leaves the bot: personal numbers `<redacted>`.
fn clean(text: &str) -> Cow<'_, str> {
    personal_numbers(text)
}

/// An instant as RFC 3339 in UTC, to the second: `2026-11-29T02:40:00Z`.
pub(crate) fn rfc3339(at: Instant) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A new event id: 32 hex digits, unique across processes and stores (a
/// receiver dedupes by it, so ids must not start again with a new store).
/// It begins with the microseconds of the system clock, kept rising
/// within this process (two ids made in one microsecond take the next), so
/// ids sort in the order they were made, which is the queue's order within
/// a second.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static LAST_MICROS: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let rising = |last: u64| Some(now.max(last + 1));
    let micros = match LAST_MICROS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, rising) {
        Ok(last) | Err(last) => now.max(last + 1),
    };
    let mut random = [0u8; 8];
    let tail = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random) {
        Ok(()) => u64::from_be_bytes(random),
        // No system randomness: this process's id and a count still tell
        // its events apart from any other's.
        Err(_) => (u64::from(std::process::id()) << 32) | COUNTER.fetch_add(1, Ordering::Relaxed),
    };
    format!("{micros:016x}{tail:016x}")
}

/// Queues `event` for the case webhook, when one is configured: one store
/// write, then the courier is woken. A failure is logged and counted as
/// an event given up, never returned: the conversation goes on.
pub(crate) async fn emit(app: &App, event: CaseEvent) {
    if app.settings.case_webhook.is_none() {
        return;
    }
    let (id, now) = (new_id(), app.clock.now());
    let body = event.body(&id, now);
    match app
        .store
        .queue_case_event(&id, event.case(), event.kind(), &body, now)
        .await
    {
        Ok(()) => app.case_events.notify_one(),
        Err(e) => {
            app.metrics.case_events.given_up.inc();
            log::error!(
                "case {}: its {} event could not be queued for the webhook, so it is lost: {e}",
                event.case(),
                event.kind().name()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::lang::Lang;

    fn case() -> Case {
        Case {
            id: 12,
            user: 7_012_345_678,
            chat: 7_012_345_678,
            thread: None,
            name: "Alice 13812345678".into(),
            username: Some("alice".into()),
            lang: Lang::En,
            node: "nr_not_submitted".into(),
            place: "private chat".into(),
            summary: "the path".into(),
            opened_at: 1_795_920_000,
            taken_by: None,
            closed: false,
            post: Some(5),
            topic: None,
            in_hours: true,
            first_answer_at: None,
            desk: Default::default(),
        }
    }

    fn parsed(event: &CaseEvent) -> Value {
        serde_json::from_str(&event.body("00ab", 1_795_920_060)).expect("JSON")
    }

    #[test]
    fn an_opened_case_has_every_field_of_the_schema_in_order() {
        let body = CaseEvent::new(Kind::Opened, &case()).body("00ab", 1_795_920_060);
        assert_eq!(
            body,
            r#"{"schema":1,"id":"00ab","type":"case.opened","at":"2026-11-29T02:41:00Z","case":{"id":12,"status":"open","lang":"en","node":"nr_not_submitted","place":"private chat","opened_at":"2026-11-29T02:40:00Z","taken_by":null,"person":{"id":7012345678,"name":"Alice <redacted>","username":"alice"}},"data":{}}"#
        );
    }

    #[test]
    fn each_kind_adds_what_it_says() {
        let mut taken = case();
        taken.taken_by = Some("Ann".into());
        let event = CaseEvent::new(Kind::Taken, &taken).by_staff("Ann");
        let body = parsed(&event);
        assert_eq!(body["type"], "case.taken");
        assert_eq!(body["case"]["status"], "taken");
        assert_eq!(body["case"]["taken_by"], "Ann");
        assert_eq!(body["data"], json!({"side": "staff", "by": "Ann"}));

        let message = CaseEvent::new(Kind::Message, &taken)
            .by_staff("Ann")
            .text("call 13812345678 <b>");
        assert_eq!(
            parsed(&message)["data"],
            json!({"side": "staff", "by": "Ann", "text": "call <redacted> <b>"})
        );
        let from_person = CaseEvent::new(Kind::Message, &taken)
            .by_person()
            .text("still no SMS");
        assert_eq!(
            parsed(&from_person)["data"],
            json!({"side": "person", "by": "person", "text": "still no SMS"})
        );

        // A screenshot: marked, its caption as the text, or none.
        let shot = CaseEvent::new(Kind::Message, &taken)
            .by_person()
            .photo(Some(" code 654321 "));
        assert_eq!(
            parsed(&shot)["data"],
            json!({"side": "person", "by": "person", "text": "code <redacted>", "photo": true})
        );
        let bare = CaseEvent::new(Kind::Message, &taken)
            .by_staff("Ann")
            .photo(Some("  "));
        assert_eq!(
            parsed(&bare)["data"],
            json!({"side": "staff", "by": "Ann", "photo": true})
        );

        let mut closed = taken.clone();
        closed.closed = true;
        let event = CaseEvent::new(Kind::Closed, &closed).by_person();
        let body = parsed(&event);
        assert_eq!(body["case"]["status"], "closed");
        assert_eq!(body["data"], json!({"side": "person", "by": "person"}));

        let rated = CaseEvent::new(Kind::Rated, &closed).by_person().stars(4);
        assert_eq!(parsed(&rated)["data"]["stars"], 4);
        let reopened = CaseEvent::new(Kind::Reopened, &case()).by_person();
        assert_eq!(parsed(&reopened)["type"], "case.reopened");
    }

    #[test]
    fn the_status_is_closed_then_taken_then_open() {
        let mut case = case();
        assert_eq!(status_of(&case), "open");
        case.taken_by = Some("Ann".into());
        assert_eq!(status_of(&case), "taken");
        case.closed = true;
        assert_eq!(status_of(&case), "closed");
    }

    #[test]
    fn a_long_text_is_cut_as_relayed() {
        let long = "好".repeat(MAX_TEXT_UNITS + 10);
        let event = CaseEvent::new(Kind::Message, &case()).text(&long);
        let text = parsed(&event)["data"]["text"]
            .as_str()
            .expect("text")
            .to_string();
        assert_eq!(text.chars().count(), MAX_TEXT_UNITS + 1);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn ids_are_unique_and_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 32));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        // Unique, and already in order: made in one microsecond or not.
        assert_eq!(sorted, ids);
        assert!(ids.windows(2).all(|w| w[0][..16] < w[1][..16]));
    }

    #[test]
    fn every_kind_has_its_own_type() {
        let all = [
            Kind::Opened,
            Kind::Message,
            Kind::Taken,
            Kind::Closed,
            Kind::Rated,
            Kind::Reopened,
        ];
        let mut names: Vec<&str> = all.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 6);
        assert!(names.iter().all(|n| n.starts_with("case.")));
    }
}
