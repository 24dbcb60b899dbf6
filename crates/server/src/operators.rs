//! Operators: the people who use the console. Their roles (what each may do,
//! as API scopes, so the console and a script with an API key go through
//! the same checks), passwords (Argon2id, the `argon2` crate's defaults),
//! console session tokens (random, stored hashed) with the CSRF token
//! derived from them, and sign-in with its per-account lockout. The routes
//! are api/console.rs; the stored rows store/operators.rs.

use crate::audit::{self, Actor};
use crate::config::ConsoleConfig;
use crate::ids;
use crate::keys::{Scope, Scopes};
use crate::store::{ConsoleSessionRow, Lockout, NewAudit, OperatorRow, Store};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde_json::json;
use std::sync::LazyLock;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads sessions, workflows, deliveries and the review queue.
    Viewer,
    /// A viewer who also claims and decides reviews.
    Reviewer,
    /// Everything the console offers: cancel, redeliver, deploy, the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Reviewer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The API scopes the role holds. Never `secrets:read` (the console
    /// shows no secret) nor `sessions:erase` (given to a key on purpose).
    pub fn scopes(self) -> Vec<Scope> {
        let viewer = [
            Scope::SessionsRead,
            Scope::WorkflowsRead,
            Scope::ReviewsRead,
        ];
        match self {
            Role::Viewer => viewer.to_vec(),
            Role::Reviewer => [&viewer[..], &[Scope::ReviewsDecide]].concat(),
            Role::Admin => [
                &viewer[..],
                &[
                    Scope::ReviewsDecide,
                    Scope::SessionsWrite,
                    Scope::WorkflowsDryRun,
                    Scope::Admin,
                ],
            ]
            .concat(),
        }
    }

    pub fn scope_set(self) -> Scopes {
        let names: Vec<String> = self
            .scopes()
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        Scopes::from_names(&names)
    }
}

/// An email as operators are stored and found: trimmed, lowercased.
pub fn normalize_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(format!("`{email}` is not an email address"))
    }
}

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD: usize = 12;
/// Longer ones too: Argon2 would hash them, but nobody types a kilobyte.
pub const MAX_PASSWORD: usize = 1024;

pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!("a password has at most {MAX_PASSWORD} bytes"));
    }
    Ok(())
}

/// A password to print once: 24 characters from 57 unambiguous ones (~140 bits).
pub fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The Argon2id PHC string of `password` (CPU-heavy: call off the async threads).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// Whether `password` matches the stored hash (CPU-heavy, as hashing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash nobody's password matches, verified for unknown emails so that a
/// sign-in takes as long whether or not the account exists.
static DECOY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&generate_password()).unwrap_or_default());

/// The name of the console session cookie.
pub const COOKIE: &str = "gangway_console";

/// A new console session token (the cookie's value).
pub fn new_token() -> String {
    ids::new_secret("gwc")
}

/// The CSRF token of a console session: derived from its token, so nothing
/// more is stored, and readable only by a page that may call /v1/console/me
/// (same origin). Every state-changing request with the cookie carries it
/// in `X-CSRF-Token`.
pub fn csrf_token(token: &str) -> String {
    ids::digest(format!("gangway console csrf\0{token}").as_bytes())
}

/// The lockout `[console]` configures.
pub fn lockout(c: &ConsoleConfig) -> Lockout {
    Lockout {
        after: i64::from(c.lockout_after),
        base_ms: i64::try_from(c.lockout_base.as_millis()).unwrap_or(i64::MAX),
        max_ms: i64::try_from(c.lockout_max.as_millis()).unwrap_or(i64::MAX),
    }
}

/// A failed sign-in's audit entry, with the count and lock the store decided.
pub fn note_failure(entry: &mut NewAudit, failures: i64, locked_until: i64) {
    if let serde_json::Value::Object(data) = &mut entry.data {
        data.insert("consecutive_failures".into(), json!(failures));
        if locked_until > 0 {
            data.insert(
                "locked_until".into(),
                crate::runtime::view::time_json(Some(locked_until)),
            );
        }
    }
}

/// A new operator's row (id, normalised email, the password hashed).
pub fn new_operator(email: &str, role: Role, password: &str) -> Result<OperatorRow, String> {
    check_password(password)?;
    Ok(OperatorRow {
        id: ids::new_id("op"),
        email: normalize_email(email)?,
        role: role.as_str().to_string(),
        password_hash: hash_password(password)?,
        created_at: ids::now_ms(),
        disabled_at: None,
        failed_logins: 0,
        locked_until: 0,
        last_login_at: None,
    })
}

/// An audit entry about an operator (the target is its id).
pub fn audit_entry(action: &str, actor: &Actor, op: &OperatorRow, at: i64) -> NewAudit {
    NewAudit {
        at,
        action: action.to_string(),
        actor: actor.to_string(),
        session_id: None,
        target: Some(op.id.clone()),
        data: json!({"email": op.email, "role": op.role}),
    }
}

/// Why a sign-in was refused. The messages do not say whether the email
/// exists, except for a lock (which only its owner's wrong passwords cause).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong email or password")]
    Wrong,
    #[error("too many failed sign-ins: this account is locked for {0} more seconds")]
    Locked(i64),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// A successful sign-in: the cookie's token and who it is.
pub struct SignedIn {
    pub token: String,
    pub operator: OperatorRow,
}

/// Checks the password and, when it matches an enabled operator that is not
/// locked, starts a console session. Each failure for a known operator is
/// counted (and audited); unknown emails cost the same time.
pub async fn sign_in(
    store: &dyn Store,
    config: &ConsoleConfig,
    email: &str,
    password: String,
) -> Result<SignedIn, SignInError> {
    let email = normalize_email(email).map_err(|_| SignInError::Wrong)?;
    let found = store.operator_by_email(&email).await?;
    let now = ids::now_ms();
    if let Some(op) = &found
        && op.locked_until > now
    {
        return Err(SignInError::Locked((op.locked_until - now + 999) / 1000));
    }
    let hash = match &found {
        Some(op) if op.disabled_at.is_none() => op.password_hash.clone(),
        _ => DECOY_HASH.clone(),
    };
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let op = match found {
        Some(op) if op.disabled_at.is_none() => op,
        _ => return Err(SignInError::Wrong),
    };
    let now = ids::now_ms();
    if !matches {
        let entry = audit_entry(
            audit::action::OPERATOR_SIGN_IN_FAILED,
            &Actor::Operator(op.id.clone()),
            &op,
            now,
        );
        store
            .record_failed_login(&op.id, now, lockout(config), &entry)
            .await?;
        return Err(SignInError::Wrong);
    }
    let token = new_token();
    let session = ConsoleSessionRow {
        token_hash: ids::hash_secret(&token),
        operator_id: op.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + i64::try_from(config.lifetime.as_millis()).unwrap_or(i64::MAX / 2),
    };
    let entry = audit_entry(
        audit::action::OPERATOR_SIGNED_IN,
        &Actor::Operator(op.id.clone()),
        &op,
        now,
    );
    store.start_console_session(&session, &entry).await?;
    Ok(SignedIn {
        token,
        operator: op,
    })
}

/// Why a console session no longer works (401 each).
#[derive(Debug, thiserror::Error)]
pub enum SessionEnded {
    #[error("not signed in, or your console session was ended; sign in again")]
    Unknown,
    #[error("your console session ended after {0} minutes without use; sign in again")]
    Idle(u64),
    #[error("your console session reached its maximum length; sign in again")]
    Expired,
    #[error("this operator account is disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// `last_seen_at` is written at most this often, or a quarter of the idle
/// timeout if that is shorter (one write per request would be waste).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The operator whose console session this cookie token is, if it still
/// works; refreshes its idle clock.
pub async fn session_operator(
    store: &dyn Store,
    config: &ConsoleConfig,
    token: &str,
) -> Result<(OperatorRow, Role), SessionEnded> {
    let hash = ids::hash_secret(token);
    let Some((session, op)) = store.console_session(&hash).await? else {
        return Err(SessionEnded::Unknown);
    };
    let now = ids::now_ms();
    let idle = i64::try_from(config.idle_timeout.as_millis()).unwrap_or(i64::MAX / 2);
    let ended = if op.disabled_at.is_some() {
        Some(SessionEnded::Disabled)
    } else if session.expires_at <= now {
        Some(SessionEnded::Expired)
    } else if now - session.last_seen_at > idle {
        Some(SessionEnded::Idle(
            config.idle_timeout.as_secs().div_ceil(60),
        ))
    } else {
        None
    };
    if let Some(ended) = ended {
        store.end_console_session(&hash, None).await?;
        return Err(ended);
    }
    let Some(role) = Role::parse(&op.role) else {
        return Err(SessionEnded::Disabled);
    };
    if now - session.last_seen_at >= TOUCH_EVERY_MS.min(idle / 4) {
        store.touch_console_session(&hash, now).await?;
    }
    Ok((op, role))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_issue_lists() {
        let viewer = Role::Viewer.scope_set();
        assert!(viewer.grants(Scope::SessionsRead) && viewer.grants(Scope::ReviewsRead));
        assert!(!viewer.grants(Scope::ReviewsDecide) && !viewer.grants(Scope::SessionsWrite));
        let reviewer = Role::Reviewer.scope_set();
        assert!(reviewer.grants(Scope::ReviewsDecide) && !reviewer.grants(Scope::SessionsWrite));
        let admin = Role::Admin.scope_set();
        assert!(admin.grants(Scope::Admin) && admin.grants(Scope::SessionsWrite));
        for role in Role::ALL {
            let s = role.scope_set();
            assert!(!s.grants(Scope::SecretsRead) && !s.grants(Scope::SessionsErase));
        }
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        assert!(normalize_email("ada").is_err());
        assert!(normalize_email("@example.com").is_err());
        assert!(normalize_email("ada@localhost").is_err());
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_are_not_the_token() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_ne!(csrf_token(&a), a);
        assert_eq!(generate_password().len(), 24);
        assert!(check_password("short").is_err() && check_password(&generate_password()).is_ok());
    }
}
