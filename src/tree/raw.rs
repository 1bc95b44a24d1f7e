//! The raw serde mirror of the dialogs files: what TOML holds, before any check.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodeFile {
    #[serde(default)]
    pub(super) node: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) id: Spanned<String>,
    pub(super) text: Option<Spanned<RawText>>,
    pub(super) end: Option<Spanned<bool>>,
    pub(super) not_solved: Option<Spanned<String>>,
    /// An end where the checks run out: it has no "not solved".
    #[serde(rename = "final")]
    pub(super) last: Option<Spanned<bool>>,
    /// A few words naming the question (or the steps of an end), for the
    /// summary a person passes on to their provider.
    pub(super) brief: Option<Spanned<RawText>>,
    pub(super) remind: Option<Spanned<String>>,
    /// What a node that offers a reminder assumes about the timing, said
    /// below its text.
    pub(super) assumes: Option<Spanned<RawText>>,
    /// The entry of a symptom category: offered by the router and the
    /// evaluation, and checked to lead to an end.
    pub(super) category: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) button: Vec<Spanned<RawButton>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawButton {
    pub(super) label: Option<Spanned<RawText>>,
    pub(super) goto: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawText {
    pub(super) zh: Option<Spanned<String>>,
    pub(super) en: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUi {
    pub(super) text: RawTable,
    pub(super) button: RawTable,
    pub(super) command: RawTable,
    /// Texts of `[text]` said differently in the terminal console.
    pub(super) console: RawTable,
    pub(super) reminders: Option<Spanned<RawReminders>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReminders {
    pub(super) window_hours: u32,
    pub(super) before_deadline_hours: Vec<u32>,
    pub(super) arrived_hours_ago: Vec<u32>,
    pub(super) new_code_wait_minutes: u32,
    /// The node a closed verification window leads to.
    pub(super) after_window: Spanned<String>,
    pub(super) time_format: Spanned<RawText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoutes {
    pub(super) routing: Spanned<RawThresholds>,
    #[serde(default)]
    pub(super) normalize: RawNormalize,
    pub(super) off_topic: Spanned<RawLists>,
    /// Phrases that mark a message as off topic whenever contained whole.
    pub(super) off_topic_keywords: Option<Spanned<RawLists>>,
    /// Other things a message can be about (another service's login or
    /// code, a server's own timeouts): off topic unless the message also
    /// names the filing itself, by one of `filing_anchors`.
    pub(super) other_subjects: Option<Spanned<RawLists>>,
    /// Words that name the filing itself (备案, ICP, 管局 …).
    pub(super) filing_anchors: Option<Spanned<RawLists>>,
    #[serde(default)]
    pub(super) route: Vec<Spanned<RawRoute>>,
    /// Further labelled lines for the classifier, by category id or `none`.
    pub(super) training: Option<Spanned<BTreeMap<String, Vec<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThresholds {
    pub(super) confident: f32,
    pub(super) candidates: f32,
    pub(super) margin: f32,
    pub(super) none_margin: f32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNormalize {
    #[serde(default)]
    pub(super) synonyms: BTreeMap<String, String>,
    pub(super) traditional: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLists {
    pub(super) zh: Option<Vec<String>>,
    pub(super) en: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) node: Spanned<String>,
    pub(super) title: Option<Spanned<RawText>>,
    pub(super) keywords: Option<Spanned<RawLists>>,
    pub(super) examples: Option<Spanned<RawLists>>,
}

pub(super) type RawTable = Option<Spanned<BTreeMap<String, Spanned<RawText>>>>;
