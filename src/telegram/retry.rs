//! The one retry policy for requests to the Bot API: network errors retried with growing pauses (only when the request surely did not arrive, where a repeat would duplicate), and, outside the pacer, 429s waited out.

use std::future::Future;
use std::time::Duration;

use std::sync::Mutex;

use teloxide::{ApiError, RequestError};

/// How often a request is tried before its error is given up on: with
/// pauses growing to `MAX_PAUSE`, about two minutes of an unreachable or
/// failing Bot API are waited out.
const ATTEMPTS: u32 = 16;

/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// The longest wait a 429 may impose before the request is given up on.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Sends a request, waiting out a 429 and retrying transient network
/// errors with growing pauses.
pub(super) async fn retrying<T, F, Fut>(request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    retry(request, true).await
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

/// How long to wait before trying a failed request again, or `None` when
/// it is not worth trying again: a refusal, or a network error after which
/// the request may have been carried out, when `after_any_network_error`
/// is false (a message sent twice is worse than one given up). A server's
/// failure and a connection never made are always worth another try.
/// 429s are not this policy's: the pacer waits them out.
pub(super) fn pause_before_retry(
    error: &RequestError,
    attempt: u32,
    after_any_network_error: bool,
) -> Option<Duration> {
    let backoff = Duration::from_millis(250 * 2u64.pow(attempt.min(6))).min(MAX_PAUSE);
    match error {
        RequestError::Network(e) if after_any_network_error || e.is_connect() => Some(backoff),
        RequestError::Io(_) if after_any_network_error => Some(backoff),
        e if is_server_failure(e) => Some(backoff),
        _ => None,
    }
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
fn kind_of(error: &RequestError) -> String {
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

/// How often a paced request is tried before a network error is given up on.
pub(super) const PACED_ATTEMPTS: u32 = ATTEMPTS;

async fn retry<T, F, Fut>(mut request: F, after_any_network_error: bool) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
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
            RequestError::RetryAfter(after) if after.duration() <= MAX_RETRY_AFTER => {
                Some(after.duration())
            }
            e => pause_before_retry(e, attempt, after_any_network_error),
        };
        let Some(pause) = pause.filter(|_| attempt < ATTEMPTS) else {
            return Err(error);
        };
        if !matches!(error, RequestError::RetryAfter(_)) {
            failing(&error);
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}
