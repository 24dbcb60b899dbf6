//! The simulated Ockto provider API (providers.md 3.2): authentication,
//! sources, sessions, status, result, documents.

use super::{
    CANCELLED, CREATED, DATA_AVAILABLE, DOCUMENT_TTL, DOCUMENT_TYPES, Document, OcktoSession,
    OcktoSim, PROVIDER_CODE_HEADER, SCANNED, SOURCES, Session, TEST_CASES, advance, data,
    is_terminal, new_id, ockto_error, set_status,
};
use crate::sim::{SimRef, now_rfc3339};
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Basic credentials (401), then the provider code (403), both in constant time.
pub(super) async fn authenticate(
    State(sim): State<OcktoSim>,
    req: Request,
    next: Next,
) -> Response {
    let cfg = &sim.inner.config;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", cfg.username, cfg.password))
    );
    let basic_ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(expected.as_bytes())));
    if !basic_ok {
        let mut r = ockto_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid or missing credentials",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"ockto\""),
        );
        return r;
    }
    let code_ok = req
        .headers()
        .get(PROVIDER_CODE_HEADER)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(cfg.provider_code.as_bytes())));
    if !code_ok {
        return ockto_error(
            StatusCode::FORBIDDEN,
            "UNKNOWN_PROVIDER",
            "unknown provider code",
        );
    }
    next.run(req).await
}

#[derive(Deserialize)]
pub(super) struct SourcesQuery {
    #[serde(rename = "ocktoType")]
    ockto_type: Option<String>,
}

pub(super) async fn sources(
    State(sim): State<OcktoSim>,
    Query(q): Query<SourcesQuery>,
) -> Response {
    if q.ockto_type.as_deref().is_none_or(str::is_empty) {
        return ockto_error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "ocktoType is required",
        );
    }
    let down = sim.knobs().unavailable_sources;
    let list: Vec<Value> = SOURCES
        .iter()
        .map(|c| json!({"code": c, "available": !down.iter().any(|d| d == c)}))
        .collect();
    let all = list.iter().all(|s| s["available"] == true);
    Json(json!({"available": all, "sources": list})).into_response()
}

fn parse_start(body: &[u8]) -> Result<(String, Value), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(mut map) = v else {
        return Err("body must be a JSON object".into());
    };
    let reference = match map.remove("sessionId") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err("sessionId is required".into()),
    };
    if let Some(m) = map.get("psd2AmountOfMonths")
        && !m.as_u64().is_some_and(|m| (1..=12).contains(&m))
    {
        return Err("psd2AmountOfMonths must be 1 to 12".into());
    }
    if let Some(docs) = map.get("requestDocuments") {
        let ok = docs.as_array().is_some_and(|d| {
            d.iter()
                .all(|x| x.as_str().is_some_and(|x| DOCUMENT_TYPES.contains(&x)))
        });
        if !ok {
            return Err(format!(
                "requestDocuments must list some of {}",
                DOCUMENT_TYPES.join(", ")
            ));
        }
    }
    // Rulecube documents `odmVersion` as `V#_#` (e.g. "v4_3"); empty or
    // null means the latest.
    match map.get("odmVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v.is_empty() || odm_version_ok(v) => {}
        Some(_) => return Err("odmVersion must look like v4_3 (V#_#)".into()),
    }
    if let Some(t) = map.get("testCaseId")
        && !t.as_str().is_some_and(|t| TEST_CASES.contains(&t))
    {
        return Err(format!(
            "unknown testCaseId; expected one of {}",
            TEST_CASES.join(", ")
        ));
    }
    Ok((reference, Value::Object(map)))
}

/// `v4_3`: `v` (either case), digits, `_`, digits.
fn odm_version_ok(v: &str) -> bool {
    let Some(rest) = v.strip_prefix(['v', 'V']) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('_')
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

pub(super) async fn start(State(sim): State<OcktoSim>, body: Bytes) -> Response {
    let (reference, options) = match parse_start(&body) {
        Ok(v) => v,
        Err(m) => return ockto_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &m),
    };
    let id = new_id("ock");
    let now = Instant::now();
    let session = Session {
        record: OcktoSession {
            session_id: id.clone(),
            reference,
            status: CREATED.into(),
            history: vec![(CREATED.into(), now_rfc3339())],
            test_case_id: options
                .get("testCaseId")
                .and_then(Value::as_str)
                .map(str::to_string),
            options,
            profile: None,
        },
        created: now,
        changed: now,
        stale: None,
        documents: Vec::new(),
    };
    sim.lock().sessions.insert(id.clone(), session);
    let qr = sim.qr_code(&id, 0);
    (
        StatusCode::CREATED,
        Extension(SimRef(id.clone())),
        Json(json!({"sessionId": id, "qrCode": qr})),
    )
        .into_response()
}

fn not_found(id: &str) -> Response {
    ockto_error(
        StatusCode::NOT_FOUND,
        "SESSION_NOT_FOUND",
        &format!("no session {id}"),
    )
}

pub(super) async fn status(State(sim): State<OcktoSim>, Path(id): Path<String>) -> Response {
    let mut st = sim.lock();
    let knobs = st.knobs.clone();
    let Some(s) = st.sessions.get_mut(&id) else {
        return not_found(&id);
    };
    advance(s, &knobs);
    let mut shown = match s.stale.take() {
        Some(previous) => previous,
        None => s.record.status.clone(),
    };
    if knobs.skip_scanned && shown == SCANNED {
        shown = CREATED.into();
    }
    let mut body = json!({"sessionId": id, "status": shown});
    if let Some(every) = knobs.rotate_qr_ms.filter(|ms| *ms > 0)
        && !is_terminal(&shown)
    {
        let generation = u64::try_from(s.created.elapsed().as_millis()).unwrap_or(u64::MAX) / every;
        if generation > 0 {
            body["qrCode"] = Value::String(sim.qr_code(&id, generation));
        }
    }
    Json(body).into_response()
}

pub(super) async fn result(State(sim): State<OcktoSim>, Path(id): Path<String>) -> Response {
    let mut st = sim.lock();
    let knobs = st.knobs.clone();
    let Some(s) = st.sessions.get_mut(&id) else {
        return not_found(&id);
    };
    advance(s, &knobs);
    if s.record.status != DATA_AVAILABLE {
        return ockto_error(
            StatusCode::CONFLICT,
            "DATA_NOT_AVAILABLE",
            &format!("session is {}", s.record.status),
        );
    }
    let requested: Vec<String> = s
        .record
        .options
        .get("requestDocuments")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if s.documents.is_empty() && !requested.is_empty() {
        s.documents = requested.iter().map(|_| new_id("doc")).collect();
        let created = Instant::now();
        let docs: Vec<(String, Document)> = s
            .documents
            .iter()
            .zip(&requested)
            .map(|(doc, kind)| {
                (
                    doc.clone(),
                    Document {
                        session: id.clone(),
                        kind: kind.clone(),
                        created,
                        downloaded: false,
                    },
                )
            })
            .collect();
        st.documents.extend(docs);
    }
    let Some(s) = st.sessions.get(&id) else {
        return not_found(&id);
    };
    let expires = (time::OffsetDateTime::now_utc() + DOCUMENT_TTL)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let docs: Vec<(String, String, String, String)> = s
        .documents
        .iter()
        .zip(&requested)
        .map(|(doc, kind)| {
            (
                kind.clone(),
                doc.clone(),
                format!("{}/documents/{doc}", sim.inner.config.public_url),
                expires.clone(),
            )
        })
        .collect();
    let mut odm = data::odm(&id, s.record.profile.as_deref(), &docs);
    // The version asked for at start, else the latest; the shape stays the
    // simulator's one (A: what changes between ODM versions is not public).
    if let Some(v) = s
        .record
        .options
        .get("odmVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        odm["odmVersion"] = Value::from(v.to_ascii_lowercase());
    }
    if knobs.malformed_result {
        let text = odm.to_string();
        let half = &text.as_bytes()[..text.len() / 2];
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            half.to_vec(),
        )
            .into_response();
    }
    Json(odm).into_response()
}

pub(super) async fn cancel(State(sim): State<OcktoSim>, Path(id): Path<String>) -> Response {
    let mut st = sim.lock();
    let knobs = st.knobs.clone();
    let Some(s) = st.sessions.get_mut(&id) else {
        return not_found(&id);
    };
    advance(s, &knobs);
    if !is_terminal(&s.record.status) {
        set_status(s, CANCELLED, &knobs);
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn document(State(sim): State<OcktoSim>, Path(id): Path<String>) -> Response {
    let mut st = sim.lock();
    let Some(doc) = st.documents.get_mut(&id) else {
        return ockto_error(
            StatusCode::NOT_FOUND,
            "DOCUMENT_NOT_FOUND",
            "no such document",
        );
    };
    if doc.downloaded || doc.created.elapsed() >= DOCUMENT_TTL {
        return ockto_error(
            StatusCode::GONE,
            "DOCUMENT_GONE",
            "document was downloaded or has expired",
        );
    }
    doc.downloaded = true;
    let body = format!(
        "%PDF-1.4\n% Ockto simulator {} document of session {}\n%%EOF\n",
        doc.kind, doc.session
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/pdf")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odm_versions() {
        for ok in ["v4_3", "V4_2", "v10_0"] {
            assert!(odm_version_ok(ok), "{ok}");
        }
        for bad in ["4_3", "v4.3", "v4_", "v_3", "v4_3b", ""] {
            assert!(!odm_version_ok(bad), "{bad}");
        }
        let start =
            |v: &str| parse_start(format!(r#"{{"sessionId": "s", "odmVersion": {v}}}"#).as_bytes());
        assert!(start(r#""v4_2""#).is_ok());
        assert!(start(r#""""#).is_ok());
        assert!(start("null").is_ok());
        assert!(start(r#""4.3""#).is_err());
        assert!(start("43").is_err());
    }
}
