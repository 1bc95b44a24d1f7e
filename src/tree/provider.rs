//! The provider the bot speaks for: `provider.toml` checked, and its fields written into the texts at load time.
//!
//! Texts name the provider with `{provider.<field>}`. The loader replaces
//! each marker with the field in the text's language, so the engine and the
//! store only ever see plain text. `name` is always there; the other
//! fields are optional, and a line that uses one the profile leaves out is
//! dropped whole, so a text reads the same with or without it. Such a line
//! cannot be a numbered step (`2. …`), or the numbers would skip.

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::hours::OfficeHours;
use super::raw::RawText;
use super::report::{Report, check_text};
use crate::lang::{Lang, Localized};

/// The file that names the provider.
pub const PROVIDER_FILE: &str = "provider.toml";

/// The start of a profile marker: `{provider.name}`.
const MARKER: &str = "{provider.";

/// The fields a text may name, `name` the only one always present.
pub const FIELDS: &[&str] = &[
    "name",
    "console",
    "ticket",
    "hotline",
    "escalation",
    "hours",
    "reply_within",
];

/// The longest reply time a profile may promise, in minutes (a week).
const MAX_REPLY_MINUTES: u32 = 7 * 24 * 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    name: Option<Spanned<RawText>>,
    console: Option<Spanned<String>>,
    ticket: Option<Spanned<String>>,
    hotline: Option<Spanned<RawText>>,
    escalation: Option<Spanned<RawText>>,
    hours: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    reply_within: Option<Spanned<String>>,
}

/// The checked profile.
#[derive(Debug, Clone)]
pub struct Provider {
    /// How texts name the provider: "your access provider", "Alibaba Cloud".
    pub name: Localized,
    /// The filing console's address (https).
    pub console: Option<String>,
    /// The ticket page's address (https).
    pub ticket: Option<String>,
    pub hotline: Option<Localized>,
    /// Whom to turn to when staff do not answer.
    pub escalation: Option<Localized>,
    /// When staff are in; without them, always.
    pub hours: Option<OfficeHours>,
    /// How soon staff usually answer inside hours, in minutes.
    pub reply_within: Option<u32>,
}

impl Provider {
    /// A field as a text shows it in `lang`, or `None` when the profile
    /// leaves it out.
    pub fn field(&self, field: &str, lang: Lang) -> Option<String> {
        match field {
            "name" => Some(self.name.get(lang).to_string()),
            "console" => self.console.clone(),
            "ticket" => self.ticket.clone(),
            "hotline" => self.hotline.as_ref().map(|h| h.get(lang).to_string()),
            "escalation" => self.escalation.as_ref().map(|e| e.get(lang).to_string()),
            "hours" => self.hours.as_ref().map(|h| h.describe(lang)),
            "reply_within" => self.reply_within.map(|m| minutes(m, lang)),
            _ => None,
        }
    }
}

/// A span of minutes in words: "2 h", "1 h 30 min", "1小时30分钟".
pub fn minutes(total: u32, lang: Lang) -> String {
    let (h, m) = (total / 60, total % 60);
    match (lang, h, m) {
        (Lang::Zh, 0, m) => format!("{m}分钟"),
        (Lang::Zh, h, 0) => format!("{h}小时"),
        (Lang::Zh, h, m) => format!("{h}小时{m}分钟"),
        (Lang::En, 0, m) => format!("{m} min"),
        (Lang::En, h, 0) => format!("{h} h"),
        (Lang::En, h, m) => format!("{h} h {m} min"),
    }
}

/// Reads "2h", "30m" or "1h30m" as minutes.
fn parse_minutes(text: &str) -> Option<u32> {
    let text = text.trim();
    let (hours, rest) = match text.split_once('h') {
        Some((h, rest)) => (h.trim().parse::<u32>().ok()?, rest.trim()),
        None => (0, text),
    };
    let minutes = match rest.strip_suffix('m') {
        Some(m) => m.trim().parse::<u32>().ok()?,
        None if rest.is_empty() && text.contains('h') => 0,
        None => return None,
    };
    let total = hours.checked_mul(60)?.checked_add(minutes)?;
    (total > 0).then_some(total)
}

/// Parses and checks `provider.toml`, reporting each problem at its line.
pub(super) fn check_provider(report: &mut Report, file: usize) -> Option<Provider> {
    let text = report.sources[file].text.clone();
    let raw: RawProvider = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let offset = e.span().map_or(0, |span| span.start);
            report.add(file, offset, None, e.message().trim_end().to_string());
            return None;
        }
    };
    let mut ok = true;
    let name = match &raw.name {
        Some(name) => check_text(report, file, name, None, "name", &[], &[]),
        None => {
            report.add(
                file,
                0,
                None,
                "name is missing: how the texts name the provider, name = { zh = \"…\", en = \"…\" }"
                    .to_string(),
            );
            None
        }
    };
    ok &= name.is_some();
    let mut optional_text = |report: &mut Report, value: &Option<Spanned<RawText>>, what: &str| {
        let checked = value
            .as_ref()
            .map(|v| check_text(report, file, v, None, what, &[], &[]));
        if checked.as_ref().is_some_and(Option::is_none) {
            ok = false;
        }
        checked.flatten()
    };
    let hotline = optional_text(report, &raw.hotline, "hotline");
    let escalation = optional_text(report, &raw.escalation, "escalation");
    let mut address = |report: &mut Report, value: &Option<Spanned<String>>, what: &str| {
        let value = value.as_ref()?;
        let text = value.get_ref().trim();
        match Url::parse(text) {
            Ok(url) if url.scheme() == "https" && url.host().is_some() => Some(text.to_string()),
            Ok(_) => {
                report.add(
                    file,
                    value.span().start,
                    None,
                    format!("{what} \"{text}\" is not an https:// address"),
                );
                ok = false;
                None
            }
            Err(e) => {
                report.add(
                    file,
                    value.span().start,
                    None,
                    format!("{what} \"{text}\" is not an address: {e}"),
                );
                ok = false;
                None
            }
        }
    };
    let console = address(report, &raw.console, "console");
    let ticket = address(report, &raw.ticket, "ticket");
    let zone = match &raw.time_zone {
        Some(zone) => match zone.get_ref().trim().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                report.add(
                    file,
                    zone.span().start,
                    None,
                    format!(
                        "time_zone \"{}\" is not an IANA time zone such as \"Asia/Shanghai\"",
                        zone.get_ref()
                    ),
                );
                ok = false;
                None
            }
        },
        None => None,
    };
    let hours = match (&raw.hours, &raw.time_zone) {
        (Some(hours), None) => {
            report.add(
                file,
                hours.span().start,
                None,
                "hours need a time_zone (IANA, such as \"Asia/Shanghai\")".to_string(),
            );
            ok = false;
            None
        }
        (Some(hours), Some(_)) => match zone.map(|z| OfficeHours::parse(hours.get_ref(), z)) {
            Some(Ok(parsed)) => Some(parsed),
            Some(Err(why)) => {
                report.add(
                    file,
                    hours.span().start,
                    None,
                    format!(
                        "hours \"{}\": {why} (write e.g. \"Mon-Fri 09:00-18:00\")",
                        hours.get_ref()
                    ),
                );
                ok = false;
                None
            }
            // The zone's own problem is reported above.
            None => None,
        },
        (None, Some(zone)) => {
            report.add(
                file,
                zone.span().start,
                None,
                "time_zone belongs with hours (add hours, or remove it)".to_string(),
            );
            ok = false;
            None
        }
        (None, None) => None,
    };
    let reply_within = match &raw.reply_within {
        Some(value) => match parse_minutes(value.get_ref()) {
            Some(m) if m <= MAX_REPLY_MINUTES => Some(m),
            _ => {
                report.add(
                    file,
                    value.span().start,
                    None,
                    format!(
                        "reply_within \"{}\" is not a time such as \"2h\", \"30m\" or \"1h30m\" (at most a week)",
                        value.get_ref()
                    ),
                );
                ok = false;
                None
            }
        },
        None => None,
    };
    let name = name?;
    ok.then_some(Provider {
        name,
        console,
        ticket,
        hotline,
        escalation,
        hours,
        reply_within,
    })
}

/// Writes the profile's fields into one text of `file`, in place, and
/// reports each marker that names no field; `provider` is `None` while the
/// profile itself has problems (markers are still checked). `what` names
/// the text in a report.
pub(super) fn fill(
    report: &mut Report,
    file: usize,
    node: Option<&str>,
    what: &str,
    value: &mut Spanned<String>,
    lang: Lang,
    provider: Option<&Provider>,
) {
    if !value.get_ref().contains(MARKER) && !has_dotted_marker(value.get_ref()) {
        return;
    }
    let span = value.span();
    // Where a marker stands in the file, for its line.
    let at = |report: &Report, marker: &str| {
        let source = &report.sources[file].text;
        source
            .get(span.clone())
            .and_then(|s| s.find(marker))
            .map_or(span.start, |i| span.start + i)
    };
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for line in value.get_ref().split('\n') {
        let mut kept = String::with_capacity(line.len());
        let mut dropped = false;
        let mut rest = line;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let inner = &after[..close];
            let Some((scope, field)) = inner
                .split_once('.')
                .filter(|(s, f)| is_word(s) && is_word(f))
            else {
                kept.push_str(&rest[..open + 1]);
                rest = after;
                continue;
            };
            kept.push_str(&rest[..open]);
            rest = &after[close + 1..];
            let marker = format!("{{{inner}}}");
            if scope != "provider" || !FIELDS.contains(&field) {
                let known: Vec<String> =
                    FIELDS.iter().map(|f| format!("{{provider.{f}}}")).collect();
                report.add(
                    file,
                    at(report, &marker),
                    node,
                    format!(
                        "{what} ({lang}) has {marker}, which names nothing; the profile gives {}",
                        known.join(", ")
                    ),
                );
                ok = false;
                continue;
            }
            if field != "name" && numbered(line) {
                report.add(
                    file,
                    at(report, &marker),
                    node,
                    format!(
                        "{what} ({lang}): {marker} may be left out of the profile, which drops its line; put it on a line of its own, not a numbered step"
                    ),
                );
                ok = false;
                continue;
            }
            match provider.map(|p| p.field(field, lang)) {
                Some(Some(text)) => {
                    let starts_sentence = {
                        let before = kept.trim_end();
                        before.is_empty()
                            || before.ends_with(['.', '!', '?'])
                            || before.ends_with(". ")
                    };
                    if lang == Lang::En && starts_sentence {
                        kept.push_str(&capitalised(&text));
                    } else {
                        kept.push_str(&text);
                    }
                }
                Some(None) => dropped = true,
                None => {}
            }
        }
        kept.push_str(rest);
        if !dropped {
            out.push(kept);
        }
    }
    if ok && provider.is_some() {
        *value.get_mut() = out.join("\n");
    }
}

/// Whether a text holds `{word.word}`, a marker of some kind.
fn has_dotted_marker(text: &str) -> bool {
    text.split('{').skip(1).any(|rest| {
        rest.split_once('}')
            .and_then(|(inner, _)| inner.split_once('.'))
            .is_some_and(|(s, f)| is_word(s) && is_word(f))
    })
}

fn is_word(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a line is a numbered step: "2. …".
fn numbered(line: &str) -> bool {
    let digits = line
        .trim_start()
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    digits > 0 && line.trim_start()[digits..].starts_with(". ")
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_times_read_hours_and_minutes() {
        assert_eq!(parse_minutes("2h"), Some(120));
        assert_eq!(parse_minutes("30m"), Some(30));
        assert_eq!(parse_minutes("1h30m"), Some(90));
        assert_eq!(parse_minutes("1h 30m"), Some(90));
        assert_eq!(parse_minutes("0m"), None);
        assert_eq!(parse_minutes("soon"), None);
        assert_eq!(parse_minutes("2"), None);
        assert_eq!(minutes(90, Lang::En), "1 h 30 min");
        assert_eq!(minutes(120, Lang::Zh), "2小时");
        assert_eq!(minutes(30, Lang::Zh), "30分钟");
    }

    #[test]
    fn a_numbered_step_is_told_apart_from_other_lines() {
        assert!(numbered("2. call them"));
        assert!(numbered("  12. call them"));
        assert!(!numbered("· call them"));
        assert!(!numbered("2024 was a year"));
    }
}
