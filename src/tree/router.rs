//! Free-text routing: what a typed message is most likely about, by character n-grams matched against `dialogs/routes.toml`.
//!
//! Chinese has no spaces, so Chinese text is cut into characters and runs of
//! two or three characters rather than words; English into words and, for
//! typo tolerance, character trigrams. Two measures meet:
//!
//! - a classifier (`model.rs`, multinomial logistic regression, learnt
//!   when the first message is routed) gives each category, and "none", a probability, from every
//!   route's examples and keywords, the off-topic examples and the extra
//!   labelled lines of `[training]`;
//! - the similarity of the message — TF-IDF cosine — to each route's
//!   examples, to the off-topic examples, and to the labelled lines of
//!   `[training]`, each speaking for its category or for none.
//!
//! A category's score is the mean of its probability and its best
//! similarity, a route's examples' or a labelled line's ("none": of its
//! probability and the off-topic examples' or lines' similarity).
//! The best category, when it is likely enough and clearly ahead of "none",
//! is taken, and within it the best route: the better of its examples'
//! similarity and how completely one of its keywords is contained (a
//! keyword picks the node, never the category); when two
//! categories are close, the best route of each is offered. A message the
//! classifier alone finds likelier off topic than in any category is left
//! alone (unless it compares another subject with the filing it names),
//! and so is one containing an off-topic keyword whole. Every word
//! the router knows comes from the dialogs folder; this file holds only the
//! method.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::id::NodeId;
use crate::lang::Localized;

mod grams;
mod model;
mod personal;
mod phrases;
use grams::{
    contains_whole, grams, hash, is_cjk, keyword_grams, model_grams, sorted_grams, without_links,
};
use model::Model;
#[cfg(test)]
pub(crate) use personal::CODE_DIGITS;
pub use personal::{has_personal_data, personal_data};

/// The score levels that decide between routing, offering candidates,
/// and leaving a message alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A category scoring at least this, and `margin` ahead of any other,
    /// is taken directly.
    pub confident: f32,
    /// The best category must score at least this to be offered at all
    /// (below it, the message is left alone); when none is taken directly,
    /// every category scoring at least this is offered.
    pub candidates: f32,
    /// How far the best category must lead the next to be taken directly.
    /// When it scores `confident` but leads by less, the doubt is the next
    /// ones: every category less than this behind it is offered with it,
    /// however low (a bare "sent back" offers the timeout and the reset).
    pub margin: f32,
    /// How far the best category must lead "none" to be routed or offered
    /// at all.
    pub none_margin: f32,
}

/// One route as the loader checked it.
#[derive(Debug, Clone)]
pub struct RouteData {
    pub node: NodeId,
    /// The category entry node the route's node belongs to.
    pub category: NodeId,
    pub title: Localized,
    pub keywords: Vec<String>,
    pub examples: Vec<String>,
}

/// Everything the loader hands over from `routes.toml`.
#[derive(Debug, Clone)]
pub struct RouterData {
    pub thresholds: Thresholds,
    pub synonyms: Vec<(String, String)>,
    pub traditional: Vec<(char, char)>,
    pub off_topic: Vec<String>,
    /// Phrases that make a message off topic whenever it contains one whole
    /// (another service's code, the police filing …), however much it
    /// otherwise sounds like a failure.
    pub off_topic_keywords: Vec<String>,
    /// Other things a message can be about (another service's login or
    /// code, a server's timeouts): a message naming one is off topic
    /// unless it also contains one of `filing_anchors`.
    pub other_subjects: Vec<String>,
    /// Words that name the filing itself.
    pub filing_anchors: Vec<String>,
    pub routes: Vec<RouteData>,
    /// The category entries, in the tree's order: the classifier's classes
    /// (and "none" after them).
    pub categories: Vec<NodeId>,
    /// Further labelled lines for the classifier: a category, or `None`
    /// for off topic.
    pub training: Vec<(Option<NodeId>, String)>,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// Clearly about this node.
    Confident(NodeId),
    /// Probably one of these, best first.
    Candidates(Vec<NodeId>),
    /// Nothing close.
    Nothing,
}

/// A route's score for one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub route: usize,
    pub score: f32,
}

/// All scores for one message, for routing and for the evaluation report.
#[derive(Debug, Clone)]
pub struct Scores {
    /// Routes scoring above zero, best first.
    pub routes: Vec<Score>,
    /// The best similarity to an off-topic example.
    pub off_topic: f32,
    /// How many distinct words or character pairs of the message the
    /// examples know at all.
    pub evidence: usize,
    /// Whether some keyword is contained whole.
    pub keyword_hit: bool,
    /// Each category's score (`None`: off topic), best first: the
    /// classifier's probability and the best similarity to the
    /// category's examples and labelled lines (not its keywords), averaged.
    pub classes: Vec<(Option<NodeId>, f32)>,
    /// Whether an off-topic keyword is contained whole.
    pub off_topic_keyword: bool,
    /// Whether another subject is named whole, and nothing that names the
    /// filing itself.
    pub elsewhere: bool,
    /// Whether the classifier alone finds "none" likelier than every
    /// category.
    pub classifier_says_none: bool,
    /// Whether another subject is named beside the filing itself: a
    /// comparison ("the filing's SMS never came, QQ's codes do"), whose
    /// other subject the classifier reads as off topic; the classifier
    /// alone does not leave it alone.
    pub compared: bool,
}

/// A message must share at least this many words or character pairs with
/// the examples (or contain a keyword whole) to be routed: one shared word
/// such as "text" is a coincidence, not a description.
const MIN_EVIDENCE: usize = 2;

/// How much the best similarity within a category counts beside the
/// classifier's probability for it (and the off-topic similarity beside the
/// probability of "none"): equal weight. On the tuning sets' 4-fold
/// cross-validation (1,242 lines) a lighter weight routed a few more lines
/// right (93.1% at 0.3 against 92.7%), but it let chatter that merely
/// shares words with the failures ("手机铃声变了", the phone's ringtone)
/// be offered a category: the similarity to the routes' own examples is
/// what keeps such text alone.
const SIMILARITY_WEIGHT: f32 = 1.0;

type Gram = u64;

/// Grams are hashes already: a map keyed by them only spreads the bits.
#[derive(Default, Clone, Copy)]
struct GramHasher(u64);

impl std::hash::Hasher for GramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// A map keyed by characters, hashed as cheaply as grams.
type CharMap<V> = HashMap<char, V, std::hash::BuildHasherDefault<GramHasher>>;

/// A map keyed by grams.
type GramMap<V> = HashMap<Gram, V, std::hash::BuildHasherDefault<GramHasher>>;

/// Who an indexed example speaks for.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Route(usize),
    OffTopic,
    /// A labelled line of `[training]`: its category's index, or none.
    Line(Option<usize>),
}

#[derive(Debug, Clone)]
struct Keyword {
    route: usize,
    /// The keyword's n-grams, sorted and unique.
    grams: Vec<Gram>,
}

/// The compiled router, built once at start.
#[derive(Debug, Clone)]
pub struct Router {
    thresholds: Thresholds,
    /// Synonym keys by their first character, longest first.
    synonyms: CharMap<Vec<(Vec<char>, String)>>,
    traditional: CharMap<char>,
    /// Every gram some example has: its weight and its postings, in one
    /// entry, so that a message's gram is looked up once.
    index: GramMap<Indexed>,
    /// The weight of a gram no example has.
    unseen_idf: f32,
    owners: Vec<Owner>,
    /// The labelled lines `learns` keeps: each one's class (a category's
    /// index, or none) and its place in `[training]`, for the similarity
    /// and the classifier alike.
    learnt: Vec<(Option<usize>, usize)>,
    keywords: Vec<Keyword>,
    /// The grams of each off-topic keyword, sorted and unique.
    off_topic_keywords: Vec<Vec<Gram>>,
    /// The grams of each other subject and of each filing anchor, alike.
    other_subjects: Vec<Vec<Gram>>,
    filing_anchors: Vec<Vec<Gram>>,
    /// The anchors as written (folded, no synonym applied), looked for in
    /// the message as written: a synonym may swallow an anchor in a
    /// message ("短信核验码" is read as "短信验证码").
    filing_anchors_written: Vec<Vec<Gram>>,
    /// The category of each class of `model`; the class after them is
    /// "none".
    categories: Vec<NodeId>,
    route_categories: Vec<NodeId>,
    /// What the router was built from: its routes, the lines the
    /// classifier learns from, and all `leaving_out` builds again from.
    source: Arc<RouterData>,
    /// The classifier, learnt the first time a message is routed (see
    /// `model`); shared by the router's copies, whose data it is.
    model: Arc<OnceLock<Model>>,
}

/// A gram some example has: its inverse document frequency, and each
/// example having it with its weight in that example's unit vector.
#[derive(Debug, Clone)]
struct Indexed {
    idf: f32,
    postings: Vec<(u32, f32)>,
}

impl Router {
    pub fn build(data: RouterData) -> Router {
        let data = Arc::new(data);
        let mut router = Router {
            thresholds: data.thresholds,
            synonyms: CharMap::default(),
            traditional: data.traditional.iter().copied().collect(),
            index: GramMap::default(),
            unseen_idf: 0.0,
            owners: Vec::new(),
            learnt: Vec::new(),
            keywords: Vec::new(),
            off_topic_keywords: Vec::new(),
            other_subjects: Vec::new(),
            filing_anchors: Vec::new(),
            filing_anchors_written: Vec::new(),
            categories: data.categories.clone(),
            route_categories: data.routes.iter().map(|r| r.category).collect(),
            source: Arc::clone(&data),
            model: Arc::default(),
        };
        // Synonym keys are normalized like messages, so "核驗碼" and "核验码"
        // are one key; the canonical value then applies to both.
        let mut synonyms: Vec<(Vec<char>, String)> = data
            .synonyms
            .iter()
            .map(|(k, v)| {
                (
                    router.fold(k).chars().collect::<Vec<char>>(),
                    router.fold(v),
                )
            })
            .filter(|(k, _)| !k.is_empty())
            .collect();
        synonyms.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        for (key, value) in synonyms {
            router
                .synonyms
                .entry(key[0])
                .or_default()
                .push((key, value));
        }

        router.off_topic_keywords = router.phrases(&data.off_topic_keywords);
        router.other_subjects = router.phrases(&data.other_subjects);
        router.filing_anchors = router.phrases(&data.filing_anchors);
        router.filing_anchors_written = data
            .filing_anchors
            .iter()
            .filter_map(|anchor| sorted_grams(&router.fold(anchor)))
            .collect();
        let mut documents: Vec<(Owner, Vec<Gram>)> = Vec::new();
        for (i, route) in data.routes.iter().enumerate() {
            for example in route.examples.iter().chain(&route.keywords) {
                documents.push((Owner::Route(i), grams(&router.normalize(example))));
            }
        }
        for example in &data.off_topic {
            documents.push((Owner::OffTopic, grams(&router.normalize(example))));
        }
        // The labelled lines speak for their category (or for none) as a
        // route's examples speak for the route: a message close to one of
        // them is close to its category, whichever route it would take.
        for (i, line) in data.training.iter().enumerate() {
            let class = match line.0 {
                Some(c) => match data.categories.iter().position(|x| *x == c) {
                    Some(class) => Some(class),
                    None => continue,
                },
                None => None,
            };
            if router.learns(line) {
                router.learnt.push((class, i));
                documents.push((Owner::Line(class), grams(&router.normalize(&line.1))));
            }
        }
        let mut df: GramMap<u32> = GramMap::default();
        for (_, doc) in &documents {
            let mut seen: Vec<Gram> = doc.clone();
            seen.sort_unstable();
            seen.dedup();
            for g in seen {
                *df.entry(g).or_default() += 1;
            }
        }
        let n = documents.len() as f32;
        router.index = df
            .into_iter()
            .map(|(g, d)| {
                let idf = ((n + 1.0) / (d as f32 + 1.0)).ln() + 1.0;
                (
                    g,
                    Indexed {
                        idf,
                        postings: Vec::new(),
                    },
                )
            })
            .collect();
        router.unseen_idf = (n + 1.0).ln() + 1.0;
        for (i, (owner, doc)) in documents.iter().enumerate() {
            router.owners.push(*owner);
            let weighted: Vec<(Gram, f32)> = router
                .weigh(doc.clone())
                .into_iter()
                .map(|(g, w, _)| (g, w))
                .collect();
            for (g, w) in weighted {
                if let Some(entry) = router.index.get_mut(&g) {
                    entry.postings.push((i as u32, w));
                }
            }
        }
        for (i, route) in data.routes.iter().enumerate() {
            for keyword in &route.keywords {
                let mut grams = keyword_grams(&router.normalize(keyword));
                grams.sort_unstable();
                grams.dedup();
                if !grams.is_empty() {
                    router.keywords.push(Keyword { route: i, grams });
                }
            }
        }
        router
    }

    /// Each phrase's keyword grams, sorted and unique, for "contained
    /// whole" tests; a phrase with none is dropped (`phrase_problems`
    /// reports it).
    fn phrases(&self, phrases: &[String]) -> Vec<Vec<Gram>> {
        phrases
            .iter()
            .filter_map(|phrase| sorted_grams(&self.normalize(phrase)))
            .collect()
    }

    /// The classifier. It is learnt when first asked for, not at load:
    /// a dialogue loaded to be checked, drawn or reloaded, or a bot that is
    /// only ever pressed, never pays for the learning; the first message
    /// routed after a start or a reload does, once (see dialogs/README.md).
    fn model(&self) -> &Model {
        self.model.get_or_init(|| {
            let model = self.train();
            // The learning's lines and features are freed by now.
            crate::memory::give_back_free_memory();
            model
        })
    }

    /// Learns the classifier from every route's examples and keywords
    /// (labelled with the route's category), the off-topic examples
    /// ("none") and the extra labelled lines.
    fn train(&self) -> Model {
        let data = &*self.source;
        let features = |text: &str| {
            let normalized = self.normalize(text);
            let present = sorted_grams(&normalized).unwrap_or_default();
            self.model_features(&normalized, &present)
        };
        let none = self.categories.len();
        let class_of = |category: Option<NodeId>| match category {
            Some(c) => self.categories.iter().position(|x| *x == c),
            None => Some(none),
        };
        let mut lines: Vec<(Vec<Gram>, usize)> = Vec::new();
        for route in &self.source.routes {
            let Some(class) = class_of(Some(route.category)) else {
                continue;
            };
            for text in route.examples.iter().chain(&route.keywords) {
                lines.push((features(text), class));
            }
        }
        for text in &data.off_topic {
            lines.push((features(text), none));
        }
        for &(class, i) in &self.learnt {
            lines.push((features(&data.training[i].1), class.unwrap_or(none)));
        }
        Model::train(&lines, none + 1)
    }

    pub fn routes(&self) -> &[RouteData] {
        &self.source.routes
    }

    /// The same router built without the labelled lines in `texts`, in
    /// `[training]` and among the off-topic examples alike: a set already
    /// learnt, measured as if it were new (`eval --leave-out`). Also how
    /// many of `texts` it found there to leave out.
    pub fn leaving_out(&self, texts: &HashSet<&str>) -> (Router, usize) {
        let mut data = (*self.source).clone();
        let mut found: HashSet<&str> = HashSet::new();
        let mut keep = |text: &String| match texts.get(text.as_str()) {
            Some(t) => {
                found.insert(t);
                false
            }
            None => true,
        };
        data.training.retain(|(_, text)| keep(text));
        data.off_topic.retain(|text| keep(text));
        (Router::build(data), found.len())
    }

    /// Full-width to half-width, lowercase, traditional to simplified, and
    /// every other character that is neither a letter, a digit nor CJK
    /// turned into a space.
    fn fold(&self, text: &str) -> String {
        text.chars()
            .map(|c| {
                let c = match c {
                    '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                    _ => c,
                };
                let c = self.traditional.get(&c).copied().unwrap_or(c);
                // CJK and ASCII first: the Unicode tables are slow.
                if is_cjk(c) {
                    c
                } else if c.is_ascii() {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        ' '
                    }
                } else if c.is_alphanumeric() {
                    c.to_lowercase().next().unwrap_or(c)
                } else {
                    ' '
                }
            })
            .collect()
    }

    /// `fold`, then every synonym replaced by its canonical form, longest
    /// match first, in one pass.
    pub fn normalize(&self, text: &str) -> String {
        let folded: Vec<char> = self.fold(&without_links(text)).chars().collect();
        let mut out = String::with_capacity(folded.len() * 3);
        let mut i = 0;
        while i < folded.len() {
            let found = self.synonyms.get(&folded[i]).and_then(|candidates| {
                candidates
                    .iter()
                    .find(|(key, _)| folded[i..].starts_with(key))
            });
            match found {
                Some((key, value)) => {
                    out.push_str(value);
                    i += key.len();
                }
                None => {
                    out.push(folded[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// A unit TF-IDF vector of the grams, each with its entry in the
    /// index (none for a gram no example has).
    fn weigh(&self, mut sorted: Vec<Gram>) -> Vec<(Gram, f32, Option<&Indexed>)> {
        sorted.sort_unstable();
        let mut v: Vec<(Gram, f32, Option<&Indexed>)> = Vec::new();
        for run in sorted.chunk_by(|a, b| a == b) {
            let g = run[0];
            let entry = self.index.get(&g);
            let idf = entry.map_or(self.unseen_idf, |e| e.idf);
            v.push((g, (1.0 + (run.len() as f32).ln()) * idf, entry));
        }
        let norm = v.iter().map(|(_, w, _)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w, _) in &mut v {
                *w /= norm;
            }
        }
        v
    }

    /// What the classifier reads of a normalized text: its n-grams, and
    /// one feature for each route with a keyword contained whole.
    /// `present` is the text's keyword grams, sorted and unique.
    fn model_features(&self, normalized: &str, present: &[Gram]) -> Vec<Gram> {
        let mut features = model_grams(normalized);
        for keyword in &self.keywords {
            if keyword
                .grams
                .iter()
                .all(|g| present.binary_search(g).is_ok())
            {
                features.push(hash(7, char::from_u32(keyword.route as u32).into_iter()));
            }
        }
        features
    }

    fn routes_category(&self, route: usize) -> Option<NodeId> {
        self.route_categories.get(route).copied()
    }

    /// Every route's score for a message.
    pub fn score(&self, text: &str) -> Scores {
        let normalized = self.normalize(text);
        let grams = grams(&normalized);
        let query = self.weigh(grams);
        // Each route's best similarity to its own examples weighs its
        // category; raised by its keywords' containment (`contained`), it
        // picks the node within the category. A keyword lifting the
        // category too let a shared phrase (收不到 in another service's
        // login code) route off-topic text whatever the classifier said.
        let mut best = vec![0f32; self.source.routes.len()];
        let mut off_topic = 0f32;
        let mut lines = vec![0f32; self.categories.len() + 1];
        let mut dot = vec![0f32; self.owners.len()];
        for (_, w, entry) in &query {
            if let Some(entry) = entry {
                for (doc, dw) in &entry.postings {
                    dot[*doc as usize] += w * dw;
                }
            }
        }
        for (doc, similarity) in dot.into_iter().enumerate() {
            if similarity <= 0.0 {
                continue;
            }
            match self.owners[doc] {
                Owner::Route(r) => best[r] = best[r].max(similarity),
                Owner::OffTopic => off_topic = off_topic.max(similarity),
                Owner::Line(c) => {
                    let i = c.unwrap_or(self.categories.len());
                    lines[i] = lines[i].max(similarity);
                }
            }
        }
        let present = sorted_grams(&normalized).unwrap_or_default();
        let evidence = present
            .iter()
            .filter(|g| self.index.contains_key(g))
            .count();
        let mut keyword_hit = false;
        // The longest keyword each route contains whole: between equal
        // scores and examples as close, the more specific phrase wins.
        let mut longest = vec![0usize; self.source.routes.len()];
        let mut contained = best.clone();
        {
            for keyword in &self.keywords {
                // Every part of a keyword counts alike: a keyword is only
                // as telling as its whole, however common its parts are.
                let found = keyword
                    .grams
                    .iter()
                    .filter(|g| present.binary_search(g).is_ok())
                    .count();
                let containment = found as f32 / keyword.grams.len() as f32;
                if found == keyword.grams.len() {
                    keyword_hit = true;
                    longest[keyword.route] = longest[keyword.route].max(found);
                }
                contained[keyword.route] = contained[keyword.route].max(containment * containment);
            }
        }
        // An off-topic phrase contained whole outweighs any route.
        let off_topic_keyword = contains_whole(&self.off_topic_keywords, &present);
        let (elsewhere, compared) = self.elsewhere_in(text, &present);
        if off_topic_keyword {
            off_topic = off_topic.max(1.0);
        }
        let mut routes: Vec<Score> = contained
            .into_iter()
            .enumerate()
            .filter(|(_, s)| *s > 0.0)
            .map(|(route, score)| Score { route, score })
            .collect();
        routes.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(best[b.route].total_cmp(&best[a.route]))
                .then(longest[b.route].cmp(&longest[a.route]))
        });
        let probabilities = self
            .model()
            .probabilities(self.model_features(&normalized, &present));
        let (by_category, by_none) =
            probabilities.split_at(self.categories.len().min(probabilities.len()));
        let classifier_says_none = by_none
            .first()
            .is_some_and(|none| by_category.iter().all(|p| p < none));
        let mut classes: Vec<(Option<NodeId>, f32)> = probabilities
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let category = self.categories.get(i).copied();
                let similarity = match category {
                    Some(c) => best
                        .iter()
                        .enumerate()
                        .filter(|(r, _)| self.routes_category(*r) == Some(c))
                        .map(|(_, s)| *s)
                        .fold(0.0, f32::max),
                    None => off_topic,
                };
                let similarity = similarity.max(lines.get(i).copied().unwrap_or(0.0));
                (
                    category,
                    (p + SIMILARITY_WEIGHT * similarity) / (1.0 + SIMILARITY_WEIGHT),
                )
            })
            .collect();
        classes.sort_by(|a, b| b.1.total_cmp(&a.1));
        Scores {
            routes,
            off_topic,
            evidence,
            keyword_hit,
            classes,
            off_topic_keyword,
            elsewhere,
            classifier_says_none,
            compared,
        }
    }

    /// Where a message should go. The classifier and the similarity pick
    /// the category (or none), the classifier alone able to say none but
    /// for a comparison with another subject; the similarity scores pick
    /// the node within it.
    pub fn route(&self, text: &str) -> Routing {
        self.route_scored(text).0
    }

    /// `route`, with the scores it went by (why a message was left alone,
    /// say), so that nobody scores a message twice.
    pub fn route_scored(&self, text: &str) -> (Routing, Scores) {
        let scores = self.score(text);
        (self.decide(&scores), scores)
    }

    fn decide(&self, scores: &Scores) -> Routing {
        let t = self.thresholds;
        let evident = scores.keyword_hit || scores.evidence >= MIN_EVIDENCE;
        let Some(&(Some(top), p)) = scores.classes.first() else {
            return Routing::Nothing;
        };
        let none = scores
            .classes
            .iter()
            .find(|c| c.0.is_none())
            .map_or(0.0, |c| c.1);
        // Off topic unless a category is likely enough and clearly ahead of
        // "none": a near miss is left alone rather than offered. Ahead for
        // the classifier alone, too: a keyword contained whole (收不到 in
        // another service's login code) must not outvote a classifier that
        // finds the message off topic, unless the other service is only
        // compared with the filing.
        if !evident
            || scores.off_topic_keyword
            || scores.elsewhere
            || (scores.classifier_says_none && !scores.compared)
            || p < t.candidates
            || p - none < t.none_margin
        {
            return Routing::Nothing;
        }
        let runner_up = scores.classes.get(1).map_or(0.0, |c| c.1);
        if p >= t.confident && p - runner_up >= t.margin {
            return Routing::Confident(self.node_in(scores, top));
        }
        // Not sure: the best node of each category likely enough, best
        // first, stopping at "none"; when the best was likely enough to be
        // taken but for the next ones, those close behind it as well.
        let doubt_is_the_next = p >= t.confident;
        let offered: Vec<NodeId> = scores
            .classes
            .iter()
            .take_while(|(c, q)| {
                c.is_some() && (*q >= t.candidates || (doubt_is_the_next && p - *q < t.margin))
            })
            .filter_map(|(c, _)| *c)
            .take(MOST_OFFERED)
            .map(|c| self.node_in(scores, c))
            .collect();
        Routing::Candidates(offered)
    }

    /// The best-scoring route's node within a category, or the category's
    /// own entry when no route of it scores.
    fn node_in(&self, scores: &Scores, category: NodeId) -> NodeId {
        scores
            .routes
            .iter()
            .map(|s| &self.source.routes[s.route])
            .find(|r| r.category == category)
            .map_or(category, |r| r.node)
    }

    /// The category a message is about, or `None`: the top route's
    /// category when it clears the candidate threshold and beats the
    /// off-topic examples.
    pub fn category(&self, text: &str) -> Option<NodeId> {
        match self.route(text) {
            Routing::Confident(node) => self.category_of(node),
            Routing::Candidates(nodes) => nodes.first().and_then(|n| self.category_of(*n)),
            Routing::Nothing => None,
        }
    }

    fn category_of(&self, node: NodeId) -> Option<NodeId> {
        self.source
            .routes
            .iter()
            .find(|r| r.node == node)
            .map(|r| r.category)
    }

    /// The title of the route that leads to `node`.
    pub fn title(&self, node: NodeId) -> Option<&Localized> {
        self.source
            .routes
            .iter()
            .find(|r| r.node == node)
            .map(|r| &r.title)
    }
}

/// A text's keyword grams, sorted and unique; `None` when it has none.
/// The most routes offered when none is clear enough to take directly.
pub(crate) const MOST_OFFERED: usize = 3;
