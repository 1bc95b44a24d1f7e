//! What the team learns from the conversations: facts recorded as people go, and the figures /stats and `icp-sms-doctor stats` show.
//!
//! A fact names a node, a conversation (a number drawn when it starts,
//! never a person) and the language, so the figures hold no user id at
//! all. They are computed here from the facts of a period, the same way
//! for every store. `store` keeps the facts and the next-day questions on
//! the kernel; `later` asks those questions when they fall due.

pub(crate) mod later;
pub(crate) mod store;

use std::collections::{BTreeMap, HashMap};

use crate::clock::Instant;
use crate::lang::Lang;
use crate::tree::{NodeId, Tree, UiText};

/// How long facts are kept: the longest period /stats can show.
pub const MAX_DAYS: u32 = 366;

/// How long after "ask me tomorrow" the question comes.
pub const LATER_SECS: i64 = 24 * 3600;

/// The period /stats shows unless told otherwise.
pub const DEFAULT_DAYS: u32 = 7;

/// What happened.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A conversation began at `node`; `detail` is the entry: `command`,
    /// `link` (a deep link), `text` (free text routed) or `restart`.
    Started,
    /// An answer taken from `detail` to `node`.
    Step,
    /// An end was shown.
    Reached,
    /// "Solved" pressed at the end `node`.
    Solved,
    /// "Not solved" pressed at the end `node`.
    NotSolved,
    /// The next-day question answered: solved after all.
    LaterSolved,
    /// The next-day question answered: still not solved.
    LaterNotSolved,
    /// Reminders set (one fact per plan).
    ReminderSet,
    /// A reminder delivered.
    ReminderSent,
    /// A case handed to the support team.
    HandoffOpened,
    /// A case closed, by either side.
    HandoffClosed,
    /// Staff first answered a case; `detail` is `in:<seconds>` or
    /// `out:<seconds>`: opened inside or outside office hours, and how long
    /// it waited.
    StaffAnswered,
    /// The person rated their closed case; `node` is the end the case was
    /// opened from, `detail` `<stars>:<staff>` (`-` when nobody took it).
    CaseRated,
}

impl FactKind {
    pub const ALL: [FactKind; 13] = [
        FactKind::Started,
        FactKind::Step,
        FactKind::Reached,
        FactKind::Solved,
        FactKind::NotSolved,
        FactKind::LaterSolved,
        FactKind::LaterNotSolved,
        FactKind::ReminderSet,
        FactKind::ReminderSent,
        FactKind::HandoffOpened,
        FactKind::HandoffClosed,
        FactKind::StaffAnswered,
        FactKind::CaseRated,
    ];

    pub fn code(self) -> &'static str {
        match self {
            FactKind::Started => "started",
            FactKind::Step => "step",
            FactKind::Reached => "reached",
            FactKind::Solved => "solved",
            FactKind::NotSolved => "not_solved",
            FactKind::LaterSolved => "later_solved",
            FactKind::LaterNotSolved => "later_not_solved",
            FactKind::ReminderSet => "reminder_set",
            FactKind::ReminderSent => "reminder_sent",
            FactKind::HandoffOpened => "handoff_opened",
            FactKind::HandoffClosed => "handoff_closed",
            FactKind::StaffAnswered => "staff_answered",
            FactKind::CaseRated => "case_rated",
        }
    }

    pub fn from_code(code: &str) -> Option<FactKind> {
        FactKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// One thing that happened, as kept for the figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fact {
    pub at: Instant,
    pub kind: FactKind,
    /// The conversation it belongs to; 0 for none.
    pub conv: u64,
    /// The node it happened at, or empty.
    pub node: String,
    /// The entry of a start, the node an answer was taken from.
    pub detail: String,
    pub lang: Lang,
    /// The dialogue's version (`Tree::version`) when it happened, set as
    /// the fact is recorded; empty for facts from before versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl Fact {
    pub fn new(at: Instant, kind: FactKind, conv: u64, node: &str, lang: Lang) -> Fact {
        Fact {
            at,
            kind,
            conv,
            node: node.to_string(),
            detail: String::new(),
            lang,
            version: String::new(),
        }
    }

    pub fn with_detail(mut self, detail: &str) -> Fact {
        self.detail = detail.to_string();
        self
    }
}

/// A question for tomorrow: did it get solved in the end?
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Later {
    pub chat: i64,
    pub user: u64,
    pub thread: Option<i32>,
    /// For the mention when it goes to a group.
    pub name: String,
    pub lang: Lang,
    /// The end the person stood at when they asked.
    pub node: String,
    pub conv: u64,
    pub due_at: Instant,
}

/// A fresh conversation number: random, so it says nothing of who or when.
pub fn new_conversation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    // Kept within SQLite's signed integers, and never 0 ("none").
    (hasher.finish() >> 1).max(1)
}

/// The category of a node, by id, if it has one.
pub fn category_of(tree: &Tree, node: &str) -> Option<String> {
    tree.category_id(node).map(str::to_string)
}

/// What a category is called: the entry menu's answer that leads to it,
/// else its brief, else its id.
pub fn category_name(tree: &Tree, category: NodeId, lang: Lang) -> String {
    if let crate::tree::NodeKind::Question(choices) = &tree.node(tree.root()).kind
        && let Some(choice) = choices.iter().find(|c| c.target == category)
    {
        return choice.label.get(lang).to_string();
    }
    let node = tree.node(category);
    node.brief
        .as_ref()
        .map_or_else(|| node.id.clone(), |b| b.get(lang).to_string())
}

/// The figures of a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub days: u32,
    /// Conversations started, by (category, entry); the category is the
    /// first one the conversation entered, `-` for none.
    pub started: BTreeMap<(String, String), u64>,
    /// Conversations that showed at least one end.
    pub reached_end: u64,
    /// Per end: solved, not solved.
    pub ends: BTreeMap<String, (u64, u64)>,
    /// Where conversations not marked solved were last seen, most first.
    pub left: Vec<(String, u64)>,
    /// The next-day question: solved after all, still not solved.
    pub later: (u64, u64),
    pub reminders_set: u64,
    pub reminders_sent: u64,
    pub handoffs_opened: u64,
    pub handoffs_closed: u64,
    /// Per node: conversations that reached it, stopped there, and said
    /// solved after it.
    pub nodes: BTreeMap<String, NodeFigures>,
    /// The dialogue version these figures are of, when chosen
    /// (`of_version`), and the other versions of the period with how many
    /// facts each, most first.
    pub version: Option<String>,
    pub other_versions: Vec<(String, usize)>,
    /// How long cases waited for the first staff answer, in seconds:
    /// those opened inside office hours, and outside.
    pub waits: Waits,
    /// The ratings of closed cases, by the end a case was opened from and
    /// by who took it (`-`: nobody).
    pub ratings: Ratings,
}

/// Ratings of closed cases, 1 to 5.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ratings {
    pub by_end: BTreeMap<String, Vec<u8>>,
    pub by_staff: BTreeMap<String, Vec<u8>>,
}

impl Ratings {
    /// Reads a `CaseRated` fact.
    fn add(&mut self, end: &str, detail: &str) {
        let Some((stars, staff)) = detail.split_once(':') else {
            return;
        };
        let Some(stars) = stars
            .parse::<u8>()
            .ok()
            .filter(|s| crate::callback::RATINGS.contains(s))
        else {
            return;
        };
        self.by_end.entry(end.to_string()).or_default().push(stars);
        self.by_staff
            .entry(staff.to_string())
            .or_default()
            .push(stars);
    }

    /// The lines of one breakdown, "- name: average / count", the most
    /// rated first.
    fn lines(of: &BTreeMap<String, Vec<u8>>, name: impl Fn(&str) -> String) -> Vec<String> {
        let mut rows: Vec<(&String, &Vec<u8>)> = of.iter().collect();
        rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        rows.into_iter()
            .map(|(key, stars)| {
                let sum: u32 = stars.iter().map(|s| u32::from(*s)).sum();
                let average = f64::from(sum) / stars.len() as f64;
                format!("- {}: {average:.1} / {}", name(key), stars.len())
            })
            .collect()
    }
}

/// What people did at one node, counted in conversations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeFigures {
    /// Conversations that reached the node.
    pub reached: u64,
    /// Conversations not marked solved whose last step was here.
    pub left: u64,
    /// Conversations that reached it and said "solved" afterwards (at it
    /// or at an end further on).
    pub solved_after: u64,
}

/// How the facts of before versions are named, in the figures and when
/// asking for them.
pub const NO_VERSION: &str = "none";

/// The version a fact is listed under.
fn version_name(fact: &Fact) -> &str {
    if fact.version.is_empty() {
        NO_VERSION
    } else {
        &fact.version
    }
}

/// The dialogue versions `facts` were recorded in, with how many facts
/// each, most first.
pub fn versions(facts: &[Fact]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for fact in facts {
        *counts.entry(version_name(fact)).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(v, n)| (v.to_string(), n))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// The facts of one dialogue version (`NO_VERSION` for those of before).
pub fn of_version(facts: &[Fact], version: &str) -> Vec<Fact> {
    facts
        .iter()
        .filter(|f| version_name(f) == version)
        .cloned()
        .collect()
}

/// Waits for the first staff answer, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waits {
    pub inside: Vec<i64>,
    pub outside: Vec<i64>,
}

impl Waits {
    /// Reads a `StaffAnswered` fact's detail.
    fn add(&mut self, detail: &str) {
        let Some((when, secs)) = detail.split_once(':') else {
            return;
        };
        let Ok(secs) = secs.parse::<i64>() else {
            return;
        };
        match when {
            "in" => self.inside.push(secs),
            "out" => self.outside.push(secs),
            _ => {}
        }
    }

    /// The detail of a `StaffAnswered` fact.
    pub fn detail(in_hours: bool, secs: i64) -> String {
        format!("{}:{}", if in_hours { "in" } else { "out" }, secs.max(0))
    }
}

/// The median of some waits (the lower of the middle two), if any.
pub fn median(waits: &[i64]) -> Option<i64> {
    let mut sorted = waits.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

/// How many "left at" nodes the figures list.
const LEFT_SHOWN: usize = 5;

impl Figures {
    /// The figures of `facts` (those of the period), in `tree`'s terms.
    pub fn of(tree: &Tree, facts: &[Fact], days: u32) -> Figures {
        let mut figures = Figures {
            days,
            ..Figures::default()
        };
        // Per conversation: entry, category, last node, solved, reached an end.
        #[derive(Default)]
        struct Conv {
            entry: Option<String>,
            category: Option<String>,
            last: Option<String>,
            solved: bool,
            ended: bool,
            /// The nodes it reached, in order, each once.
            visited: Vec<String>,
            /// How many of `visited` came before its last "solved".
            solved_after: usize,
        }
        let mut convs: BTreeMap<u64, Conv> = BTreeMap::new();
        let mut ordered: Vec<&Fact> = facts.iter().collect();
        ordered.sort_by_key(|f| f.at);
        for fact in ordered {
            if fact.conv != 0
                && matches!(
                    fact.kind,
                    FactKind::Started
                        | FactKind::Step
                        | FactKind::Reached
                        | FactKind::Solved
                        | FactKind::NotSolved
                )
            {
                let conv = convs.entry(fact.conv).or_default();
                if fact.kind == FactKind::Started {
                    conv.entry = Some(fact.detail.clone());
                }
                if conv.category.is_none() {
                    conv.category = category_of(tree, &fact.node);
                }
                if !fact.node.is_empty() && !conv.visited.contains(&fact.node) {
                    conv.visited.push(fact.node.clone());
                }
                match fact.kind {
                    FactKind::Solved => {
                        conv.solved = true;
                        conv.solved_after = conv.visited.len();
                    }
                    FactKind::Reached => conv.ended = true,
                    _ => {}
                }
                conv.last = Some(fact.node.clone());
            }
            match fact.kind {
                FactKind::Solved => figures.ends.entry(fact.node.clone()).or_default().0 += 1,
                FactKind::NotSolved => figures.ends.entry(fact.node.clone()).or_default().1 += 1,
                FactKind::LaterSolved => figures.later.0 += 1,
                FactKind::LaterNotSolved => figures.later.1 += 1,
                FactKind::ReminderSet => figures.reminders_set += 1,
                FactKind::ReminderSent => figures.reminders_sent += 1,
                FactKind::HandoffOpened => figures.handoffs_opened += 1,
                FactKind::HandoffClosed => figures.handoffs_closed += 1,
                FactKind::StaffAnswered => figures.waits.add(&fact.detail),
                FactKind::CaseRated => figures.ratings.add(&fact.node, &fact.detail),
                _ => {}
            }
        }
        let mut left: HashMap<String, u64> = HashMap::new();
        for conv in convs.values() {
            // Only conversations whose start falls in the period count as
            // started; the rest still tell where people stopped.
            if let Some(entry) = &conv.entry {
                let category = conv.category.clone().unwrap_or_else(|| "-".to_string());
                *figures
                    .started
                    .entry((category, entry.clone()))
                    .or_default() += 1;
                if conv.ended {
                    figures.reached_end += 1;
                }
            }
            if !conv.solved
                && let Some(last) = &conv.last
            {
                *left.entry(last.clone()).or_default() += 1;
                figures.nodes.entry(last.clone()).or_default().left += 1;
            }
            for (i, node) in conv.visited.iter().enumerate() {
                let counts = figures.nodes.entry(node.clone()).or_default();
                counts.reached += 1;
                if i < conv.solved_after {
                    counts.solved_after += 1;
                }
            }
        }
        let mut left: Vec<(String, u64)> = left.into_iter().collect();
        left.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        left.truncate(LEFT_SHOWN);
        figures.left = left;
        figures
    }

    /// The figures of the dialogue `version` among `facts` (those of the
    /// period), naming the period's other versions.
    pub fn of_version(tree: &Tree, facts: &[Fact], days: u32, version: &str) -> Figures {
        let mut figures = Figures::of(tree, &of_version(facts, version), days);
        figures.version = Some(version.to_string());
        figures.other_versions = versions(facts)
            .into_iter()
            .filter(|(v, _)| v != version)
            .collect();
        figures
    }

    /// How many conversations started.
    pub fn conversations(&self) -> u64 {
        self.started.values().sum()
    }

    /// The figures as a message, in `ui.toml`'s words: one figure a line,
    /// node ids beside their titles so the team can find them in
    /// `dialogs/`.
    pub fn render(&self, tree: &Tree, lang: Lang) -> String {
        let ui = tree.ui();
        let title = |id: &str| match tree.get(id).and_then(|n| tree.node(n).brief.as_ref()) {
            Some(brief) => format!("{} ({id})", brief.get(lang)),
            None => id.to_string(),
        };
        let rate = |solved: u64, not: u64| -> String {
            let total = solved + not;
            match (solved * 100).checked_div(total) {
                Some(percent) => format!("{solved}/{total} ({percent}%)"),
                None => "—".to_string(),
            }
        };
        let entry = |e: &str| -> String {
            let text = match e {
                "command" => UiText::StatsEntryCommand,
                "link" => UiText::StatsEntryLink,
                "text" => UiText::StatsEntryText,
                "restart" => UiText::StatsEntryRestart,
                other => return other.to_string(),
            };
            ui.text(text, lang).to_string()
        };
        let or_none = |lines: Vec<String>| -> String {
            if lines.is_empty() {
                format!("- {}", ui.text(UiText::StatsNone, lang))
            } else {
                lines.join("\n")
            }
        };
        let mut by_category: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_entry: BTreeMap<&str, u64> = BTreeMap::new();
        for ((category, e), n) in &self.started {
            *by_category.entry(category).or_default() += n;
            *by_entry.entry(e).or_default() += n;
        }
        // Categories in the entry menu's order, then "none".
        let mut categories: Vec<String> = tree
            .categories()
            .iter()
            .filter_map(|category| {
                let id = tree.node(*category).id.as_str();
                let n = by_category.get(id)?;
                let entries: Vec<String> = self
                    .started
                    .iter()
                    .filter(|((c, _), _)| c == id)
                    .map(|((_, e), n)| format!("{} {n}", entry(e)))
                    .collect();
                let name = category_name(tree, *category, lang);
                Some(format!("- {name} ({id}): {n} ({})", entries.join(", ")))
            })
            .collect();
        if let Some(n) = by_category.get("-") {
            categories.push(format!("- {}: {n}", ui.text(UiText::StatsNoCategory, lang)));
        }
        let entries: Vec<String> = by_entry
            .iter()
            .map(|(e, n)| format!("{} {n}", entry(e)))
            .collect();
        let mut ends: Vec<(&String, &(u64, u64))> = self.ends.iter().collect();
        ends.sort_by(|a, b| (b.1.0 + b.1.1).cmp(&(a.1.0 + a.1.1)).then(a.0.cmp(b.0)));
        let ends: Vec<String> = ends
            .into_iter()
            .map(|(end, (solved, not))| format!("- {}: {}", title(end), rate(*solved, *not)))
            .collect();
        let left: Vec<String> = self
            .left
            .iter()
            .map(|(node, n)| format!("- {}: {n}", title(node)))
            .collect();
        let figures = [
            ("days", self.days.to_string()),
            ("started", self.conversations().to_string()),
            ("categories", or_none(categories)),
            ("entries", entries.join(", ")),
            ("ended", self.reached_end.to_string()),
            ("ends", or_none(ends)),
            ("later", rate(self.later.0, self.later.1)),
            ("left", or_none(left)),
            ("reminders_set", self.reminders_set.to_string()),
            ("reminders_sent", self.reminders_sent.to_string()),
            ("opened", self.handoffs_opened.to_string()),
            ("closed", self.handoffs_closed.to_string()),
        ];
        let values: Vec<(&str, &str)> = figures.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut out = String::new();
        if let Some(version) = &self.version {
            let mut line =
                crate::markup::fill(ui.text(UiText::StatsVersion, lang), &[("version", version)]);
            if !self.other_versions.is_empty() {
                let others: Vec<String> = self
                    .other_versions
                    .iter()
                    .map(|(v, n)| format!("{v} ×{n}"))
                    .collect();
                line.push_str(&crate::markup::fill(
                    ui.text(UiText::StatsVersionsOther, lang),
                    &[("versions", &others.join(", "))],
                ));
            }
            out.push_str(&line);
            out.push_str("\n\n");
        }
        out.push_str(&crate::markup::fill(ui.text(UiText::Stats, lang), &values));
        out.push('\n');
        out.push_str(&self.render_waits(tree, lang));
        if !self.ratings.by_end.is_empty() {
            out.push_str("\n\n");
            out.push_str(&crate::markup::fill(
                ui.text(UiText::StatsRatings, lang),
                &[
                    (
                        "ends",
                        &or_none(Ratings::lines(&self.ratings.by_end, title)),
                    ),
                    (
                        "staff",
                        &or_none(Ratings::lines(&self.ratings.by_staff, |s| {
                            if s == "-" {
                                ui.text(UiText::StatsNone, lang).to_string()
                            } else {
                                s.to_string()
                            }
                        })),
                    ),
                ],
            ));
        }
        // Each node reached, the most reached first, in the tree's order
        // among equals.
        let order: HashMap<&str, usize> = tree
            .nodes()
            .enumerate()
            .map(|(i, (_, node))| (node.id.as_str(), i))
            .collect();
        let mut nodes: Vec<(usize, &String, &NodeFigures)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.reached > 0)
            .map(|(id, n)| (order.get(id.as_str()).copied().unwrap_or(usize::MAX), id, n))
            .collect();
        nodes.sort_by(|a, b| b.2.reached.cmp(&a.2.reached).then(a.0.cmp(&b.0)));
        let nodes: Vec<String> = nodes
            .into_iter()
            .map(|(_, id, n)| {
                format!(
                    "- {}: {} / {} / {}",
                    title(id),
                    n.reached,
                    n.left,
                    n.solved_after
                )
            })
            .collect();
        out.push_str("\n\n");
        out.push_str(&crate::markup::fill(
            ui.text(UiText::StatsNodes, lang),
            &[("nodes", &or_none(nodes))],
        ));
        out
    }

    /// The line of the waits for a first staff answer: median and count,
    /// inside office hours and outside.
    fn render_waits(&self, tree: &Tree, lang: Lang) -> String {
        let ui = tree.ui();
        let wait = |waits: &[i64]| match median(waits) {
            Some(m) => crate::markup::fill(
                ui.text(UiText::StatsWait, lang),
                &[
                    ("median", &wait_words(m, lang)),
                    ("count", &waits.len().to_string()),
                ],
            ),
            None => ui.text(UiText::StatsNone, lang).to_string(),
        };
        crate::markup::fill(
            ui.text(UiText::StatsWaits, lang),
            &[
                ("inside", &wait(&self.waits.inside)),
                ("outside", &wait(&self.waits.outside)),
            ],
        )
    }
}

/// A wait in minutes (rounded up), in words.
fn wait_words(secs: i64, lang: Lang) -> String {
    let minutes = u32::try_from((secs + 59) / 60).unwrap_or(u32::MAX);
    crate::tree::provider::minutes(minutes, lang)
}

/// How often each answer was taken and each end answered, for the
/// picture of the tree.
pub fn usage(tree: &Tree, facts: &[Fact]) -> crate::tree::graph::Usage {
    let mut usage = crate::tree::graph::Usage::default();
    for (node, n) in Figures::of(tree, facts, 0).nodes {
        usage.nodes.insert(
            node,
            crate::tree::graph::NodeUse {
                reached: n.reached,
                left: n.left,
                solved_after: n.solved_after,
            },
        );
    }
    for fact in facts {
        match fact.kind {
            FactKind::Step => {
                *usage
                    .edges
                    .entry((fact.detail.clone(), fact.node.clone()))
                    .or_default() += 1;
            }
            FactKind::Solved => usage.ends.entry(fact.node.clone()).or_default().0 += 1,
            FactKind::NotSolved => usage.ends.entry(fact.node.clone()).or_default().1 += 1,
            _ => {}
        }
    }
    usage
}

#[cfg(test)]
mod wait_tests {
    use super::*;

    #[test]
    fn the_median_wait_is_the_lower_middle_and_bad_details_are_skipped() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[300]), Some(300));
        assert_eq!(median(&[900, 60, 300]), Some(300));
        assert_eq!(median(&[900, 60]), Some(60));
        let mut waits = Waits::default();
        for detail in ["in:60", "out:7200", "in:x", "later:5", "", "out:30"] {
            waits.add(detail);
        }
        assert_eq!(waits.inside, [60]);
        assert_eq!(waits.outside, [7200, 30]);
        assert_eq!(Waits::detail(false, -5), "out:0");
    }
}
