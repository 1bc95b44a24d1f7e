//! The messages reminders speak through: set, due, closed, listed, and /reset's question about them.

use chrono_tz::Tz;

use super::{
    Kind, LATE_AFTER_SECS, Reminder, WindowPlan, format_deadline, format_left, format_time,
};
use crate::callback::Action;
use crate::clock::Instant;
use crate::engine::{Button, Reply, button};
use crate::lang::Lang;
use crate::tree::{Tree, UiButton, UiText};

/// The answer to setting window reminders: the deadline, the time left, and
/// when they will fall.
pub(crate) fn window_set_reply(
    tree: &Tree,
    lang: Lang,
    tz: Tz,
    now: Instant,
    plan: Option<i64>,
    window: &WindowPlan,
    private: bool,
) -> Reply {
    let ui = tree.ui();
    let deadline = format_deadline(tree, lang, tz, window.deadline);
    let left = format_left(tree, lang, now, window.deadline);
    let Some(plan) = plan.filter(|_| !window.dues.is_empty()) else {
        return Reply::plain(
            ui.text(UiText::RemindTooClose, lang)
                .replace("{deadline}", &deadline)
                .replace("{left}", &left),
        );
    };
    let times: Vec<String> = window
        .dues
        .iter()
        .map(|due| format!("· {}", format_time(tree, lang, tz, *due)))
        .collect();
    let delivery = if private {
        UiText::RemindDeliveryPrivate
    } else {
        UiText::RemindDeliveryGroup
    };
    let text = ui
        .text(UiText::RemindSet, lang)
        .replace("{deadline}", &deadline)
        .replace("{left}", &left)
        .replace("{times}", &times.join("\n"));
    Reply {
        node: None,
        text: format!("{}\n{}", text.trim_end(), ui.text(delivery, lang)),
        buttons: vec![plan_buttons(tree, lang, plan)],
    }
}

/// The answer when the window of the given arrival has already closed: a
/// way into the timeout branch.
pub(crate) fn already_closed_reply(tree: &Tree, lang: Lang, tz: Tz, deadline: Instant) -> Reply {
    Reply {
        node: None,
        text: tree
            .ui()
            .text(UiText::WindowAlreadyClosed, lang)
            .replace("{deadline}", &format_deadline(tree, lang, tz, deadline)),
        buttons: vec![vec![timeout_button(tree, lang)]],
    }
}

/// The answer to setting the new-code reminder.
pub(crate) fn new_code_set_reply(
    tree: &Tree,
    lang: Lang,
    tz: Tz,
    plan: i64,
    due: Instant,
) -> Reply {
    Reply {
        node: None,
        text: tree
            .ui()
            .text(UiText::NewCodeSet, lang)
            .replace("{time}", &format_time(tree, lang, tz, due)),
        buttons: vec![vec![button(
            tree.ui().button(UiButton::CancelReminders, lang),
            Action::CancelPlan { plan },
        )]],
    }
}

/// A due reminder as sent: `late` when it goes out well after its time.
pub(crate) fn reminder_reply(tree: &Tree, tz: Tz, now: Instant, reminder: &Reminder) -> Reply {
    let ui = tree.ui();
    let lang = reminder.lang;
    let mut reply = match (reminder.kind, reminder.deadline) {
        (Kind::Window, Some(deadline)) => Reply {
            node: None,
            text: ui
                .text(UiText::Reminder, lang)
                .replace("{deadline}", &format_deadline(tree, lang, tz, deadline))
                .replace("{left}", &format_left(tree, lang, now, deadline)),
            buttons: vec![plan_buttons(tree, lang, reminder.plan)],
        },
        _ => Reply {
            node: None,
            text: ui.text(UiText::NewCodeReminder, lang).to_string(),
            buttons: vec![
                vec![button(
                    ui.button(UiButton::CodeArrived, lang),
                    Action::Arrived { hours: 0 },
                )],
                vec![button(
                    ui.button(UiButton::CancelReminders, lang),
                    Action::CancelPlan {
                        plan: reminder.plan,
                    },
                )],
            ],
        },
    };
    if now - reminder.due_at > LATE_AFTER_SECS {
        reply.text = format!("{}\n\n{}", ui.text(UiText::ReminderLate, lang), reply.text);
    }
    reply
}

/// The one note that replaces reminders whose window closed while the bot
/// was away.
pub(crate) fn window_closed_reply(tree: &Tree, tz: Tz, reminder: &Reminder) -> Reply {
    let lang = reminder.lang;
    let deadline = reminder.deadline.unwrap_or(reminder.due_at);
    Reply {
        node: None,
        text: tree
            .ui()
            .text(UiText::WindowClosed, lang)
            .replace("{deadline}", &format_deadline(tree, lang, tz, deadline)),
        buttons: vec![vec![timeout_button(tree, lang)]],
    }
}

/// The person's pending reminders in a chat, one cancel button per plan.
pub(crate) fn list_reply(tree: &Tree, lang: Lang, tz: Tz, pending: &[Reminder]) -> Reply {
    let ui = tree.ui();
    if pending.is_empty() {
        return Reply::plain(ui.text(UiText::RemindersNone, lang));
    }
    let mut plans: Vec<i64> = Vec::new();
    let mut lines = Vec::with_capacity(pending.len());
    for r in pending {
        if !plans.contains(&r.plan) {
            plans.push(r.plan);
        }
        let number = plans.iter().position(|p| *p == r.plan).unwrap_or(0) + 1;
        let line = match (r.kind, r.deadline) {
            (Kind::Window, Some(deadline)) => ui
                .text(UiText::ReminderLine, lang)
                .replace("{deadline}", &format_time(tree, lang, tz, deadline)),
            _ => ui.text(UiText::NewCodeLine, lang).to_string(),
        };
        lines.push(
            line.replace("{number}", &number.to_string())
                .replace("{time}", &format_time(tree, lang, tz, r.due_at)),
        );
    }
    let buttons = plans
        .chunks(3)
        .enumerate()
        .map(|(row, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, plan)| {
                    button(
                        &ui.button(UiButton::CancelNumbered, lang)
                            .replace("{number}", &(row * 3 + i + 1).to_string()),
                        Action::CancelPlan { plan: *plan },
                    )
                })
                .collect()
        })
        .collect();
    Reply {
        node: None,
        text: ui
            .text(UiText::RemindersList, lang)
            .replace("{list}", &lines.join("\n")),
        buttons,
    }
}

/// After /reset, with reminders pending: keep them or cancel them.
pub(crate) fn reset_ask_reply(tree: &Tree, lang: Lang, count: usize) -> Reply {
    let ui = tree.ui();
    Reply {
        node: None,
        text: format!(
            "{}\n\n{}",
            ui.text(UiText::ResetDone, lang),
            ui.text(UiText::ResetKeepAsk, lang)
                .replace("{count}", &count.to_string())
        ),
        buttons: vec![vec![
            button(
                ui.button(UiButton::KeepReminders, lang),
                Action::KeepReminders,
            ),
            button(
                ui.button(UiButton::DropReminders, lang),
                Action::DropReminders,
            ),
        ]],
    }
}

fn plan_buttons(tree: &Tree, lang: Lang, plan: i64) -> Vec<Button> {
    let ui = tree.ui();
    vec![
        button(
            ui.button(UiButton::Verified, lang),
            Action::Verified { plan },
        ),
        button(
            ui.button(UiButton::CancelReminders, lang),
            Action::CancelPlan { plan },
        ),
    ]
}

fn timeout_button(tree: &Tree, lang: Lang) -> Button {
    let timeout = tree.after_window();
    button(
        tree.router()
            .title(timeout)
            .map_or(tree.node(timeout).id.as_str(), |t| t.get(lang)),
        Action::Jump {
            to: tree.node(timeout).id.clone(),
        },
    )
}
