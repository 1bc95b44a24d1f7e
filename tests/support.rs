//! Shared helpers: fixture trees and a way to drive the engine like a person.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{LazyLock, mpsc};
use std::thread;
use std::time::Duration;

use icp_sms_doctor::callback::Action;
use icp_sms_doctor::engine::{Event, Reply, Session, step};
use icp_sms_doctor::lang::Lang;
use icp_sms_doctor::tree::Tree;
use icp_sms_doctor::tree::load::{embedded, load};
use icp_sms_doctor::tree::report::{LoadError, Source};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dialogs")
}

/// Loads a failure case: the base fixture tree with the case folder's files
/// laid over it (a file of the same name replaces the base one). Paths in
/// problem reports are relative to the crate, as `check` would print them.
pub fn load_case(case: &str) -> Result<Tree, LoadError> {
    load_over_base(&format!("tests/fixtures/dialogs/{case}"))
}

/// Loads the base fixture tree with the files of `over` (a folder relative
/// to the crate) laid over it, a file of the same name replacing the base one.
pub fn load_over_base(over: &str) -> Result<Tree, LoadError> {
    let mut files: BTreeMap<String, Source> = BTreeMap::new();
    for rel in ["tests/fixtures/dialogs/base", over] {
        let mut entries: Vec<_> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .map(|e| e.expect("readable entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(&path).expect("readable fixture");
            let source = Source {
                path: format!("{rel}/{name}"),
                text,
            };
            files.insert(name, source);
        }
    }
    load(&files.into_values().collect::<Vec<_>>())
}

/// The failure case's report, as `check` prints it.
pub fn problems_of(case: &str) -> String {
    match load_case(case) {
        Ok(_) => panic!("case {case} loaded without problems"),
        Err(e) => e.to_string(),
    }
}

pub fn base_tree() -> Tree {
    load_case("base").unwrap_or_else(|e| panic!("{e}"))
}

/// The dialogue built into the binary. Loaded once per test binary and
/// handed out as copies, which share its router's classifier: learnt once
/// (about a second unoptimized), the first time any of them routes.
pub fn real_tree() -> Tree {
    static REAL: LazyLock<Tree> =
        LazyLock::new(|| load(&embedded()).unwrap_or_else(|e| panic!("{e}")));
    REAL.clone()
}

/// A person talking to the engine, keeping the session between steps.
pub struct Chat<'t> {
    pub tree: &'t Tree,
    pub session: Session,
    pub last: Vec<Reply>,
}

impl<'t> Chat<'t> {
    pub fn new(tree: &'t Tree, lang: Lang) -> Self {
        Chat {
            tree,
            session: Session::new(lang),
            last: Vec::new(),
        }
    }

    pub fn send(&mut self, event: Event<'_>) -> &[Reply] {
        let (session, replies) = step(self.tree, std::mem::take(&mut self.session), event);
        self.session = session;
        self.last = replies;
        &self.last
    }

    pub fn say(&mut self, line: &str) -> &[Reply] {
        self.send(Event::from_line(line))
    }

    pub fn press(&mut self, data: &str) -> &[Reply] {
        self.send(Event::Press(Action::parse(data).as_ref()))
    }

    /// Presses the button of the last message whose label is `label`.
    pub fn tap(&mut self, label: &str) -> &[Reply] {
        let data = self
            .button(label)
            .unwrap_or_else(|| panic!("no button {label:?} in {:#?}", self.last));
        self.press(&data)
    }

    pub fn button(&self, label: &str) -> Option<String> {
        self.last
            .iter()
            .flat_map(|r| r.buttons.iter().flatten())
            .find(|b| b.label == label)
            .map(|b| b.data.clone())
    }

    /// The node the last message showed.
    pub fn at(&self) -> Option<&str> {
        self.last.last().and_then(|r| r.node.as_deref())
    }

    pub fn text(&self) -> String {
        self.last
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A fresh copy of the repository's `dialogs/`, to edit in a test.
pub fn copy_of_dialogs(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dialogs-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a folder");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    for entry in fs::read_dir(&source).expect("dialogs/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            fs::copy(&path, dir.join(path.file_name().expect("a name"))).expect("copied");
        }
    }
    dir
}

/// Runs the real binary with `args`, feeding `input`, with the dialogs of
/// `dialogs_dir` (or the built-in ones for `""`); gives up after 30 s.
pub fn run_binary(args: &[&str], dialogs_dir: &Path, input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_icp-sms-doctor"))
        .args(args)
        // Set, not removed, so no .env file around the test can fill them.
        .env("DIALOGS_DIR", dialogs_dir)
        .env("DEFAULT_LANG", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // A binary that stops before reading its input (a broken dialogs
    // folder) closes the pipe: what it printed is the answer then.
    let written = child.stdin.take().expect("piped stdin").write_all(input);
    if let Err(e) = written {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing the input: {e}"
        );
    }
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the binary finishes within 30 s")
        .expect("output collected")
}

/// The built-in dialogs with `dialogs/providers/<example>.toml` in place of
/// `provider.toml`, as a provider would copy it.
pub fn tree_with_provider(example: &str) -> Tree {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("dialogs/providers/{example}.toml"));
    let profile = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tree_with_profile(&profile)
}

/// The built-in dialogs with `profile` as `provider.toml`.
pub fn tree_with_profile(profile: &str) -> Tree {
    let sources: Vec<Source> = embedded()
        .into_iter()
        .map(|s| {
            if s.path.ends_with("/provider.toml") {
                Source {
                    path: s.path,
                    text: profile.to_string(),
                }
            } else {
                s
            }
        })
        .collect();
    load(&sources).unwrap_or_else(|e| panic!("{profile}: {e}"))
}
