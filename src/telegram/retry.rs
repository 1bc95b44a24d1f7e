//! The one retry policy for requests to the Bot API: every transient failure (refused, reset, timed out, a 5xx, a proxy's page) tried again with pauses that start small, for the same window; a send whose fate is unknown is the caller's to resolve; and, outside the pacer, 429s waited out.

use std::future::Future;
use std::time::Duration;

use std::sync::Mutex;

use teloxide::{ApiError, RequestError};
use tokio::time::Instant;

/// How long a reply is tried through transient failures before it is
/// given up on: an outage of the Bot API (or of the network to it) up to
/// this long delays replies but loses none.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long a button press's answer is tried: after that the person's
/// client has long stopped waiting for it, and Telegram refuses answers
/// to old presses.
pub(crate) const PRESS_WINDOW: Duration = Duration::from_secs(30);

/// The first pause between two tries; each further one is twice the last.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// The longest pause between two tries: once the Bot API is back, a
/// reply waits at most this long to go.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(10);

/// The longest wait a 429 may impose before the request is given up on.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What to do after a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Try again after this pause.
    Again(Duration),
    /// The request may have been carried out (the connection broke, or
    /// no answer came, after it was sent), and repeating it could show a
    /// message twice: the caller decides.
    Uncertain,
    /// Transient, but tried for the whole window: given up.
    Expired,
    /// Telegram refused the request (a 4xx): trying again cannot help.
    Refused,
}

/// Whether the Bot API answered, but with a server's failure rather than
/// its verdict on the request: a 5xx with Telegram's JSON, or a proxy's
/// error page in place of any JSON. The request was not carried out.
fn is_server_failure(error: &RequestError) -> bool {
    match error {
        RequestError::InvalidJson { .. } => true,
        RequestError::Api(ApiError::Unknown(description)) => {
            let description = description.to_ascii_lowercase();
            [
                "internal server error",
                "bad gateway",
                "service unavailable",
                "gateway timeout",
            ]
            .iter()
            .any(|failure| description.contains(failure))
        }
        _ => false,
    }
}

/// Whether `error` is a failure on the way rather than Telegram's verdict
/// on the request: the kind another try may get past.
pub(super) fn is_transient(error: &RequestError) -> bool {
    matches!(error, RequestError::Network(_) | RequestError::Io(_)) || is_server_failure(error)
}

/// Whether a failed request may have been carried out all the same: the
/// connection broke, or no answer came, after it was sent.
pub(super) fn is_uncertain(error: &RequestError) -> bool {
    match error {
        RequestError::Network(e) => !e.is_connect(),
        RequestError::Io(_) => true,
        _ => false,
    }
}

/// The pause before try number `attempt + 1` (the first failed try is 1).
fn pause(attempt: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
        .min(MAX_PAUSE)
}

/// What follows a failed try: `attempt` tries made, the first `spent`
/// ago. A request that repeats harmlessly (`idempotent`: an edit, an
/// answer to a press) is tried again after any network error; a send only
/// when no connection was made, else it is `Uncertain`. A server's
/// failure and a connection never made are always worth another try.
/// 429s are not this policy's: the pacer waits them out.
pub(super) fn next(
    error: &RequestError,
    attempt: u32,
    spent: Duration,
    window: Duration,
    idempotent: bool,
) -> Next {
    if !is_transient(error) {
        return Next::Refused;
    }
    if is_uncertain(error) && !idempotent {
        return Next::Uncertain;
    }
    let wait = pause(attempt);
    if spent + wait > window {
        return Next::Expired;
    }
    Next::Again(wait)
}

/// The Bot API's health as the bot sees it, so that an outage is logged
/// once when it starts and once when it ends, not once per request.
static OUTAGE: Mutex<Option<std::time::Instant>> = Mutex::new(None);

/// A request failed for a reason worth another try.
pub(super) fn failing(error: &RequestError) {
    let mut outage = OUTAGE.lock().unwrap_or_else(|e| e.into_inner());
    if outage.is_none() {
        *outage = Some(std::time::Instant::now());
        log::warn!(
            "the Bot API is failing ({}); requests are tried again until it answers",
            kind_of(error)
        );
    } else {
        log::debug!("the Bot API is still failing ({})", kind_of(error));
    }
}

/// A request got an answer: an outage, if there was one, is over.
pub(super) fn answered() {
    let mut outage = OUTAGE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(since) = outage.take() {
        log::warn!(
            "the Bot API answers again after {:.1} s",
            since.elapsed().as_secs_f64()
        );
    }
}

/// What went wrong, without the body or URL an error may carry.
pub(super) fn kind_of(error: &RequestError) -> String {
    match error {
        RequestError::Network(e) if e.is_connect() => "cannot connect".to_string(),
        RequestError::Network(e) if e.is_timeout() => "no answer in time".to_string(),
        RequestError::Network(_) => "connection broken".to_string(),
        RequestError::InvalidJson { .. } => "an answer that is not the Bot API's".to_string(),
        RequestError::Api(e) => format!("{e}"),
        RequestError::Io(_) => "I/O error".to_string(),
        e => format!("{e}"),
    }
}

/// Answers a button press (or makes another request that repeats
/// harmlessly), waiting out a 429 and trying transient failures again for
/// as long as an answer still helps.
pub(super) async fn answering_press<T, F, Fut>(mut request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        let error = match request().await {
            Ok(value) => {
                answered();
                return Ok(value);
            }
            Err(e) => e,
        };
        let pause = match &error {
            RequestError::RetryAfter(after)
                if after.duration() <= MAX_RETRY_AFTER
                    && started.elapsed() + after.duration() <= PRESS_WINDOW =>
            {
                after.duration()
            }
            RequestError::RetryAfter(_) => return Err(error),
            e => match next(e, attempt, started.elapsed(), PRESS_WINDOW, true) {
                Next::Again(pause) => {
                    failing(e);
                    pause
                }
                _ => return Err(error),
            },
        };
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real network error: a connection to a loopback port nothing
    /// listens on is refused.
    async fn refused_connection() -> RequestError {
        use teloxide::prelude::Requester;
        let bot = teloxide::Bot::new("1:T").set_api_url("http://127.0.0.1:1/".parse().unwrap());
        bot.get_me().await.unwrap_err()
    }

    #[test]
    fn pauses_start_small_and_grow_to_the_cap() {
        let pauses: Vec<u64> = (1..=8).map(|a| pause(a).as_millis() as u64).collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        assert_eq!(pause(u32::MAX), MAX_PAUSE);
    }

    #[tokio::test]
    async fn every_transient_failure_is_tried_for_the_same_window() {
        let server = RequestError::Api(ApiError::Unknown("Internal Server Error".into()));
        let page = RequestError::InvalidJson {
            source: std::sync::Arc::new(serde_json::from_str::<()>("<html>").unwrap_err()),
            raw: "<html>".into(),
        };
        let refused = refused_connection().await;
        assert!(matches!(&refused, RequestError::Network(e) if e.is_connect()));
        let minute = Duration::from_secs(60);
        for error in [&server, &page, &refused] {
            assert!(is_transient(error));
            for idempotent in [true, false] {
                assert_eq!(
                    next(error, 1, Duration::ZERO, WINDOW, idempotent),
                    Next::Again(FIRST_PAUSE)
                );
                assert_eq!(
                    next(error, 40, WINDOW - minute, WINDOW, idempotent),
                    Next::Again(MAX_PAUSE)
                );
                assert_eq!(
                    next(
                        error,
                        41,
                        WINDOW - Duration::from_secs(5),
                        WINDOW,
                        idempotent
                    ),
                    Next::Expired
                );
            }
        }
        assert!(WINDOW >= Duration::from_secs(600));
    }

    #[test]
    fn a_send_that_may_have_arrived_is_left_to_the_caller_and_a_refusal_is_final() {
        let io = RequestError::Io(std::sync::Arc::new(std::io::Error::other("reset")));
        assert_eq!(next(&io, 1, Duration::ZERO, WINDOW, false), Next::Uncertain);
        assert_eq!(
            next(&io, 1, Duration::ZERO, WINDOW, true),
            Next::Again(FIRST_PAUSE)
        );
        let refusal = RequestError::Api(ApiError::BotBlocked);
        assert!(!is_transient(&refusal));
        assert_eq!(
            next(&refusal, 1, Duration::ZERO, WINDOW, true),
            Next::Refused
        );
    }
}
