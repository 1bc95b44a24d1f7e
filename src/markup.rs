//! Turning the engine's plain texts into Telegram messages: HTML escaping, `**bold**`, and splitting at Telegram's length limit.
//!
//! Dialog texts are plain text with one piece of markup, `**bold**`. Every
//! `&`, `<` and `>` is escaped before HTML is sent, so no stray character in
//! a dialog text can make Telegram refuse a message.

/// Telegram refuses message texts longer than this (counted in UTF-16 units).
pub const MAX_TEXT_CHARS: usize = 4096;

/// The text as Telegram HTML: escaped, with `**pairs**` in bold. An
/// unpaired `**` stays as it is.
pub fn to_html(text: &str) -> String {
    let escaped = escape(text);
    let parts: Vec<&str> = escaped.split("**").collect();
    let markers = parts.len() - 1;
    let paired = markers - markers % 2;
    let mut html = String::with_capacity(escaped.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        html.push_str(part);
        if i < paired {
            html.push_str(if i % 2 == 0 { "<b>" } else { "</b>" });
        } else if i < markers {
            html.push_str("**");
        }
    }
    html
}

/// The text with `&`, `<` and `>` escaped for Telegram HTML, and no
/// markup of its own: for what people typed.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Fills `{name}` placeholders in one pass, so a value that itself holds
/// `{…}` (a name, a title) is never filled in turn. Unknown placeholders
/// stay as they are.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// At most `max` UTF-16 code units of `text` (as Telegram counts), cut at
/// a character boundary; and whether anything was cut.
pub fn truncate_utf16(text: &str, max: usize) -> (&str, bool) {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return (&text[..i], true);
        }
    }
    (text, false)
}

/// The text without markup, as the console shows it.
pub fn to_plain(text: &str) -> String {
    let markers = text.matches("**").count();
    if markers < 2 {
        return text.to_string();
    }
    let paired = markers - markers % 2;
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split("**").enumerate() {
        if i > 0 && i > paired {
            out.push_str("**");
        }
        out.push_str(part);
    }
    out
}

/// Telegram measures message length in UTF-16 code units.
fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Splits a text into pieces Telegram accepts, preferring to cut between
/// paragraphs, then between lines, and only then inside a line.
pub fn split(text: &str) -> Vec<String> {
    split_at(text, MAX_TEXT_CHARS)
}

fn split_at(text: &str, max: usize) -> Vec<String> {
    if units(text) <= max {
        return vec![text.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    for paragraph in text.split("\n\n") {
        for part in pieces_of(paragraph, max) {
            pack(&mut pieces, &mut current, part, "\n\n", max);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    // Nothing but line breaks leaves no piece; callers count on one, as
    // for an empty text.
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

/// Appends `part` to the piece being filled, joined by `separator`, or
/// starts a new piece with it when the two would not fit in `max`.
fn pack(pieces: &mut Vec<String>, current: &mut String, part: String, separator: &str, max: usize) {
    if current.is_empty() {
        *current = part;
    } else if units(current) + units(separator) + units(&part) <= max {
        current.push_str(separator);
        current.push_str(&part);
    } else {
        pieces.push(std::mem::replace(current, part));
    }
}

/// One paragraph in pieces of at most `max`: whole lines where they fit,
/// characters where a single line does not.
fn pieces_of(paragraph: &str, max: usize) -> Vec<String> {
    if units(paragraph) <= max {
        return vec![paragraph.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    for line in paragraph.split('\n') {
        let mut line = line.to_string();
        while units(&line) > max {
            let cut = line
                .char_indices()
                .scan(0, |n, (i, c)| {
                    *n += c.len_utf16();
                    Some((i + c.len_utf8(), *n))
                })
                .take_while(|&(_, n)| n <= max)
                .last()
                .map_or(0, |(end, _)| end);
            let rest = line.split_off(cut);
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
            pieces.push(line);
            line = rest;
        }
        pack(&mut pieces, &mut current, line, "\n", max);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_values_are_not_filled_again() {
        assert_eq!(
            fill("{a} and {b} {c}", &[("a", "{b}"), ("b", "B")]),
            "{b} and B {c}"
        );
        assert_eq!(fill("{", &[]), "{");
    }

    #[test]
    fn truncation_counts_utf16_units_and_keeps_characters_whole() {
        assert_eq!(truncate_utf16("ab😀c", 3), ("ab", true));
        assert_eq!(truncate_utf16("ab😀c", 4), ("ab😀", true));
        assert_eq!(truncate_utf16("备案", 2), ("备案", false));
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            to_html("a < b && c > d_e *f*"),
            "a &lt; b &amp;&amp; c &gt; d_e *f*"
        );
    }

    #[test]
    fn paired_double_stars_become_bold_and_a_stray_one_stays() {
        assert_eq!(to_html("**注意** <x>"), "<b>注意</b> &lt;x&gt;");
        assert_eq!(to_html("**a** and ** alone"), "<b>a</b> and ** alone");
        assert_eq!(to_html("no markup"), "no markup");
    }

    #[test]
    fn plain_text_drops_only_paired_markup() {
        assert_eq!(to_plain("**注意** here"), "注意 here");
        assert_eq!(to_plain("**a** and ** alone"), "a and ** alone");
        assert_eq!(to_plain("5 ** 2"), "5 ** 2");
    }

    #[test]
    fn short_texts_are_not_split() {
        assert_eq!(split("hello\n\nworld"), ["hello\n\nworld"]);
    }

    #[test]
    fn long_texts_split_between_paragraphs_first() {
        let a = "a".repeat(6);
        let b = "b".repeat(6);
        let pieces = split_at(&format!("{a}\n\n{b}\n\n{a}"), 14);
        assert_eq!(pieces, [format!("{a}\n\n{b}"), a.clone()]);
    }

    #[test]
    fn a_long_paragraph_splits_between_lines_then_inside_a_line() {
        let pieces = split_at("1234\n5678\n123456789012", 10);
        assert_eq!(pieces, ["1234\n5678", "1234567890", "12"]);
    }

    #[test]
    fn no_piece_exceeds_the_limit_and_nothing_is_lost() {
        let text = format!("{}\n\n{}", "短信".repeat(3000), "核验\n".repeat(2000));
        let pieces = split(&text);
        assert!(pieces.len() >= 3);
        assert!(pieces.iter().all(|p| units(p) <= MAX_TEXT_CHARS));
        let rejoined: String = pieces.concat();
        let original: String = text.split_whitespace().collect();
        assert_eq!(rejoined.split_whitespace().collect::<String>(), original);
    }

    #[test]
    fn a_text_of_only_line_breaks_over_the_limit_is_still_one_piece() {
        // Found by the splitting property in tests/properties.rs: no piece
        // at all, where `deliver` takes the last one's index.
        assert_eq!(split(&"\n".repeat(MAX_TEXT_CHARS + 2)), [""]);
    }

    #[test]
    fn characters_outside_the_basic_plane_count_twice() {
        let pieces = split_at(&"😀".repeat(6), 4);
        assert_eq!(pieces, ["😀😀", "😀😀", "😀😀"]);
    }
}
