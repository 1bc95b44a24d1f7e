//! The files of a dialogs folder and the problems found in them, each located by file, line and node.

use std::fmt;
use std::path::Path;

use toml::Spanned;

use super::raw::RawText;
use crate::lang::{Lang, Localized};

/// One dialogs file, read from disk or compiled into the binary.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path shown in problem reports, e.g. `dialogs/timeout.toml`.
    pub path: String,
    pub text: String,
}

/// One thing wrong with a dialogs folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub node: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        if let Some(node) = &self.node {
            write!(f, "node \"{node}\": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a dialogs folder, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError(pub Vec<Problem>);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
/// Collects problems against one file at a time.
pub(super) struct Report<'a> {
    pub(super) sources: &'a [Source],
    pub(super) problems: Vec<(usize, Problem)>,
}

impl Report<'_> {
    pub(super) fn line(&self, file: usize, offset: usize) -> usize {
        let text = self.sources[file].text.as_bytes();
        text[..offset.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn add(&mut self, file: usize, offset: usize, node: Option<&str>, message: String) {
        let line = self.line(file, offset);
        self.problems.push((
            file,
            Problem {
                file: Some(self.sources[file].path.clone()),
                line: Some(line),
                node: node.map(str::to_string),
                message,
            },
        ));
    }

    /// A required file the folder lacks, reported beside its siblings.
    pub(super) fn missing_file(&mut self, name: &str, why: &str) {
        let folder = self
            .sources
            .first()
            .and_then(|s| Path::new(&s.path).parent())
            .map_or("dialogs".to_string(), |p| p.display().to_string());
        self.problems.push((
            usize::MAX,
            Problem {
                file: Some(format!("{folder}/{name}")),
                line: None,
                node: None,
                message: format!("missing: {why}"),
            },
        ));
    }

    pub(super) fn finish(mut self) -> LoadError {
        self.problems
            .sort_by_key(|(file, problem)| (*file, problem.line.unwrap_or(0)));
        LoadError(self.problems.into_iter().map(|(_, p)| p).collect())
    }
}

/// Checks one localized text: both languages present and non-empty, and
/// placeholders limited to `allowed` (with `required` present).
pub(super) fn check_text(
    report: &mut Report,
    file: usize,
    text: &Spanned<RawText>,
    node: Option<&str>,
    what: &str,
    allowed: &[&str],
    required: &[&str],
) -> Option<Localized> {
    let raw = text.get_ref();
    let get = |report: &mut Report, value: &Option<Spanned<String>>, lang: Lang| match value {
        Some(v) if !v.get_ref().trim().is_empty() => {
            let mut ok = true;
            for name in placeholders(v.get_ref()) {
                if !allowed.contains(&name) {
                    report.add(
                        file,
                        v.span().start,
                        node,
                        format!("{what} ({lang}) has unknown placeholder {{{name}}}"),
                    );
                    ok = false;
                }
            }
            for req in required {
                if !placeholders(v.get_ref()).any(|name| name == *req) {
                    report.add(
                        file,
                        v.span().start,
                        node,
                        format!("{what} ({lang}) must contain {{{req}}}"),
                    );
                    ok = false;
                }
            }
            ok.then(|| v.get_ref().clone())
        }
        Some(v) => {
            report.add(
                file,
                v.span().start,
                node,
                format!("{what} ({lang}) is empty"),
            );
            None
        }
        None => {
            report.add(
                file,
                text.span().start,
                node,
                format!("{what} is missing its {lang} translation"),
            );
            None
        }
    };
    let zh = get(report, &raw.zh, Lang::Zh);
    let en = get(report, &raw.en, Lang::En);
    Some(Localized { zh: zh?, en: en? })
}

/// The `{name}` placeholders in a text; braces around anything else (such
/// as a JSON example) are plain text.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| {
        let (name, _) = rest.split_once('}')?;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_brace_words_only() {
        let found: Vec<_> =
            placeholders(r#"send {"text": "x"} or {command}, not {Bad} or {} {max}"#).collect();
        assert_eq!(found, ["command", "max"]);
    }

    #[test]
    fn problems_print_file_line_and_node() {
        let p = Problem {
            file: Some("dialogs/a.toml".into()),
            line: Some(7),
            node: Some("x".into()),
            message: "dead end".into(),
        };
        assert_eq!(p.to_string(), "dialogs/a.toml:7: node \"x\": dead end");
    }
}
