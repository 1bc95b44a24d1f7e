//! The checked dialogue: nodes, their menus, the categories and the UI texts, read-only and shared.
//!
//! `tree::load` builds a `Tree` from `dialogs/` and refuses a broken
//! folder, so once a `Tree` exists every lookup through it succeeds.

pub mod canned;
pub mod graph;
pub mod hours;
pub(crate) mod id;
pub mod load;
mod press;
pub mod provider;
mod raw;
pub mod report;
pub mod router;
mod routes;
pub(crate) mod ui;

use std::collections::HashMap;

pub use id::NodeId;
pub use provider::Provider;
pub use ui::{ReminderSettings, Ui, UiButton, UiCommand, UiText};

use crate::callback::Action;
use crate::lang::{Lang, Localized};
use router::Router;

/// The entry menu's id.
pub const ROOT_ID: &str = "menu";

/// The placeholder an end's text may carry for the answers chosen so far.
pub const SUMMARY_PLACEHOLDER: &str = "summary";

/// What a node's reminder button offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemindKind {
    /// The SMS has arrived: reminders before its verification window closes.
    Window,
    /// A new code is on its way: one reminder after the typical wait.
    NewCode,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub text: Localized,
    /// A few words naming the question or the steps, for the summary; without
    /// them the summary lists the answer alone.
    pub brief: Option<Localized>,
    pub kind: NodeKind,
    /// The reminder its menu offers, if any, and what it assumes.
    pub remind: Option<(RemindKind, Localized)>,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A question: one button per answer, in order.
    Question(Vec<Choice>),
    /// Remediation steps; "not solved" leads to `not_solved`, and an end
    /// where the checks run out (`final = true`) has no "not solved".
    End { not_solved: Option<NodeId> },
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub label: Localized,
    pub target: NodeId,
}

/// How many answers before `choices[i]` lead to the same node: 0 for the
/// first answer leading there.
pub fn nth_to_same_target(choices: &[Choice], i: usize) -> u8 {
    let target = choices[i].target;
    let earlier = choices[..i].iter().filter(|c| c.target == target).count();
    u8::try_from(earlier).unwrap_or(u8::MAX)
}

/// What a menu button says: an answer's own label, or a standard label of
/// `ui.toml`.
#[derive(Debug, Clone, Copy)]
pub enum Label<'t> {
    Answer(&'t Localized),
    Standard(UiButton),
}

impl<'t> Label<'t> {
    pub fn get(self, ui: &'t Ui, lang: Lang) -> &'t str {
        match self {
            Label::Answer(text) => text.get(lang),
            Label::Standard(which) => ui.button(which, lang),
        }
    }
}

/// One button of a node's menu: what it says and what pressing it does.
#[derive(Debug, Clone)]
pub struct MenuButton<'t> {
    pub label: Label<'t>,
    pub action: Action,
}

/// The whole checked dialogue, read-only and shared.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    by_id: HashMap<String, NodeId>,
    root: NodeId,
    /// The entries of the symptom categories, in the entry menu's order.
    categories: Vec<NodeId>,
    /// Each node's category entry, by position (see `category_indices`),
    /// worked out once at load: every step's figures ask for it.
    category_of: Vec<Option<NodeId>>,
    /// Where a verification window that has closed leads: the category for
    /// a timed-out SMS.
    after_window: NodeId,
    ui: Ui,
    router: Router,
    /// Which dialogue this is: see `version`.
    version: String,
    /// The provider the texts speak for, from `provider.toml`.
    provider: Provider,
    /// The support team's canned replies by name, from `canned.toml`.
    canned: std::collections::BTreeMap<String, Localized>,
}

impl Tree {
    /// The support team's canned replies, by name.
    pub fn canned(&self) -> &std::collections::BTreeMap<String, Localized> {
        &self.canned
    }

    pub fn root(&self) -> NodeId {
        self.root
    }

    /// The entry nodes of the symptom categories (`category = true`).
    pub fn categories(&self) -> &[NodeId] {
        &self.categories
    }

    /// The node a reminder whose window has closed offers to open.
    pub fn after_window(&self) -> NodeId {
        self.after_window
    }

    pub fn ui(&self) -> &Ui {
        &self.ui
    }

    /// The dialogue's version: a hash of the files it was loaded from (their
    /// names and texts, not their folder), so the built-in dialogue and a
    /// `DIALOGS_DIR` copy of it agree, and any edit makes a new one. Every
    /// fact recorded for the figures carries it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The same dialogue as the terminal console speaks it (see
    /// `Ui::for_console`).
    pub fn for_console(&self) -> Tree {
        Tree {
            ui: self.ui.for_console(),
            ..self.clone()
        }
    }

    /// The provider's profile: its fields are already in the texts; its
    /// office hours and reply time are for the handoff.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The entry of the category `node` belongs to, if any (see
    /// `category_indices`).
    pub fn category(&self, node: NodeId) -> Option<NodeId> {
        self.category_of.get(node.0).copied().flatten()
    }

    /// The id of the category entry the node named `node` belongs to.
    pub fn category_id(&self, node: &str) -> Option<&str> {
        let entry = self.category(self.get(node)?)?;
        Some(&self.node(entry).id)
    }

    pub fn get(&self, id: &str) -> Option<NodeId> {
        self.by_id.get(id).copied()
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The category of every node, by position, as an index into
    /// `categories`: one breadth-first walk from the category entries, in
    /// order, gives each node the category that reaches it first. The walk
    /// never passes the entry menu, where "not solved" often leads back
    /// to: otherwise the triage behind the menu would take the category
    /// that leads back soonest. The menu and the triage belong to none.
    pub fn category_indices(&self) -> Vec<Option<usize>> {
        category_indices(&self.nodes, self.root, &self.categories)
    }

    pub fn end_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::End { .. }))
            .count()
    }

    /// The message text of a node before placeholders are filled: what a
    /// reminder it offers assumes follows its text, and an end carries the
    /// closing advice, the official channels and the safety line below its
    /// steps: every end, so someone who reads one and leaves has seen the
    /// advice too, not only someone who presses "solved".
    pub fn body(&self, id: NodeId, lang: Lang) -> String {
        let node = self.node(id);
        let mut body = node.text.get(lang).trim_end().to_string();
        if let Some((_, assumes)) = &node.remind {
            body.push_str("\n\n");
            body.push_str(assumes.get(lang).trim_end());
        }
        if let NodeKind::End { .. } = node.kind {
            for text in [UiText::Closing, UiText::Channels, UiText::Safety] {
                body.push_str("\n\n");
                body.push_str(self.ui.text(text, lang).trim_end());
            }
        }
        body
    }

    /// Every node, one line each, for someone editing the dialogue: its
    /// id, what it is, the first line of its text in `lang` and where its
    /// answers lead — to point a button somewhere without searching.
    pub fn map(&self, lang: Lang) -> String {
        const TITLE_CHARS: usize = 40;
        let width = self.nodes.iter().map(|n| n.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (id, node) in self.nodes() {
            let kind = if id == self.root {
                "entry"
            } else if self.categories.contains(&id) {
                "category"
            } else if matches!(node.kind, NodeKind::End { .. }) {
                "end"
            } else {
                "question"
            };
            let first = node
                .text
                .get(lang)
                .trim()
                .lines()
                .next()
                .unwrap_or_default();
            let mut title: String = first.chars().take(TITLE_CHARS).collect();
            if first.chars().count() > TITLE_CHARS {
                title.push('…');
            }
            let targets: Vec<&str> = match &node.kind {
                NodeKind::Question(choices) => choices
                    .iter()
                    .map(|c| self.node(c.target).id.as_str())
                    .collect(),
                NodeKind::End { not_solved } => not_solved
                    .iter()
                    .map(|t| self.node(*t).id.as_str())
                    .collect(),
            };
            let arrow = if matches!(node.kind, NodeKind::End { .. }) {
                "not solved →"
            } else {
                "→"
            };
            // The last end leads nowhere on: nothing after its title.
            let onward = if targets.is_empty() {
                String::new()
            } else {
                format!("  {arrow} {}", targets.join(", "))
            };
            out.push_str(&format!("{:width$}  {kind:8}  {title}{onward}\n", node.id));
        }
        out
    }

    /// The buttons of a node's menu, row by row. The engine renders these
    /// and the loader checks them against Telegram's limits, so the two
    /// cannot drift apart.
    pub fn menu(&self, id: NodeId) -> Vec<Vec<MenuButton<'_>>> {
        let node = self.node(id);
        let from = &node.id;
        let go = |to: NodeId, nth: u8| Action::Go {
            from: from.clone(),
            to: self.node(to).id.clone(),
            nth,
        };
        let mut rows: Vec<Vec<MenuButton<'_>>> = match &node.kind {
            NodeKind::Question(choices) => choices
                .iter()
                .enumerate()
                .map(|(i, choice)| {
                    vec![MenuButton {
                        label: Label::Answer(&choice.label),
                        action: go(choice.target, nth_to_same_target(choices, i)),
                    }]
                })
                .collect(),
            NodeKind::End { not_solved } => {
                let solved = MenuButton {
                    label: Label::Standard(UiButton::Solved),
                    action: Action::Solved { at: from.clone() },
                };
                let not_solved = not_solved.map(|to| MenuButton {
                    label: Label::Standard(UiButton::NotSolved),
                    action: go(to, 0),
                });
                vec![std::iter::once(solved).chain(not_solved).collect()]
            }
        };
        let remind = match node.remind.as_ref().map(|(kind, _)| kind) {
            Some(RemindKind::Window) => Some((
                UiButton::RemindWindow,
                Action::RemindAsk { at: from.clone() },
            )),
            Some(RemindKind::NewCode) => Some((
                UiButton::RemindNewCode,
                Action::RemindNewCode { at: from.clone() },
            )),
            None => None,
        };
        if let Some((label, action)) = remind {
            rows.push(vec![MenuButton {
                label: Label::Standard(label),
                action,
            }]);
        }
        if id != self.root {
            rows.push(vec![
                MenuButton {
                    label: Label::Standard(UiButton::Back),
                    action: Action::Back { from: from.clone() },
                },
                MenuButton {
                    label: Label::Standard(UiButton::Restart),
                    action: Action::Restart,
                },
            ]);
        }
        rows
    }
}

/// See `Tree::category_indices`.
fn category_indices(nodes: &[Node], root: NodeId, categories: &[NodeId]) -> Vec<Option<usize>> {
    let mut owner = vec![None; nodes.len()];
    let mut queue = std::collections::VecDeque::new();
    for (i, entry) in categories.iter().enumerate() {
        if owner[entry.0].is_none() {
            owner[entry.0] = Some(i);
            queue.push_back(*entry);
        }
    }
    while let Some(at) = queue.pop_front() {
        let category = owner[at.0];
        let next: Vec<NodeId> = match &nodes[at.0].kind {
            NodeKind::Question(choices) => choices.iter().map(|c| c.target).collect(),
            NodeKind::End { not_solved } => not_solved.iter().copied().collect(),
        };
        for to in next {
            if to != root && owner[to.0].is_none() {
                owner[to.0] = category;
                queue.push_back(to);
            }
        }
    }
    owner
}
