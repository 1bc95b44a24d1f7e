//! Checks of `routes.toml` against the tree: every route names a node inside a category.

use std::collections::{HashMap, VecDeque};

use toml::Spanned;

use super::raw::{RawLists, RawRoutes};
use super::report::{Report, check_text};
use super::router::{RouteData, Router, RouterData, Thresholds};
use super::{Node, NodeId, NodeKind};
use crate::lang::Lang;

/// The nodes each category's questions lead to: reachable from its entry
/// by answers alone, without passing the entry menu or another category.
pub(super) fn category_of_nodes(
    nodes: &[Node],
    entries: &[NodeId],
    root: NodeId,
) -> Vec<Option<NodeId>> {
    let mut category = vec![None; nodes.len()];
    for &entry in entries {
        let mut queue = VecDeque::from([entry]);
        let mut seen = vec![false; nodes.len()];
        seen[entry.0] = true;
        while let Some(id) = queue.pop_front() {
            category[id.0].get_or_insert(entry);
            if let NodeKind::Question(choices) = &nodes[id.0].kind {
                for c in choices {
                    let t = c.target;
                    if !seen[t.0] && t != root && (!entries.contains(&t) || t == entry) {
                        seen[t.0] = true;
                        queue.push_back(t);
                    }
                }
            }
        }
    }
    category
}

/// Checks `routes.toml` against the tree and turns it into router data.
pub(super) fn check_routes(
    report: &mut Report,
    file: usize,
    raw: &RawRoutes,
    nodes: &[Node],
    by_id: &HashMap<String, NodeId>,
    categories: &[NodeId],
    root: NodeId,
) -> Option<RouterData> {
    let before = report.problems.len();
    let t = raw.routing.get_ref();
    let t_at = raw.routing.span().start;
    let valid = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
    if !(valid(t.confident) && valid(t.candidates) && valid(t.margin) && valid(t.none_margin))
        || t.candidates > t.confident
    {
        report.add(
            file,
            t_at,
            None,
            "routing: confident, candidates, margin and none_margin lie between 0 and 1, with candidates ≤ confident"
                .to_string(),
        );
    }
    let mut traditional = Vec::new();
    if let Some(pairs) = &raw.normalize.traditional {
        let chars: Vec<char> = pairs
            .get_ref()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !chars.len().is_multiple_of(2) {
            report.add(
                file,
                pairs.span().start,
                None,
                "normalize.traditional must hold pairs: each traditional character followed by its simplified one".to_string(),
            );
        }
        for pair in chars.chunks_exact(2) {
            if traditional.iter().any(|(k, _)| *k == pair[0]) {
                report.add(
                    file,
                    pairs.span().start,
                    None,
                    format!("normalize.traditional maps {} twice", pair[0]),
                );
            }
            traditional.push((pair[0], pair[1]));
        }
    }
    let mut synonyms = Vec::new();
    for (key, value) in &raw.normalize.synonyms {
        if key.trim().is_empty() || value.trim().is_empty() {
            report.add(
                file,
                0,
                None,
                format!("normalize.synonyms: {key:?} = {value:?} has an empty side"),
            );
        }
        synonyms.push((key.clone(), value.clone()));
    }
    let lists = |report: &mut Report,
                 lists: Option<&Spanned<RawLists>>,
                 at: usize,
                 what: &str,
                 node: Option<&str>| {
        let Some(lists) = lists else {
            report.add(file, at, node, format!("{what} is missing"));
            return Vec::new();
        };
        let mut all = Vec::new();
        for (lang, list) in [
            (Lang::Zh, &lists.get_ref().zh),
            (Lang::En, &lists.get_ref().en),
        ] {
            match list {
                Some(list) if !list.is_empty() && list.iter().all(|s| !s.trim().is_empty()) => {
                    all.extend(list.iter().cloned());
                }
                Some(list) if !list.is_empty() => report.add(
                    file,
                    lists.span().start,
                    node,
                    format!("{what} ({lang}) holds an empty entry"),
                ),
                _ => report.add(
                    file,
                    lists.span().start,
                    node,
                    format!("{what} needs at least one {lang} entry"),
                ),
            }
        }
        all
    };
    let off_topic = lists(report, Some(&raw.off_topic), 0, "off_topic", None);
    let off_topic_keywords = match &raw.off_topic_keywords {
        Some(keywords) => lists(report, Some(keywords), 0, "off_topic_keywords", None),
        None => Vec::new(),
    };
    let other_subjects = match &raw.other_subjects {
        Some(words) => lists(report, Some(words), 0, "other_subjects", None),
        None => Vec::new(),
    };
    let filing_anchors = match &raw.filing_anchors {
        Some(words) => lists(report, Some(words), 0, "filing_anchors", None),
        None => Vec::new(),
    };
    if !other_subjects.is_empty() && filing_anchors.is_empty() {
        report.add(
            file,
            raw.other_subjects.as_ref().map_or(0, |s| s.span().start),
            None,
            "other_subjects needs filing_anchors: without them a message that names another service beside the filing would be left alone".to_string(),
        );
    }
    let category = category_of_nodes(nodes, categories, root);
    let mut routes: Vec<RouteData> = Vec::new();
    for route in &raw.route {
        let r = route.get_ref();
        let at = route.span().start;
        let name = r.node.get_ref().as_str();
        let keywords = lists(report, r.keywords.as_ref(), at, "keywords", Some(name));
        let examples = lists(report, r.examples.as_ref(), at, "examples", Some(name));
        let title = match &r.title {
            Some(title) => check_text(report, file, title, Some(name), "title", &[], &[]),
            None => {
                report.add(file, at, Some(name), "title is missing".to_string());
                None
            }
        };
        let Some(node) = by_id.get(name).copied() else {
            report.add(
                file,
                r.node.span().start,
                Some(name),
                "route names no node".to_string(),
            );
            continue;
        };
        let Some(category) = category[node.0] else {
            report.add(
                file,
                r.node.span().start,
                Some(name),
                "a route must lead into one of the categories".to_string(),
            );
            continue;
        };
        if routes.iter().any(|existing| existing.node == node) {
            report.add(
                file,
                r.node.span().start,
                Some(name),
                "a second route to the same node".to_string(),
            );
            continue;
        }
        if let Some(title) = title {
            routes.push(RouteData {
                node,
                category,
                title,
                keywords,
                examples,
            });
        }
    }
    let mut training = Vec::new();
    if let Some(lines) = &raw.training {
        for (label, texts) in lines.get_ref() {
            let category = if label == "none" {
                None
            } else {
                match by_id.get(label.as_str()) {
                    Some(id) if categories.contains(id) => Some(*id),
                    _ => {
                        report.add(
                            file,
                            lines.span().start,
                            None,
                            format!("training: {label:?} is neither a category nor none"),
                        );
                        continue;
                    }
                }
            };
            training.extend(texts.iter().map(|t| (category, t.clone())));
        }
    }
    let data = RouterData {
        thresholds: Thresholds {
            confident: t.confident,
            candidates: t.candidates,
            margin: t.margin,
            none_margin: t.none_margin,
        },
        synonyms,
        traditional,
        off_topic,
        off_topic_keywords,
        other_subjects,
        filing_anchors,
        routes,
        categories: categories.to_vec(),
        training,
    };
    for (list, problem) in Router::phrase_problems(&data) {
        let at = match list {
            "other_subjects" => raw.other_subjects.as_ref(),
            "filing_anchors" => raw.filing_anchors.as_ref(),
            _ => raw.off_topic_keywords.as_ref(),
        };
        report.add(file, at.map_or(0, |a| a.span().start), None, problem);
    }
    (report.problems.len() == before).then_some(data)
}
