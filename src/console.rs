//! The terminal console: the same dialogue without Telegram, numbered buttons for people and JSON Lines for programs.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::engine::{Button, Event, Reply, Session, step};
use crate::lang::Lang;
use crate::markup;
use crate::tree::{Tree, UiText};

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

/// The interactive console: each message is printed with its buttons
/// numbered; the person types a number, a /command or text.
pub fn run_interactive(
    tree: &Tree,
    lang: Lang,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let mut session = Session::new(lang);
    let mut buttons: Vec<Button> = Vec::new();
    writeln!(output, "{}\n", tree.ui().text(UiText::ConsoleHint, lang))?;
    write!(output, "> ")?;
    output.flush()?;
    for line in lines(input) {
        let line = line?;
        let trimmed = line.trim();
        let event = match trimmed.parse::<usize>() {
            Ok(n) => match n.checked_sub(1).and_then(|i| buttons.get(i)) {
                Some(button) => Some(Event::Press(&button.data)),
                None => {
                    let text = tree.ui().text(UiText::NoSuchButton, session.lang);
                    writeln!(output, "{}\n", text.replace("{number}", trimmed))?;
                    None
                }
            },
            Err(_) => Some(Event::from_line(&line)),
        };
        if let Some(event) = event {
            let (next, replies) = step(tree, std::mem::take(&mut session), event);
            session = next;
            for reply in &replies {
                print_reply(&mut output, reply)?;
            }
            if let Some(last) = replies.iter().rev().find(|r| !r.buttons.is_empty()) {
                buttons = last.buttons.iter().flatten().cloned().collect();
            } else if !replies.is_empty() {
                buttons.clear();
            }
        }
        write!(output, "> ")?;
        output.flush()?;
    }
    writeln!(output)?;
    Ok(())
}

fn print_reply(output: &mut impl Write, reply: &Reply) -> io::Result<()> {
    writeln!(output, "{}", markup::to_plain(&reply.text))?;
    let mut n = 0;
    for row in &reply.buttons {
        let cells: Vec<String> = row
            .iter()
            .map(|button| {
                n += 1;
                format!("[{n}] {}", button.label)
            })
            .collect();
        writeln!(output, "  {}", cells.join("   "))?;
    }
    writeln!(output)
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
    let mut session = Session::new(lang);
    for line in lines(input) {
        let line = line?;
        match serde_json::from_str::<Input>(&line) {
            Ok(input) => {
                let event = match &input {
                    Input::Text(text) => Event::from_line(text),
                    Input::Press(data) => Event::Press(data),
                };
                let (next, replies) = step(tree, std::mem::take(&mut session), event);
                session = next;
                for reply in &replies {
                    serde_json::to_writer(&mut output, reply)?;
                    writeln!(output)?;
                }
            }
            Err(_) => {
                let error = describe_invalid(&line);
                let text = tree
                    .ui()
                    .text(UiText::InvalidJson, session.lang)
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
