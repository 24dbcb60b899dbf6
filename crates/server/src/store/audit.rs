//! The audit log as stored: append-only rows of who did what. Both backends
//! refuse UPDATE and DELETE on the table (triggers in the migration), so the
//! only verbs are to append and to read.

use super::Result;
use async_trait::async_trait;
use serde_json::Value;

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// Unix ms.
    pub at: i64,
    /// What happened, e.g. `api_key.created` (crate::audit lists them).
    pub action: String,
    /// Who did it, e.g. `api_key:key_…`, `cli`, `system` (crate::audit::Actor).
    pub actor: String,
    pub session_id: Option<String>,
    /// What the action was done to when it is not a session (a key id).
    pub target: Option<String>,
    /// Details: ids, names, counts; never a secret or personal data.
    pub data: Value,
}

/// An appended entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Increases with every append: the order of the log.
    pub id: i64,
    pub entry: NewAudit,
}

/// Which entries to read; every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub session_id: Option<String>,
    pub target: Option<String>,
    /// Unix ms, inclusive.
    pub since: Option<i64>,
    /// Unix ms, exclusive.
    pub until: Option<i64>,
    /// Keyset: only entries after this id in the read order.
    pub after_id: Option<i64>,
    /// Oldest first when true (the export), newest first otherwise.
    pub ascending: bool,
    pub limit: u32,
}

/// The log's verbs, implemented by every backend. The committer appends the
/// entries of session commands in its own transaction (`Tx::insert_audit`);
/// key management appends in the key change's transaction.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append_audit(&self, entries: &[NewAudit]) -> Result<()>;
    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>>;
}

/// The WHERE clause and ORDER BY of a read, with `$N` placeholders from
/// `first` on, and the values to bind in order (all text or integers).
pub(crate) fn audit_query(filter: &AuditFilter, first: usize) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    let mut text = |column: &str, value: &Option<String>, binds: &mut Vec<Bind>| {
        if let Some(v) = value {
            binds.push(Bind::Text(v.clone()));
            clauses.push(format!("{column} = ${}", first + binds.len() - 1));
        }
    };
    text("action", &filter.action, &mut binds);
    text("actor", &filter.actor, &mut binds);
    text("session_id", &filter.session_id, &mut binds);
    text("target", &filter.target, &mut binds);
    let mut int = |clause: &str, value: Option<i64>, binds: &mut Vec<Bind>| {
        if let Some(v) = value {
            binds.push(Bind::Int(v));
            clauses.push(format!("{clause} ${}", first + binds.len() - 1));
        }
    };
    int("at >=", filter.since, &mut binds);
    int("at <", filter.until, &mut binds);
    let (after, order) = if filter.ascending {
        ("id >", "ASC")
    } else {
        ("id <", "DESC")
    };
    int(after, filter.after_id, &mut binds);
    let mut sql =
        String::from("SELECT id, at, action, actor, session_id, target, data FROM audit_log");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    binds.push(Bind::Int(i64::from(filter.limit)));
    sql.push_str(&format!(
        " ORDER BY id {order} LIMIT ${}",
        first + binds.len() - 1
    ));
    (sql, binds)
}

/// A value bound to an audit read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_binds_each_filter_given_in_order() {
        let (sql, binds) = audit_query(
            &AuditFilter {
                action: Some("api_key.created".into()),
                since: Some(10),
                after_id: Some(7),
                limit: 50,
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            sql,
            "SELECT id, at, action, actor, session_id, target, data FROM audit_log \
             WHERE action = $1 AND at >= $2 AND id < $3 ORDER BY id DESC LIMIT $4"
        );
        assert_eq!(
            binds,
            [
                Bind::Text("api_key.created".into()),
                Bind::Int(10),
                Bind::Int(7),
                Bind::Int(50)
            ]
        );
        let (sql, _) = audit_query(
            &AuditFilter {
                ascending: true,
                after_id: Some(3),
                limit: 1,
                ..Default::default()
            },
            1,
        );
        assert!(
            sql.ends_with("WHERE id > $1 ORDER BY id ASC LIMIT $2"),
            "{sql}"
        );
    }
}
