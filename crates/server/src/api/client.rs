//! The browser's API, authenticated by the session's client secret: the step
//! to present, a resumable Server-Sent Events stream, and signals.

use super::AppState;
use super::error::Problem;
use super::extract::{JsonBody, client_session};
use crate::ids;
use crate::runtime::view;
use crate::store::{ClientEvent, NewEvent};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The routes, each with an `OPTIONS` handler: the CORS layer the caller
/// adds answers preflights only for methods a route has (the router's
/// method-not-allowed fallback is not layered).
pub fn routes() -> Router<AppState> {
    let preflight = || async { StatusCode::NO_CONTENT };
    Router::new()
        .route("/v1/client/sessions/{id}", get(show).options(preflight))
        .route(
            "/v1/client/sessions/{id}/events",
            get(events).options(preflight),
        )
        .route(
            "/v1/client/sessions/{id}/qr.svg",
            get(qr_svg).options(preflight),
        )
        .route(
            "/v1/client/sessions/{id}/signal",
            post(signal).options(preflight),
        )
}

async fn show(
    State(st): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Json<Value>, Problem> {
    let row = client_session(&st, &parts, &id).await?;
    Ok(Json(view::client_json(&row)))
}

/// The QR code the session presents now, as an SVG document for an `<img>`
/// (`?client_secret=` works here as on the event stream). Never cached: the
/// code opens someone's data-sharing session and may rotate.
async fn qr_svg(
    State(st): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<axum::response::Response, Problem> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let row = client_session(&st, &parts, &id).await?;
    let payload = row
        .state
        .present
        .as_ref()
        .and_then(crate::runtime::qr::payload)
        .filter(|p| !p.starts_with("data:image/"));
    let Some(payload) = payload else {
        return Err(Problem::not_found(
            "this session presents no QR code to render now",
        ));
    };
    let Some(svg) = crate::runtime::qr::svg(payload) else {
        return Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "qr-too-long",
            "QR code cannot be rendered",
            "the provider's QR payload is too long for a QR code",
        ));
    };
    let mut resp = svg.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(resp)
}

fn sse_event(ev: &ClientEvent) -> Event {
    Event::default()
        .id(ev.seq.to_string())
        .event(ev.event.clone())
        .data(ev.data.to_string())
}

/// Replays client events after `Last-Event-ID` from the database, then
/// streams live ones; a lagging stream catches up from the database again.
async fn events(
    State(st): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let row = client_session(&st, &parts, &id).await?;
    let last_id: i64 = match parts.headers.get("last-event-id") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n: &i64| *n >= 0)
            .ok_or_else(|| Problem::bad_request("Last-Event-ID must be a non-negative integer"))?,
    };
    // Subscribe before reading the backlog so nothing falls in between.
    let max = st.engine.config().limits.streams_per_session;
    let Some(mut live) = st.engine.subscribe_client_events(&row.id) else {
        return Err(Problem::limit(format!(
            "{max} event streams and chat sockets already follow this session (limits.streams_per_session); close one first"
        )));
    };
    let mut shutdown = st.engine.shutdown_signal();
    let engine = st.engine.clone();
    let session_id = row.id.clone();
    let stream = async_stream(move |tx| async move {
        let mut seen = last_id;
        let mut ended = false;
        let replay = |seen: i64| {
            let engine = engine.clone();
            let session_id = session_id.clone();
            async move {
                engine
                    .client_events_after(&session_id, seen)
                    .await
                    .unwrap_or_default()
            }
        };
        for ev in replay(seen).await {
            seen = ev.seq;
            ended |= ev.event == "ended";
            if tx.send(sse_event(&ev)).await.is_err() {
                return;
            }
        }
        while !ended {
            let next = tokio::select! {
                ev = live.recv() => ev,
                // The client went away: let go of the subscription now, not
                // at the session's next event (it counts against the limit).
                () = tx.closed() => return,
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    // Going away: tell the client to reconnect (to another node) soon.
                    let _ = tx.send(Event::default().event("reconnect").retry(Duration::from_millis(500)).data("{}")).await;
                    return;
                }
            };
            match next {
                Ok(ev) if ev.seq > seen => {
                    seen = ev.seq;
                    ended = ev.event == "ended";
                    if tx.send(sse_event(&ev)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    for ev in replay(seen).await {
                        seen = ev.seq;
                        ended |= ev.event == "ended";
                        if tx.send(sse_event(&ev)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A stream fed by a task through a small channel.
pub(super) fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    name: String,
    #[serde(default)]
    data: Value,
    /// Optional id so that a retried signal is not applied twice.
    id: Option<String>,
}

/// A signal from the browser becomes the event `signal.<name>`. The browser
/// is not trusted: the workflow decides what a signal may do.
async fn signal(
    State(st): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    JsonBody(body): JsonBody<SignalBody>,
) -> Result<Json<Value>, Problem> {
    let row = client_session(&st, &parts, &id).await?;
    let name_ok = !body.name.is_empty()
        && body.name.len() <= 64
        && body
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(Problem::validation(
            "`name` must be 1 to 64 lowercase letters, digits or `_`",
        ));
    }
    if body.data.to_string().len() > 16 * 1024 {
        return Err(Problem::validation("`data` must be at most 16 KiB of JSON"));
    }
    let key = body
        .id
        .map(|i| format!("{}:{i}", row.id))
        .unwrap_or_else(|| ids::new_id("sig"));
    // While the session runs a child (a `run` step), the browser's signals
    // are the child's: the browser only knows the parent.
    let name = format!("signal.{}", body.name);
    let mut target = row;
    for _ in 0..8 {
        let waits_for_it = target
            .state
            .wait
            .as_ref()
            .is_some_and(|w| w.events.contains(&name));
        let Some(child) = target.state.child.clone().filter(|_| !waits_for_it) else {
            break;
        };
        match st.engine.session(&child).await {
            Ok(Some(c)) => target = c,
            _ => break,
        }
    }
    let ingested = st
        .engine
        .ingest(NewEvent {
            source: "browser".into(),
            event_key: key,
            namespace: "session".into(),
            reference: target.id.clone(),
            name,
            data: body.data,
            received_at: ids::now_ms(),
        })
        .await?;
    // Ended (409) or at a limit (429): not stored, only counted.
    if let Some(why) = ingested.refused {
        return Err(Problem::refused(why));
    }
    Ok(Json(
        json!({"accepted": ingested.applied, "duplicate": ingested.duplicate}),
    ))
}
