//! What the docs say about the code, checked against it.
//!
//! Transcripts and sample outputs sit between `<!-- name:begin -->` and
//! `<!-- name:end -->` and are generated here from the binary itself;
//! `UPDATE_DOCS=1 cargo test --test integration docs::` writes them (and
//! `docs/tree.svg`) again. Everything else the docs show is checked: every
//! command they give runs or names flags the binary has, every link leads
//! to a file and a heading that exist, and CONTRIBUTING's file map names
//! every source file. Every figure they state (a default, a limit, a
//! count of test data) is held to the code by the library's `doc_claims`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::graph::{Format, render};

use crate::support::real_tree;

/// The docs the checks read: every Markdown file a reader is sent to.
const DOCS: &[&str] = &[
    "README.md",
    "CONTRIBUTING.md",
    "docs/operations.md",
    "docs/behaviour.md",
    "docs/dialogue.md",
    "docs/case-webhook.md",
    "dialogs/README.md",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn crate_file(path: &str) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Whether this run writes what is generated instead of checking it.
fn updating() -> bool {
    std::env::var_os("UPDATE_DOCS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The binary, as a reader who just cloned the repository runs it: the
/// built-in dialogue, defaults for everything else, nothing from a `.env`.
fn binary(args: &[&str], cwd: &Path, input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .args(args)
        .current_dir(cwd)
        .env("DIALOGS_DIR", "")
        .env("DEFAULT_LANG", "")
        .env("RUST_LOG", "")
        .env("DATABASE_URL", "memory")
        .env("TIMEZONE", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("input written");
    drop(stdin);
    child.wait_with_output().expect("the binary ends")
}

fn stdout_of(args: &[&str], input: &str) -> String {
    let out = binary(args, root(), input);
    assert!(
        out.status.success(),
        "`icp-sms-doctor {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

// ---- What is generated -------------------------------------------------

/// The interactive console as a reader sees it: each answer typed after
/// its prompt, the prompt left waiting at the end of input dropped.
fn console_transcript(inputs: &[&str]) -> String {
    let typed: String = inputs.iter().map(|i| format!("{i}\n")).collect();
    let out = stdout_of(&["console"], &typed);
    let mut transcript = String::from("$ cargo run -q -- console\n");
    let mut rest = out.as_str();
    for input in inputs {
        let (before, after) = rest.split_once("\n> ").expect("a prompt for every input");
        transcript.push_str(before);
        transcript.push_str(&format!("\n> {input}\n"));
        rest = after;
    }
    transcript.push_str(rest.strip_suffix("\n> \n").unwrap_or(rest));
    transcript
}

fn readme_console() -> String {
    format!("```text\n{}```\n", console_transcript(&["2"]))
}

/// `check --map`'s first lines: the summary and the first two nodes.
fn dialogue_map() -> String {
    let out = stdout_of(&["check", "--map", "dialogs"], "");
    let head: Vec<&str> = out.lines().take(3).collect();
    format!(
        "```console\n$ cargo run -q -- check --map dialogs\n{}\n…\n```\n",
        head.join("\n")
    )
}

/// The lines of `[[node]]` `id` in a dialogs file's text, as a range.
fn node_span(text: &str, id: &str) -> std::ops::Range<usize> {
    let marker = format!("id = \"{id}\"\n");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no node {id:?}: the sample of `check`'s errors needs it"));
    let end = text[at..]
        .find("\n[[node]]")
        .map_or(text.len(), |n| at + n + 1);
    at..end
}

/// `check`'s report on a copy of `dialogs/` with two mistakes made in it:
/// one `goto` mistyped, which also cuts off the nodes behind it, and one
/// English text deleted.
fn dialogue_check_errors() -> String {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docs-check-sample");
    let _ = std::fs::remove_dir_all(&scratch);
    let copy = scratch.join("dialogs");
    std::fs::create_dir_all(&copy).expect("a scratch folder");
    for entry in std::fs::read_dir(root().join("dialogs")).expect("dialogs/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, copy.join(path.file_name().expect("a name"))).expect("copied");
        }
    }
    let edit = |file: &str, id: &str, change: &dyn Fn(&str) -> String| {
        let path = copy.join(file);
        let text = std::fs::read_to_string(&path).expect("the copy");
        let span = node_span(&text, id);
        let changed = change(&text[span.clone()]);
        assert!(
            changed != text[span.clone()],
            "the edit of {id:?} changed nothing"
        );
        let new = format!("{}{changed}{}", &text[..span.start], &text[span.end..]);
        std::fs::write(&path, new).expect("the copy written");
    };
    edit("mismatch.toml", "mm_type", &|node| {
        node.replacen("goto = \"mm_transfer_num\"", "goto = \"mm_transfer_nm\"", 1)
    });
    edit("reset.toml", "rs_known", &|node| {
        let start = node
            .find("text.en = \"\"\"")
            .expect("rs_known's English text");
        let end = node[start + 13..].find("\"\"\"").expect("its end") + start + 16;
        format!("{}{}", &node[..start], node[end..].trim_start_matches('\n'))
    });
    let out = binary(&["check", "dialogs"], &scratch, "");
    assert_eq!(out.status.code(), Some(2), "check accepted the broken copy");
    assert!(out.stdout.is_empty(), "problems go to stderr");
    format!(
        "```text\n$ cargo run -q -- check dialogs\n{}```\n",
        String::from_utf8(out.stderr).expect("utf-8")
    )
}

fn dialogue_chart() -> String {
    format!(
        "```mermaid\n{}```\n",
        render(&real_tree(), Format::Mermaid, Lang::En, None)
    )
}

/// The JSON console's answer to /diagnose, cut after its first row of buttons.
fn json_console() -> String {
    let out = stdout_of(&["console", "--json"], "{\"text\":\"/diagnose\"}\n");
    let line = out.lines().next().expect("one line");
    let cut = line.find("}],").expect("more than one row of buttons") + 3;
    format!(
        "```console\n$ echo '{{\"text\":\"/diagnose\"}}' | cargo run -q -- console --json\n{}…]}}\n```\n",
        &line[..cut]
    )
}

/// A generated part of a doc: the file, the name in its markers, and what
/// goes between them.
struct Region {
    file: &'static str,
    name: &'static str,
    make: fn() -> String,
}

const REGIONS: &[Region] = &[
    Region {
        file: "README.md",
        name: "console",
        make: readme_console,
    },
    Region {
        file: "docs/dialogue.md",
        name: "map",
        make: dialogue_map,
    },
    Region {
        file: "docs/dialogue.md",
        name: "check",
        make: dialogue_check_errors,
    },
    Region {
        file: "docs/dialogue.md",
        name: "tree",
        make: dialogue_chart,
    },
    Region {
        file: "CONTRIBUTING.md",
        name: "json",
        make: json_console,
    },
    Region {
        file: "docs/behaviour.md",
        name: "desk",
        make: crate::desk::transcript_for_docs,
    },
];

/// The byte range between `<!-- {name}:begin -->\n` and `<!-- {name}:end -->`.
fn region_span(text: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    Some(start..stop)
}

/// Every marker name in a text (a line of its own), to find markers no
/// generator knows.
fn marker_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let name = line.strip_prefix("<!-- ")?.strip_suffix(":begin -->")?;
            (!name.contains(char::is_whitespace)).then(|| name.to_string())
        })
        .collect()
}

#[test]
fn generated_parts_of_the_docs_are_what_the_binary_gives() {
    let mut stale = Vec::new();
    for file in DOCS {
        let mut text = crate_file(file);
        let known: BTreeSet<String> = REGIONS
            .iter()
            .filter(|r| r.file == *file)
            .map(|r| r.name.to_string())
            .collect();
        let unknown: Vec<_> = marker_names(&text).difference(&known).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{file} has markers nothing generates: {unknown:?}"
        );
        let mut changed = false;
        for region in REGIONS.iter().filter(|r| r.file == *file) {
            let span = region_span(&text, region.name).unwrap_or_else(|| {
                panic!(
                    "{file} lacks <!-- {0}:begin --> … <!-- {0}:end -->",
                    region.name
                )
            });
            let fresh = (region.make)();
            if text[span.clone()] != fresh {
                stale.push(format!("{file}: {}", region.name));
                text.replace_range(span, &fresh);
                changed = true;
            }
        }
        if changed && updating() {
            std::fs::write(root().join(file), &text).expect("the doc written");
        }
    }
    let svg = render(&real_tree(), Format::Svg, Lang::Zh, None);
    if crate_file("docs/tree.svg") != svg {
        stale.push("docs/tree.svg".to_string());
        if updating() {
            std::fs::write(root().join("docs/tree.svg"), &svg).expect("the picture written");
        }
    }
    assert!(
        stale.is_empty() || updating(),
        "out of date: {stale:?}; `UPDATE_DOCS=1 cargo test --test integration docs::` \
         writes them again from the binary"
    );
}

// ---- What is checked ---------------------------------------------------

/// Every `.rs` file under `dir`, relative to `root`.
fn sources(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under the root");
            found.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn contributings_file_map_names_every_source_file_and_no_other() {
    let text = crate_file("CONTRIBUTING.md");
    let (_, after) = text
        .split_once("\nsrc/\n")
        .expect("the file map opens with `src/`");
    let map = after.split("```").next().expect("the map's block");
    let listed: BTreeSet<String> = map
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.ends_with(".rs"))
        .map(str::to_string)
        .collect();
    let mut present = BTreeSet::new();
    sources(&root().join("src"), &root().join("src"), &mut present);
    let missing: Vec<_> = present.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&present).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "not in CONTRIBUTING.md's file map: {missing:?}; listed but not in src/: {gone:?}"
    );
}

/// A doc's text with generated regions taken out and line breaks made
/// spaces, so a phrase wrapped over two lines is still found.
fn prose(file: &str) -> String {
    let mut text = crate_file(file);
    for region in REGIONS.iter().filter(|r| r.file == file) {
        if let Some(span) = region_span(&text, region.name) {
            text.replace_range(span, "");
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every inline code span (`` `…` ``) of a text whose lines were joined.
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut in_block = false;
    for piece in text.split("```") {
        if !in_block {
            let mut parts = piece.split('`');
            parts.next();
            while let Some(code) = parts.next() {
                spans.push(code.to_string());
                parts.next();
            }
        }
        in_block = !in_block;
    }
    spans
}

/// The arguments a documented command gives the binary, or `None` when
/// the span is no such command. `cargo run` before `--` and everything
/// from a pipe, a redirection or a comment on are not the binary's.
fn binary_args(command: &str) -> Option<Vec<String>> {
    let command = command.replace("\\|", "|");
    let rest = if let Some(rest) = command
        .strip_prefix("icp-sms-doctor")
        .filter(|rest| rest.is_empty() || rest.starts_with(' '))
    {
        rest
    } else {
        // Cargo's own flags (`-q`, `--release`) come before a lone `--`.
        let after = command.strip_prefix("cargo run")?;
        match after.split_once(" -- ") {
            Some((_, rest)) => rest,
            None => return Some(Vec::new()),
        }
    };
    let words = rest
        .split_whitespace()
        .take_while(|w| !matches!(*w, "|" | ">" | "<" | "#") && !w.starts_with('>'))
        .map(str::to_string)
        .collect();
    Some(words)
}

#[test]
fn every_command_the_docs_give_is_one_the_binary_takes() {
    let mut commands = Vec::new();
    for file in DOCS {
        let text = prose(file);
        for span in code_spans(&text) {
            if let Some(args) = binary_args(&span) {
                commands.push((file, span, args));
            }
        }
        for line in crate_file(file).lines() {
            if let Some(command) = line.strip_prefix("$ ")
                && let Some(args) = binary_args(command)
            {
                commands.push((file, command.to_string(), args));
            }
        }
    }
    assert!(commands.len() >= 15, "too few commands found: {commands:?}");
    let mut wrong = Vec::new();
    for (file, shown, args) in &commands {
        let sub = args.first().map_or("run", String::as_str);
        let help = binary(&[sub, "--help"], root(), "");
        if !help.status.success() {
            wrong.push(format!("{file}: `{shown}`: no subcommand {sub:?}"));
            continue;
        }
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        // Every flag it shows, also inside `[--lang zh|en]`, is the subcommand's.
        for flag in args.iter().flat_map(|a| a.split(['[', ']', '|'])) {
            let listed = [' ', '\n', ','].map(|after| format!("{flag}{after}"));
            if flag.starts_with("--") && !listed.iter().any(|l| help.contains(l.as_str())) {
                wrong.push(format!("{file}: `{shown}`: {sub} has no {flag}"));
            }
        }
        // One with nothing left to fill in runs, and succeeds (`run` needs a token).
        let placeholder =
            |a: &str| a.chars().any(char::is_alphabetic) && !a.chars().any(char::is_lowercase);
        let concrete = args
            .iter()
            .all(|a| !a.contains(['[', ']', '|']) && !placeholder(a));
        if concrete && sub != "run" {
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = binary(&words, root(), "");
            if !out.status.success() {
                wrong.push(format!(
                    "{file}: `{shown}` fails: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_bench_the_docs_name_is_in_cargo_toml() {
    let manifest = crate_file("Cargo.toml");
    let mut named = 0;
    for file in DOCS {
        let text = prose(file);
        for piece in text.split("cargo bench --bench ").skip(1) {
            let bench: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            named += 1;
            assert!(
                manifest.contains(&format!("name = \"{bench}\"")),
                "{file} names `cargo bench --bench {bench}`, which Cargo.toml does not have"
            );
        }
    }
    assert!(named >= 5, "the benches are named in CONTRIBUTING.md");
}

/// GitHub's anchor for a heading: lower case, spaces as hyphens, other
/// punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_lowercase().next()?),
            _ => None,
        })
        .collect()
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut in_block = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_link_leads_to_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in DOCS {
        let text = crate_file(file);
        let dir = root().join(file).parent().expect("a folder").to_path_buf();
        for (at, _) in text.match_indices("](") {
            let target = text[at + 2..].split(')').next().expect("a target");
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, heading) = target.split_once('#').unwrap_or((target, ""));
            let full = if path.is_empty() {
                root().join(file)
            } else {
                dir.join(path)
            };
            checked += 1;
            if !full.exists() {
                broken.push(format!("{file}: ({target}): no such file"));
            } else if !heading.is_empty() && !anchors(&full).contains(heading) {
                broken.push(format!("{file}: ({target}): no such heading"));
            }
        }
    }
    assert!(checked >= 10, "the docs link to each other");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The one line the bot logs at start, as the README shows it, with the
/// bot's name and the database put in; `tests/binary.rs` compares it with
/// the real line.
pub(crate) fn readme_start_line(bot: &str, database: &str) -> String {
    let readme = prose("README.md");
    let start = readme
        .find("`started as @your_bot")
        .expect("the README quotes the start-up line");
    let line = readme[start + 1..].split('`').next().expect("its end");
    line.replace("@your_bot", &format!("@{bot}"))
        .replace("data/sessions.db", database)
}
