//! Customer webhook delivery, signed per the Standard Webhooks spec. The
//! `webhook-id` is the delivery id, the same on every attempt, so receivers
//! can deduplicate. Every attempt is recorded, through the committer so that
//! the bookkeeping shares its group commit.

use super::executor::Running;
use super::job::Deliver;
use super::{DeliveryOutcome, Engine};
use crate::ids;
use crate::store::DeliveryAttempt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub(super) async fn run(engine: &Arc<Engine>, job: Running<'_>, d: Deliver) {
    let delivery_id = d.delivery;
    let trace = d.trace.as_deref();
    let once = d.once;
    if let (Some(endpoint), Some(body)) = (d.endpoint.as_deref(), d.body.as_ref()) {
        let n = job.attempts + 1;
        let span = crate::otel::delivery(&delivery_id, job.session_id, n, trace);
        let (attempt, status, next) = attempt(engine, &delivery_id, endpoint, body, n, once)
            .instrument(span)
            .await;
        engine
            .delivery_result(DeliveryOutcome {
                delivery_id,
                job: job.id,
                attempt,
                status,
                next_attempt_at: next,
            })
            .await;
        return;
    }
    match engine.store.delivery_payload(&delivery_id).await {
        Ok(Some((endpoint, _event_type, payload, attempts))) => {
            let n = attempts + 1;
            let span = crate::otel::delivery(&delivery_id, job.session_id, n, trace);
            let (attempt, status, next) =
                attempt(engine, &delivery_id, &endpoint, &payload, n, once)
                    .instrument(span)
                    .await;
            engine
                .delivery_result(DeliveryOutcome {
                    delivery_id,
                    job: job.id,
                    attempt,
                    status,
                    next_attempt_at: next,
                })
                .await;
        }
        Ok(None) => {
            let _ = engine.store.finish_job(job.id).await;
        }
        // The job keeps its lease and runs again when it expires.
        Err(e) => {
            tracing::error!(error = %e, delivery = %delivery_id, session_id = %job.session_id, "cannot read delivery")
        }
    }
}

/// One attempt: `(record, new status, next attempt time)`. `once`: a
/// redelivery, failed at its first failure (runtime/redeliver.rs).
async fn attempt(
    engine: &Arc<Engine>,
    delivery_id: &str,
    endpoint: &str,
    payload: &Value,
    n: i64,
    once: bool,
) -> (DeliveryAttempt, &'static str, Option<i64>) {
    let now = ids::now_ms();
    let failed_before_sending = |error: String| DeliveryAttempt {
        attempt: n,
        at: now,
        status_code: None,
        error: Some(error),
        duration_ms: 0,
    };
    let Some(ep) = engine
        .config
        .webhooks
        .endpoints
        .iter()
        .find(|e| e.url == endpoint)
    else {
        return (
            failed_before_sending("endpoint no longer configured".into()),
            "failed",
            None,
        );
    };
    // A host written as an address never reaches the guarded resolver.
    let refused = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("invalid endpoint URL: {e}"))
        .and_then(|u| {
            engine.delivery_addresses.check_url(&u).map_err(|r| {
                crate::egress::note(&r, "customer webhook");
                r.to_string()
            })
        });
    if let Err(error) = refused {
        return retry_or_fail(engine, delivery_id, failed_before_sending(error), n, once);
    }
    let body = payload.to_string();
    let ts = now / 1000;
    let signature = match standardwebhooks::Webhook::new(&ep.secret)
        .and_then(|w| w.sign(delivery_id, ts, body.as_bytes()))
    {
        Ok(s) => s,
        Err(e) => {
            return (
                failed_before_sending(format!("cannot sign: {e}")),
                "failed",
                None,
            );
        }
    };
    let started = Instant::now();
    // Traces on: with the session's `traceparent` (not signed: Standard
    // Webhooks signs the id, the timestamp and the body).
    let res = crate::otel::send(
        engine
            .delivery_client
            .post(endpoint)
            .header("content-type", "application/json")
            .header("webhook-id", delivery_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body),
    )
    .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error) = match res {
        Ok(r) if r.status().is_success() => (Some(i64::from(r.status().as_u16())), None),
        // Deliveries follow no redirect: the endpoint is what is configured.
        Ok(r) if r.status().is_redirection() => (
            Some(i64::from(r.status().as_u16())),
            Some(format!(
                "HTTP {}: redirects are not followed",
                r.status().as_u16()
            )),
        ),
        Ok(r) => (
            Some(i64::from(r.status().as_u16())),
            Some(format!("HTTP {}", r.status().as_u16())),
        ),
        Err(e) => (
            None,
            Some(match crate::egress::refusal(&e) {
                Some(r) => {
                    crate::egress::note(r, "customer webhook");
                    r.to_string()
                }
                None if e.is_timeout() => "timed out".to_string(),
                None => "connection failed".to_string(),
            }),
        ),
    };
    let record = DeliveryAttempt {
        attempt: n,
        at: now,
        status_code,
        error: error.clone(),
        duration_ms,
    };
    if error.is_none() {
        metrics::counter!("gangway_webhook_deliveries_total", "result" => "delivered").increment(1);
        return (record, "delivered", None);
    }
    // Per endpoint (without user, password or query): which backend is down.
    metrics::counter!("gangway_webhook_delivery_failures_total", "endpoint" => crate::config::redact_url(endpoint))
        .increment(1);
    retry_or_fail(engine, delivery_id, record, n, once)
}

/// A failed attempt: the next one after the schedule's `n`-th delay, or
/// `failed` after the last (or at once for a redelivery).
fn retry_or_fail(
    engine: &Arc<Engine>,
    delivery_id: &str,
    record: DeliveryAttempt,
    n: i64,
    once: bool,
) -> (DeliveryAttempt, &'static str, Option<i64>) {
    let schedule = &engine.config.webhooks.retry_schedule;
    let delay = usize::try_from(n - 1)
        .ok()
        .and_then(|i| schedule.get(i))
        .filter(|_| !once);
    match delay {
        Some(delay) => {
            metrics::counter!("gangway_webhook_deliveries_total", "result" => "retrying")
                .increment(1);
            let next = ids::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            (record, "pending", Some(next))
        }
        None => {
            metrics::counter!("gangway_webhook_deliveries_total", "result" => "failed")
                .increment(1);
            tracing::warn!(
                delivery = delivery_id,
                "delivery failed after the last retry"
            );
            (record, "failed", None)
        }
    }
}
