//! `gangway keys`: create, list, revoke and rotate API keys in the
//! database the configuration names. Every command says which database it
//! used, and none creates one: a key put into a new, empty file would not
//! be the server's (`gangway migrate` makes the database first).

use anyhow::{Context, bail};
use clap::Subcommand;
use gangway_server::audit::{self, Actor};
use gangway_server::keys::{self, DEFAULT_ROTATION_GRACE};
use gangway_server::store::{ApiKeyRow, NewApiKey, Store};
use gangway_server::{config, ids};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key; it is printed once and stored hashed.
    Create {
        #[arg(long)]
        name: String,
        /// What the key may do; repeat or separate with commas:
        /// sessions:read, sessions:write, secrets:read, workflows:read,
        /// workflows:dry-run, sessions:erase, reviews:read, reviews:decide,
        /// admin (which implies the reviews scopes). Default: all but
        /// sessions:erase, admin and the reviews scopes.
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
        /// When the key stops working: a duration from now (90d, 12h) or
        /// an RFC 3339 time (2027-01-01T00:00:00Z). Default: never.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List the API keys (never their secrets).
    List {
        /// One JSON array, as `GET /v1/admin/keys` returns `data`.
        #[arg(long)]
        json: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Revoke an API key: it stops working at once, on every node.
    Revoke {
        /// The key's id (`key_...`, see `gangway keys list`).
        id: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Give an API key a new secret (printed once); the current secret
    /// keeps working for the grace period.
    Rotate {
        /// The key's id (`key_...`, see `gangway keys list`).
        id: String,
        /// How long the current secret keeps working, e.g. 1h; 0s ends it
        /// at once. At most 30d.
        #[arg(long, default_value = "24h")]
        grace: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Re-seal the personal data sealed under the older `encryption_keys`
    /// (or stored in the clear) under the active (first) one, in batches, while
    /// the servers run; run again to resume after a crash.
    RotateEncryption {
        /// Rows per batch (each batch is one short transaction).
        #[arg(long, default_value_t = 200)]
        batch: u32,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// The database of the configuration, opened only if it exists and is
/// migrated; with the name to show for it.
pub(crate) async fn open(config_file: Option<&Path>) -> anyhow::Result<(Arc<dyn Store>, String)> {
    open_sealed(config_file, false).await
}

/// `open`, with the configuration's data keys when `sealed` (they must be
/// there: encryption on and an `encryption_key`).
pub(crate) async fn open_sealed(
    config_file: Option<&Path>,
    sealed: bool,
) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let cfg = config::Config::load(config_file).context("invalid configuration")?;
    gangway_server::logging::init(&cfg.log).map_err(anyhow::Error::msg)?;
    let url = &cfg.database_url;
    let hint = match config_file {
        Some(f) => format!("gangway migrate --config {}", f.display()),
        None => "gangway migrate".to_string(),
    };
    let without_config = if config_file.is_none() {
        " (no --config given: this is the default database, or GANGWAY_DATABASE_URL's)"
    } else {
        ""
    };
    let name = match gangway_server::store::sqlite_file(url) {
        Some(path) => {
            let path = std::env::current_dir()
                .map(|cwd| cwd.join(&path))
                .unwrap_or(path);
            if !path.is_file() {
                bail!(
                    "database {} does not exist{without_config}; keys are created only in an existing database: check --config, or create it with `{hint}`",
                    path.display()
                );
            }
            let path = path.canonicalize().unwrap_or(path);
            format!("sqlite://{}", path.display())
        }
        None => config::redact_url(url),
    };
    let mut options = gangway_server::store::OpenOptions::default();
    if sealed {
        let keys = cfg
            .data_keys()
            .context("invalid configuration")?
            .context("re-sealing needs `encryption_key` (the new key) and `encryption` on")?;
        options.seal = gangway_server::store::Seal::new(Some(Arc::new(keys)));
    }
    let store = gangway_server::store::open_with(url, &options)
        .await
        .with_context(|| format!("database {name}"))?;
    let pending = store
        .pending_migrations()
        .await
        .with_context(|| format!("database {name}"))?;
    if !pending.is_empty() {
        let list: Vec<String> = pending.iter().map(i64::to_string).collect();
        bail!(
            "database {name} is not migrated (lacks migration {}){without_config}; run `{hint}` first",
            list.join(", ")
        );
    }
    Ok((store, name))
}

fn time(ms: Option<i64>) -> String {
    match gangway_server::runtime::view::time_json(ms) {
        serde_json::Value::String(s) => s,
        _ => "never".to_string(),
    }
}

/// One key as a line of `keys list`.
fn line(k: &ApiKeyRow, now: i64) -> String {
    let mut status = keys::status(k, now).to_string();
    if let Some(until) = k.previous_expires_at.filter(|_| k.revoked_at.is_none()) {
        status.push_str(&format!(" (previous secret until {})", time(Some(until))));
    }
    format!(
        "{}  {}  {}  created {}  expires {}  {}",
        k.id,
        k.name,
        k.scopes.join(","),
        time(Some(k.created_at)),
        time(k.expires_at),
        status
    )
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            expires,
            config,
        } => {
            keys::check_name(&name).map_err(|m| anyhow::anyhow!("--name: {m}"))?;
            let scopes =
                keys::parse_scopes(&scopes).map_err(|m| anyhow::anyhow!("--scope: {m}"))?;
            let now = ids::now_ms();
            let expires_at = expires
                .map(|e| keys::parse_expiry(&e, now))
                .transpose()
                .map_err(|m| anyhow::anyhow!("--expires: {m}"))?;
            let (store, db) = open(config.as_deref()).await?;
            let key = ids::new_secret("gw");
            let id = ids::new_id("key");
            let new = NewApiKey {
                id: id.clone(),
                name: name.trim().to_string(),
                key_hash: ids::hash_secret(&key),
                scopes: scopes.clone(),
                created_at: now,
                expires_at,
            };
            store
                .create_api_key(&new, &audit::key_created(&Actor::cli(), &new))
                .await?;
            eprintln!(
                "Created API key `{}` ({id}) in database {db}, scopes {}, expires {}. It is shown only this once:",
                name.trim(),
                scopes.join(","),
                time(expires_at)
            );
            println!("{key}");
        }
        KeysCommand::List { json, config } => {
            let (store, db) = open(config.as_deref()).await?;
            let now = ids::now_ms();
            let rows = store.api_keys(now).await?;
            eprintln!("{} API key(s) in database {db}", rows.len());
            if json {
                let all: Vec<_> = rows.iter().map(|k| keys::key_json(k, now)).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for k in &rows {
                    println!("{}", line(k, now));
                }
            }
        }
        KeysCommand::Revoke { id, config } => {
            let (store, db) = open(config.as_deref()).await?;
            let now = ids::now_ms();
            let Some(before) = store.api_key(&id, now).await? else {
                bail!("no API key `{id}` in database {db} (`gangway keys list` shows them)");
            };
            if let Some(at) = before.revoked_at {
                eprintln!(
                    "API key `{}` ({id}) in database {db} was already revoked at {}",
                    before.name,
                    time(Some(at))
                );
                return Ok(());
            }
            store
                .revoke_api_key(&id, now, &audit::key_revoked(&Actor::cli(), &before, now))
                .await?;
            eprintln!(
                "Revoked API key `{}` ({id}) in database {db}: it stops working on every node within a second",
                before.name
            );
        }
        KeysCommand::RotateEncryption { batch, config } => {
            crate::reseal::run(config.as_deref(), batch).await?;
        }
        KeysCommand::Rotate { id, grace, config } => {
            let grace = if grace.trim().is_empty() {
                DEFAULT_ROTATION_GRACE
            } else {
                keys::parse_grace(&grace).map_err(|m| anyhow::anyhow!("--grace: {m}"))?
            };
            let (store, db) = open(config.as_deref()).await?;
            let now = ids::now_ms();
            let Some(before) = store.api_key(&id, now).await? else {
                bail!("no API key `{id}` in database {db} (`gangway keys list` shows them)");
            };
            match keys::status(&before, now) {
                "active" => {}
                status => bail!(
                    "API key `{}` ({id}) in database {db} is {status}; create a new one instead",
                    before.name
                ),
            }
            let key = ids::new_secret("gw");
            let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
            let grace_until = now.saturating_add(grace_ms);
            let Some(after) = store
                .rotate_api_key(
                    &id,
                    &ids::hash_secret(&key),
                    now,
                    grace_until,
                    &audit::key_rotated(&Actor::cli(), &before, now, grace_until),
                )
                .await?
            else {
                bail!("API key `{id}` in database {db} was revoked meanwhile");
            };
            let until = if grace.is_zero() {
                "stopped working now".to_string()
            } else {
                format!(
                    "keeps working until {} ({})",
                    time(Some(now.saturating_add(grace_ms))),
                    humantime::format_duration(grace)
                )
            };
            eprintln!(
                "Rotated API key `{}` ({id}) in database {db}; its previous secret {until}. The new secret is shown only this once:",
                after.name
            );
            println!("{key}");
        }
    }
    Ok(())
}
