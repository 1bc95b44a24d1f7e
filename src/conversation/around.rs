//! What a step adds around the dialogue: the offers at an end beyond the tree, and the facts the figures are made of.

use super::decide::{Context, is_end};
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{Button, Command, Event, Reply, Session, button};
use crate::metrics::Stage;
use crate::stats::{Fact, FactKind, category_of, new_conversation};
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
/// (a category entry's node id, `-` for none), for /metrics: a category
/// entered (a conversation started inside it, or an answer taken into it
/// from outside every category: the menu, the "not sure" questions), an
/// end reached, solved, not solved. An end belongs to the conversation's
/// category, the first its path entered (`before`'s when "solved" has
/// cleared the path), so an end several categories share is counted in
/// the one the person came through.
pub(super) fn funnel_of(
    tree: &Tree,
    before: Option<&Session>,
    next: &Session,
    facts: &[Fact],
) -> Vec<(Stage, String)> {
    let counted = |f: &Fact| {
        matches!(
            f.kind,
            FactKind::Started
                | FactKind::Step
                | FactKind::Reached
                | FactKind::Solved
                | FactKind::NotSolved
        )
    };
    if !facts.iter().any(counted) {
        return Vec::new();
    }
    let category = |node: &str| category_of(tree, node);
    let path = |s: &Session| {
        let mut nodes: Vec<String> = s.history.clone();
        nodes.extend(s.node.clone());
        nodes
    };
    // A step that starts a conversation owes nothing to the one before.
    let started = facts.iter().any(|f| f.kind == FactKind::Started);
    let earlier = before.filter(|_| !started).map(path).unwrap_or_default();
    let conversation = path(next)
        .iter()
        .chain(earlier.iter())
        .find_map(|node| category(node));
    let mut stages = Vec::new();
    for fact in facts.iter().filter(|f| counted(f)) {
        let (stage, at) = match fact.kind {
            FactKind::Started => (Stage::Started, category(&fact.node)),
            FactKind::Step if category(&fact.detail).is_none() => {
                (Stage::Started, category(&fact.node))
            }
            FactKind::Reached => (Stage::EndReached, conversation.clone()),
            FactKind::Solved => (Stage::Solved, conversation.clone()),
            FactKind::NotSolved => (Stage::NotSolved, conversation.clone()),
            _ => continue,
        };
        match at {
            Some(category) => stages.push((stage, category)),
            // A start at the menu: counted when a category is entered.
            None if stage == Stage::Started => {}
            None => stages.push((stage, "-".to_string())),
        }
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    /// Entering a category counts from the menu and from the "not sure"
    /// questions, not when a path moves on into a node another category
    /// owns; ends count in the category the conversation came through.
    #[test]
    fn the_funnel_counts_each_stage_in_the_conversations_category() {
        let tree = crate::load_tree(None).expect("the built-in dialogue");
        let owner = |node: &str| category_of(&tree, node);
        let fact = |kind, node: &str, detail: &str| {
            Fact::new(0, kind, 1, node, Lang::Zh).with_detail(detail)
        };
        let at = |node: &str, history: &[&str]| Session {
            node: Some(node.to_string()),
            history: history.iter().map(|h| h.to_string()).collect(),
            ..Session::new(Lang::Zh)
        };
        let entered = |s: &str| (Stage::Started, s.to_string());

        // Started at the menu: nothing yet; into a category: counted.
        let menu = at("menu", &[]);
        let started = [fact(FactKind::Started, "menu", "command")];
        assert_eq!(funnel_of(&tree, None, &menu, &started), []);
        let step = [fact(FactKind::Step, "not_received", "menu")];
        let inside = at("not_received", &["menu"]);
        assert_eq!(
            funnel_of(&tree, Some(&menu), &inside, &step),
            [entered("not_received")]
        );
        // From "not sure" into the middle of a category: counted there.
        let landed = owner("nr_antifraud").expect("a category");
        let step = [fact(FactKind::Step, "nr_antifraud", "unsure")];
        let after = at("nr_antifraud", &["menu", "unsure"]);
        assert_eq!(funnel_of(&tree, None, &after, &step), [entered(&landed)]);
        // "Not solved" into a shared end: no new entry, the end and the
        // press counted in the conversation's category.
        let end = at("nr_not_submitted", &["menu", "not_received"]);
        let on = at(
            "contact_provider",
            &["menu", "not_received", "nr_not_submitted"],
        );
        let facts = [
            fact(FactKind::NotSolved, "nr_not_submitted", ""),
            fact(FactKind::Step, "contact_provider", "nr_not_submitted"),
            fact(FactKind::Reached, "contact_provider", ""),
        ];
        assert_ne!(
            owner("contact_provider").as_deref(),
            Some("not_received"),
            "the shared end is owned by another category"
        );
        let ours = |stage| (stage, "not_received".to_string());
        assert_eq!(
            funnel_of(&tree, Some(&end), &on, &facts),
            [ours(Stage::NotSolved), ours(Stage::EndReached)]
        );
        // "Solved" clears the path: the one before tells the category.
        let done = Session::new(Lang::Zh);
        let solved = [fact(FactKind::Solved, "contact_provider", "")];
        assert_eq!(
            funnel_of(&tree, Some(&on), &done, &solved),
            [ours(Stage::Solved)]
        );
    }
}
