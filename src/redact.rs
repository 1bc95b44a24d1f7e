//! The log's last line of defence: every line, the bot's and its libraries', is stripped of the token, of structured bodies (updates, API responses) and free text, and of numbers shaped like a code, a phone or an ID number before it is written.
//!
//! The bot's own lines name chats, people and nodes by id and never quote
//! what someone typed. Libraries are less careful: teloxide logs an update
//! it cannot parse whole, a response it cannot parse carries its raw body
//! into the error every caller logs, and a network error names the URL,
//! token included. Rather than trust each call site, the logger rewrites
//! each line:
//!
//! - the bot token (`<digits>:<secret>`) becomes `<token>`;
//! - anything in braces that holds a quoted string (JSON, or a Rust
//!   debug dump of a message) becomes `{…}`, with its length;
//! - a quoted string that is not a plain identifier becomes `"…"`;
//! - a number shaped like a verification code, a mainland mobile number
//!   or an ID number becomes `<redacted>`, wherever it stands (a message
//!   id of six digits too: the price of never missing one).

use std::borrow::Cow;

use log::{Log, Metadata, Record};

use crate::tree::router::personal_data;

/// A logger that redacts each line before `inner` writes it.
pub struct Redacting {
    inner: Box<dyn Log>,
    /// Exact strings never to write, such as the configured token.
    secrets: Vec<String>,
}

impl Redacting {
    pub fn new(inner: Box<dyn Log>, secrets: Vec<String>) -> Self {
        // A short string could be a word of any line: only a real secret
        // is replaced as it stands; the token's shape catches the rest.
        let secrets = secrets.into_iter().filter(|s| s.len() >= 8).collect();
        Redacting { inner, secrets }
    }
}

impl Log for Redacting {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        let line = record.args().to_string();
        let line = redact(&line, &self.secrets);
        self.inner.log(
            &Record::builder()
                .args(format_args!("{line}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// `line` with the token, bodies, free text and personal numbers taken out.
pub fn redact<'a>(line: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(line);
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), "<token>"));
        }
    }
    for step in [tokens, bodies, quotes, numbers] {
        if let Some(changed) = step(&out) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Replaces each non-overlapping `range` of `text` with what `with` gives
/// for it; `None` when there is none.
fn replace_ranges(
    text: &str,
    ranges: impl IntoIterator<Item = std::ops::Range<usize>>,
    with: impl Fn(&str) -> String,
) -> Option<String> {
    let mut out = String::new();
    let mut from = 0;
    for range in ranges {
        out.push_str(&text[from..range.start]);
        out.push_str(&with(&text[range.clone()]));
        from = range.end;
    }
    if from == 0 && out.is_empty() {
        return None;
    }
    out.push_str(&text[from..]);
    Some(out)
}

/// Bot tokens: at least three digits, a colon, and twenty or more
/// characters of `A-Za-z0-9_-`.
fn tokens(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let secret = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let colon = i + digits;
        if digits >= 3 && bytes.get(colon) == Some(&b':') {
            let tail = bytes[colon + 1..]
                .iter()
                .take_while(|&&b| secret(b))
                .count();
            if tail >= 20 {
                ranges.push(i..colon + 1 + tail);
                i = colon + 1 + tail;
                continue;
            }
        }
        i += digits;
    }
    replace_ranges(text, ranges, |_| "<token>".to_string())
}

/// Brace spans holding a quoted string: JSON bodies and debug dumps.
fn bodies(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let mut depth = 0usize;
        let mut end = bytes.len();
        for (j, &b) in bytes.iter().enumerate().skip(i) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        if bytes[i..end].contains(&b'"') {
            ranges.push(i..end);
        }
        i = end.max(i + 1);
    }
    replace_ranges(text, ranges, |span| format!("{{… {} bytes}}", span.len()))
}

/// Quoted strings that are more than a plain identifier (a node id, a
/// method, a file name): free text, wherever it came from.
fn quotes(text: &str) -> Option<String> {
    let plain = |s: &str| {
        s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:/@".contains(&b))
    };
    let mut ranges = Vec::new();
    let mut open = None;
    for (at, c) in text.char_indices() {
        if c != '"' {
            continue;
        }
        // An escaped quote belongs to the string it stands in.
        if text[..at].ends_with('\\') {
            continue;
        }
        match open.take() {
            None => open = Some(at),
            Some(start) => {
                if !plain(&text[start + 1..at]) {
                    ranges.push(start + 1..at);
                }
            }
        }
    }
    if let Some(start) = open
        && !plain(&text[start + 1..])
    {
        ranges.push(start + 1..text.len());
    }
    replace_ranges(text, ranges, |_| "…".to_string())
}

/// `text` with every number shaped like a code, a mobile number or an ID
/// number made `<redacted>`, as a log line has them: for text that leaves
/// the bot by another way than the log (the case webhook).
pub(crate) fn personal_numbers(text: &str) -> Cow<'_, str> {
    numbers(text).map_or(Cow::Borrowed(text), Cow::Owned)
}

/// Numbers shaped like a code, a mobile number or an ID number.
fn numbers(text: &str) -> Option<String> {
    replace_ranges(text, personal_data(text), |_| "<redacted>".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(line: &str) -> String {
        redact(line, &["987654321:SECRET-exact-token".to_string()]).into_owned()
    }

    #[test]
    fn the_token_is_withheld_in_urls_and_as_configured() {
        let line = "error sending request for url (https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getUpdates)";
        assert_eq!(
            clean(line),
            "error sending request for url (https://api.telegram.org/bot<token>/getUpdates)"
        );
        assert_eq!(
            clean("token 987654321:SECRET-exact-token rejected"),
            "token <token> rejected"
        );
    }

    #[test]
    fn bodies_and_debug_dumps_are_withheld_whole() {
        let line = r#"An error while parsing JSON: expected value (raw: "{\"ok\":true,\"result\":[{\"update_id\":7,\"message\":{\"text\":\"我的手机号\"}}]}")"#;
        let out = clean(line);
        assert!(!out.contains("手机"), "{out}");
        assert!(out.starts_with("An error while parsing JSON: expected value (raw: \""));
        let dump = r#"Unhandled update: Update { id: UpdateId(5), kind: Message(Message { text: Some("hello there") }) }"#;
        assert_eq!(clean(dump), "Unhandled update: Update {… 73 bytes}");
    }

    #[test]
    fn free_text_in_quotes_is_withheld_but_ids_stay() {
        assert_eq!(
            clean(r#"invalid type: string "call me maybe", expected u64"#),
            r#"invalid type: string "…", expected u64"#
        );
        assert_eq!(
            clean(r#"node "nr_not_submitted": step"#),
            r#"node "nr_not_submitted": step"#
        );
    }

    #[test]
    fn codes_phones_and_ids_are_masked_but_chat_ids_stay() {
        assert_eq!(
            clean("got 13812345678 and 11010519491231002X, code 123456"),
            "got <redacted> and <redacted>, code <redacted>"
        );
        assert_eq!(
            clean("chat -1001234567890 user 7012345678: node menu"),
            "chat -1001234567890 user 7012345678: node menu"
        );
    }

    #[test]
    fn a_clean_line_is_not_copied() {
        assert!(matches!(
            redact("chat 42: node menu", &[]),
            Cow::Borrowed(_)
        ));
    }
}
