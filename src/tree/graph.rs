//! The dialogue as a picture: every node and where its answers lead, as Mermaid, DOT or SVG.
//!
//! The three formats draw the same picture, built once as a `Picture`:
//! a box per node (the entry menu with a heavy border, ends rounded),
//! coloured by the symptom category it belongs to, an arrow per way on
//! (dashed for "not solved"), and, given how often each way was taken,
//! the resolution rate of each end and a count on each arrow. Nodes and
//! arrows are listed in one fixed order, so the same tree always gives
//! the same text.

use std::collections::HashMap;
use std::fmt::Write;

mod svg;

use super::{NodeId, NodeKind, Tree, UiButton};
use crate::lang::Lang;

/// How the picture is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart, as GitHub renders in Markdown.
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// A standalone SVG image, laid out in-process.
    Svg,
}

/// How often each way through the tree was taken, for annotating the picture.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// How often each edge (from node id, to node id) was taken.
    pub edges: HashMap<(String, String), u64>,
    /// Per end node id: how many said solved, and how many not solved.
    pub ends: HashMap<String, (u64, u64)>,
    /// Per node id: what people did there.
    pub nodes: HashMap<String, NodeUse>,
}

/// What people did at one node, counted in conversations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeUse {
    /// Conversations that reached it.
    pub reached: u64,
    /// Conversations not marked solved that stopped there.
    pub left: u64,
    /// Conversations that reached it and said solved afterwards.
    pub solved_after: u64,
}

/// Draws `tree` in `format`, its labels in `lang`, annotated with `usage`
/// if given.
pub fn render(tree: &Tree, format: Format, lang: Lang, usage: Option<&Usage>) -> String {
    let picture = Picture::of(tree, lang, usage);
    match format {
        Format::Mermaid => picture.mermaid(),
        Format::Dot => picture.dot(),
        Format::Svg => picture.svg(),
    }
}

/// The colour of the edges, their arrowheads and labels.
const EDGE: &str = "#424242";

/// The longest title cut from a node's text, in characters.
const TITLE_CHARS: usize = 30;

/// A fill and a border colour, as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Colours {
    fill: &'static str,
    stroke: &'static str,
}

/// Nodes that belong to no category: the entry menu and the triage
/// behind "not sure".
const NEUTRAL: Colours = Colours {
    fill: "#eeeeee",
    stroke: "#616161",
};

/// One colour per category, in the entry menu's order; a tree with more
/// categories than colours starts again from the first.
const PALETTE: [Colours; 6] = [
    Colours {
        fill: "#dbeafe",
        stroke: "#1d4ed8",
    },
    Colours {
        fill: "#dcfce7",
        stroke: "#15803d",
    },
    Colours {
        fill: "#fef3c7",
        stroke: "#b45309",
    },
    Colours {
        fill: "#fce7f3",
        stroke: "#be185d",
    },
    Colours {
        fill: "#ede9fe",
        stroke: "#6d28d9",
    },
    Colours {
        fill: "#ccfbf1",
        stroke: "#0f766e",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Entry,
    Question,
    End,
}

/// What a box belongs to, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Neutral,
    /// The index of the category in `Tree::categories`.
    Category(usize),
}

impl Group {
    fn colours(self) -> Colours {
        match self {
            Group::Neutral => NEUTRAL,
            Group::Category(i) => PALETTE[i % PALETTE.len()],
        }
    }
}

/// One node as drawn.
#[derive(Debug)]
struct Shape {
    id: String,
    /// The title, the id in brackets, and given usage what people did
    /// there (and for an end its rate).
    lines: Vec<String>,
    kind: Kind,
    group: Group,
    /// Given usage, the fill that says how many stopped here.
    heat: Option<&'static str>,
}

impl Shape {
    /// The box's colours: its category's, its fill the heat's if any.
    fn colours(&self) -> Colours {
        let Colours { fill, stroke } = self.group.colours();
        Colours {
            fill: self.heat.unwrap_or(fill),
            stroke,
        }
    }
}

/// The fills of a drawing with usage, by the share of the conversations
/// that reached a node and stopped there without saying solved: none,
/// under a tenth, a quarter, a half, and more. A node nobody reached is
/// `UNREACHED`.
pub(crate) const HEAT: [(u64, &str); 5] = [
    (0, "#e8f5e9"),
    (10, "#fff9c4"),
    (25, "#ffe0b2"),
    (50, "#ffab91"),
    (100, "#ef9a9a"),
];
const UNREACHED: &str = "#fafafa";

/// The fill for a node `reached` times and left `left` times.
fn heat(reached: u64, left: u64) -> &'static str {
    if reached == 0 {
        return UNREACHED;
    }
    let percent = left.saturating_mul(100) / reached;
    HEAT.iter()
        .find(|(below, _)| percent < *below || (*below == 0 && percent == 0))
        .map_or(HEAT[HEAT.len() - 1].1, |(_, fill)| fill)
}

/// The longest answer shown on an edge, in characters.
const ANSWER_CHARS: usize = 24;

/// One way on from a node to another.
#[derive(Debug)]
struct Line {
    from: usize,
    to: usize,
    /// Dashed: the "not solved" of an end.
    dashed: bool,
    label: Option<String>,
}

/// The picture, independent of the format it is written in.
#[derive(Debug)]
struct Picture {
    shapes: Vec<Shape>,
    lines: Vec<Line>,
    /// The category entries' ids, in order, for naming their colours.
    categories: Vec<String>,
}

/// The words the picture adds to the dialogue's own.
struct Words {
    solved: &'static str,
    no_answers: &'static str,
    reached: &'static str,
    stopped: &'static str,
}

impl Words {
    fn of(lang: Lang) -> Words {
        match lang {
            Lang::Zh => Words {
                solved: "已解决",
                no_answers: "尚无回答",
                reached: "到达",
                stopped: "停在这里",
            },
            Lang::En => Words {
                solved: "solved",
                no_answers: "no answers yet",
                reached: "reached",
                stopped: "stopped here",
            },
        }
    }

    /// `reached 12 · stopped here 3`.
    fn flow(&self, reached: u64, left: u64) -> String {
        format!("{} {reached} · {} {left}", self.reached, self.stopped)
    }

    /// `solved 3/4 (75%)`, the percentage rounded to the nearest whole.
    fn rate(&self, solved: u64, not_solved: u64) -> String {
        let total = u128::from(solved) + u128::from(not_solved);
        if total == 0 {
            return self.no_answers.to_string();
        }
        let percent = (u128::from(solved) * 200 + total) / (total * 2);
        format!("{} {solved}/{total} ({percent}%)", self.solved)
    }
}

impl Picture {
    fn of(tree: &Tree, lang: Lang, usage: Option<&Usage>) -> Picture {
        let words = Words::of(lang);
        let groups = groups(tree);
        let order = order(tree);
        let mut position = vec![0; tree.len()];
        for (i, id) in order.iter().enumerate() {
            position[id.0] = i;
        }
        let shapes = order
            .iter()
            .map(|&id| {
                let node = tree.node(id);
                let kind = if id == tree.root() {
                    Kind::Entry
                } else if matches!(node.kind, NodeKind::End { .. }) {
                    Kind::End
                } else {
                    Kind::Question
                };
                let mut lines = vec![title(tree, id, lang), format!("({})", node.id)];
                let mut heat_fill = None;
                if let Some(usage) = usage {
                    let here = usage.nodes.get(&node.id).copied().unwrap_or_default();
                    lines.push(words.flow(here.reached, here.left));
                    heat_fill = Some(heat(here.reached, here.left));
                    if kind == Kind::End {
                        let (solved, not_solved) =
                            usage.ends.get(&node.id).copied().unwrap_or((0, 0));
                        lines.push(words.rate(solved, not_solved));
                    }
                }
                Shape {
                    id: node.id.clone(),
                    lines,
                    kind,
                    group: groups[id.0],
                    heat: heat_fill,
                }
            })
            .collect();
        let not_solved = tree.ui().button(UiButton::NotSolved, lang);
        let mut lines = Vec::new();
        for &from in &order {
            for (to, dashed) in ways_on(tree, from) {
                // Given usage, every edge names its answer and how often it
                // was taken.
                let taken = usage.map(|u| {
                    let key = (tree.node(from).id.clone(), tree.node(to).id.clone());
                    format!("×{}", u.edges.get(&key).copied().unwrap_or(0))
                });
                let label = match (dashed, taken) {
                    (true, Some(taken)) => Some(format!("{not_solved} {taken}")),
                    (true, None) => Some(not_solved.to_string()),
                    (false, Some(taken)) => {
                        Some(format!("{} {taken}", answers(tree, from, to, lang)))
                    }
                    (false, None) => None,
                };
                lines.push(Line {
                    from: position[from.0],
                    to: position[to.0],
                    dashed,
                    label,
                });
            }
        }
        let categories = tree
            .categories()
            .iter()
            .map(|c| tree.node(*c).id.clone())
            .collect();
        Picture {
            shapes,
            lines,
            categories,
        }
    }

    /// A Mermaid flowchart. Node names carry an `n_` prefix, because
    /// Mermaid reads a bare `end` as a keyword and an `o` or `x` right
    /// after an arrow as an arrowhead.
    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        for shape in &self.shapes {
            let label = shape
                .lines
                .iter()
                .map(|l| mermaid_escape(l))
                .collect::<Vec<_>>()
                .join("<br/>");
            let (open, close) = match shape.kind {
                Kind::Entry => ("{{", "}}"),
                Kind::Question => ("[", "]"),
                Kind::End => ("([", "])"),
            };
            let _ = writeln!(
                out,
                "    n_{}{open}\"{label}\"{close}:::{}",
                shape.id,
                self.class(shape.group)
            );
        }
        for line in &self.lines {
            let arrow = if line.dashed { "-.->" } else { "-->" };
            let label = line
                .label
                .as_deref()
                .map(|l| format!("|\"{}\"|", mermaid_escape(l)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    n_{} {arrow}{label} n_{}",
                self.shapes[line.from].id, self.shapes[line.to].id
            );
        }
        for group in self.groups_used() {
            let Colours { fill, stroke } = group.colours();
            let _ = writeln!(
                out,
                "    classDef {} fill:{fill},stroke:{stroke},color:#000000",
                self.class(group)
            );
        }
        if let Some(entry) = self.shapes.iter().find(|s| s.kind == Kind::Entry) {
            let _ = writeln!(out, "    style n_{} stroke-width:4px", entry.id);
        }
        for shape in &self.shapes {
            if let Some(fill) = shape.heat {
                let _ = writeln!(out, "    style n_{} fill:{fill}", shape.id);
            }
        }
        out
    }

    /// Graphviz DOT.
    fn dot(&self) -> String {
        let mut out = String::from("digraph dialogue {\n");
        out.push_str("    node [shape=box, style=filled, fontname=\"sans-serif\"];\n");
        out.push_str("    edge [fontname=\"sans-serif\"];\n");
        for shape in &self.shapes {
            let label = shape
                .lines
                .iter()
                .map(|l| dot_escape(l))
                .collect::<Vec<_>>()
                .join("\\n");
            let Colours { fill, stroke } = shape.colours();
            let form = match shape.kind {
                Kind::Entry => ", penwidth=3",
                Kind::Question => "",
                Kind::End => ", style=\"rounded,filled\"",
            };
            let _ = writeln!(
                out,
                "    \"{}\" [label=\"{label}\", fillcolor=\"{fill}\", color=\"{stroke}\"{form}];",
                shape.id
            );
        }
        for line in &self.lines {
            let mut attributes = Vec::new();
            if line.dashed {
                attributes.push("style=dashed".to_string());
            }
            if let Some(label) = &line.label {
                attributes.push(format!("label=\"{}\"", dot_escape(label)));
            }
            let attributes = if attributes.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attributes.join(", "))
            };
            let _ = writeln!(
                out,
                "    \"{}\" -> \"{}\"{attributes};",
                self.shapes[line.from].id, self.shapes[line.to].id
            );
        }
        out.push_str("}\n");
        out
    }

    /// The Mermaid class of a group: the category entry's id, or `neutral`.
    fn class(&self, group: Group) -> String {
        match group {
            Group::Neutral => "neutral".to_string(),
            Group::Category(i) => format!("cat_{}", self.categories[i]),
        }
    }

    /// The groups some box belongs to, neutral first, then the categories
    /// in order.
    fn groups_used(&self) -> Vec<Group> {
        std::iter::once(Group::Neutral)
            .chain((0..self.categories.len()).map(Group::Category))
            .filter(|g| self.shapes.iter().any(|s| s.group == *g))
            .collect()
    }
}

/// The answers of `from` that lead to `to`, cut short, joined.
fn answers(tree: &Tree, from: NodeId, to: NodeId, lang: Lang) -> String {
    match &tree.node(from).kind {
        NodeKind::Question(choices) => choices
            .iter()
            .filter(|c| c.target == to)
            .map(|c| cut(&one_line(c.label.get(lang)), ANSWER_CHARS))
            .collect::<Vec<_>>()
            .join(" / "),
        NodeKind::End { .. } => String::new(),
    }
}

/// A node's short title in `lang`: its brief, else the title of the route
/// that leads to it, else the first line of its text, cut short.
fn title(tree: &Tree, id: NodeId, lang: Lang) -> String {
    let node = tree.node(id);
    if let Some(brief) = &node.brief {
        return one_line(brief.get(lang));
    }
    if let Some(title) = tree.router().title(id) {
        return one_line(title.get(lang));
    }
    let text = node.text.get(lang);
    cut(text.trim().lines().next().unwrap_or_default(), TITLE_CHARS)
}

/// `text` with every run of white space, line breaks included, made one
/// space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `max` characters of `text` on one line, with `…` if more
/// followed.
fn cut(text: &str, max: usize) -> String {
    let text = one_line(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Where a node's answers lead, each node once, in answer order, and
/// whether it is the "not solved" of an end.
fn ways_on(tree: &Tree, from: NodeId) -> Vec<(NodeId, bool)> {
    match &tree.node(from).kind {
        NodeKind::Question(choices) => {
            let mut targets: Vec<NodeId> = Vec::new();
            for choice in choices {
                if !targets.contains(&choice.target) {
                    targets.push(choice.target);
                }
            }
            targets.into_iter().map(|to| (to, false)).collect()
        }
        NodeKind::End { not_solved } => not_solved.iter().map(|to| (*to, true)).collect(),
    }
}

/// The nodes in the order the picture lists them: breadth first from the
/// entry menu, so the menu comes first and the layouts, which take an
/// edge closing a cycle for one going back up, put it at the top instead
/// of whatever node the first file names first. Nodes the walk misses (a
/// checked tree has none) follow in the files' order.
fn order(tree: &Tree) -> Vec<NodeId> {
    let mut seen = vec![false; tree.len()];
    let mut order = vec![tree.root()];
    seen[tree.root().0] = true;
    let mut next = 0;
    while let Some(&at) = order.get(next) {
        next += 1;
        for (to, _) in ways_on(tree, at) {
            if !seen[to.0] {
                seen[to.0] = true;
                order.push(to);
            }
        }
    }
    order.extend(tree.nodes().map(|(id, _)| id).filter(|id| !seen[id.0]));
    order
}

/// The group of every node, by position: its category's colour, or
/// neutral for the entry menu and the triage behind it.
fn groups(tree: &Tree) -> Vec<Group> {
    tree.category_indices()
        .into_iter()
        .map(|c| c.map_or(Group::Neutral, Group::Category))
        .collect()
}

/// A label for inside Mermaid's `"…"`: quotes and the characters Mermaid
/// would read as markup or an entity become entity codes.
fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            _ => out.push(c),
        }
    }
    out
}

/// A string for inside DOT's `"…"`.
fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `c` is drawn a full em wide: CJK and fullwidth forms, Hangul,
/// emoji.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_first_line_is_cut_short_with_an_ellipsis() {
        assert_eq!(cut("Short", 30), "Short");
        assert_eq!(cut("exactly ten", 11), "exactly ten");
        assert_eq!(cut("one two three", 8), "one two…");
        assert_eq!(cut("一二三四五六", 4), "一二三四…");
    }

    #[test]
    fn line_breaks_in_a_title_become_spaces() {
        assert_eq!(one_line("  a\n b\t c "), "a b c");
    }

    #[test]
    fn the_rate_is_solved_over_answers_rounded_to_a_whole_percent() {
        let en = Words::of(Lang::En);
        assert_eq!(en.rate(3, 1), "solved 3/4 (75%)");
        assert_eq!(en.rate(2, 1), "solved 2/3 (67%)");
        assert_eq!(en.rate(1, 2), "solved 1/3 (33%)");
        assert_eq!(en.rate(0, 5), "solved 0/5 (0%)");
        assert_eq!(en.rate(0, 0), "no answers yet");
        assert_eq!(Words::of(Lang::Zh).rate(1, 0), "已解决 1/1 (100%)");
        assert_eq!(
            en.rate(u64::MAX, u64::MAX),
            format!("solved {}/{} (50%)", u64::MAX, u128::from(u64::MAX) * 2)
        );
    }

    #[test]
    fn mermaid_labels_carry_quotes_and_markup_as_entity_codes() {
        assert_eq!(
            mermaid_escape(r#"a "b" <c> & #1 `d`"#),
            "a #quot;b#quot; #lt;c#gt; #amp; #35;1 #96;d#96;"
        );
    }

    #[test]
    fn dot_strings_escape_quotes_backslashes_and_line_breaks() {
        assert_eq!(dot_escape("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
    }
}
