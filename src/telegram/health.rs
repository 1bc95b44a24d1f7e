//! The HTTP routes an operator reads: `GET /healthz` (does the store answer, and take writes?) and `GET /metrics` (Prometheus text).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::App;
use crate::metrics::NODES_FRESH;
use crate::stats;

/// How long /healthz and /metrics wait for the store.
pub(crate) const STORE_WAIT: Duration = Duration::from_secs(2);

/// What `GET /metrics` is served as: what prometheus-client writes,
/// OpenMetrics text.
pub(crate) const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /healthz` and `GET /metrics`; `queued` reads the outbound queue's
/// depth at each scrape.
pub(super) fn routes(app: Arc<App>, queued: Arc<dyn Fn() -> usize + Send + Sync>) -> axum::Router {
    let health = {
        let app = Arc::clone(&app);
        move || async move {
            match healthy(&app).await {
                Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
            }
        }
    };
    let metrics = move |uri: Uri| async move {
        let figures = &app.metrics;
        figures.queued.set(queued() as i64);
        node_figures(&app, dialogue_asked(&uri)).await;
        let counts = async {
            let counts = app.store.counts().await?;
            let reminders = app.store.reminder_count().await?;
            let inbox = app.store.inbox_backlog().await?;
            let cases = app.store.cases_waiting().await?;
            let events = app.store.case_events_queued().await?;
            Ok((counts, reminders, inbox, cases, events))
        };
        match tokio::time::timeout(STORE_WAIT, counts).await {
            Ok(Ok((counts, reminders, inbox, (cases, oldest), events))) => {
                figures.case_events.queued.set(events as i64);
                figures.sessions.set(counts.sessions as i64);
                figures.reminders_pending.set(reminders as i64);
                let waiting = &figures.waiting;
                waiting.inbox.set(inbox as i64);
                waiting.cases.set(cases as i64);
                let now = app.clock.now();
                waiting
                    .oldest_case_secs
                    .set(oldest.map_or(0, |opened| (now - opened).max(0)));
            }
            Ok(Err(e)) => {
                let e: crate::store::StoreError = e;
                log::warn!("metrics: the store's counts could not be read: {e}")
            }
            Err(_) => log::warn!("metrics: the store's counts took over {STORE_WAIT:?}"),
        }
        ([(header::CONTENT_TYPE, METRICS_TYPE)], figures.encode()).into_response()
    };
    axum::Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
}

/// The dialogue version `GET /metrics?dialogue=<version>` asks the node
/// figures of, if any: hex digits or `none`, anything else ignored.
fn dialogue_asked(uri: &Uri) -> Option<String> {
    let value = uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("dialogue="))?;
    let valid = value == stats::NO_VERSION
        || (!value.is_empty() && value.len() <= 16 && value.bytes().all(|b| b.is_ascii_hexdigit()));
    valid.then(|| value.to_string())
}

/// Reads the node figures of `version` (the loaded dialogue's unless
/// another is asked for) from the last `DEFAULT_DAYS` of facts, unless
/// those of the same version were read less than `NODES_FRESH` ago.
async fn node_figures(app: &App, version: Option<String>) {
    let tree = app.tree();
    let version = version.unwrap_or_else(|| tree.version().to_string());
    {
        let read = app
            .metrics
            .nodes_read
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((v, at)) = read.as_ref()
            && *v == version
            && at.elapsed() < NODES_FRESH
        {
            return;
        }
    }
    let since = app.clock.now() - i64::from(stats::DEFAULT_DAYS) * 24 * 3600;
    let facts = match tokio::time::timeout(STORE_WAIT, app.store.facts(since)).await {
        Ok(Ok(facts)) => facts,
        Ok(Err(e)) => {
            log::warn!("metrics: the facts could not be read: {e}");
            return;
        }
        Err(_) => {
            log::warn!("metrics: the facts took over {STORE_WAIT:?}");
            return;
        }
    };
    let figures = stats::Figures::of(&tree, &stats::of_version(&facts, &version), 0);
    let nodes: Vec<(String, [u64; 3])> = figures
        .nodes
        .into_iter()
        .map(|(node, n)| (node, [n.reached, n.left, n.solved_after]))
        .collect();
    app.metrics.set_nodes(&version, &nodes);
    *app.metrics
        .nodes_read
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some((version, std::time::Instant::now()));
}

/// Whether the store answers and takes writes, within `STORE_WAIT`: a
/// read, then what the latest write said (a small probe is written when
/// nothing has been written lately, `Store::writable`). The reason given
/// is the store's error, redacted as a log line is: it names no person.
async fn healthy(app: &App) -> Result<(), String> {
    let probe = crate::store::SessionKey { chat: 0, user: 0 };
    let checks = async {
        if let Err(e) = app.store.load(probe).await {
            return Err(format!("the store fails: {e}"));
        }
        app.store
            .writable(app.clock.now())
            .await
            .map_err(|why| format!("the store refuses writes: {why}"))
    };
    match tokio::time::timeout(STORE_WAIT, checks).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(crate::redact::redact(&why, &[]).into_owned()),
        Err(_) => Err(format!("the store did not answer within {STORE_WAIT:?}")),
    }
}
