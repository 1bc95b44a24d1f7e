//! What `check` reports of the phrases that decide where a message belongs, read as the router reads them.

use super::{Router, RouterData, sorted_grams};

impl Router {
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
