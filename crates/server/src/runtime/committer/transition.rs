//! Sessions created and inputs applied: the engine's transition, its
//! effects, the client view, and the hooks that act after it.

use super::*;

/// Buffered events a session may consume in one command (bounds the loop).
const MAX_BUFFERED_PER_COMMAND: usize = 32;

pub(super) async fn create(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    req: &CreateRequest,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Result<Created, Error>, crate::store::Error> {
    let client_secret = ids::new_secret("gwcs");
    let expires =
        now + i64::try_from(engine.config.client.secret_ttl.as_millis()).unwrap_or(i64::MAX);
    if let Some(id) = &req.session_id
        && let Some(row) = tx.lock_session(id).await?
    {
        return Ok(Ok(Created {
            row,
            client_secret: String::new(),
            replayed: true,
        }));
    }
    if let Some(key) = &req.idempotency_key
        && let Some((id, hash)) = tx.find_idempotent(&req.api_key_id, key).await?
    {
        if hash.as_deref() != Some(req.request_hash.as_str()) {
            return Ok(Err(Error::IdempotencyConflict));
        }
        let Some(mut row) = tx.lock_session(&id).await? else {
            return Ok(Err(Error::NotFound));
        };
        // The first answer was lost to the caller: issue a fresh client secret.
        row.client_secret_hash = ids::hash_secret(&client_secret);
        row.client_secret_expires_at = expires;
        tx.set_client_secret(&row.id, &row.client_secret_hash, expires)
            .await?;
        return Ok(Ok(Created {
            row,
            client_secret,
            replayed: true,
        }));
    }
    let Some(wf) = engine.workflows.latest(&req.workflow) else {
        return Ok(Err(Error::UnknownWorkflow(req.workflow.clone())));
    };
    // Before anything is stored: a refused input leaves no session behind.
    if let Some(schema) = &wf.input
        && let Err(errors) = schema.check(&req.input)
    {
        return Ok(Err(Error::InvalidInput {
            workflow: wf.id.clone(),
            version: wf.version,
            errors,
        }));
    }
    let mut row = SessionRow {
        id: req.session_id.clone().unwrap_or_else(|| ids::new_id("ses")),
        workflow_id: wf.id.clone(),
        version: wf.version,
        reference: req.reference.clone(),
        input: req.input.clone(),
        state: engine::SessionState {
            trace: req.trace.clone(),
            ..Default::default()
        },
        created_at: now,
        updated_at: now,
        client_secret_hash: ids::hash_secret(&client_secret),
        client_secret_expires_at: expires,
        api_key_id: req.api_key_id.clone(),
        idempotency_key: req.idempotency_key.clone(),
        request_hash: Some(req.request_hash.clone()),
        timeline_seq: 0,
        client_seq: 0,
        // Fixed now: a later change of the default or a new version of
        // the workflow does not move this session's erasure.
        retain_ms: Some(wf.retention.map_or_else(
            || i64::try_from(engine.config.retention.default.as_millis()).unwrap_or(i64::MAX),
            |ms| i64::try_from(ms).unwrap_or(i64::MAX),
        )),
        erased_at: None,
    };
    tx.insert_session(&row).await?;
    let created = match engine::parent_of(&row.id) {
        Some(parent) => json!({"workflow": wf.id, "version": wf.version, "parent": parent}),
        None => json!({"workflow": wf.id, "version": wf.version}),
    };
    after.timeline(&mut row, now, "session.created", None, created.clone());
    after.audit.push(crate::audit::session(
        crate::audit::action::SESSION_CREATED,
        &crate::audit::Actor::ApiKey(req.api_key_id.clone()),
        &row.id,
        now,
        created,
    ));
    transition(engine, tx, &mut row, Input::Start, now, after).await?;
    Ok(Ok(Created {
        row,
        client_secret,
        replayed: false,
    }))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_input(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    session_id: &str,
    input: &Input,
    job: Option<i64>,
    record: Option<(String, Value)>,
    audit: Option<&crate::store::NewAudit>,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Option<SessionRow>, crate::store::Error> {
    if let Some(job) = job {
        tx.delete_job(job).await?;
    }
    let Some(mut row) = tx.lock_session(session_id).await? else {
        return Ok(None);
    };
    if let Some((kind, data)) = record {
        after.stats.calls(&kind, &data, now);
        let step = row.state.step.clone();
        after.timeline(&mut row, now, &kind, step, data);
    }
    let applied = transition(engine, tx, &mut row, input.clone(), now, after).await?;
    if applied && let Some(audit) = audit {
        after.audit.push(audit.clone());
    }
    Ok(Some(row))
}

/// Applies `input` and then any buffered events the new wait accepts; writes
/// state, timeline, jobs, deliveries and client events. Returns whether the
/// first input applied.
pub(super) async fn transition(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    row: &mut SessionRow,
    input: Input,
    now: i64,
    after: &mut AfterCommit,
) -> Result<bool, crate::store::Error> {
    let wf = engine
        .workflows
        .for_session(engine.store.as_ref(), row)
        .await?;
    crate::otel::link_session(row.state.trace.as_deref());
    let client_before = view::client_json(row);
    let was_ended = row.state.status == SessionStatus::Ended;
    let session_ctx = json!({"id": row.id, "reference": row.reference});
    let mut input = input;
    let mut first_applied = None;
    let mut consumed = 0;
    loop {
        let ctx = Context {
            input: &row.input,
            session: &session_ctx,
        };
        // A step that closed a provider session (release.rs): its end
        // leaves that one alone.
        let closed = crate::runtime::release::closed_by(&wf, &row.state, &input);
        let t = engine::apply(&wf, ctx, &row.state, &input, now);
        first_applied.get_or_insert(t.applied);
        if !t.applied {
            break;
        }
        after.transitions += 1;
        for r in &t.records {
            after.timeline(row, now, &r.kind, r.step.clone(), r.data.clone());
        }
        after.stats.transition(row, &t.records, &t.state, now);
        row.state = t.state;
        if let Some(p) = closed.filter(|p| !row.state.released.contains(p)) {
            row.state.released.push(p);
        }
        for effect in t.effects {
            apply_effect(engine, tx, row, effect, now, after).await?;
        }
        // A new wait may be satisfied by an event that arrived early.
        let Some(wait) = row.state.wait.clone() else {
            break;
        };
        if consumed >= MAX_BUFFERED_PER_COMMAND {
            break;
        }
        let pending = tx.pending_events(&row.id, &wait.events).await?;
        let Some(ev) = pending.into_iter().next() else {
            break;
        };
        tx.consume_event(ev.id, now).await?;
        consumed += 1;
        after.timeline(
            row,
            now,
            "event.replayed",
            row.state.step.clone(),
            json!({"event": ev.name, "source": ev.source}),
        );
        input = Input::Event {
            name: ev.name,
            source: ev.source,
            data: ev.data,
        };
    }
    row.updated_at = now;
    let view_changed = after.client_view(row, client_before, now);
    let ended_now = !was_ended && row.state.status == SessionStatus::Ended;
    tx.update_session(row).await?;
    let change = Change {
        ended_now,
        view_changed,
    };
    for hook in crate::runtime::AFTER_TRANSITION {
        let mut out = Out::new(tx, after, now, effects::lease_ms(engine));
        hook.after_transition(&mut out, row, change).await?;
        // Events for other sessions (a child's ending for its parent) are
        // ingested before the next hook, as if they had arrived now.
        let events = std::mem::take(&mut out.events);
        for ev in &events {
            Box::pin(ingest::ingest(engine, tx, ev, None, now, after)).await?;
        }
    }
    Ok(first_applied.unwrap_or(false))
}
