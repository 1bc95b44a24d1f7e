//! Text cut into the router's grams: characters and their pairs and triples for Chinese, words, word pairs and character trigrams for English, as hashes.

use super::Gram;

/// The text without web addresses: a link names a page, it does not
/// describe a problem, and its words would only add noise.
pub(super) fn without_links(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            match ["http://", "https://", "www."]
                .iter()
                .find_map(|p| lower.find(p))
            {
                Some(start) => &word[..start],
                None => word,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// FNV-1a over a gram's kind and characters.
pub(super) fn hash(kind: u8, chars: impl Iterator<Item = char>) -> Gram {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    h = h.wrapping_mul(0x0100_0000_01b3);
    for c in chars {
        for b in (c as u32).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Splits a normalized text into runs of CJK characters and runs of
/// other letters and digits.
fn runs(text: &str) -> Vec<(bool, Vec<char>)> {
    let mut runs: Vec<(bool, Vec<char>)> = Vec::new();
    for c in text.chars() {
        if c == ' ' {
            runs.push((false, Vec::new()));
            continue;
        }
        let cjk = is_cjk(c);
        match runs.last_mut() {
            Some((kind, run)) if *kind == cjk && !run.is_empty() => run.push(c),
            _ => runs.push((cjk, vec![c])),
        }
    }
    runs.retain(|(_, run)| !run.is_empty());
    runs
}

/// The grams for similarity: CJK characters and pairs; words, and the
/// character trigrams of words of four letters or more.
pub(super) fn grams(text: &str) -> Vec<Gram> {
    let mut out = Vec::new();
    for (cjk, run) in runs(text) {
        if cjk {
            for (i, c) in run.iter().enumerate() {
                out.push(hash(1, std::iter::once(*c)));
                if let Some(next) = run.get(i + 1) {
                    out.push(hash(2, [*c, *next].into_iter()));
                }
            }
        } else {
            out.push(hash(3, run.iter().copied()));
            if run.len() >= 4 {
                push_trigrams(&mut out, &run);
            }
        }
    }
    out
}

/// A word's character trigrams, its start and end marked (`^wo`, `rd$`).
fn push_trigrams(out: &mut Vec<Gram>, word: &[char]) {
    let padded: Vec<char> = std::iter::once('^')
        .chain(word.iter().copied())
        .chain(std::iter::once('$'))
        .collect();
    for w in padded.windows(3) {
        out.push(hash(4, w.iter().copied()));
    }
}

/// The grams the classifier reads: CJK characters, pairs and triples;
/// words, pairs of words, and the character trigrams of every word.
pub(super) fn model_grams(text: &str) -> Vec<Gram> {
    let mut out = Vec::new();
    let mut previous_word: Option<Vec<char>> = None;
    for (cjk, run) in runs(text) {
        if cjk {
            previous_word = None;
            for (i, c) in run.iter().enumerate() {
                out.push(hash(1, std::iter::once(*c)));
                if let Some(next) = run.get(i + 1) {
                    out.push(hash(2, [*c, *next].into_iter()));
                }
                if let Some(w) = run.get(i..i + 3) {
                    out.push(hash(5, w.iter().copied()));
                }
            }
        } else {
            out.push(hash(3, run.iter().copied()));
            if let Some(previous) = &previous_word {
                out.push(hash(
                    6,
                    previous
                        .iter()
                        .copied()
                        .chain([' '])
                        .chain(run.iter().copied()),
                ));
            }
            if run.len() >= 3 {
                push_trigrams(&mut out, &run);
            }
            previous_word = Some(run);
        }
    }
    out
}

/// The grams for keyword containment: CJK pairs (a lone CJK character
/// stands for itself) and whole words.
pub(super) fn keyword_grams(text: &str) -> Vec<Gram> {
    let mut out = Vec::new();
    for (cjk, run) in runs(text) {
        if cjk {
            if run.len() == 1 {
                out.push(hash(1, run.iter().copied()));
            }
            for w in run.windows(2) {
                out.push(hash(2, w.iter().copied()));
            }
        } else {
            out.push(hash(3, run.iter().copied()));
        }
    }
    out
}

/// A text's keyword grams, sorted and unique; none for a text without any.
pub(super) fn sorted_grams(text: &str) -> Option<Vec<Gram>> {
    let mut grams = keyword_grams(text);
    grams.sort_unstable();
    grams.dedup();
    (!grams.is_empty()).then_some(grams)
}

/// Whether one of `phrases` has all its grams in `present` (sorted).
pub(super) fn contains_whole(phrases: &[Vec<Gram>], present: &[Gram]) -> bool {
    phrases
        .iter()
        .any(|k| k.iter().all(|g| present.binary_search(g).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_left_out() {
        assert_eq!(
            without_links("看 https://beian.miit.gov.cn/ 这里"),
            "看  这里"
        );
        assert_eq!(without_links("网址www.example.com打不开"), "网址");
    }

    #[test]
    fn chinese_is_cut_into_characters_and_pairs() {
        let g = grams("收不到");
        assert_eq!(g.len(), 5);
        assert_eq!(keyword_grams("收不到").len(), 2);
    }

    #[test]
    fn english_words_carry_trigrams_for_typos() {
        let right: Vec<Gram> = grams("receive");
        let typo: Vec<Gram> = grams("recieve");
        let shared = typo.iter().filter(|g| right.contains(g)).count();
        assert!(shared >= 3, "{shared}");
    }
}
