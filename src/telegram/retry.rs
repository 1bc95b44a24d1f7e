//! The one retry policy for requests to the Bot API: network errors retried with growing pauses (only when the request surely did not arrive, where a repeat would duplicate), and, outside the pacer, 429s waited out.

use std::future::Future;
use std::time::Duration;

use teloxide::RequestError;

/// How often a request is tried before its error is given up on.
const ATTEMPTS: u32 = 4;

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

/// How long to wait before trying a failed request again, or `None` when
/// it is not worth trying again (a refusal, or a network error after
/// which the request may have arrived, when `after_any_network_error` is
/// false). 429s are not this policy's: the pacer waits them out.
pub(super) fn pause_before_retry(
    error: &RequestError,
    attempt: u32,
    after_any_network_error: bool,
) -> Option<Duration> {
    let backoff = Duration::from_millis(250 * 2u64.pow(attempt.min(6)));
    match error {
        RequestError::Network(e) if after_any_network_error || e.is_connect() => Some(backoff),
        RequestError::Io(_) if after_any_network_error => Some(backoff),
        _ => None,
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
            Ok(value) => return Ok(value),
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
        log::warn!("request failed ({error}); retrying in {pause:?}");
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}
