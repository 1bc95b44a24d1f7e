//! The real dialogue in `dialogs/`: every path walked through the engine in
//! both languages, and every fact of the domain present where it belongs.

use std::collections::{BTreeSet, HashSet, VecDeque};

use icp_sms_doctor::callback::Action;
use icp_sms_doctor::engine::{Event, Reply, Session, step};
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::{NodeId, NodeKind, ROOT_ID, RemindKind, Tree, UiButton, UiText};
use serde::Deserialize;

use crate::support::{real_tree, tree_with_provider};

/// The four ways the SMS step fails, the real dialogue's categories: the
/// tree marks them (`category = true`), the code does not.
const CATEGORY_IDS: [&str; 4] = ["timeout", "not_received", "mismatch", "reset"];

#[test]
fn the_four_symptoms_are_the_categories_in_the_entry_menus_order() {
    let tree = real_tree();
    let ids: Vec<&str> = tree
        .categories()
        .iter()
        .map(|c| tree.node(*c).id.as_str())
        .collect();
    assert_eq!(ids, CATEGORY_IDS);
    assert_eq!(tree.node(tree.after_window()).id, "timeout");
}

/// What a walk saw: how many paths, and which ends it reached.
#[derive(Default)]
struct Walk {
    paths: usize,
    ends: BTreeSet<String>,
}

/// Follows every answer of every question, depth first, never revisiting a
/// node on the current path, and checks each end it reaches.
fn walk(tree: &Tree, session: &Session, reply: &Reply, path: &mut Vec<String>, seen: &mut Walk) {
    let node = reply.node.clone().expect("a step shows a node");
    let id = tree.get(&node).expect("the node exists");
    path.push(node.clone());
    match tree.node(id).kind {
        NodeKind::End { not_solved } => {
            check_end(tree, session, reply, path);
            seen.paths += 1;
            seen.ends.insert(node);
            // "Not solved" walks on, as far as it does not loop.
            if let Some(to) = not_solved.map(|t| tree.node(t).id.clone())
                && !path.contains(&to)
            {
                let data = &reply.buttons[0][1].data;
                let (next, replies) = step(
                    tree,
                    session.clone(),
                    Event::Press(Action::parse(data).as_ref()),
                );
                assert_eq!(replies[0].node.as_deref(), Some(to.as_str()), "{path:?}");
                walk(tree, &next, &replies[0], path, seen);
            }
        }
        NodeKind::Question(_) => {
            let choices: Vec<(String, String)> = reply
                .buttons
                .iter()
                .flatten()
                .filter_map(|b| match Action::parse(&b.data) {
                    Some(Action::Go { to, .. }) => Some((b.data.clone(), to)),
                    _ => None,
                })
                .collect();
            assert!(!choices.is_empty(), "{node}: a question without answers");
            for (data, to) in choices {
                if path.contains(&to) {
                    continue;
                }
                let (next, replies) = step(
                    tree,
                    session.clone(),
                    Event::Press(Action::parse(&data).as_ref()),
                );
                assert_eq!(replies.len(), 1, "{path:?} -> {to}");
                assert_eq!(replies[0].node.as_deref(), Some(to.as_str()), "{path:?}");
                walk(tree, &next, &replies[0], path, seen);
            }
        }
    }
    path.pop();
}

fn check_end(tree: &Tree, session: &Session, reply: &Reply, path: &[String]) {
    let ui = tree.ui();
    let lang = session.lang;
    let text = &reply.text;
    assert!(
        text.lines().any(|l| l.starts_with("1. ")) && text.lines().any(|l| l.starts_with("2. ")),
        "{path:?}: an end without numbered steps"
    );
    assert!(
        text.contains(ui.text(UiText::Channels, lang).trim()),
        "{path:?}: no channels"
    );
    assert!(
        text.contains(ui.text(UiText::Safety, lang).trim()),
        "{path:?}: no safety line"
    );
    assert!(
        text.contains(ui.text(UiText::Closing, lang).trim()),
        "{path:?}: no closing advice"
    );
    assert!(
        !text.contains("{summary}"),
        "{path:?}: unfilled placeholder"
    );
    let labels: Vec<Vec<&str>> = reply
        .buttons
        .iter()
        .map(|row| row.iter().map(|b| b.label.as_str()).collect())
        .collect();
    // Ends that offer a reminder carry its button between the two rows;
    // the final end, where the checks run out, has no "not solved".
    let node = tree.node(tree.get(&path[path.len() - 1]).expect("a node"));
    let NodeKind::End { not_solved } = node.kind else {
        panic!("{path:?}: not an end");
    };
    let mut outcome = vec![ui.button(UiButton::Solved, lang)];
    if not_solved.is_some() {
        outcome.push(ui.button(UiButton::NotSolved, lang));
    }
    let mut expected = vec![outcome];
    match node.remind.as_ref().map(|(kind, _)| kind) {
        Some(RemindKind::Window) => expected.push(vec![ui.button(UiButton::RemindWindow, lang)]),
        Some(RemindKind::NewCode) => expected.push(vec![ui.button(UiButton::RemindNewCode, lang)]),
        None => {}
    }
    expected.push(vec![
        ui.button(UiButton::Back, lang),
        ui.button(UiButton::Restart, lang),
    ]);
    assert_eq!(labels, expected, "{path:?}");
    // "Not solved" leads on to a real step, and "solved" closes calmly.
    if let Some(button) = reply.buttons[0].get(1) {
        let (_, next) = step(
            tree,
            session.clone(),
            Event::Press(Action::parse(&button.data).as_ref()),
        );
        assert!(next[0].node.is_some(), "{path:?}");
        assert!(
            !next[0]
                .text
                .starts_with(ui.text(UiText::MenuOutdated, lang)),
            "{path:?}"
        );
    }
    let (after, solved) = step(
        tree,
        session.clone(),
        Event::Press(Action::parse(&reply.buttons[0][0].data).as_ref()),
    );
    assert_eq!(solved[0].text, ui.text(UiText::Solved, lang), "{path:?}");
    assert_eq!(after.node, None);
}

fn walk_all(tree: &Tree, lang: Lang) -> Walk {
    let (session, replies) = step(tree, Session::new(lang), Event::from_line("/diagnose"));
    let mut seen = Walk::default();
    walk(tree, &session, &replies[0], &mut Vec::new(), &mut seen);
    seen
}

fn all_ends(tree: &Tree) -> BTreeSet<String> {
    tree.nodes()
        .filter(|(_, n)| matches!(n.kind, NodeKind::End { .. }))
        .map(|(_, n)| n.id.clone())
        .collect()
}

#[test]
fn every_path_in_chinese_reaches_an_end_with_steps_channels_safety_and_outcome_buttons() {
    let tree = real_tree();
    let walked = walk_all(&tree, Lang::Zh);
    assert_eq!(walked.ends, all_ends(&tree));
    assert!(walked.paths >= walked.ends.len());
}

#[test]
fn every_path_in_english_reaches_an_end_with_steps_channels_safety_and_outcome_buttons() {
    let tree = real_tree();
    let walked = walk_all(&tree, Lang::En);
    assert_eq!(walked.ends, all_ends(&tree));
}

#[test]
fn the_entry_menu_offers_the_four_symptoms_and_not_sure() {
    let tree = real_tree();
    let menu = tree.node(tree.root());
    let NodeKind::Question(choices) = &menu.kind else {
        panic!("the entry menu is a question");
    };
    let targets: Vec<&str> = choices
        .iter()
        .map(|c| tree.node(c.target).id.as_str())
        .collect();
    assert_eq!(
        targets,
        ["timeout", "not_received", "mismatch", "reset", "unsure"]
    );
}

#[test]
fn not_sure_triage_lands_in_every_category_within_three_questions() {
    let tree = real_tree();
    let unsure = tree.get("unsure").expect("the triage exists");
    // Breadth first over answers only: the depth at which each category
    // entry (or one of its nodes) is first reached.
    let mut depth = vec![None; tree.len()];
    let mut queue = VecDeque::from([(unsure, 0usize)]);
    let mut order: Vec<NodeId> = Vec::new();
    while let Some((id, d)) = queue.pop_front() {
        if depth[index(&tree, id)].is_some() {
            continue;
        }
        depth[index(&tree, id)] = Some(d);
        order.push(id);
        if let NodeKind::Question(choices) = &tree.node(id).kind {
            for c in choices {
                queue.push_back((c.target, d + 1));
            }
        }
    }
    for category in CATEGORY_IDS {
        // The category's own nodes: reached from its entry by answers,
        // without passing another category's entry.
        let entry = tree.get(category).expect("category exists");
        let mut own = vec![entry];
        let mut queue = VecDeque::from([entry]);
        while let Some(id) = queue.pop_front() {
            if let NodeKind::Question(choices) = &tree.node(id).kind {
                for c in choices {
                    let other_entry = CATEGORY_IDS
                        .iter()
                        .any(|e| tree.get(e) == Some(c.target) && c.target != entry);
                    if !other_entry && c.target != tree.root() && !own.contains(&c.target) {
                        own.push(c.target);
                        queue.push_back(c.target);
                    }
                }
            }
        }
        let d = own
            .into_iter()
            .filter_map(|id| depth[index(&tree, id)])
            .min()
            .unwrap_or_else(|| panic!("{category} not reached"));
        assert!(d <= 3, "{category} needs {d} answers from the triage");
    }
}

fn index(tree: &Tree, id: NodeId) -> usize {
    tree.nodes()
        .position(|(n, _)| n == id)
        .expect("a node of the tree")
}

#[test]
fn not_solved_never_traps_anyone_away_from_contacting_the_provider() {
    let tree = real_tree();
    let target = tree
        .get("contact_provider")
        .expect("the contact end exists");
    for (start, node) in tree.nodes() {
        // The final end, where the checks run out, has no way on.
        if !matches!(
            node.kind,
            NodeKind::End {
                not_solved: Some(_)
            }
        ) {
            continue;
        }
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([start]);
        let mut found = false;
        while let Some(id) = queue.pop_front() {
            if id == target {
                found = true;
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            match &tree.node(id).kind {
                NodeKind::End { not_solved } => queue.extend(*not_solved),
                NodeKind::Question(choices) => queue.extend(choices.iter().map(|c| c.target)),
            }
        }
        assert!(found, "{}: no way on to contact_provider", node.id);
    }
}

#[test]
fn the_contact_end_summarises_the_answers_chosen() {
    let tree = real_tree();
    let mut session = Session::new(Lang::Zh);
    let mut last = Vec::new();
    for data in [
        "g:menu:timeout",
        "g:timeout:to_console",
        "g:to_console:contact_provider",
    ] {
        let (next, replies) = step(&tree, session, Event::Press(Action::parse(data).as_ref()));
        session = next;
        last = replies;
    }
    assert_eq!(last[0].node.as_deref(), Some("contact_provider"));
    let text = &last[0].text;
    let expected = "- 遇到的情况：验证超时（已过24小时）\n- 超时后的进展：还没重新提交\n- 已按「通过原接入商重新提交」处理，没有解决";
    assert!(text.contains(expected), "{text}");
}

#[test]
fn the_summary_names_the_answer_chosen_where_two_answers_lead_to_one_node() {
    // "I can't remember" is the second of two answers that both lead to
    // un_verify_now.
    let tree = real_tree();
    let mut session = Session::new(Lang::En);
    let mut last = Vec::new();
    for data in [
        "g:menu:unsure",
        "g:unsure:un_entered",
        "g:un_entered:un_over24",
        "g:un_over24:un_verify_now:1",
        "g:un_verify_now:mismatch",
        "g:mismatch:mm_type:1",
        "g:mm_type:mm_norecord",
        "g:mm_norecord:contact_provider",
    ] {
        let (next, replies) = step(&tree, session, Event::Press(Action::parse(data).as_ref()));
        assert!(replies[0].node.is_some(), "{data}");
        session = next;
        last = replies;
    }
    let text = &last[0].text;
    assert!(
        text.contains(
            "- When the SMS arrived: I can't remember\n- Tried \"Verify now\": not solved"
        ),
        "{text}"
    );
    assert!(!text.contains("Less than 24 hours ago"), "{text}");
    assert!(
        text.contains("- The page's message: Something else / can't recall"),
        "{text}"
    );
    assert_eq!(session.picks.len(), session.history.len());
}

#[derive(Deserialize)]
struct Facts {
    fact: Vec<Fact>,
    /// The words of the closing advice, all of which a node shows.
    closing: Words,
    #[serde(default)]
    never: Vec<Never>,
}

#[derive(Deserialize)]
struct Words {
    zh: Vec<String>,
    en: Vec<String>,
}

impl Words {
    fn get(&self, lang: Lang) -> &[String] {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// Something no text may say: a word, or a word next to one of `with`.
#[derive(Deserialize)]
struct Never {
    name: String,
    category: String,
    #[serde(default)]
    with: Vec<String>,
    #[serde(flatten)]
    words: Words,
}

#[derive(Deserialize)]
struct Fact {
    name: String,
    category: String,
    zh: Vec<String>,
    en: Vec<String>,
}

/// The nodes of a category: reachable from its entry by answers and "not
/// solved", without passing the entry menu or another category's entry.
fn subtree(tree: &Tree, category: &str) -> Vec<NodeId> {
    let stop: Vec<NodeId> = CATEGORY_IDS
        .iter()
        .chain(&[ROOT_ID])
        .filter(|c| **c != category)
        .filter_map(|c| tree.get(c))
        .collect();
    let start = tree.get(category).expect("category exists");
    let mut seen = vec![start];
    let mut queue = VecDeque::from([start]);
    while let Some(id) = queue.pop_front() {
        let next: Vec<NodeId> = match &tree.node(id).kind {
            NodeKind::End { not_solved } => not_solved.iter().copied().collect(),
            NodeKind::Question(choices) => choices.iter().map(|c| c.target).collect(),
        };
        for n in next {
            if !stop.contains(&n) && !seen.contains(&n) {
                seen.push(n);
                queue.push_back(n);
            }
        }
    }
    seen
}

#[test]
fn every_domain_fact_appears_in_its_category_in_both_languages() {
    let tree = real_tree();
    let facts: Facts = toml::from_str(include_str!("data/facts.toml")).expect("facts parse");
    assert!(facts.fact.len() >= 30);
    let mut missing = Vec::new();
    for fact in &facts.fact {
        for (lang, markers) in [(Lang::Zh, &fact.zh), (Lang::En, &fact.en)] {
            // A node's text and what its reminder assumes: both are in
            // the message.
            let said = |id: NodeId| {
                let node = tree.node(id);
                let assumes = node.remind.as_ref().map(|(_, a)| a.get(lang));
                format!("{}\n{}", node.text.get(lang), assumes.unwrap_or_default())
            };
            let texts: Vec<String> = if fact.category == "any" {
                let mut all: Vec<String> = tree.nodes().map(|(id, _)| said(id)).collect();
                all.extend(
                    UiText::ALL
                        .iter()
                        .map(|t| tree.ui().text(*t, lang).to_string()),
                );
                all
            } else {
                subtree(&tree, &fact.category)
                    .into_iter()
                    .map(said)
                    .collect()
            };
            for marker in markers {
                if !texts.iter().any(|t| t.contains(marker.as_str())) {
                    missing.push(format!("{} ({lang}): {marker:?}", fact.name));
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing facts:\n{}", missing.join("\n"));
}

#[test]
fn the_three_page_messages_each_have_their_own_explanation() {
    let tree = real_tree();
    for (message, end) in [
        ("该条验证库里找不到记录", "mm_norecord"),
        ("暂无待短信核验的备案申请", "mm_nopending"),
        (
            "您的短信核验完成，请等待其他核验人进行短信核验",
            "mm_other_person",
        ),
    ] {
        let node = tree.node(tree.get(end).expect("the end exists"));
        for lang in Lang::ALL {
            assert!(
                node.text.get(lang).starts_with(&format!("「{message}」")),
                "{end} {lang}"
            );
        }
    }
}

#[test]
fn no_end_sends_a_person_it_did_not_help_back_to_the_entry_menu() {
    let tree = real_tree();
    let last: Vec<&str> = tree
        .nodes()
        .filter(|(_, n)| matches!(n.kind, NodeKind::End { not_solved: None }))
        .map(|(_, n)| n.id.as_str())
        .collect();
    assert_eq!(last, ["out_of_checks"], "one end where the checks run out");
    for (_, node) in tree.nodes() {
        if let NodeKind::End {
            not_solved: Some(to),
        } = node.kind
        {
            assert_ne!(to, tree.root(), "{}: not solved → the entry menu", node.id);
        }
    }
}

#[test]
fn every_end_carries_the_closing_advice_in_its_message() {
    // Not kept for "solved": someone who reads an end's steps and leaves
    // has seen the advice too. Every end's message, as sent, carries all
    // of `[closing]`'s words, and no question's does.
    let tree = real_tree();
    let facts: Facts = toml::from_str(include_str!("data/facts.toml")).expect("facts parse");
    for lang in Lang::ALL {
        let words = facts.closing.get(lang);
        for (id, node) in tree.nodes() {
            let body = tree.body(id, lang);
            let missing: Vec<&String> = words
                .iter()
                .filter(|w| !body.contains(w.as_str()))
                .collect();
            match node.kind {
                NodeKind::End { .. } => {
                    assert!(missing.is_empty(), "{} ({lang}) lacks {missing:?}", node.id);
                }
                NodeKind::Question(_) => assert!(
                    !body.contains(tree.ui().text(UiText::Closing, lang)),
                    "{} ({lang}): a question carries the closing advice",
                    node.id
                ),
            }
        }
    }
}

/// The fewest presses from the entry menu to `to`, answers only.
fn presses_to(tree: &Tree, to: NodeId) -> Option<usize> {
    let mut depth = vec![None; tree.len()];
    let mut queue = VecDeque::from([(tree.root(), 0usize)]);
    while let Some((id, d)) = queue.pop_front() {
        if depth[index(tree, id)].is_some() {
            continue;
        }
        depth[index(tree, id)] = Some(d);
        if let NodeKind::Question(choices) = &tree.node(id).kind {
            queue.extend(choices.iter().map(|c| (c.target, d + 1)));
        }
    }
    depth[index(tree, to)]
}

#[test]
fn the_resend_is_at_most_four_presses_from_the_menu() {
    let tree = real_tree();
    let resend = tree.get("nr_resend").expect("the resend end exists");
    let presses = presses_to(&tree, resend).expect("reachable by answers");
    assert!(presses <= 4, "the resend takes {presses} presses");
}

#[test]
fn no_text_says_what_the_facts_file_rules_out() {
    // A [[never]] entry: no clause of its category's texts (split at 。；;
    // and line ends, and at ". ") holds one of its words, or, with `with`,
    // one of its words together with one of `with`.
    let tree = real_tree();
    let facts: Facts = toml::from_str(include_str!("data/facts.toml")).expect("facts parse");
    assert!(!facts.never.is_empty());
    let mut found = Vec::new();
    for rule in &facts.never {
        for lang in Lang::ALL {
            let words = rule.words.get(lang);
            for (place, text) in texts_of(&tree, &rule.category, lang) {
                for clause in text
                    .split(['。', '；', ';', '\n'])
                    .flat_map(|c| c.split(". "))
                {
                    let with = rule.with.is_empty() || rule.with.iter().any(|w| clause.contains(w));
                    if let Some(word) = words.iter().find(|w| clause.contains(w.as_str()))
                        && with
                    {
                        found.push(format!(
                            "{} ({lang}) in {place}: {word:?} in {clause:?}",
                            rule.name
                        ));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The texts a facts-file category covers, with where each is from: node
/// texts, briefs and answer labels; "any" adds the ui.toml texts (but not
/// the console's JSON protocol line, which quotes JSON).
fn texts_of(tree: &Tree, category: &str, lang: Lang) -> Vec<(String, String)> {
    let ids: Vec<NodeId> = if category == "any" {
        tree.nodes().map(|(id, _)| id).collect()
    } else {
        subtree(tree, category)
    };
    let mut texts = Vec::new();
    for id in ids {
        let node = tree.node(id);
        texts.push((node.id.clone(), node.text.get(lang).to_string()));
        if let Some(brief) = &node.brief {
            texts.push((format!("{} brief", node.id), brief.get(lang).to_string()));
        }
        if let Some((_, assumes)) = &node.remind {
            texts.push((
                format!("{} assumes", node.id),
                assumes.get(lang).to_string(),
            ));
        }
        if let NodeKind::Question(choices) = &node.kind {
            for c in choices {
                texts.push((format!("{} answer", node.id), c.label.get(lang).to_string()));
            }
        }
    }
    if category == "any" {
        for text in UiText::ALL.iter().filter(|t| **t != UiText::InvalidJson) {
            texts.push((
                text.key().to_string(),
                tree.ui().text(*text, lang).to_string(),
            ));
        }
    }
    texts
}

#[test]
fn every_node_has_a_brief_for_the_summary() {
    let tree = real_tree();
    let missing: Vec<&str> = tree
        .nodes()
        .filter(|(_, n)| n.brief.is_none())
        .map(|(_, n)| n.id.as_str())
        .collect();
    assert!(missing.is_empty(), "no brief: {missing:?}");
}

/// Every text of the dialogue in `lang`: nodes (text, what a reminder
/// assumes, labels) and `ui.toml`'s texts.
fn every_text(tree: &Tree, lang: Lang) -> Vec<String> {
    let mut all: Vec<String> = tree
        .nodes()
        .map(|(id, node)| tree.body(id, lang) + &format!("{:?}", node.brief))
        .collect();
    all.extend(
        UiText::ALL
            .iter()
            .map(|t| tree.ui().text(*t, lang).to_string()),
    );
    all
}

#[test]
fn the_neutral_profile_names_no_cloud_and_speaks_of_your_access_provider() {
    let tree = real_tree();
    for lang in Lang::ALL {
        for text in every_text(&tree, lang) {
            for cloud in ["华为", "Huawei", "4000955988", "{provider."] {
                assert!(!text.contains(cloud), "{cloud} in {text}");
            }
        }
    }
    let contact = tree.get("contact_provider").unwrap();
    assert!(
        tree.body(contact, Lang::Zh)
            .starts_with("这种情况需要你的接入商从后台帮你查。\n在备案控制台提交工单"),
        "{}",
        tree.body(contact, Lang::Zh)
    );
    assert!(
        tree.body(contact, Lang::En).starts_with(
            "This needs your access provider to look at it from their side.\nOpen a ticket"
        ),
        "{}",
        tree.body(contact, Lang::En)
    );
    // Capitalised where it starts a sentence.
    let last = tree.get("out_of_checks").unwrap();
    assert!(
        tree.body(last, Lang::En)
            .contains("\n1. Your access provider's filing console: open a ticket"),
        "{}",
        tree.body(last, Lang::En)
    );
}

#[test]
fn the_huawei_example_gives_its_hotline_where_a_timeout_is_resubmitted() {
    // The hotline was a fact of the timeout category; it is the profile's now.
    let tree = tree_with_provider("huawei");
    for (lang, hotline) in [
        (Lang::Zh, "拨打备案热线 4000955988 转5"),
        (Lang::En, "call the filing hotline, 4000955988, extension 5"),
    ] {
        let said = subtree(&tree, "timeout")
            .into_iter()
            .any(|id| tree.node(id).text.get(lang).contains(hotline));
        assert!(said, "{lang}: {hotline}");
    }
    let contact = tree.get("contact_provider").unwrap();
    assert!(
        tree.body(contact, Lang::Zh)
            .starts_with("这种情况需要华为云从后台帮你查。\n备案热线：4000955988 转5\n"),
        "{}",
        tree.body(contact, Lang::Zh)
    );
}

#[test]
fn every_example_profile_loads_and_names_its_provider() {
    for (example, zh, en) in [
        ("aliyun", "阿里云", "Alibaba Cloud"),
        ("tencent", "腾讯云", "Tencent Cloud"),
        ("huawei", "华为云", "Huawei Cloud"),
    ] {
        let tree = tree_with_provider(example);
        assert_eq!(tree.provider().name.get(Lang::Zh), zh);
        assert_eq!(tree.provider().name.get(Lang::En), en);
        let channels = tree.ui().text(UiText::Channels, Lang::En);
        assert!(
            channels.contains(&format!("Progress during review: {en}'s filing console")),
            "{channels}"
        );
    }
}
