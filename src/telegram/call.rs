//! One Bot API request, made and read here rather than by teloxide's network layer, which waits 10 s before it reports any 5xx: the retry policy decides every pause itself, starting small.
//!
//! The request is teloxide's own payload, sent as JSON to the same
//! address with the same client (its timeouts and proxy); the answer is
//! read into the same errors teloxide reports.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use teloxide::requests::Payload;
use teloxide::types::ResponseParameters;
use teloxide::{ApiError, Bot, RequestError};

/// Makes the request `payload` with `bot`'s client, token and address.
pub(super) async fn call<P>(bot: &Bot, payload: P) -> Result<P::Output, RequestError>
where
    P: Payload + serde::Serialize,
    P::Output: DeserializeOwned,
{
    read(post(bot, payload).await?)
}

/// Makes the request `payload` as `call` does, for its outcome alone: the
/// result is checked to be there and not read. An edit's answer is the
/// whole edited message, which nobody needs; reading it into teloxide's
/// `Message` was a few percent of the bot's CPU in the profile of a run of
/// presses.
pub(super) async fn call_for_outcome<P>(bot: &Bot, payload: P) -> Result<(), RequestError>
where
    P: Payload + serde::Serialize,
{
    read::<serde::de::IgnoredAny>(post(bot, payload).await?).map(|_| ())
}

/// Posts `payload` and returns the answer's text.
async fn post<P>(bot: &Bot, payload: P) -> Result<String, RequestError>
where
    P: Payload + serde::Serialize,
{
    let mut url = bot.api_url();
    url.path_segments_mut()
        .map_err(|()| unusable("the Bot API address cannot take a path"))?
        .push(&format!("bot{}", bot.token()))
        .push(P::NAME);
    let body = serde_json::to_vec(&payload).map_err(|e| unusable(&e.to_string()))?;
    let network = |e| RequestError::Network(Arc::new(e));
    let answer = bot
        .client()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(network)?;
    answer.text().await.map_err(network)
}

/// A request that could not be put together: nothing was sent.
fn unusable(why: &str) -> RequestError {
    RequestError::Io(Arc::new(std::io::Error::other(why.to_string())))
}

/// The Bot API's answer: its result, or why there is none.
#[derive(Deserialize)]
struct Answer<'a> {
    ok: bool,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    description: Option<ApiError>,
    parameters: Option<ResponseParameters>,
}

/// Reads an answer as teloxide would: the result, a 429's wait, a
/// migration, Telegram's refusal, or — for anything that is not the Bot
/// API's JSON, such as a proxy's error page — `InvalidJson`.
fn read<R: DeserializeOwned>(text: String) -> Result<R, RequestError> {
    let invalid = |e: serde_json::Error, text: &str| RequestError::InvalidJson {
        source: Arc::new(e),
        raw: text.into(),
    };
    let answer: Answer<'_> = serde_json::from_str(&text).map_err(|e| invalid(e, &text))?;
    match answer {
        Answer {
            ok: true,
            result: Some(result),
            ..
        } => serde_json::from_str(result.get()).map_err(|e| invalid(e, &text)),
        Answer {
            parameters: Some(ResponseParameters::RetryAfter(after)),
            ..
        } => Err(RequestError::RetryAfter(after)),
        Answer {
            parameters: Some(ResponseParameters::MigrateToChatId(to)),
            ..
        } => Err(RequestError::MigrateToChatId(to)),
        Answer {
            ok: false,
            description: Some(description),
            ..
        } => Err(RequestError::Api(description)),
        _ => Err(invalid(
            serde::de::Error::custom("neither a result nor an error"),
            &text,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_teloxide_reads_them() {
        let done: bool = read(r#"{"ok":true,"result":true}"#.into()).unwrap();
        assert!(done);
        let waited = read::<bool>(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#.into(),
        );
        assert!(
            matches!(waited, Err(RequestError::RetryAfter(s)) if s.seconds() == 7),
            "{waited:?}"
        );
        let refused = read::<bool>(
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#
                .into(),
        );
        assert!(matches!(
            refused,
            Err(RequestError::Api(ApiError::BotBlocked))
        ));
        let failed = read::<bool>(
            r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#.into(),
        );
        assert!(
            matches!(&failed, Err(RequestError::Api(ApiError::Unknown(d))) if d == "Internal Server Error")
        );
        // An outcome alone: any result is enough, and its absence is not.
        let edited = read::<serde::de::IgnoredAny>(
            r#"{"ok":true,"result":{"message_id":5,"date":0,"chat":{"id":1,"type":"private"},"text":"x"}}"#.into(),
        );
        assert!(edited.is_ok(), "{edited:?}");
        for junk in [
            "<html><body>502 Bad Gateway</body></html>",
            "",
            r#"{"ok":true}"#,
        ] {
            let page = read::<bool>(junk.into());
            assert!(
                matches!(page, Err(RequestError::InvalidJson { .. })),
                "{junk}: {page:?}"
            );
            let outcome = read::<serde::de::IgnoredAny>(junk.into());
            assert!(
                matches!(outcome, Err(RequestError::InvalidJson { .. })),
                "{junk}: {outcome:?}"
            );
        }
    }
}
