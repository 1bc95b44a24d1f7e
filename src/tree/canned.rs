//! Canned replies: short answers the support team sends a person by name, kept in `dialogs/canned.toml` in both languages.
//!
//! The file is optional: without it the team has none. Each reply is
//! `[canned.<name>]` with `zh` and `en`, may name the provider's fields
//! (`{provider.name}`, filled at load like every text) and carries no
//! other placeholder.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::raw::RawTable;
use super::report::{Report, check_text};
use crate::lang::{Lang, Localized};

/// The file that holds them.
pub const CANNED_FILE: &str = "canned.toml";

/// The longest canned reply, in UTF-16 units as Telegram counts: a frame
/// and a mention must still fit in a message's 4096.
pub const MAX_CANNED_UNITS: usize = 3500;

/// The longest name, in bytes.
pub const MAX_NAME_BYTES: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanned {
    pub(super) canned: RawTable,
}

/// Whether `name` may name a canned reply: a-z, 0-9, _ and -, short
/// enough to type.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks the replies of `canned.toml`; the good ones by name.
pub(super) fn check_canned(
    report: &mut Report,
    file: usize,
    raw: &RawCanned,
) -> BTreeMap<String, Localized> {
    let mut replies = BTreeMap::new();
    let Some(table) = &raw.canned else {
        return replies;
    };
    for (name, text) in table.get_ref() {
        let what = format!("canned.{name}");
        let start = text.span().start;
        if !is_name(name) {
            report.add(
                file,
                start,
                None,
                format!(
                    "{what}: a name may hold only a-z, 0-9, _ and -, at most {MAX_NAME_BYTES} characters"
                ),
            );
            continue;
        }
        let Some(reply) = check_text(report, file, text, None, &what, &[], &[]) else {
            continue;
        };
        let mut fits = true;
        for lang in Lang::ALL {
            let len = reply.get(lang).encode_utf16().count();
            if len > MAX_CANNED_UNITS {
                report.add(
                    file,
                    start,
                    None,
                    format!("{what} ({lang}) is {len} characters, over {MAX_CANNED_UNITS}"),
                );
                fits = false;
            }
        }
        if fits {
            replies.insert(name.clone(), reply);
        }
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_words() {
        assert!(is_name("wait_review"));
        assert!(is_name("sms-2"));
        assert!(!is_name(""));
        assert!(!is_name("Wait"));
        assert!(!is_name("等待"));
        assert!(!is_name(&"a".repeat(MAX_NAME_BYTES + 1)));
    }
}
