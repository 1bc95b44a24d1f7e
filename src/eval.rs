//! Measuring the free-text router against a labelled file: accuracy per category, off-topic lines routed, a confusion matrix, and every miss.

use std::collections::HashSet;
use std::fmt;

use crate::tree::Tree;
use crate::tree::router::{Router, Routing};

/// The label of lines that belong to no category.
pub const NONE: &str = "none";

/// What the router must keep on the held-out set,
/// `tests/data/routing-heldout-13.tsv`: the top-1 accuracy it reached there
/// when first measured (97.1%), with a point to spare so that one line
/// does not fail the build, and the off-topic lines it routed (0 of 70):
/// the goals are 95% and none routed; held so that they get no worse.
pub const HELD_OUT_FLOOR: f64 = 0.96;
pub const HELD_OUT_OFF_TOPIC: usize = 0;

/// The same for the held-out set before it,
/// `tests/data/routing-heldout-12.tsv`: 96.8% and 1 of 74 routed when
/// first measured (97.1% and 1 since the nodes for the questions asked
/// before filing and after verifying).
pub const EARLIER_HELD_OUT_FLOOR: f64 = 0.96;
pub const EARLIER_HELD_OUT_OFF_TOPIC: usize = 1;

/// The categories' ids, the labels a line may carry besides `none`.
fn category_ids(tree: &Tree) -> Vec<&str> {
    tree.categories()
        .iter()
        .map(|c| tree.node(*c).id.as_str())
        .collect()
}

/// One labelled line: `label<TAB>text`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub line: usize,
    pub label: String,
    pub text: String,
    /// For a near miss (`none|vf_done`): the nodes whose text answers it,
    /// so that being routed there is as right as being left alone.
    pub fits: Vec<String>,
}

/// Reads `label<TAB>text` lines; `#` starts a comment line, blank lines
/// are skipped. Labels are the tree's category ids and `none`; a `none`
/// line may name, after `|`, routed nodes that answer it (a question
/// about the anti-fraud texts, answered by the node that tells them from
/// the verification text).
pub fn parse(tree: &Tree, input: &str) -> Result<Vec<Sample>, String> {
    let categories = category_ids(tree);
    let routed: Vec<&str> = tree
        .router()
        .routes()
        .iter()
        .map(|r| tree.node(r.node).id.as_str())
        .collect();
    let mut samples = Vec::new();
    for (i, raw) in input.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let Some((label, text)) = raw.split_once('\t') else {
            return Err(format!("line {line}: expected label<TAB>text"));
        };
        let mut parts = label.trim().split('|').map(str::trim);
        let label = parts.next().unwrap_or_default();
        let fits: Vec<String> = parts.map(str::to_string).collect();
        if label != NONE && !categories.contains(&label) {
            return Err(format!(
                "line {line}: unknown label {label:?} (expected one of {}, {NONE})",
                categories.join(", ")
            ));
        }
        if !fits.is_empty() && label != NONE {
            return Err(format!(
                "line {line}: only a {NONE} line names nodes that answer it"
            ));
        }
        if fits.iter().any(String::is_empty) {
            return Err(format!("line {line}: an empty node name after |"));
        }
        if let Some(unknown) = fits.iter().find(|f| !routed.contains(&f.as_str())) {
            return Err(format!(
                "line {line}: {unknown:?} is not a node any route leads to"
            ));
        }
        samples.push(Sample {
            line,
            label: label.to_string(),
            text: text.to_string(),
            fits,
        });
    }
    Ok(samples)
}

/// A line the router got wrong.
#[derive(Debug, Clone)]
pub struct Miss {
    pub line: usize,
    pub expected: String,
    pub got: String,
    pub text: String,
    /// The best routes' node ids and scores, and the off-topic score.
    pub detail: String,
}

/// The result of routing every sample.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// (label, lines, correct), categories first, then `none`.
    pub per_label: Vec<(String, usize, usize)>,
    pub total: usize,
    pub correct: usize,
    /// Off-topic lines that were routed, directly or as candidates, to a
    /// node that does not answer them.
    pub off_topic_routed: usize,
    /// Near misses routed to a node that answers them: right, and counted
    /// in the `none` column.
    pub answered_near_misses: usize,
    /// Lines offered a choice of candidates rather than routed directly.
    pub offered_choice: usize,
    /// Rows: the expected label; columns: the label got; both in the order
    /// of `per_label`.
    pub confusion: Vec<Vec<usize>>,
    /// For each expected label, how many of its lines got candidates.
    pub choices: Vec<usize>,
    /// Measured left out (`evaluate_left_out`): how many of the lines'
    /// texts were in the router's data, and so left out of it.
    pub left_out: Option<usize>,
    pub misses: Vec<Miss>,
}

impl Evaluation {
    /// Top-1 accuracy over all lines, 0 to 1.
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Routes every sample: a category line is right when its best route
/// lies in that category (routed directly, or first of the candidates);
/// an off-topic line is right when nothing is offered at all, or when its
/// best route (the first candidate: only the first is judged) is a node
/// named as answering it.
pub fn evaluate(tree: &Tree, samples: &[Sample]) -> Evaluation {
    evaluate_with(tree, tree.router(), samples)
}

/// As `evaluate`, by a router built without the samples' lines (in
/// `[training]` and among the off-topic examples): how a tuning set,
/// copied into `[training]`, would score had it never been seen. Leaving
/// each tuning set out in turn measures a change to the router's method or
/// data on phrasings it was not tuned on, without spending a held-out set.
pub fn evaluate_left_out(tree: &Tree, samples: &[Sample]) -> Evaluation {
    let texts: HashSet<&str> = samples.iter().map(|s| s.text.as_str()).collect();
    let (router, found) = tree.router().leaving_out(&texts);
    Evaluation {
        left_out: Some(found),
        ..evaluate_with(tree, &router, samples)
    }
}

fn evaluate_with(tree: &Tree, router: &Router, samples: &[Sample]) -> Evaluation {
    let labels: Vec<String> = category_ids(tree)
        .into_iter()
        .chain([NONE])
        .map(str::to_string)
        .collect();
    let mut eval = Evaluation {
        per_label: labels.iter().map(|l| (l.clone(), 0, 0)).collect(),
        confusion: vec![vec![0; labels.len()]; labels.len()],
        choices: vec![0; labels.len()],
        ..Evaluation::default()
    };
    let category_of = |node| {
        router
            .routes()
            .iter()
            .find(|r| r.node == node)
            .map_or(NONE.to_string(), |r| tree.node(r.category).id.clone())
    };
    for sample in samples {
        let routing = router.route(&sample.text);
        let (best, choice) = match &routing {
            Routing::Confident(node) => (Some(*node), false),
            Routing::Candidates(nodes) => (nodes.first().copied(), true),
            Routing::Nothing => (None, false),
        };
        let answered = best.is_some_and(|node| sample.fits.contains(&tree.node(node).id));
        let (got, choice) = match best {
            Some(_) if answered => (NONE.to_string(), choice),
            Some(node) => (category_of(node), choice),
            None => (NONE.to_string(), false),
        };
        eval.answered_near_misses += usize::from(answered);
        let routed = got != NONE;
        if sample.label == NONE && routed {
            eval.off_topic_routed += 1;
        }
        let right = got == sample.label;
        eval.total += 1;
        eval.offered_choice += usize::from(choice);
        let row = labels.iter().position(|l| *l == sample.label);
        let column = labels.iter().position(|l| *l == got);
        if let (Some(row), Some(column)) = (row, column) {
            eval.confusion[row][column] += 1;
            eval.choices[row] += usize::from(choice);
        }
        if right {
            eval.correct += 1;
        } else {
            let scores = router.score(&sample.text);
            let mut detail: Vec<String> = scores
                .classes
                .iter()
                .take(3)
                .map(|(c, p)| {
                    let label = c.map_or(NONE, |c| tree.node(c).id.as_str());
                    format!("{label} {p:.2}")
                })
                .collect();
            detail.extend(scores.routes.iter().take(2).map(|s| {
                let node = router.routes()[s.route].node;
                format!("node {} {:.2}", tree.node(node).id, s.score)
            }));
            if scores.off_topic_keyword {
                detail.push("off-topic keyword".to_string());
            }
            if scores.elsewhere {
                detail.push("another subject".to_string());
            }
            if scores.classifier_says_none {
                detail.push(if scores.compared {
                    "classifier: none, overruled: another subject compared with the filing"
                        .to_string()
                } else {
                    "classifier: none".to_string()
                });
            }
            eval.misses.push(Miss {
                line: sample.line,
                expected: sample.label.clone(),
                got: if choice {
                    format!("{got} (as a choice)")
                } else {
                    got
                },
                text: sample.text.clone(),
                detail: detail.join(", "),
            });
        }
        if let Some(row) = eval.per_label.iter_mut().find(|r| r.0 == sample.label) {
            row.1 += 1;
            row.2 += usize::from(right);
        }
    }
    eval
}

impl Evaluation {
    /// One line: accuracy, off-topic lines routed, near misses answered by
    /// a node that fits them, choices offered.
    pub fn summary(&self) -> String {
        format!(
            "{:.1}% ({}/{}), off-topic routed {}, near misses answered {}, offered a choice {}",
            100.0 * self.accuracy(),
            self.correct,
            self.total,
            self.off_topic_routed,
            self.answered_near_misses,
            self.offered_choice
        )
    }

    /// The confusion matrix as text: rows expected, columns got (`none`:
    /// nothing offered), and how many of each row's lines were offered a
    /// choice of candidates, counted in the column of the first candidate.
    pub fn matrix(&self) -> String {
        let labels: Vec<&str> = self.per_label.iter().map(|r| r.0.as_str()).collect();
        let width = labels.iter().map(|l| l.len()).max().unwrap_or(4).max(8);
        let mut out = format!("{:<width$}", "expected \\ got");
        for l in &labels {
            out.push_str(&format!(" {l:>width$}"));
        }
        out.push_str(&format!(" {:>width$}\n", "as choice"));
        for (i, l) in labels.iter().enumerate() {
            out.push_str(&format!("{l:<width$}"));
            for n in &self.confusion[i] {
                out.push_str(&format!(" {n:>width$}"));
            }
            out.push_str(&format!(" {:>width$}\n", self.choices[i]));
        }
        out
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:>6} {:>8} {:>9}",
            "label", "lines", "correct", "accuracy"
        )?;
        for (label, lines, correct) in &self.per_label {
            let accuracy = if *lines == 0 {
                0.0
            } else {
                100.0 * *correct as f64 / *lines as f64
            };
            writeln!(f, "{label:<14} {lines:>6} {correct:>8} {accuracy:>8.1}%")?;
        }
        writeln!(
            f,
            "{:<14} {:>6} {:>8} {:>8.1}%",
            "overall",
            self.total,
            self.correct,
            100.0 * self.accuracy()
        )?;
        if let Some(found) = self.left_out {
            writeln!(
                f,
                "left out of the router's data: {found} of these {} lines (the others were not in it)",
                self.total
            )?;
        }
        writeln!(
            f,
            "off-topic lines routed into a category: {}",
            self.off_topic_routed
        )?;
        writeln!(
            f,
            "near misses answered by a node that fits them: {}",
            self.answered_near_misses
        )?;
        writeln!(f, "lines offered a choice: {}", self.offered_choice)?;
        write!(
            f,
            "\nconfusion (rows expected, columns got):\n{}",
            self.matrix()
        )?;
        if !self.misses.is_empty() {
            writeln!(f, "\nmisses:")?;
            for miss in &self.misses {
                writeln!(
                    f,
                    "  line {}: expected {}, got {}: {}\n      ({})",
                    miss.line, miss.expected, miss.got, miss.text, miss.detail
                )?;
            }
        }
        Ok(())
    }
}
