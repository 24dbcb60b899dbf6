//! Inbound events: stored (deduplicated), given to their session once
//! correlated, applied when the session waits for them.

use super::*;

/// Gives a reference's stored-but-unadopted events to its session and, if
/// the session waits for one of them, applies it.
pub(super) async fn adopt(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    (namespace, reference): (&str, &str),
    known: Option<Option<String>>,
    given: Option<u64>,
    now: i64,
    after: &mut AfterCommit,
) -> Result<(), crate::store::Error> {
    let sid = match known {
        Some(found) => found,
        None => tx.correlation(namespace, reference).await?,
    };
    // Not correlated yet: the writer that correlates it checks afterwards.
    let Some(sid) = sid else {
        return Ok(());
    };
    // The session first, as everywhere: locks are taken in one order.
    let Some(mut row) = tx.lock_session(&sid).await? else {
        return Ok(());
    };
    // Adopted up front with the batch's other checks, or now.
    let given = match given {
        Some(n) => n,
        None => tx.adopt_events(namespace, reference, &sid).await?,
    };
    if given == 0 {
        return Ok(());
    }
    // Not waiting: the events stay for the wait that wants them.
    let Some(wait) = row.state.wait.clone() else {
        return Ok(());
    };
    let Some(ev) = tx
        .pending_events(&sid, &wait.events)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    tx.consume_event(ev.id, now).await?;
    let step = row.state.step.clone();
    after.timeline(
        &mut row,
        now,
        "event.replayed",
        step,
        json!({"event": ev.name, "source": ev.source}),
    );
    let name = ev.name.clone();
    let input = Input::Event {
        name: ev.name,
        source: ev.source,
        data: ev.data,
    };
    if transition(engine, tx, &mut row, input, now, after).await? {
        tx.consume_events_named(&sid, &name, now).await?;
    }
    Ok(())
}

pub(super) async fn ingest(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    ev: &NewEvent,
    known: Option<Option<String>>,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Ingested, crate::store::Error> {
    // Browser signals name their session directly; provider events name a
    // provider reference that a call step correlated (looked up before the
    // batch took its locks, on a shared database).
    let session_id = if ev.namespace == "session" {
        Some(ev.reference.clone())
    } else if let Some(found) = known {
        found
    } else {
        tx.correlation(&ev.namespace, &ev.reference).await?
    };
    // The session before the event: one that will not take it (ended, or
    // at a limit) refuses it before anything is stored.
    let mut session = match &session_id {
        Some(sid) => tx.lock_session(sid).await?,
        None => None,
    };
    if let Some(row) = session.as_mut()
        && let Some(why) = crate::runtime::intake::refusal(&engine.config.limits, row, ev)
    {
        crate::runtime::intake::refuse(after, row, ev, why, now);
        tx.update_session(row).await?;
        metrics::counter!("gangway_inbound_events_total", "result" => why.metric()).increment(1);
        return Ok(Ingested {
            duplicate: false,
            session_id,
            applied: false,
            refused: Some(why),
        });
    }
    let Some(event_id) = tx.insert_event(ev, session_id.as_deref()).await? else {
        metrics::counter!("gangway_inbound_events_total", "result" => "duplicate").increment(1);
        return Ok(Ingested {
            duplicate: true,
            session_id,
            applied: false,
            refused: None,
        });
    };
    let Some(sid) = session_id else {
        // Arrived before the provider reference was committed: kept until then.
        if engine.store.is_shared() {
            after
                .adopt
                .push((ev.namespace.clone(), ev.reference.clone()));
        }
        metrics::counter!("gangway_inbound_events_total", "result" => "buffered").increment(1);
        return Ok(Ingested {
            duplicate: false,
            session_id: None,
            applied: false,
            refused: None,
        });
    };
    let Some(mut row) = session else {
        return Ok(Ingested {
            duplicate: false,
            session_id: Some(sid),
            applied: false,
            refused: None,
        });
    };
    crate::runtime::intake::stored(&mut row, ev);
    let step = row.state.step.clone();
    after.timeline(
        &mut row,
        now,
        "event.received",
        step,
        json!({"event": ev.name, "source": ev.source, "reference": ev.reference}),
    );
    let waiting_for_it = crate::runtime::intake::waits_for(&row, &ev.name);
    let mut applied = false;
    if waiting_for_it {
        tx.consume_event(event_id, now).await?;
        applied = transition(
            engine,
            tx,
            &mut row,
            Input::Event {
                name: ev.name.clone(),
                source: ev.source.clone(),
                data: ev.data.clone(),
            },
            now,
            after,
        )
        .await?;
        if applied {
            tx.consume_events_named(&sid, &ev.name, now).await?;
        }
    } else {
        tx.update_session(&row).await?;
    }
    metrics::counter!("gangway_inbound_events_total", "result" => if applied { "applied" } else { "buffered" }).increment(1);
    Ok(Ingested {
        duplicate: false,
        session_id: Some(sid),
        applied,
        refused: None,
    })
}
