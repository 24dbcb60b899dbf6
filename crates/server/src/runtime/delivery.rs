//! Customer webhook delivery, signed per the Standard Webhooks spec. The
//! `webhook-id` is the delivery id, the same on every attempt, so receivers
//! can deduplicate. Every attempt is recorded.

use super::Engine;
use crate::ids;
use crate::store::{DeliveryAttempt, Job};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

pub(super) async fn run(engine: &Arc<Engine>, job: Job) {
    let Some(delivery_id) = job.payload.get("delivery").and_then(Value::as_str) else {
        let _ = engine.store.finish_job(job.id).await;
        return;
    };
    if let Err(e) = attempt(engine, &job, delivery_id).await {
        tracing::error!(error = %e, delivery = delivery_id, "delivery bookkeeping failed");
    }
}

async fn attempt(
    engine: &Arc<Engine>,
    job: &Job,
    delivery_id: &str,
) -> Result<(), crate::store::Error> {
    let Some((endpoint, _event_type, payload, attempts)) =
        engine.store.delivery_payload(delivery_id).await?
    else {
        return engine.store.finish_job(job.id).await;
    };
    let Some(ep) = engine
        .config
        .webhooks
        .endpoints
        .iter()
        .find(|e| e.url == endpoint)
    else {
        // The endpoint was removed from config: nothing to deliver to.
        let a = DeliveryAttempt {
            attempt: attempts + 1,
            at: ids::now_ms(),
            status_code: None,
            error: Some("endpoint no longer configured".into()),
            duration_ms: 0,
        };
        engine
            .store
            .record_delivery_attempt(delivery_id, &a, "failed", None)
            .await?;
        return engine.store.finish_job(job.id).await;
    };
    let body = payload.to_string();
    let now = ids::now_ms();
    let ts = now / 1000;
    let signature = standardwebhooks::Webhook::new(&ep.secret)
        .and_then(|w| w.sign(delivery_id, ts, body.as_bytes()));
    let signature = match signature {
        Ok(s) => s,
        Err(e) => {
            let a = DeliveryAttempt {
                attempt: attempts + 1,
                at: now,
                status_code: None,
                error: Some(format!("cannot sign: {e}")),
                duration_ms: 0,
            };
            engine
                .store
                .record_delivery_attempt(delivery_id, &a, "failed", None)
                .await?;
            return engine.store.finish_job(job.id).await;
        }
    };
    let started = Instant::now();
    let res = engine
        .delivery_client
        .post(&endpoint)
        .header("content-type", "application/json")
        .header("webhook-id", delivery_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error) = match res {
        Ok(r) if r.status().is_success() => (Some(i64::from(r.status().as_u16())), None),
        Ok(r) => (
            Some(i64::from(r.status().as_u16())),
            Some(format!("HTTP {}", r.status().as_u16())),
        ),
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                "timed out".to_string()
            } else {
                "connection failed".to_string()
            }),
        ),
    };
    let n = attempts + 1;
    let a = DeliveryAttempt {
        attempt: n,
        at: now,
        status_code,
        error: error.clone(),
        duration_ms,
    };
    if error.is_none() {
        metrics::counter!("gangway_webhook_deliveries_total", "result" => "delivered").increment(1);
        engine
            .store
            .record_delivery_attempt(delivery_id, &a, "delivered", None)
            .await?;
        return engine.store.finish_job(job.id).await;
    }
    let schedule = &engine.config.webhooks.retry_schedule;
    match usize::try_from(n - 1).ok().and_then(|i| schedule.get(i)) {
        Some(delay) => {
            metrics::counter!("gangway_webhook_deliveries_total", "result" => "retrying")
                .increment(1);
            let next = ids::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            engine
                .store
                .record_delivery_attempt(delivery_id, &a, "pending", Some(next))
                .await?;
            engine.store.reschedule_job(job.id, next, n).await?;
            engine.wake_at(next);
            Ok(())
        }
        None => {
            metrics::counter!("gangway_webhook_deliveries_total", "result" => "failed")
                .increment(1);
            tracing::warn!(
                delivery = delivery_id,
                "delivery failed after the last retry"
            );
            engine
                .store
                .record_delivery_attempt(delivery_id, &a, "failed", None)
                .await?;
            engine.store.finish_job(job.id).await
        }
    }
}
