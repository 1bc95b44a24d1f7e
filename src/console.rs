//! The terminal console: the same conversation without Telegram, numbered options for people and JSON Lines for programs.
//!
//! Both consoles drive `conversation` on an in-memory store, so reminder
//! questions, typed times and /reset's question work as in Telegram; only
//! delivery differs (nothing is sent). The interactive console speaks the
//! dialogue as `[console]` in `ui.toml` words it (`Tree::for_console`); the
//! JSON console passes the dialogue's own texts on to its program.

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::app::{App, Settings};
use crate::callback::Action;
use crate::clock::Clock;
use crate::conversation::{self, Failed, Speaker};
use crate::engine::{Button, Event, Reply, Session, render};
use crate::lang::Lang;
use crate::markup;
use crate::store::SessionKey;
use crate::tree::{Tree, UiText};

/// The key that goes back a step, on every page that has one to go back to.
pub const BACK_KEY: &str = "0";

/// The key that starts over on every page.
pub const RESTART_KEY: &str = "00";

/// Button numbers are small: a longer number typed is text (a code, say,
/// which gets its warning), never a button.
const MAX_KEY_DIGITS: usize = 2;

/// Reads lines until end of input. Invalid UTF-8 is replaced rather than
/// refused, so one bad byte costs one line, not the session.
fn lines(input: impl BufRead) -> impl Iterator<Item = io::Result<String>> {
    let mut input = input;
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    buf.pop();
                }
                Some(Ok(String::from_utf8_lossy(&buf).into_owned()))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// One person's conversation in the terminal.
struct Console {
    app: App,
    speaker: Speaker,
    runtime: tokio::runtime::Runtime,
}

impl Console {
    /// A console conversation; `for_people` picks the console's own
    /// wordings, which speak of typed keys (the JSON console, for
    /// programs, keeps the dialogue's).
    fn new(tree: &Tree, lang: Lang, for_people: bool) -> io::Result<Console> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let settings = Settings {
            default_lang: lang,
            asks_later: false,
            ..Settings::default()
        };
        let tree = Arc::new(if for_people {
            tree.for_console()
        } else {
            tree.clone()
        });
        let app = App::new(tree, crate::store::Store::memory(), Clock::System, settings);
        // A private chat of its own: the person is the chat.
        let speaker = Speaker {
            key: SessionKey { chat: 1, user: 1 },
            name: String::new(),
            language_code: Some(lang.code().to_string()),
            thread: None,
            answering: None,
        };
        Ok(Console {
            app,
            speaker,
            runtime,
        })
    }

    fn tree(&self) -> Arc<Tree> {
        self.app.tree()
    }

    /// One event through the conversation; a failure is its apology.
    fn step(&self, event: Event<'_>) -> Vec<Reply> {
        self.runtime
            .block_on(conversation::handle(&self.app, &self.speaker, event))
            .unwrap_or_else(|Failed { apology }| vec![Reply::plain(apology)])
    }

    /// The person's session, or with none (before /diagnose, after
    /// /reset) a fresh one in the language they chose last.
    fn session(&self) -> Session {
        let stored = self
            .runtime
            .block_on(self.app.store.load(self.speaker.key))
            .ok()
            .flatten();
        stored.unwrap_or_else(|| {
            Session::new(self.runtime.block_on(conversation::person_lang(
                &self.app,
                self.speaker.key.user,
                self.speaker.language_code.as_deref(),
            )))
        })
    }

    /// The language the person speaks now.
    fn lang(&self) -> Lang {
        self.session().lang
    }

    /// The page the person stands on: their node's menu, or the entry menu.
    fn current(&self) -> Reply {
        let session = self.session();
        let tree = self.tree();
        let node = session.node.as_deref().and_then(|id| tree.get(id));
        render(&tree, &session, node.unwrap_or(tree.root()))
    }
}

/// The key a button is typed by: fixed ones for Back and Start over,
/// numbers for the rest.
fn key_of(button: &Button, next: &mut usize) -> String {
    match Action::parse(&button.data) {
        Some(Action::Back { .. } | Action::Show { .. }) => BACK_KEY.to_string(),
        Some(Action::Restart) => RESTART_KEY.to_string(),
        _ => {
            *next += 1;
            next.to_string()
        }
    }
}

/// What is on screen: the last page shown and the keys of its buttons,
/// as data and as printed.
#[derive(Default)]
struct Screen {
    page: Option<Reply>,
    keys: Vec<(String, String)>,
    printed_keys: String,
}

impl Screen {
    /// Prints a reply. A reply that shows again the page on screen, with a
    /// note above it, prints only the note and the keys: the person is
    /// already looking at the rest.
    fn show(&mut self, output: &mut impl Write, reply: &Reply) -> io::Result<()> {
        let again = self.page.as_ref().filter(|page| {
            page.node.is_some()
                && page.node == reply.node
                && page.buttons == reply.buttons
                && reply.text.len() > page.text.len()
                && reply.text.ends_with(&page.text)
        });
        let text = match again {
            Some(page) => reply.text[..reply.text.len() - page.text.len()].trim_end(),
            None => reply.text.as_str(),
        };
        if !text.is_empty() {
            writeln!(output, "{}", markup::to_plain(text))?;
        }
        if !reply.buttons.is_empty() {
            self.keys.clear();
            self.printed_keys.clear();
            let mut next = 0;
            for row in &reply.buttons {
                let cells: Vec<String> = row
                    .iter()
                    .map(|button| {
                        let key = key_of(button, &mut next);
                        let cell = format!("[{key}] {}", button.label);
                        self.keys.push((key, button.data.clone()));
                        cell
                    })
                    .collect();
                self.printed_keys
                    .push_str(&format!("  {}\n", cells.join("   ")));
            }
            write!(output, "{}", self.printed_keys)?;
            if reply.node.is_some() {
                self.page = Some(reply.clone());
            }
        }
        writeln!(output)
    }

    /// Prints the keys on screen again, as they were, without the page.
    fn show_keys(&self, output: &mut impl Write) -> io::Result<()> {
        writeln!(output, "{}", self.printed_keys)
    }

    /// The button data a key stands for. `00` starts over on every page,
    /// also on one that shows no such button (the question of when the SMS
    /// arrived): the header promises it.
    fn data_for(&self, key: &str) -> Option<String> {
        let shown = self.keys.iter().find(|(k, _)| k == key);
        match shown {
            Some((_, data)) => Some(data.clone()),
            None if key == RESTART_KEY && self.page.is_some() => Some(Action::Restart.encode()),
            None => None,
        }
    }
}

/// Whether a typed line is meant as a key: `0`, `00`, or a short number.
fn is_key(line: &str) -> bool {
    !line.is_empty() && line.len() <= MAX_KEY_DIGITS && line.bytes().all(|b| b.is_ascii_digit())
}

/// The interactive console: it opens on the entry menu; each page is
/// printed with its options keyed (`0` Back where there is a step back,
/// `00` Start over on every page); the person types a key, a /command or
/// text. An empty line is
/// ignored, and a key that is not on screen gets one line and the keys.
pub fn run_interactive(
    tree: &Tree,
    lang: Lang,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let console = Console::new(tree, lang, true)?;
    let mut screen = Screen::default();
    writeln!(
        output,
        "{}\n",
        console.tree().ui().text(UiText::ConsoleHint, lang)
    )?;
    for reply in console.step(Event::Command(crate::engine::Command::Diagnose)) {
        screen.show(&mut output, &reply)?;
    }
    write!(output, "> ")?;
    output.flush()?;
    for line in lines(input) {
        let line = line?;
        let typed = line.trim();
        if typed.is_empty() {
            write!(output, "> ")?;
            output.flush()?;
            continue;
        }
        let replies = if is_key(typed) {
            match screen.data_for(typed) {
                Some(data) => console.step(Event::Press(Action::parse(&data).as_ref())),
                None => {
                    let tree = console.tree();
                    let text = tree.ui().text(UiText::NoSuchButton, console.lang());
                    writeln!(output, "{}", text.replace("{number}", typed))?;
                    screen.show_keys(&mut output)?;
                    Vec::new()
                }
            }
        } else {
            console.step(Event::from_line(&line))
        };
        for reply in &replies {
            screen.show(&mut output, reply)?;
        }
        // Every answer leaves the options that apply on screen: after a
        // reply without buttons (/reset, /help, "solved"), the page the
        // person stands on.
        if !replies.is_empty() && replies.iter().all(|r| r.buttons.is_empty()) {
            let page = console.current();
            screen.show(&mut output, &page)?;
        }
        write!(output, "> ")?;
        output.flush()?;
    }
    writeln!(output)?;
    Ok(())
}

/// One input line of the JSON console: serde's externally tagged form is
/// exactly `{"text": …}` or `{"press": …}`, and refuses anything else.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Input {
    Text(String),
    Press(String),
}

/// The answer to a line that is not valid input: a message like any
/// other, plus the reason for programs.
#[derive(Serialize)]
struct ErrorLine<'a> {
    #[serde(flatten)]
    reply: Reply,
    error: &'a str,
}

/// Says what is wrong with an input line in the terms of the protocol,
/// rather than in serde's terms for the enum behind it.
fn describe_invalid(line: &str) -> String {
    if line.trim().is_empty() {
        return "empty line".to_string();
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Err(e) => format!("not JSON: {e}"),
        Ok(_) => "expected an object with exactly one key, \"text\" or \"press\", holding a string"
            .to_string(),
    }
}

/// The machine-readable console: one JSON object per line each way.
/// Input `{"text": …}` or `{"press": …}`; output one `Reply` per bot
/// message. A line that is not valid input gets one answer of the same
/// shape with an extra `"error"` field, and the session goes on.
pub fn run_json(
    tree: &Tree,
    lang: Lang,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let console = Console::new(tree, lang, false)?;
    for line in lines(input) {
        let line = line?;
        match serde_json::from_str::<Input>(&line) {
            Ok(input) => {
                let action = match &input {
                    Input::Press(data) => Action::parse(data),
                    Input::Text(_) => None,
                };
                let event = match &input {
                    Input::Text(text) => Event::from_line(text),
                    Input::Press(_) => Event::Press(action.as_ref()),
                };
                for reply in &console.step(event) {
                    serde_json::to_writer(&mut output, reply)?;
                    writeln!(output)?;
                }
            }
            Err(_) => {
                let error = describe_invalid(&line);
                let text = console
                    .tree()
                    .ui()
                    .text(UiText::InvalidJson, console.lang())
                    .replace("{error}", &error);
                let answer = ErrorLine {
                    reply: Reply {
                        node: None,
                        text,
                        buttons: Vec::new(),
                    },
                    error: &error,
                };
                serde_json::to_writer(&mut output, &answer)?;
                writeln!(output)?;
            }
        }
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_are_keys_and_codes_are_text() {
        for key in ["0", "00", "1", "12"] {
            assert!(is_key(key), "{key}");
        }
        for text in ["123456", "", "1a", "-1"] {
            assert!(!is_key(text), "{text}");
        }
    }
}
