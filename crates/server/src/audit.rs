//! The audit log's vocabulary: who acts (`Actor`) and what they did (the
//! action names), and the entries each kind of action writes. The entries
//! are appended in the same transaction as the change they record (the
//! committer's batch for session commands, the key change's own for keys),
//! so an action that happened is never missing from the log. Entries hold
//! ids, names and counts, never a secret or a person's data, so session
//! retention and erasure leave them alone (docs/deploy.md, "Audit log").

use crate::store::{ApiKeyRow, NewAudit};
use serde_json::{Value, json};
use std::fmt;

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A request authenticated with this API key (its id).
    ApiKey(String),
    /// An operator signed in to the console (its id, `op_...`).
    Operator(String),
    /// The `gangway` command line on the server's machine (`gangway keys`),
    /// with the operating-system user that ran it when known.
    Cli(Option<String>),
    /// The server itself (a start, retention).
    System,
}

impl Actor {
    /// The command line, naming the user from the environment.
    pub fn cli() -> Actor {
        Actor::Cli(
            std::env::var("SUDO_USER")
                .or_else(|_| std::env::var("USER"))
                .ok()
                .filter(|u| !u.is_empty()),
        )
    }
}

impl fmt::Display for Actor {
    /// The stored form, which the API's `actor` filter takes:
    /// `api_key:<id>`, `operator:<id>`, `cli`, `cli:<user>`, `system`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::ApiKey(id) => write!(f, "api_key:{id}"),
            Actor::Operator(id) => write!(f, "operator:{id}"),
            Actor::Cli(Some(user)) => write!(f, "cli:{user}"),
            Actor::Cli(None) => f.write_str("cli"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// The actions the log records (docs/api.md lists them).
pub mod action {
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const API_KEY_ROTATED: &str = "api_key.rotated";
    pub const SECRETS_READ: &str = "secrets.read";
    pub const SESSION_CREATED: &str = "session.created";
    pub const SESSION_CANCELED: &str = "session.canceled";
    pub const SESSION_ERASED: &str = "session.erased";
    pub const SERVER_STARTED: &str = "server.started";
    pub const REVIEW_CLAIMED: &str = "review.claimed";
    pub const REVIEW_DECIDED: &str = "review.decided";
    pub const OPERATOR_CREATED: &str = "operator.created";
    pub const OPERATOR_DISABLED: &str = "operator.disabled";
    pub const OPERATOR_PASSWORD_SET: &str = "operator.password_set";
    pub const OPERATOR_SIGNED_IN: &str = "operator.signed_in";
    pub const OPERATOR_SIGN_IN_FAILED: &str = "operator.sign_in_failed";
    pub const OPERATOR_SIGNED_OUT: &str = "operator.signed_out";
    pub const DELIVERY_REDELIVERED: &str = "delivery.redelivered";

    /// Every action, for the API's filter check.
    pub const ALL: &[&str] = &[
        API_KEY_CREATED,
        API_KEY_REVOKED,
        API_KEY_ROTATED,
        SECRETS_READ,
        SESSION_CREATED,
        SESSION_CANCELED,
        SESSION_ERASED,
        SERVER_STARTED,
        REVIEW_CLAIMED,
        REVIEW_DECIDED,
        OPERATOR_CREATED,
        OPERATOR_DISABLED,
        OPERATOR_PASSWORD_SET,
        OPERATOR_SIGNED_IN,
        OPERATOR_SIGN_IN_FAILED,
        OPERATOR_SIGNED_OUT,
        DELIVERY_REDELIVERED,
    ];
}

/// An entry about a session.
pub fn session(action: &str, actor: &Actor, session_id: &str, at: i64, data: Value) -> NewAudit {
    NewAudit {
        at,
        action: action.to_string(),
        actor: actor.to_string(),
        session_id: Some(session_id.to_string()),
        target: None,
        data,
    }
}

/// An entry about an API key: its id as the target, its name and scopes
/// (never its secret or hash).
pub fn key(
    action: &str,
    actor: &Actor,
    key_id: &str,
    name: &str,
    scopes: &[String],
    at: i64,
) -> NewAudit {
    NewAudit {
        at,
        action: action.to_string(),
        actor: actor.to_string(),
        session_id: None,
        target: Some(key_id.to_string()),
        data: json!({"name": name, "scopes": scopes}),
    }
}

/// An entry about an existing key (revoked, rotated).
pub fn key_row(action: &str, actor: &Actor, key: &ApiKeyRow, at: i64, extra: Value) -> NewAudit {
    let mut entry = self::key(action, actor, &key.id, &key.name, &key.scopes, at);
    if let (Value::Object(data), Value::Object(extra)) = (&mut entry.data, extra) {
        data.extend(extra);
    }
    entry
}

/// An entry for a process start: what runs, and what in its configuration
/// a security review must know (`warnings`, empty when nothing).
pub fn started(node_id: &str, command: &str, warnings: &[String], at: i64) -> NewAudit {
    NewAudit {
        at,
        action: action::SERVER_STARTED.to_string(),
        actor: Actor::System.to_string(),
        session_id: None,
        target: Some(node_id.to_string()),
        data: json!({
            "command": command,
            "version": env!("CARGO_PKG_VERSION"),
            "warnings": warnings,
        }),
    }
}

/// A key created (by the API, the CLI, or the demo for its own key).
pub fn key_created(actor: &Actor, key: &crate::store::NewApiKey) -> NewAudit {
    self::key(
        action::API_KEY_CREATED,
        actor,
        &key.id,
        &key.name,
        &key.scopes,
        key.created_at,
    )
}

/// A key revoked; `before` is the key as it was.
pub fn key_revoked(actor: &Actor, before: &ApiKeyRow, at: i64) -> NewAudit {
    key_row(action::API_KEY_REVOKED, actor, before, at, json!({}))
}

/// A key given a new secret; the replaced one works until `grace_until`.
pub fn key_rotated(actor: &Actor, before: &ApiKeyRow, at: i64, grace_until: i64) -> NewAudit {
    key_row(
        action::API_KEY_ROTATED,
        actor,
        before,
        at,
        json!({"previous_valid_until": crate::runtime::view::time_json(Some(grace_until.max(at)))}),
    )
}

/// The JSON an entry is shown as (the API, the export).
pub fn entry_json(row: &crate::store::AuditRow) -> Value {
    let e = &row.entry;
    json!({
        "id": row.id.to_string(),
        "at": crate::runtime::view::time_json(Some(e.at)),
        "action": e.action,
        "actor": e.actor,
        "session_id": e.session_id,
        "target": e.target,
        "data": e.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_stored_in_the_form_the_filter_takes() {
        assert_eq!(Actor::ApiKey("key_1".into()).to_string(), "api_key:key_1");
        assert_eq!(Actor::Cli(Some("ops".into())).to_string(), "cli:ops");
        assert_eq!(Actor::Cli(None).to_string(), "cli");
        assert_eq!(Actor::System.to_string(), "system");
    }

    #[test]
    fn a_key_entry_names_the_key_and_never_a_secret() {
        let row = ApiKeyRow {
            id: "key_1".into(),
            name: "backend".into(),
            scopes: vec!["admin".into()],
            created_at: 1,
            expires_at: None,
            revoked_at: None,
            rotated_at: None,
            previous_expires_at: None,
        };
        let e = key_row(
            action::API_KEY_ROTATED,
            &Actor::System,
            &row,
            5,
            json!({"grace_until": 9}),
        );
        assert_eq!(e.target.as_deref(), Some("key_1"));
        assert_eq!(
            e.data,
            json!({"name": "backend", "scopes": ["admin"], "grace_until": 9})
        );
    }
}
