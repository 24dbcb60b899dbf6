//! One batch: the sessions it will touch looked up and locked up front,
//! in one order, then each command applied in the same transaction.

use super::*;

/// What a batch looked up before locking: the sessions it will lock,
/// sorted, and per command the session its event or adoption is for (`None`
/// where nothing was looked up).
struct Lookups {
    sessions: Vec<String>,
    per_work: Vec<Option<Option<String>>>,
}

/// The sessions a batch will lock, locked up front in sorted order so that
/// two batches (of this node or another) cannot deadlock on them. On a
/// shared database this includes the sessions its events are for; what it
/// finds is what the batch uses, so no lock is taken later in another order
/// (an event whose reference is committed meanwhile is adopted afterwards).
async fn lookups(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    works: &[Work],
) -> Result<Lookups, crate::store::Error> {
    let shared = engine.store.is_shared();
    // The provider references of the batch, looked up together.
    let mut refs: Vec<(&str, &str)> = works
        .iter()
        .filter_map(|work| match work {
            Work::Ingest(ev) if shared && ev.namespace != "session" => {
                Some((ev.namespace.as_str(), ev.reference.as_str()))
            }
            Work::Adopt {
                namespace,
                reference,
                session_id: None,
            } => Some((namespace.as_str(), reference.as_str())),
            _ => None,
        })
        .collect();
    refs.sort_unstable();
    refs.dedup();
    let correlated = tx.correlations(&refs).await?;
    let session_of = |n: &str, r: &str| correlated.get(&(n.to_string(), r.to_string())).cloned();
    let mut sessions = Vec::new();
    let mut per_work = Vec::with_capacity(works.len());
    for work in works {
        let found = match work {
            Work::Apply { session_id, .. }
            | Work::Record { session_id, .. }
            | Work::Erase { session_id, .. } => {
                sessions.push(session_id.clone());
                None
            }
            Work::Chat(chat) => {
                sessions.push(chat.session_id().to_string());
                None
            }
            Work::Decide(d) => {
                sessions.push(d.session_id.clone());
                None
            }
            Work::Ingest(ev) if shared && ev.namespace != "session" => {
                Some(session_of(&ev.namespace, &ev.reference))
            }
            Work::Ingest(ev) if shared => Some(Some(ev.reference.clone())),
            Work::Adopt {
                session_id: Some(sid),
                ..
            } => Some(Some(sid.clone())),
            Work::Adopt {
                namespace,
                reference,
                session_id: None,
            } => Some(session_of(namespace, reference)),
            _ => None,
        };
        if let Some(Some(sid)) = &found {
            sessions.push(sid.clone());
        }
        per_work.push(found);
    }
    // A child's transition may hand its ending or its view to its parent:
    // lock the ancestors too. A parent's id is a prefix of its child's, so
    // it sorts (and is locked) first, as everywhere.
    for work in works {
        if let Work::Create(req) = work
            && let Some(id) = &req.session_id
        {
            sessions.push(id.clone());
        }
    }
    let mut ancestors = Vec::new();
    for id in &sessions {
        let mut at = id.as_str();
        while let Some(parent) = engine::parent_of(at) {
            ancestors.push(parent.to_string());
            at = parent;
        }
    }
    sessions.extend(ancestors);
    sessions.sort_unstable();
    sessions.dedup();
    Ok(Lookups { sessions, per_work })
}

/// Processes every command in one transaction and commits it.
pub(super) async fn try_batch(
    engine: &Arc<Engine>,
    works: &[Work],
) -> Result<(Vec<Answer>, AfterCommit), crate::store::Error> {
    let mut tx = engine.store.begin().await?;
    let Lookups { sessions, per_work } = lookups(engine, tx.as_mut(), works).await?;
    let ids: Vec<&str> = sessions.iter().map(String::as_str).collect();
    tx.lock_sessions(&ids).await?;
    // The batch's adoption checks, in one go: their sessions are locked.
    let adoptions: Vec<(&str, &str, &str)> = works
        .iter()
        .zip(&per_work)
        .filter_map(|(work, known)| match (work, known) {
            (
                Work::Adopt {
                    namespace,
                    reference,
                    ..
                },
                Some(Some(sid)),
            ) => Some((namespace.as_str(), reference.as_str(), sid.as_str())),
            _ => None,
        })
        .collect();
    let adopted = tx.adopt_events_many(&adoptions).await?;
    let mut after = AfterCommit::default();
    let mut answers = Vec::with_capacity(works.len());
    let now = ids::now_ms();
    for (work, known) in works.iter().zip(per_work) {
        let answer = match work {
            Work::Create(req) => {
                Answer::Create(create(engine, tx.as_mut(), req, now, &mut after).await?)
            }
            Work::Apply {
                session_id,
                input,
                job,
                record,
                audit,
            } => Answer::Apply(
                apply_input(
                    engine,
                    tx.as_mut(),
                    session_id,
                    input,
                    *job,
                    record.as_deref().cloned(),
                    audit.as_deref(),
                    now,
                    &mut after,
                )
                .await?,
            ),
            Work::Ingest(ev) => {
                Answer::Ingest(ingest(engine, tx.as_mut(), ev, known, now, &mut after).await?)
            }
            Work::Record {
                session_id,
                entry,
                job,
                audit,
            } => {
                // Like apply_input: the job row goes before the session lock.
                if let Some(job) = job {
                    tx.delete_job(*job).await?;
                }
                match tx.lock_session(session_id).await? {
                    Some(mut row)
                        if let Some(why) =
                            crate::runtime::intake::record_refusal(&engine.config.limits, &row) =>
                    {
                        crate::runtime::intake::count_refusal(
                            &mut after, &mut row, &entry.0, "api", why, now,
                        );
                        tx.update_session(&row).await?;
                        Answer::Refused(Error::Refused(why))
                    }
                    Some(mut row) => {
                        after.stats.calls(&entry.0, &entry.1, now);
                        let step = row.state.step.clone();
                        after.timeline(&mut row, now, &entry.0, step, entry.1.clone());
                        after.audit.extend(audit.as_deref().cloned());
                        row.updated_at = now;
                        tx.update_session(&row).await?;
                        Answer::Apply(Some(row))
                    }
                    None => Answer::Apply(None),
                }
            }
            Work::Delivered(d) => {
                tx.record_delivery_attempt(&d.delivery_id, &d.attempt, d.status, d.next_attempt_at)
                    .await?;
                match d.next_attempt_at {
                    Some(next) => {
                        tx.reschedule_job(d.job, next, d.attempt.attempt).await?;
                        after.wake_at(next);
                    }
                    None => tx.delete_job(d.job).await?,
                }
                Answer::Recorded
            }
            Work::Erase {
                session_id,
                trigger,
                actor,
            } => {
                let mut out = Out::new(tx.as_mut(), &mut after, now, effects::lease_ms(engine));
                match crate::runtime::erasure::erase(engine, &mut out, session_id, *trigger, actor)
                    .await?
                {
                    Ok(row) => Answer::Apply(row),
                    Err(e) => Answer::Refused(e),
                }
            }
            Work::Barrier => Answer::Recorded,
            Work::Redeliver(req) => Answer::Redelivered(
                super::redeliver::apply(engine, tx.as_mut(), req, now, &mut after).await?,
            ),
            Work::Decide(req) => {
                super::review::decide(engine, tx.as_mut(), req, now, &mut after).await?
            }
            Work::Chat(chat) => {
                let mut out = Out::new(tx.as_mut(), &mut after, now, effects::lease_ms(engine));
                Answer::Chat(
                    crate::runtime::chat::apply(&mut out, chat, &engine.config.limits).await?,
                )
            }
            Work::Adopt {
                namespace,
                reference,
                ..
            } => {
                let key = (namespace.as_str(), reference.as_str());
                let given = known.is_some().then(|| {
                    adopted
                        .get(&(namespace.clone(), reference.clone()))
                        .copied()
                        .unwrap_or(0)
                });
                adopt(engine, tx.as_mut(), key, known, given, now, &mut after).await?;
                Answer::Recorded
            }
        };
        answers.push(answer);
    }
    // Every session that got a timeline entry or a client event changed:
    // its long polls are woken after the commit.
    after.changed = after
        .timeline
        .iter()
        .map(|(id, _)| id.clone())
        .chain(after.client_events.iter().map(|(id, _)| id.clone()))
        .collect();
    tx.insert_timeline(&std::mem::take(&mut after.timeline))
        .await?;
    tx.insert_audit(&std::mem::take(&mut after.audit)).await?;
    let (visits, calls) = after.stats.take();
    if !visits.is_empty() || !calls.is_empty() {
        tx.write_stats(&visits, &calls).await?;
    }
    tx.insert_client_events(&after.client_events).await?;
    tx.commit().await?;
    Ok((answers, after))
}
