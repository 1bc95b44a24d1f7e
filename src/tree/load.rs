//! Loading `dialogs/`: every file parsed and checked, every problem collected, then one `Tree`.
//!
//! Loading never stops at the first mistake: it collects every problem, each
//! with its file and line, so an editor fixes a broken folder in one pass.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::Path;

use toml::Spanned;

use super::canned::{CANNED_FILE, RawCanned, check_canned};
use super::press::{is_page_name, names_one_of, pressed, quoted};
use super::provider::{PROVIDER_FILE, Provider, check_provider, fill};
use super::raw::{RawNode, RawNodeFile, RawRoutes, RawTable, RawText, RawUi};
use super::report::{LoadError, Problem, Report, Source, check_text};
use super::router::Router;
use super::routes::check_routes;
use super::ui::check_ui;
use super::{
    Choice, Node, NodeId, NodeKind, ROOT_ID, RemindKind, SUMMARY_PLACEHOLDER, Tree, Ui, UiButton,
};
use crate::callback::{MAX_DATA_BYTES, is_valid_id};
use crate::lang::{Lang, Localized};
use crate::markup::MAX_TEXT_CHARS;

/// The file that holds the texts and labels outside the nodes.
pub const UI_FILE: &str = "ui.toml";

/// The file that holds the free-text router's data.
pub const ROUTES_FILE: &str = "routes.toml";

/// The dialogs compiled into the binary from the repository's `dialogs/`.
pub fn embedded() -> Vec<Source> {
    const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_dialogs.rs"));
    FILES
        .iter()
        .map(|(name, text)| Source {
            path: format!("dialogs/{name}"),
            text: (*text).to_string(),
        })
        .collect()
}

/// Reads every `*.toml` file of `dir`, in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<Source>, LoadError> {
    let fail = |message: String| {
        LoadError(vec![Problem {
            file: Some(dir.display().to_string()),
            line: None,
            node: None,
            message,
        }])
    };
    let entries = fs::read_dir(dir).map_err(|e| fail(format!("cannot read the folder: {e}")))?;
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(fail("holds no .toml files".to_string()));
    }
    let mut sources = Vec::with_capacity(paths.len());
    let mut problems = Vec::new();
    for path in paths {
        match fs::read_to_string(&path) {
            Ok(text) => sources.push(Source {
                path: path.display().to_string(),
                text,
            }),
            Err(e) => problems.push(Problem {
                file: Some(path.display().to_string()),
                line: None,
                node: None,
                message: format!("cannot read the file: {e}"),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(LoadError(problems));
    }
    // A folder copied before profiles existed speaks for no provider in
    // particular: it gets the built-in, neutral profile, and says so,
    // rather than refusing a dialogue that worked until now.
    let has_profile = sources.iter().any(|s| {
        Path::new(&s.path)
            .file_name()
            .is_some_and(|n| n == PROVIDER_FILE)
    });
    if !has_profile
        && let Some(neutral) = embedded()
            .into_iter()
            .find(|s| s.path.ends_with(PROVIDER_FILE))
    {
        log::warn!(
            "{} has no {PROVIDER_FILE}: the built-in neutral profile is used, naming no provider; copy one from dialogs/providers/ and edit it to name yours",
            dir.display()
        );
        sources.push(Source {
            path: dir.join(PROVIDER_FILE).display().to_string(),
            text: neutral.text,
        });
    }
    Ok(sources)
}

/// A node as parsed, with where it came from.
struct Parsed {
    file: usize,
    raw: RawNode,
}

/// The length of a dialogue's version, in hex digits.
const VERSION_DIGITS: usize = 12;

/// A hash of the files' names (without their folder) and texts, in name
/// order: FNV-1a, which stays the same across builds and platforms.
fn version_of(sources: &[Source]) -> String {
    let mut files: Vec<(&str, &str)> = sources
        .iter()
        .map(|s| {
            let name = s.path.rsplit(['/', '\\']).next().unwrap_or(&s.path);
            (name, s.text.as_str())
        })
        .collect();
    files.sort_unstable();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, text) in files {
        eat(name.as_bytes());
        eat(&[0]);
        eat(text.as_bytes());
        eat(&[0]);
    }
    format!("{hash:016x}")[..VERSION_DIGITS].to_string()
}

/// Checks `sources` and builds the tree, or reports every problem found.
pub fn load(sources: &[Source]) -> Result<Tree, LoadError> {
    let mut report = Report {
        sources,
        problems: Vec::new(),
    };
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut raw_ui: Option<(usize, RawUi)> = None;
    let mut raw_routes: Option<(usize, RawRoutes)> = None;
    let mut provider_file: Option<usize> = None;
    let mut raw_canned: Option<(usize, RawCanned)> = None;
    for (file, source) in sources.iter().enumerate() {
        let name = Path::new(&source.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = match name.as_str() {
            UI_FILE => toml::from_str::<RawUi>(&source.text).map(|ui| raw_ui = Some((file, ui))),
            ROUTES_FILE => toml::from_str::<RawRoutes>(&source.text)
                .map(|routes| raw_routes = Some((file, routes))),
            CANNED_FILE => toml::from_str::<RawCanned>(&source.text)
                .map(|canned| raw_canned = Some((file, canned))),
            // Parsed and checked on its own, below.
            PROVIDER_FILE => {
                provider_file = Some(file);
                Ok(())
            }
            _ => toml::from_str::<RawNodeFile>(&source.text).map(|f| {
                parsed.extend(f.node.into_iter().map(|raw| Parsed { file, raw }));
            }),
        };
        if let Err(e) = result {
            let offset = e.span().map_or(0, |span| span.start);
            let message = e.message().trim_end().to_string();
            report.add(file, offset, None, message);
        }
    }

    // After a file failed to parse, its nodes are unknown: references to
    // them would be reported as missing, so cross-node checks wait until
    // every file parses.
    let complete = report.problems.is_empty();

    // The provider's profile, then its fields written into every text, so
    // what follows checks (and serves) the texts as people read them.
    let provider = match provider_file {
        Some(file) => check_provider(&mut report, file),
        None => {
            report.missing_file(
                PROVIDER_FILE,
                "it names the provider the texts speak for (dialogs/providers/ holds examples)",
            );
            None
        }
    };
    for p in &mut parsed {
        fill_node(&mut report, p, provider.as_ref());
    }
    if let Some((file, raw)) = &mut raw_ui {
        fill_ui(&mut report, *file, raw, provider.as_ref());
    }
    let canned = match &mut raw_canned {
        Some((file, raw)) => {
            if let Some(table) = &mut raw.canned {
                for (name, text) in table.get_mut().iter_mut() {
                    let what = format!("canned.{name}");
                    fill_text(
                        &mut report,
                        *file,
                        None,
                        &what,
                        Some(text),
                        provider.as_ref(),
                    );
                }
            }
            check_canned(&mut report, *file, raw)
        }
        None => Default::default(),
    };

    let ui = match &raw_ui {
        Some((file, raw)) => check_ui(&mut report, *file, raw),
        // A ui.toml that does not parse is reported at its mistake.
        None if sources
            .iter()
            .any(|s| Path::new(&s.path).file_name().is_some_and(|n| n == UI_FILE)) =>
        {
            None
        }
        None => {
            report.missing_file(UI_FILE, "it holds the texts and labels outside the nodes");
            None
        }
    };
    if raw_routes.is_none() && complete {
        report.missing_file(ROUTES_FILE, "it holds the free-text router's data");
    }

    // Ids first, so targets can be resolved whatever the file order.
    let mut by_id: HashMap<String, NodeId> = HashMap::new();
    let mut first_seen: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut kept: Vec<&Parsed> = Vec::new();
    for p in &parsed {
        let id = p.raw.id.get_ref();
        let offset = p.raw.id.span().start;
        if !is_valid_id(id) {
            report.add(
                p.file,
                offset,
                Some(id),
                "id may hold only a-z, 0-9 and _".to_string(),
            );
        }
        if let Some((file, first)) = first_seen.get(id.as_str()) {
            let line = report.line(*file, *first);
            let message = format!(
                "duplicate id, first defined at {}:{line}",
                sources[*file].path
            );
            report.add(p.file, offset, Some(id), message);
            continue;
        }
        first_seen.insert(id, (p.file, offset));
        by_id.insert(id.clone(), NodeId(kept.len()));
        kept.push(p);
    }

    let mut nodes: Vec<Node> = Vec::with_capacity(kept.len());
    for p in &kept {
        if let Some(node) = check_node(&mut report, p, &by_id, ui.as_ref(), complete) {
            nodes.push(node);
        }
    }

    // A missing entry menu is reported at the top of the first file of
    // nodes.
    let root = by_id.get(ROOT_ID).copied();
    if root.is_none() && complete && !sources.is_empty() {
        let first = sources
            .iter()
            .position(|s| !s.path.ends_with(UI_FILE))
            .unwrap_or(0);
        report.add(
            first,
            0,
            None,
            format!("required node \"{ROOT_ID}\" is missing"),
        );
    }

    // Reachability is judged on the parsed edges, so it is reported even
    // when other nodes have problems of their own.
    if let (Some(root), true) = (root, complete) {
        let mut seen = vec![false; kept.len()];
        let mut queue = VecDeque::from([root.0]);
        seen[root.0] = true;
        while let Some(i) = queue.pop_front() {
            for target in raw_targets(&kept[i].raw) {
                if let Some(&NodeId(j)) = by_id.get(target)
                    && !seen[j]
                {
                    seen[j] = true;
                    queue.push_back(j);
                }
            }
        }
        for (i, p) in kept.iter().enumerate() {
            if !seen[i] {
                report.add(
                    p.file,
                    p.raw.id.span().start,
                    Some(p.raw.id.get_ref()),
                    format!("unreachable from \"{ROOT_ID}\""),
                );
            }
        }
    }

    let (Some(ui), Some(root), true) = (ui, root, nodes.len() == kept.len()) else {
        return Err(report.finish());
    };
    let categories = check_categories(&mut report, &kept, &nodes, root);
    let after_window = raw_ui.as_ref().and_then(|(file, raw)| {
        let target = &raw.reminders.as_ref()?.get_ref().after_window;
        let found = by_id.get(target.get_ref().as_str()).copied();
        if found.is_none() {
            report.add(
                *file,
                target.span().start,
                None,
                format!(
                    "reminders.after_window \"{}\" names no node",
                    target.get_ref()
                ),
            );
        }
        found
    });
    let router = match &raw_routes {
        Some((file, raw)) => {
            check_routes(&mut report, *file, raw, &nodes, &by_id, &categories, root)
        }
        None => None,
    };
    let (Some(router), Some(after_window)) = (router, after_window) else {
        return Err(report.finish());
    };
    if !report.problems.is_empty() {
        return Err(report.finish());
    }
    let Some(provider) = provider else {
        return Err(report.finish());
    };
    let category_of = super::category_indices(&nodes, root, &categories)
        .into_iter()
        .map(|c| c.map(|i| categories[i]))
        .collect();
    let tree = Tree {
        nodes,
        by_id,
        root,
        categories,
        category_of,
        after_window,
        ui,
        router: Router::build(router),
        version: version_of(sources),
        provider,
        canned,
    };

    // Limits that depend on the assembled messages and buttons.
    for (p, (id, node)) in kept.iter().zip(tree.nodes()) {
        let offset = p.raw.id.span().start;
        let menu = tree.menu(id);
        for button in menu.iter().flatten() {
            let data = button.action.encode();
            if data.len() > MAX_DATA_BYTES {
                report.add(
                    p.file,
                    offset,
                    Some(&node.id),
                    format!(
                        "button data \"{data}\" is {} bytes, over Telegram's {MAX_DATA_BYTES}; use shorter ids",
                        data.len()
                    ),
                );
            }
        }
        for lang in Lang::ALL {
            let len = tree.body(id, lang).encode_utf16().count();
            if len > MAX_TEXT_CHARS {
                report.add(
                    p.file,
                    offset,
                    Some(&node.id),
                    format!(
                        "{lang} text is {len} characters with the closing advice, channels and safety line, over Telegram's {MAX_TEXT_CHARS}"
                    ),
                );
            }
        }
        check_presses(&mut report, p, &tree, id);
    }
    if report.problems.is_empty() {
        Ok(tree)
    } else {
        Err(report.finish())
    }
}

/// Writes the profile into both languages of one text.
fn fill_text(
    report: &mut Report,
    file: usize,
    node: Option<&str>,
    what: &str,
    text: Option<&mut Spanned<RawText>>,
    provider: Option<&Provider>,
) {
    let Some(text) = text else { return };
    let raw = text.get_mut();
    for (lang, value) in [(Lang::Zh, raw.zh.as_mut()), (Lang::En, raw.en.as_mut())] {
        if let Some(value) = value {
            fill(report, file, node, what, value, lang, provider);
        }
    }
}

/// Writes the profile into a node's text, brief, labels and what its
/// reminder assumes.
fn fill_node(report: &mut Report, p: &mut Parsed, provider: Option<&Provider>) {
    let id = p.raw.id.get_ref().clone();
    let node = Some(id.as_str());
    let raw = &mut p.raw;
    fill_text(report, p.file, node, "text", raw.text.as_mut(), provider);
    fill_text(report, p.file, node, "brief", raw.brief.as_mut(), provider);
    fill_text(
        report,
        p.file,
        node,
        "assumes",
        raw.assumes.as_mut(),
        provider,
    );
    for (n, button) in raw.button.iter_mut().enumerate() {
        let what = format!("button {}", n + 1);
        let label = button.get_mut().label.as_mut();
        fill_text(report, p.file, node, &what, label, provider);
    }
}

/// Writes the profile into the texts and labels of `ui.toml`.
fn fill_ui(report: &mut Report, file: usize, raw: &mut RawUi, provider: Option<&Provider>) {
    let tables: [(&str, &mut RawTable); 4] = [
        ("text", &mut raw.text),
        ("button", &mut raw.button),
        ("command", &mut raw.command),
        ("console", &mut raw.console),
    ];
    for (name, table) in tables {
        let Some(table) = table else { continue };
        for (key, text) in table.get_mut().iter_mut() {
            let what = format!("{name}.{key}");
            fill_text(report, file, None, &what, Some(text), provider);
        }
    }
}

/// Checks that every button a node's text (or what its reminder assumes)
/// tells people to press — 点「X」, press "X" — is on the node's menu:
/// an answer, "not solved" (both best named with `{go:…}`), "solved", the
/// reminder's button, "back" or "start over". In Chinese a page's own
/// words, quoted the same in the English text (点「短信核验」, click
/// 「短信核验」), are the MIIT site's buttons, not the bot's.
fn check_presses(report: &mut Report, p: &Parsed, tree: &Tree, id: NodeId) {
    let node = tree.node(id);
    let ui = tree.ui();
    let menu = tree.menu(id);
    let texts = [
        ("text", Some(&node.text), p.raw.text.as_ref()),
        (
            "assumes",
            node.remind.as_ref().map(|(_, a)| a),
            p.raw.assumes.as_ref(),
        ),
    ];
    for (what, text, raw) in texts {
        let (Some(text), Some(raw)) = (text, raw) else {
            continue;
        };
        for lang in Lang::ALL {
            let offset = match lang {
                Lang::Zh => raw.get_ref().zh.as_ref(),
                Lang::En => raw.get_ref().en.as_ref(),
            }
            .map_or(raw.span().start, |v| v.span().start);
            let labels: Vec<&str> = menu
                .iter()
                .flatten()
                .map(|b| b.label.get(ui, lang))
                .collect();
            for named in pressed(text.get(lang), lang) {
                let offered = names_one_of(named, labels.iter().copied());
                let page = lang == Lang::Zh && is_page_name(named, text.get(Lang::En));
                if !offered && !page {
                    report.add(
                        p.file,
                        offset,
                        Some(&node.id),
                        format!(
                            "{what} ({lang}) tells people to press {}, but no button of this node's menu says that",
                            quoted(named, lang)
                        ),
                    );
                }
            }
        }
    }
}

/// The entries of the symptom categories (`category = true`), in the
/// order the entry menu offers them, then in file order. There is at least
/// one; each leads by answers alone to an end, and none is the entry menu.
fn check_categories(
    report: &mut Report,
    kept: &[&Parsed],
    nodes: &[Node],
    root: NodeId,
) -> Vec<NodeId> {
    let mut categories: Vec<NodeId> = Vec::new();
    for (i, p) in kept.iter().enumerate() {
        let Some(flag) = p.raw.category.as_ref().filter(|f| *f.get_ref()) else {
            continue;
        };
        let id = NodeId(i);
        if id == root {
            report.add(
                p.file,
                flag.span().start,
                Some(ROOT_ID),
                "the entry menu cannot be a category".to_string(),
            );
            continue;
        }
        if !leads_to_an_end(nodes, id, root) {
            report.add(
                p.file,
                flag.span().start,
                Some(p.raw.id.get_ref()),
                "a category must lead to an end by its answers, without going back to the entry menu"
                    .to_string(),
            );
        }
        categories.push(id);
    }
    if categories.is_empty() {
        let p = kept[root.0];
        report.add(
            p.file,
            p.raw.id.span().start,
            Some(ROOT_ID),
            "no category: mark the entry node of each symptom with category = true".to_string(),
        );
    }
    let offered = |id: &NodeId| match &nodes[root.0].kind {
        NodeKind::Question(choices) => choices
            .iter()
            .position(|c| c.target == *id)
            .unwrap_or(usize::MAX),
        NodeKind::End { .. } => usize::MAX,
    };
    categories.sort_by_key(|id| (offered(id), id.0));
    categories
}

/// Whether answers alone lead from `from` to an end without passing `root`.
fn leads_to_an_end(nodes: &[Node], from: NodeId, root: NodeId) -> bool {
    let mut seen = vec![false; nodes.len()];
    let mut queue = VecDeque::from([from]);
    seen[from.0] = true;
    while let Some(id) = queue.pop_front() {
        match &nodes[id.0].kind {
            NodeKind::End { .. } => return true,
            NodeKind::Question(choices) => {
                for c in choices {
                    if c.target != root && !seen[c.target.0] {
                        seen[c.target.0] = true;
                        queue.push_back(c.target);
                    }
                }
            }
        }
    }
    false
}

fn raw_targets(raw: &RawNode) -> impl Iterator<Item = &str> {
    raw.button
        .iter()
        .filter_map(|b| b.get_ref().goto.as_ref().map(|g| g.get_ref().as_str()))
        .chain(raw.not_solved.as_ref().map(|t| t.get_ref().as_str()))
}

/// The longest brief, in characters: it starts a line of the summary.
pub(crate) const MAX_BRIEF_CHARS: usize = 40;

/// Words in a node's text that send people to another part of the tree.
/// A text says where to go with `{go:<node id>}` instead, which the loader
/// turns into the label of the node's button leading there, so a text
/// never points at a button that does not exist.
const NAVIGATION_WORDS: &[(Lang, &str)] = &[
    (Lang::Zh, "主菜单"),
    (Lang::Zh, "上一步"),
    (Lang::Zh, "还没解决"),
    (Lang::En, "main menu"),
    (Lang::En, "back a step"),
    (Lang::En, "step back"),
    (Lang::En, "go back"),
    (Lang::En, "not solved"),
];

/// The marker that names the button leading to a node: `{go:<node id>}`.
const GO_MARKER: &str = "{go:";

/// Replaces each `{go:<node id>}` of `text` with the label of the button
/// leading there (`links`: target id and label), and refuses navigation
/// said in words.
fn expand_links(
    report: &mut Report,
    p: &Parsed,
    text: Localized,
    links: &[(&str, Localized)],
) -> Option<Localized> {
    let id = p.raw.id.get_ref().as_str();
    let raw = p.raw.text.as_ref()?.get_ref();
    let mut ok = true;
    let mut expand = |report: &mut Report, lang: Lang, value: &str| -> String {
        let offset = match lang {
            Lang::Zh => raw.zh.as_ref(),
            Lang::En => raw.en.as_ref(),
        }
        .map_or(0, |v| v.span().start);
        let lower = value.to_lowercase();
        for (_, word) in NAVIGATION_WORDS.iter().filter(|(l, _)| *l == lang) {
            if lower.contains(word) {
                report.add(
                    p.file,
                    offset,
                    Some(id),
                    format!(
                        "text ({lang}) sends people elsewhere in words (\"{word}\"): name the button with {{go:<node id>}}"
                    ),
                );
                ok = false;
            }
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(at) = rest.find(GO_MARKER) {
            out.push_str(&rest[..at]);
            let after = &rest[at + GO_MARKER.len()..];
            let Some(close) = after.find('}') else {
                report.add(
                    p.file,
                    offset,
                    Some(id),
                    format!("text ({lang}) has a {GO_MARKER} without its closing brace"),
                );
                ok = false;
                return out;
            };
            let target = &after[..close];
            match links.iter().find(|(to, _)| *to == target) {
                Some((_, label)) => out.push_str(label.get(lang)),
                None => {
                    report.add(
                        p.file,
                        offset,
                        Some(id),
                        format!(
                            "text ({lang}) points at {{go:{target}}}, but no button of this node leads to \"{target}\""
                        ),
                    );
                    ok = false;
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    };
    let zh = expand(report, Lang::Zh, &text.zh);
    let en = expand(report, Lang::En, &text.en);
    ok.then_some(Localized { zh, en })
}

fn check_node(
    report: &mut Report,
    p: &Parsed,
    by_id: &HashMap<String, NodeId>,
    ui: Option<&Ui>,
    complete: bool,
) -> Option<Node> {
    let raw = &p.raw;
    let id = raw.id.get_ref().as_str();
    let id_offset = raw.id.span().start;
    let is_end = raw.end.as_ref().is_some_and(|e| *e.get_ref());
    let is_final = raw.last.as_ref().is_some_and(|f| *f.get_ref());
    let mut ok = true;

    let placeholders: &[&str] = if is_end { &[SUMMARY_PLACEHOLDER] } else { &[] };
    let text = match &raw.text {
        Some(text) => check_text(report, p.file, text, Some(id), "text", placeholders, &[]),
        None => {
            report.add(p.file, id_offset, Some(id), "has no text".to_string());
            None
        }
    };
    ok &= text.is_some();

    let brief = match &raw.brief {
        Some(brief) => {
            let checked = check_text(report, p.file, brief, Some(id), "brief", &[], &[]);
            ok &= checked.is_some();
            if let Some(text) = &checked {
                for lang in Lang::ALL {
                    let len = text.get(lang).chars().count();
                    if len > MAX_BRIEF_CHARS {
                        report.add(
                            p.file,
                            brief.span().start,
                            Some(id),
                            format!("brief ({lang}) is {len} characters, over {MAX_BRIEF_CHARS}"),
                        );
                        ok = false;
                    }
                }
            }
            checked
        }
        None => None,
    };

    let resolve = |report: &mut Report, target: &Spanned<String>, what: &str| {
        let found = by_id.get(target.get_ref().as_str()).copied();
        if found.is_none() && complete {
            let wanted = target.get_ref();
            let hint = nearest(wanted, by_id.keys().map(String::as_str))
                .map(|near| format!("; did you mean \"{near}\"?"))
                .unwrap_or_default();
            report.add(
                p.file,
                target.span().start,
                Some(id),
                format!("{what} \"{wanted}\" names no node{hint}"),
            );
        }
        found
    };

    // Where the node's buttons lead, with their labels, for `{go:…}`.
    let mut links: Vec<(&str, Localized)> = Vec::new();
    let kind = if is_end {
        if !raw.button.is_empty() {
            report.add(
                p.file,
                raw.button[0].span().start,
                Some(id),
                "an end (end = true) cannot also have buttons".to_string(),
            );
            ok = false;
        }
        match (&raw.not_solved, is_final) {
            (Some(target), true) => {
                report.add(
                    p.file,
                    target.span().start,
                    Some(id),
                    "a final end has no \"not solved\": remove not_solved or final".to_string(),
                );
                None
            }
            (None, true) => Some(NodeKind::End { not_solved: None }),
            (Some(target), false) => {
                if let Some(ui) = ui {
                    links.push((
                        target.get_ref().as_str(),
                        Localized {
                            zh: ui.button(UiButton::NotSolved, Lang::Zh).to_string(),
                            en: ui.button(UiButton::NotSolved, Lang::En).to_string(),
                        },
                    ));
                }
                resolve(report, target, "not_solved").map(|t| NodeKind::End {
                    not_solved: Some(t),
                })
            }
            (None, false) => {
                report.add(
                    p.file,
                    id_offset,
                    Some(id),
                    "an end needs not_solved = \"<node id>\" (where \"not solved\" leads), or final = true where the checks run out"
                        .to_string(),
                );
                None
            }
        }
    } else {
        if let Some(target) = &raw.not_solved {
            report.add(
                p.file,
                target.span().start,
                Some(id),
                "not_solved belongs to ends only (add end = true, or remove it)".to_string(),
            );
            ok = false;
        }
        if let Some(flag) = raw.last.as_ref().filter(|f| *f.get_ref()) {
            report.add(
                p.file,
                flag.span().start,
                Some(id),
                "final belongs to ends only (add end = true, or remove it)".to_string(),
            );
            ok = false;
        }
        if raw.button.is_empty() {
            report.add(
                p.file,
                id_offset,
                Some(id),
                "dead end: no buttons and no end = true".to_string(),
            );
            None
        } else {
            let mut choices = Vec::with_capacity(raw.button.len());
            for (n, button) in raw.button.iter().enumerate() {
                let what = format!("button {}", n + 1);
                let b = button.get_ref();
                let label = match &b.label {
                    Some(label) => check_text(report, p.file, label, Some(id), &what, &[], &[]),
                    None => {
                        report.add(
                            p.file,
                            button.span().start,
                            Some(id),
                            format!("{what} has no label"),
                        );
                        None
                    }
                };
                let target = match &b.goto {
                    Some(goto) => resolve(report, goto, &format!("{what} goto")),
                    None => {
                        report.add(
                            p.file,
                            button.span().start,
                            Some(id),
                            format!("{what} has no goto"),
                        );
                        None
                    }
                };
                if let (Some(label), Some(goto)) = (&label, &b.goto)
                    && !links.iter().any(|(to, _)| *to == goto.get_ref())
                {
                    links.push((goto.get_ref().as_str(), label.clone()));
                }
                if let (Some(label), Some(target)) = (label, target) {
                    choices.push(Choice { label, target });
                }
            }
            (choices.len() == raw.button.len()).then_some(NodeKind::Question(choices))
        }
    };
    let text = match (text, ui) {
        (Some(text), Some(_)) => expand_links(report, p, text, &links),
        (text, None) => text,
        (None, _) => None,
    };
    ok &= text.is_some();

    let remind = match &raw.remind {
        None => None,
        Some(r) => match r.get_ref().as_str() {
            "window" => Some(RemindKind::Window),
            "new_code" => Some(RemindKind::NewCode),
            other => {
                report.add(
                    p.file,
                    r.span().start,
                    Some(id),
                    format!("remind = \"{other}\" is neither \"window\" nor \"new_code\""),
                );
                ok = false;
                None
            }
        },
    };
    let remind = match (&raw.remind, &raw.assumes) {
        (None, None) => None,
        (None, Some(assumes)) => {
            report.add(
                p.file,
                assumes.span().start,
                Some(id),
                "assumes belongs to nodes that offer a reminder (remind = …)".to_string(),
            );
            ok = false;
            None
        }
        (Some(r), None) if remind.is_some() => {
            report.add(
                p.file,
                r.span().start,
                Some(id),
                "offers a reminder but does not say what its timing assumes: add assumes = { zh = \"…\", en = \"…\" }"
                    .to_string(),
            );
            ok = false;
            None
        }
        (Some(_), None) => None,
        (Some(_), Some(assumes)) => {
            let assumes = check_text(report, p.file, assumes, Some(id), "assumes", &[], &[]);
            ok &= assumes.is_some();
            remind.zip(assumes)
        }
    };

    match (ok, text, kind) {
        (true, Some(text), Some(kind)) => Some(Node {
            id: id.to_string(),
            text,
            brief,
            kind,
            remind,
        }),
        _ => None,
    }
}

/// The id among `ids` nearest to `wanted`, when it is near enough to be
/// what was meant: a letter or two off, or swapped (a third of the
/// length at most); the first in order among equals.
fn nearest<'a>(wanted: &str, ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let most = (wanted.chars().count() / 3).max(1);
    ids.map(|id| (strsim::damerau_levenshtein(wanted, id), id))
        .filter(|(distance, _)| *distance <= most)
        .min()
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_id_a_letter_or_two_off_is_matched_to_the_id_meant() {
        let ids = ["not_received", "nr_resend", "timeout", "mismatch", "menu"];
        let near = |wanted| nearest(wanted, ids.iter().copied());
        assert_eq!(near("not_recieved"), Some("not_received"));
        assert_eq!(near("nr_resnd"), Some("nr_resend"));
        assert_eq!(near("timout"), Some("timeout"));
        assert_eq!(near("mneu"), Some("menu"));
        assert_eq!(near("nowhere"), None);
        assert_eq!(near("x"), None);
    }

    #[test]
    fn the_embedded_dialogs_load() {
        let tree = load(&embedded()).unwrap_or_else(|e| panic!("{e}"));
        assert!(tree.get(ROOT_ID).is_some());
        assert!(!tree.categories().is_empty());
    }
}
