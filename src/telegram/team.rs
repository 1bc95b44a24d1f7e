//! The team's commands in Telegram: /stats and /graph, for the admins named in `ADMIN_IDS` in private and for a group's administrators there.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::User;

use super::pacer::Priority;
use super::send::{Body, Outbox, Outgoing, Shown, Target, deliver};
use crate::app::App;
use crate::conversation;
use crate::engine::Reply;
use crate::stats::{DEFAULT_DAYS, Figures, MAX_DAYS, NO_VERSION};
use crate::tree::UiText;
use crate::tree::graph::{Format, render};

/// Whether `user` may see the team's figures in `chat`.
async fn is_team(out: &Outbox, app: &App, chat: ChatId, user: &User) -> bool {
    if chat.is_user() {
        return app.settings.admins.contains(&user.id.0);
    }
    match out.bot.get_chat_member(chat, user.id).await {
        Ok(member) => member.is_privileged(),
        Err(e) => {
            log::warn!("chat {chat}: checking an administrator failed: {e}");
            false
        }
    }
}

/// `/stats [days] [version]`: the period (default 7 days) and the
/// dialogue version asked for, if any (a version alone keeps the default
/// period); `None` when either does not parse.
pub(crate) fn stats_args(arg: Option<&str>) -> Option<(u32, Option<String>)> {
    let words: Vec<&str> = arg
        .map(|a| a.split_whitespace().collect())
        .unwrap_or_default();
    let is_version = |w: &str| {
        w == NO_VERSION
            || (!w.is_empty() && w.len() <= 16 && w.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let day_count = |w: &str| w.parse::<u32>().ok().filter(|d| (1..=MAX_DAYS).contains(d));
    match words.as_slice() {
        [] => Some((DEFAULT_DAYS, None)),
        [one] => match day_count(one) {
            Some(days) => Some((days, None)),
            None if is_version(one) && one.parse::<u32>().is_err() => {
                Some((DEFAULT_DAYS, Some((*one).to_string())))
            }
            None => None,
        },
        [days, version] if is_version(version) => {
            Some((day_count(days)?, Some((*version).to_string())))
        }
        _ => None,
    }
}

/// Answers /stats or /graph: the figures or the picture for the team, a
/// polite refusal for anyone else.
pub(super) async fn answer(
    out: &Outbox,
    app: &Arc<App>,
    target: Target,
    user: &User,
    stats: Option<Option<&str>>,
) {
    let lang = conversation::person_lang(app, user.id.0, user.language_code.as_deref()).await;
    let tree = app.tree();
    let say = |text: String| {
        deliver(
            out,
            app,
            target,
            None,
            &[Reply::plain(text)],
            Priority::Person,
        );
    };
    if !is_team(out, app, target.chat, user).await {
        log::info!(
            "chat {} user {}: a team command refused",
            target.chat,
            user.id
        );
        say(tree.ui().text(UiText::TeamOnly, lang).to_string());
        return;
    }
    let Some(arg) = stats else {
        send_graph(out, app, target, render(&tree, Format::Svg, lang, None)).await;
        return;
    };
    let Some((days, version)) = stats_args(arg) else {
        say(tree
            .ui()
            .text(UiText::StatsDays, lang)
            .replace("{max}", &MAX_DAYS.to_string()));
        return;
    };
    let since = app.clock.now() - i64::from(days) * 24 * 3600;
    match app.store.facts(since).await {
        Ok(facts) => {
            let version = version.as_deref().unwrap_or(tree.version());
            say(Figures::of_version(&tree, &facts, days, version).render(&tree, lang));
        }
        Err(e) => {
            log::error!("reading the figures failed: {e}");
            say(tree.ui().text(UiText::StoreError, lang).to_string());
        }
    }
}

/// Sends the picture of the tree as an SVG document.
async fn send_graph(out: &Outbox, app: &App, target: Target, svg: String) {
    let ticket = out.pacer.submit(target.chat.0, Priority::Person, None);
    let document = Outgoing {
        thread: target.thread,
        body: Body::Document {
            name: "icp-sms-doctor-tree.svg".to_string(),
            bytes: svg.into_bytes(),
        },
        ..Outgoing::html(target.chat, String::new())
    };
    match out.put(app, ticket, document).await {
        Ok(Shown::Sent(_)) => log::info!("chat {}: the tree sent as a picture", target.chat),
        Ok(_) => {}
        Err(e) => log::warn!("chat {}: the picture could not be sent: {e}", target.chat),
    }
}

#[cfg(test)]
mod tests {
    use super::stats_args;

    #[test]
    fn stats_takes_days_then_a_version_and_refuses_anything_else() {
        assert_eq!(stats_args(None), Some((7, None)));
        assert_eq!(stats_args(Some("30")), Some((30, None)));
        assert_eq!(
            stats_args(Some("30 0123456789ab")),
            Some((30, Some("0123456789ab".to_string())))
        );
        assert_eq!(
            stats_args(Some("0123456789ab")),
            Some((7, Some("0123456789ab".to_string())))
        );
        assert_eq!(
            stats_args(Some("7 none")),
            Some((7, Some("none".to_string())))
        );
        for bad in ["0", "367", "abc xyz", "7 8 9", "7 not-a-version", "-1"] {
            assert_eq!(stats_args(Some(bad)), None, "{bad}");
        }
    }
}
