//! The one retry policy for requests to the Bot API: 429s waited out, network errors retried with growing pauses.

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

/// Like `retrying`, but a network error is retried only when no
/// connection was made, so the request surely did not arrive: for sends
/// that must not happen twice.
pub(super) async fn retrying_if_unsent<T, F, Fut>(request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    retry(request, false).await
}

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
                after.duration()
            }
            RequestError::Network(e) if after_any_network_error || e.is_connect() => {
                Duration::from_millis(250 * 2u64.pow(attempt))
            }
            RequestError::Io(_) if after_any_network_error => {
                Duration::from_millis(250 * 2u64.pow(attempt))
            }
            _ => return Err(error),
        };
        if attempt >= ATTEMPTS {
            return Err(error);
        }
        log::warn!("request failed ({error}); retrying in {pause:?}");
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}
