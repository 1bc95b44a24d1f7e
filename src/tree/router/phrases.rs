//! The phrases that decide where a message belongs besides the scores (other subjects, filing anchors, off-topic keywords): what a message names, and what `check` reports of the lists, read as the router reads them.

use super::grams::{contains_whole, sorted_grams, without_links};
use super::{Gram, NodeId, Router, RouterData};

impl Router {
    /// Whether a labelled line is learnt, by the classifier and as an
    /// example for the similarity. An off-topic line that names another
    /// subject and not the filing ("QQ验证码收不到") is left alone by that
    /// rule whatever the scores say; learnt, it would only teach that the
    /// failures' own words ("验证码一直收不到怎么办") are off topic.
    pub(super) fn learns(&self, (category, text): &(Option<NodeId>, String)) -> bool {
        category.is_some() || !self.names_elsewhere(text).0
    }

    /// Whether a text names another subject, and whether it names the
    /// filing too: (another subject and no anchor, another subject beside
    /// an anchor).
    fn names_elsewhere(&self, text: &str) -> (bool, bool) {
        let normalized = self.normalize(text);
        let present = sorted_grams(&normalized).unwrap_or_default();
        self.elsewhere_in(text, &present)
    }

    /// `names_elsewhere`, given the text's keyword grams (sorted, unique).
    pub(super) fn elsewhere_in(&self, text: &str, present: &[Gram]) -> (bool, bool) {
        // Another subject named, and the filing not: "QQ验证码收不到" is
        // about QQ, "备案短信收不到，QQ的倒是能收到" about the filing. An
        // anchor counts read (和验 is 核验) or as written (短信核验码).
        let subject = contains_whole(&self.other_subjects, present);
        let anchored = subject
            && (contains_whole(&self.filing_anchors, present)
                || sorted_grams(&self.fold(&without_links(text)))
                    .is_some_and(|written| contains_whole(&self.filing_anchors_written, &written)));
        (subject && !anchored, subject && anchored)
    }

    /// What the router would make of the phrases that decide where a
    /// message belongs, as problems for the loader (the list, and what is
    /// wrong): a phrase left with nothing to match once normalized; an
    /// other subject that `normalize.synonyms` rewrites (连接超时 read as
    /// 连接失败: the list would hold a word it does not say); and an
    /// anchor rewritten into a word that is no anchor (核验码 read as
    /// 验证码 would anchor every other service's code).
    pub(crate) fn phrase_problems(data: &RouterData) -> Vec<(&'static str, String)> {
        let reader = Router::build(RouterData {
            thresholds: data.thresholds,
            synonyms: data.synonyms.clone(),
            traditional: data.traditional.clone(),
            off_topic: Vec::new(),
            off_topic_keywords: Vec::new(),
            other_subjects: Vec::new(),
            filing_anchors: Vec::new(),
            routes: Vec::new(),
            categories: Vec::new(),
            training: Vec::new(),
        });
        let mut problems = Vec::new();
        for (list, phrases) in [
            ("off_topic_keywords", &data.off_topic_keywords),
            ("other_subjects", &data.other_subjects),
            ("filing_anchors", &data.filing_anchors),
        ] {
            for phrase in phrases {
                if sorted_grams(&reader.normalize(phrase)).is_none() {
                    problems.push((
                        list,
                        format!("{list}: {phrase:?} leaves nothing to match once normalized"),
                    ));
                }
            }
        }
        let written: Vec<String> = data.filing_anchors.iter().map(|a| reader.fold(a)).collect();
        for (list, phrases) in [
            ("other_subjects", &data.other_subjects),
            ("filing_anchors", &data.filing_anchors),
        ] {
            for phrase in phrases {
                let read_as = reader.normalize(phrase);
                let anchored = written.iter().any(|a| read_as.contains(a.as_str()));
                if read_as.trim() != reader.fold(phrase).trim()
                    && (list == "other_subjects" || !anchored)
                {
                    problems.push((
                        list,
                        format!(
                            "{list}: {phrase:?} is read as {:?} (normalize.synonyms)",
                            read_as.trim()
                        ),
                    ));
                }
            }
        }
        problems
    }
}
