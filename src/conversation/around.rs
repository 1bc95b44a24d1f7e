//! What a step adds around the dialogue: the offers at an end beyond the tree, and the facts the figures are made of.

use super::decide::{Context, is_end};
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{Button, Command, Event, Reply, Session, button};
use crate::metrics::Stage;
use crate::stats::{Fact, FactKind, categories_by_node, category_of, new_conversation};
use crate::tree::{Tree, UiButton};

/// Adds to an end's menu what the bot offers beyond the dialogue: a
/// person to talk to (with a support chat), and, for someone whom "not
/// solved" brought there, a question tomorrow.
pub(super) fn offer_more(ctx: &Context<'_>, session: &Session, replies: &mut [Reply]) {
    let tree = ctx.tree;
    let ui = tree.ui();
    let lang = session.lang;
    let Some(at) = session.node.as_deref() else {
        return;
    };
    if !is_end(tree, at) {
        return;
    }
    let after_not_solved = session.history.last().is_some_and(|h| is_end(tree, h));
    for reply in replies
        .iter_mut()
        .filter(|r| r.node.as_deref() == Some(at) && !r.buttons.is_empty())
    {
        let mut extra: Vec<Vec<Button>> = Vec::new();
        if ctx.support {
            extra.push(vec![button(
                ui.button(UiButton::Handoff, lang),
                Action::Handoff { at: at.to_string() },
            )]);
        }
        if ctx.asks_later && after_not_solved {
            extra.push(vec![button(
                ui.button(UiButton::AskLater, lang),
                Action::Later { at: at.to_string() },
            )]);
        }
        // Above Back and Start over, which stay last.
        let last = reply.buttons.len().saturating_sub(1);
        reply.buttons.splice(last..last, extra);
    }
}

/// What a step leaves for the figures: a conversation started (under a
/// new number), an answer taken, an end reached, solved or not. Only
/// node ids and the language: nothing typed, nobody named.
pub(super) fn facts_of(
    tree: &Tree,
    before: Option<&str>,
    next: &mut Session,
    event: &Event<'_>,
    carried: bool,
    now: Instant,
) -> Vec<Fact> {
    let lang = next.lang;
    let mut facts = Vec::new();
    let moved = next.node.as_deref() != before;
    let action = match event {
        Event::Press(action) => *action,
        _ => None,
    };
    let entry = match (event, action) {
        (Event::Command(Command::Start(Some(_))), _) if carried || !moved => None,
        (Event::Command(Command::Start(Some(_))), _) => Some("link"),
        (Event::Command(Command::Start(None) | Command::Diagnose), _) => Some("command"),
        (_, Some(Action::Restart)) => Some("restart"),
        (_, Some(Action::Jump { .. })) => Some("text"),
        (Event::Text(_) | Event::GroupText(_), _) if moved && next.history.is_empty() => {
            Some("text")
        }
        _ => None,
    };
    if let (Some(entry), Some(node)) = (entry, next.node.as_deref()) {
        next.conv = new_conversation();
        facts.push(Fact::new(now, FactKind::Started, next.conv, node, lang).with_detail(entry));
    } else if next.conv == 0 && next.node.is_some() {
        // A conversation from before numbers were drawn.
        next.conv = new_conversation();
    }
    let conv = next.conv;
    match action {
        Some(Action::Go { from, to, .. }) if next.node.as_deref() == Some(to.as_str()) => {
            if is_end(tree, from) {
                facts.push(Fact::new(now, FactKind::NotSolved, conv, from, lang));
            }
            facts.push(Fact::new(now, FactKind::Step, conv, to, lang).with_detail(from));
        }
        Some(Action::Solved { at }) if next.node.is_none() && is_end(tree, at) => {
            facts.push(Fact::new(now, FactKind::Solved, conv, at, lang));
        }
        Some(Action::LaterAnswer { solved, at }) if is_end(tree, at) => {
            let kind = if *solved {
                FactKind::LaterSolved
            } else {
                FactKind::LaterNotSolved
            };
            facts.push(Fact::new(now, kind, conv, at, lang));
        }
        _ => {}
    }
    // The next-day answer puts the person back at the end they asked
    // from: no new visit.
    let returned = matches!(action, Some(Action::LaterAnswer { .. }));
    if moved
        && !returned
        && let Some(node) = next.node.as_deref().filter(|n| is_end(tree, n))
    {
        facts.push(Fact::new(now, FactKind::Reached, conv, node, lang));
    }
    facts
}

/// The funnel stages a saved step's facts reach, each with its category
/// (the category entry's node id, `-` for a node in none), for /metrics:
/// a category entered (a conversation started inside it, or an answer
/// taken into its entry from outside it), an end reached, solved, not
/// solved. A start at the menu counts once a category is chosen.
pub(super) fn funnel_of(tree: &Tree, facts: &[Fact]) -> Vec<(Stage, String)> {
    let entry = |node: &str| {
        tree.get(node)
            .is_some_and(|n| tree.categories().contains(&n))
    };
    let counted = |f: &Fact| match f.kind {
        FactKind::Started | FactKind::Reached | FactKind::Solved | FactKind::NotSolved => true,
        FactKind::Step => entry(&f.node),
        _ => false,
    };
    if !facts.iter().any(counted) {
        return Vec::new();
    }
    let categories = categories_by_node(tree);
    let category = |node: &str| category_of(tree, &categories, node);
    let mut stages = Vec::new();
    for fact in facts.iter().filter(|f| counted(f)) {
        let stage = match fact.kind {
            FactKind::Started => Stage::Started,
            FactKind::Step if category(&fact.detail) != category(&fact.node) => Stage::Started,
            FactKind::Reached => Stage::EndReached,
            FactKind::Solved => Stage::Solved,
            FactKind::NotSolved => Stage::NotSolved,
            _ => continue,
        };
        match category(&fact.node) {
            Some(category) => stages.push((stage, category)),
            // A start at the menu: counted when a category is entered.
            None if stage == Stage::Started => {}
            None => stages.push((stage, "-".to_string())),
        }
    }
    stages
}
