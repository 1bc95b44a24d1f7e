//! Deciding what a message asks of the bot: an event of the dialogue, text addressed to it in a group, or nothing.

use teloxide::types::{Message, MessageKind, User};

use crate::engine::{Command, Event};

/// What a message asks of the bot.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Incoming<'a> {
    Event(Event<'a>),
    /// Text in a group that mentions the bot or replies to it, with the
    /// mention taken out.
    GroupText(String),
    /// A command of ours from an anonymous group admin, who has no
    /// person to key a session by.
    AnonymousAdmin,
}

/// Decides whether a message is for the bot, and as what. Service
/// messages, other bots' commands and messages from bots are not; in
/// groups, only our commands and text that mentions or replies to the bot.
pub(super) fn classify<'a>(msg: &'a Message, me: &User) -> Option<Incoming<'a>> {
    // A channel's post copied into its discussion group is the channel's,
    // not a member's words to the bot.
    if !matches!(msg.kind, MessageKind::Common(_)) || msg.is_automatic_forward() {
        return None;
    }
    let private = msg.chat.is_private();
    let anonymous = msg.sender_chat.is_some();
    if !anonymous && msg.from.as_ref().is_none_or(|user| user.is_bot) {
        return None;
    }
    let username = me.username.as_deref().unwrap_or_default();
    // A photo's caption (a screenshot of the error page, say) is read
    // like text in a private chat.
    let text = msg.text().or_else(|| msg.caption().filter(|_| private));
    let Some(text) = text else {
        return (private && !anonymous).then_some(Incoming::Event(Event::NonText));
    };
    let event = Event::from_line(text);
    let Event::Command(command) = event else {
        if anonymous {
            return None;
        }
        if private {
            return Some(Incoming::Event(event));
        }
        let replies_to_bot = msg
            .reply_to_message()
            .and_then(|m| m.from.as_ref())
            .is_some_and(|u| u.id == me.id);
        let (mentioned, rest) = without_mention(text, username);
        return (replies_to_bot || mentioned).then_some(Incoming::GroupText(rest));
    };
    let word = text.split_whitespace().next().unwrap_or("");
    let addressed = match word.split_once('@') {
        // In a private chat it can only be a slip: say it is not ours.
        Some((_, name)) if !name.eq_ignore_ascii_case(username) && private => {
            let unknown = word.trim_start_matches('/');
            return Some(Incoming::Event(Event::Command(Command::Unknown(unknown))));
        }
        Some((_, name)) if !name.eq_ignore_ascii_case(username) => return None,
        Some(_) => true,
        None => false,
    };
    // A bare unknown command in a group is most likely another bot's.
    if !private && !addressed && matches!(command, Command::Unknown(_)) {
        return None;
    }
    if anonymous {
        return (!private).then_some(Incoming::AnonymousAdmin);
    }
    Some(Incoming::Event(event))
}

/// Whether the text mentions `@username` as a whole word (not
/// `@username2`), and the text without those mentions.
fn without_mention(text: &str, username: &str) -> (bool, String) {
    if username.is_empty() {
        return (false, text.to_string());
    }
    let needle = format!("@{}", username.to_ascii_lowercase());
    let lower = text.to_ascii_lowercase();
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle).map(|i| from + i) {
        let end = at + needle.len();
        let whole = !lower[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if whole {
            found = true;
            out.push_str(&text[rest..at]);
            rest = end;
        }
        from = end;
    }
    out.push_str(&text[rest..]);
    (found, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: serde_json::Value) -> Message {
        serde_json::from_value(json).expect("a valid message")
    }

    fn group_text(text: &str) -> Message {
        message(serde_json::json!({
            "message_id": 1, "date": 0,
            "chat": {"id": -100, "type": "supergroup", "title": "g"},
            "from": {"id": 7, "is_bot": false, "first_name": "A"},
            "text": text,
        }))
    }

    fn private_text(text: &str) -> Message {
        message(serde_json::json!({
            "message_id": 1, "date": 0,
            "chat": {"id": 7, "type": "private", "first_name": "A"},
            "from": {"id": 7, "is_bot": false, "first_name": "A"},
            "text": text,
        }))
    }

    fn me() -> User {
        serde_json::from_value(serde_json::json!({
            "id": 42, "is_bot": true, "first_name": "Bot", "username": "icp_doctor_bot"
        }))
        .expect("a user")
    }

    #[test]
    fn group_text_mentioning_the_bot_is_taken_without_the_mention() {
        assert_eq!(
            classify(&group_text("@ICP_doctor_bot 验证码一直收不到"), &me()),
            Some(Incoming::GroupText(" 验证码一直收不到".to_string()))
        );
    }

    #[test]
    fn a_longer_username_is_not_a_mention_of_this_bot() {
        assert_eq!(
            classify(&group_text("@icp_doctor_bot2 收不到"), &me()),
            None
        );
        assert_eq!(
            without_mention(
                "hi @icp_doctor_bot, 收不到 @ICP_DOCTOR_BOT",
                "icp_doctor_bot"
            ),
            (true, "hi , 收不到 ".to_string())
        );
    }

    #[test]
    fn group_text_replying_to_the_bot_is_taken() {
        let mut msg = serde_json::to_value(group_text("还是没收到")).expect("json");
        msg["reply_to_message"] = serde_json::json!({
            "message_id": 0, "date": 0,
            "chat": {"id": -100, "type": "supergroup", "title": "g"},
            "from": {"id": 42, "is_bot": true, "first_name": "Bot"},
            "text": "menu",
        });
        let msg: Message = serde_json::from_value(msg).expect("a message");
        assert_eq!(
            classify(&msg, &me()),
            Some(Incoming::GroupText("还是没收到".to_string()))
        );
    }

    #[test]
    fn group_commands_for_this_bot_are_taken() {
        for text in [
            "/diagnose",
            "/diagnose@icp_doctor_bot",
            "/diagnose@ICP_Doctor_Bot now",
        ] {
            assert_eq!(
                classify(&group_text(text), &me()),
                Some(Incoming::Event(Event::Command(Command::Diagnose))),
                "{text}"
            );
        }
    }

    #[test]
    fn commands_for_other_bots_and_group_chatter_are_ignored() {
        for text in [
            "/diagnose@other_bot",
            "/weather",
            "hello all",
            "/start@other_bot x",
        ] {
            assert_eq!(classify(&group_text(text), &me()), None, "{text}");
        }
    }

    #[test]
    fn an_unknown_command_addressed_to_this_bot_is_answered() {
        assert_eq!(
            classify(&group_text("/weather@icp_doctor_bot"), &me()),
            Some(Incoming::Event(Event::Command(Command::Unknown("weather"))))
        );
    }

    #[test]
    fn in_private_another_bots_command_is_named_as_unknown() {
        assert_eq!(
            classify(&private_text("/diagnose@other_bot"), &me()),
            Some(Incoming::Event(Event::Command(Command::Unknown(
                "diagnose@other_bot"
            ))))
        );
    }

    #[test]
    fn a_channel_post_copied_into_its_discussion_group_is_not_for_the_bot() {
        let mut msg = serde_json::to_value(group_text("/diagnose")).expect("json");
        msg["sender_chat"] = serde_json::json!({"id": -100777, "type": "channel", "title": "c"});
        msg["is_automatic_forward"] = serde_json::json!(true);
        let msg: Message = serde_json::from_value(msg).expect("a message");
        assert_eq!(classify(&msg, &me()), None);
    }

    #[test]
    fn in_private_everything_is_for_the_bot() {
        assert_eq!(
            classify(&private_text("my sms"), &me()),
            Some(Incoming::Event(Event::Text("my sms")))
        );
        assert_eq!(
            classify(&private_text("/weather"), &me()),
            Some(Incoming::Event(Event::Command(Command::Unknown("weather"))))
        );
    }
}
