//! The buttons a text tells people to press: 点「X」 in Chinese, press "X"
//! in English, found so the loader can hold each to a label offered with it.
//!
//! Node texts name their answers and "not solved" with `{go:<node id>}`,
//! which the loader turns into the label, so those always match; this
//! catches the rest: a standard button ("solved", a reminder's button)
//! or a `ui.toml` button written out by hand and left behind when its
//! label changed. Chinese texts also say 点「短信核验」 for a button of
//! the MIIT site; such page names are quoted the same way in the English
//! text (click 「短信核验」), which is how the check tells them apart.

use crate::lang::Lang;

/// What a text asks people to press, in order of appearance, each as
/// written between its quotes: after 点 or 点击 in Chinese, the words in
/// 「」 (a label that holds 「」 itself kept whole); after "press" or
/// "tap" in English (any case) and a space, the words in straight or
/// curly double quotes. An unclosed quote names nothing.
pub(super) fn pressed(text: &str, lang: Lang) -> Vec<&str> {
    match lang {
        Lang::Zh => pressed_zh(text),
        Lang::En => pressed_en(text),
    }
}

fn pressed_zh(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('点') {
        let after = &rest[at + '点'.len_utf8()..];
        let after = after.strip_prefix('击').unwrap_or(after);
        rest = after;
        let Some(inside) = after.strip_prefix('「') else {
            continue;
        };
        let mut depth = 1usize;
        let mut end = None;
        for (i, c) in inside.char_indices() {
            match c {
                '「' => depth += 1,
                '」' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            found.push(&inside[..end]);
            rest = &inside[end + '」'.len_utf8()..];
        }
    }
    found
}

fn pressed_en(text: &str) -> Vec<&str> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let next = ["press", "tap"]
            .iter()
            .filter_map(|verb| lower[from..].find(verb).map(|i| (from + i, verb.len())))
            .min();
        let Some((at, len)) = next else {
            break;
        };
        from = at + len;
        // A whole word: "press", not "pressing" or "express".
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        // The verb, a space, then the quote: {"press": "…"} is JSON.
        let after = text[from..].trim_start_matches(' ');
        if !starts_word || after.len() == text.len() - from {
            continue;
        }
        let (open, close) = match after.chars().next() {
            Some('"') => ('"', '"'),
            Some('“') => ('“', '”'),
            _ => continue,
        };
        let inside = &after[open.len_utf8()..];
        if let Some(end) = inside.find(close) {
            found.push(&inside[..end]);
            from = text.len() - inside.len() + end + close.len_utf8();
        }
    }
    found
}

/// A label as texts name it: without the emoji, marks and spaces around
/// it, so "⏰ 提醒我在24小时内核验" is named 「提醒我在24小时内核验」 and
/// "Done — verified ✅" "Done — verified".
pub(super) fn bare(label: &str) -> &str {
    label.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Whether `named` is one of `labels`, both taken bare.
pub(super) fn names_one_of<'a>(named: &str, labels: impl IntoIterator<Item = &'a str>) -> bool {
    let named = bare(named);
    !named.is_empty() && labels.into_iter().any(|label| bare(label) == named)
}

/// Whether `named` is a page's own words: quoted 「so」 in the English
/// text too, as the MIIT site's buttons are.
pub(super) fn is_page_name(named: &str, en: &str) -> bool {
    en.contains(&format!("「{named}」"))
}

/// How a report quotes what a text asks people to press.
pub(super) fn quoted(named: &str, lang: Lang) -> String {
    match lang {
        Lang::Zh => format!("「{named}」"),
        Lang::En => format!("\"{named}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_texts_press_what_follows_dian_in_corner_brackets() {
        let text = "点「已解决 ✅」，或点击「短信重发」；点下面的按钮；打开首页点「「暂无」」；点「没有结尾";
        assert_eq!(
            pressed(text, Lang::Zh),
            ["已解决 ✅", "短信重发", "「暂无」"]
        );
        // Times and other quotes are not presses.
        assert!(pressed("比如「今天上午10点」「昨天21:30」", Lang::Zh).is_empty());
    }

    #[test]
    fn english_texts_press_quoted_words_after_press_or_tap() {
        let text = "Press \"Solved\", tap “Back”, press a button, pressing \"No\", express \"No\", {\"press\": \"…\"}, click 「短信核验」, press \"open";
        assert_eq!(pressed(text, Lang::En), ["Solved", "Back"]);
    }

    #[test]
    fn labels_are_compared_without_emoji_and_marks() {
        assert!(names_one_of("提醒我", ["⏰ 提醒我"]));
        assert!(names_one_of("Done — verified", ["Done — verified ✅"]));
        assert!(names_one_of(
            "「…请等待其他核验人…」",
            ["「…请等待其他核验人…」"]
        ));
        assert!(!names_one_of("Done", ["Done — verified ✅"]));
        assert!(!names_one_of("✅", ["✅"]));
    }

    #[test]
    fn a_page_name_is_quoted_the_same_in_english() {
        assert!(is_page_name(
            "短信核验",
            "click 「短信核验」 on the home page"
        ));
        assert!(!is_page_name("短信核验", "click \"verify\""));
    }
}
