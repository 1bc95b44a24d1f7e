//! Handing a case to the support team: what a case is, what it shares, and what a person's consent covers.
//!
//! A case carries what the person chose in the dialogue — the answers,
//! the end reached, the language and the category — with their name and a
//! link to them, and nothing they typed. Telegram is not known here: the
//! adapter posts the case and relays the messages. `open` decides opening
//! a case; `store` keeps cases on the kernel; `photos` keeps the
//! screenshots waiting for the person's consent; `nudge` pings the staff
//! about cases that wait; `events` queues what happens to a case for the
//! outgoing webhook, which `webhook` posts.

pub(crate) mod events;
pub(crate) mod nudge;
pub(crate) mod open;
pub(crate) mod photos;
pub(crate) mod store;
pub(crate) mod webhook;

use crate::clock::Instant;
use crate::engine::{Session, path_lines};
use crate::lang::Lang;
use crate::stats::category_name;
use crate::tree::Tree;

/// How many close node ids a `/send` of an unknown one is answered with.
pub(crate) const NEAR_SHOWN: usize = 3;

/// How long a closed case (and the links of its messages) is kept.
pub(crate) const CLOSED_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// A case to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub user: u64,
    /// Where the person asked: their private chat or a group.
    pub chat: i64,
    /// The forum topic they asked in.
    pub thread: Option<i32>,
    pub name: String,
    pub username: Option<String>,
    pub lang: Lang,
    /// The node they stood at.
    pub node: String,
    /// Where they asked, in words for the staff.
    pub place: String,
    /// What goes to the staff chat: the path, already written out.
    pub summary: String,
    /// Whether it is opened inside the provider's office hours (always,
    /// when the profile gives none).
    pub in_hours: bool,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    pub id: i64,
    pub user: u64,
    pub chat: i64,
    pub thread: Option<i32>,
    pub name: String,
    pub username: Option<String>,
    pub lang: Lang,
    pub node: String,
    pub place: String,
    pub summary: String,
    pub opened_at: Instant,
    /// The staff member who took it.
    pub taken_by: Option<String>,
    pub closed: bool,
    /// The case's message in the staff chat, once posted.
    pub post: Option<i32>,
    /// The case's forum topic in the staff chat, if it has one.
    pub topic: Option<i32>,
    /// Whether it was opened inside the provider's office hours; cases
    /// stored before there were hours count as inside.
    #[serde(default = "inside")]
    pub in_hours: bool,
    /// When staff first answered the person: the first staff reply relayed.
    #[serde(default)]
    pub first_answer_at: Option<Instant>,
    /// How the case stands at the desk: who answered last, nudges,
    /// the rating; all empty for cases stored before there was a desk.
    #[serde(default)]
    pub desk: Desk,
}

/// A case's life at the support desk, beside what it was opened with.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Desk {
    /// The Telegram id of the staff member who took it, to ping them.
    pub taken_by_id: Option<u64>,
    /// When it was taken.
    pub taken_at: Option<Instant>,
    /// Staff answered last: the case waits for the person.
    pub awaiting_person: bool,
    /// When the person last wrote to the case (or opened or reopened it).
    pub person_at: Option<Instant>,
    /// When staff last answered the person.
    pub staff_at: Option<Instant>,
    /// The staff chat was pinged about a case nobody answered.
    pub nudged: bool,
    /// The person's last message that the one who took the case was
    /// pinged about, so an idle case is pinged once per silence.
    pub idle_nudged: Option<Instant>,
    /// The person's rating, 1 to 5, given once.
    pub rating: Option<u8>,
    /// How often it was reopened.
    pub reopened: u32,
}

/// Where a case stands, as the person and the staff are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nobody has taken it yet.
    Open,
    /// A staff member took it and the person waits for them.
    Taken,
    /// Staff answered: it waits for the person.
    Waiting,
    Closed,
}

impl Status {
    /// Its name in the webhook's events and the logs.
    pub fn code(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Taken => "taken",
            Status::Waiting => "waiting",
            Status::Closed => "closed",
        }
    }
}

impl Case {
    pub fn status(&self) -> Status {
        if self.closed {
            Status::Closed
        } else if self.desk.awaiting_person {
            Status::Waiting
        } else if self.taken_by.is_some() {
            Status::Taken
        } else {
            Status::Open
        }
    }

    /// When the person last wrote, or the case was opened.
    pub fn person_last(&self) -> Instant {
        self.desk.person_at.unwrap_or(self.opened_at)
    }
}

/// Which side of a case wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Person,
    Staff,
}

fn inside() -> bool {
    true
}

/// What opening a case found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    New(Case),
    /// The person has an open case already: one at a time.
    Existing(Case),
}

/// The person's way through the dialogue for the staff: the category,
/// where they stand, and each answer chosen, in the staff's language.
pub(crate) fn summary(tree: &Tree, session: &Session, at: &str, staff: Lang) -> String {
    let ui = tree.ui();
    let title = |id: &str| -> String {
        let brief = tree
            .get(id)
            .and_then(|n| tree.node(n).brief.as_ref())
            .map(|b| b.get(staff).to_string());
        match brief {
            Some(brief) => format!("{brief} ({id})"),
            None => id.to_string(),
        }
    };
    let category = tree.get(at).and_then(|n| tree.category(n)).map_or_else(
        || "-".to_string(),
        |c| format!("{} ({})", category_name(tree, c, staff), tree.node(c).id),
    );
    let mut staff_view = session.clone();
    staff_view.lang = staff;
    let path = match tree.get(at) {
        Some(node) => path_lines(tree, &staff_view, node),
        None => Vec::new(),
    };
    let path = if path.is_empty() {
        ui.text(crate::tree::UiText::SummaryEmpty, staff)
            .to_string()
    } else {
        path.join("\n")
    };
    crate::markup::fill(
        ui.text(crate::tree::UiText::CaseSummary, staff),
        &[
            ("category", &category),
            ("end", &title(at)),
            ("path", &path),
        ],
    )
}
