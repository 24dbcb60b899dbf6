//! `gangway operators`: the people who sign in to the console
//! (docs/console.md). Like `gangway keys`, each command works on the
//! database the configuration names, which must exist and be migrated.

use crate::keys::open;
use anyhow::{Context, bail};
use clap::Subcommand;
use gangway_server::audit::{self, Actor};
use gangway_server::ids;
use gangway_server::operators::{self, Role};
use gangway_server::store::{OperatorRow, Store};
use std::io::Read;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator. The password is read from stdin when
    /// `--password-stdin` is given, else generated and printed once.
    Create {
        /// The operator's email, which is also the sign-in name.
        email: String,
        /// viewer (reads), reviewer (also decides reviews) or admin
        /// (also cancels, redelivers, deploys, reads the audit log).
        #[arg(long)]
        role: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List operators (never their password hashes).
    List {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Give an operator a new password (stdin with `--password-stdin`, or
    /// generated and printed once); signs it out everywhere and lifts a lock.
    SetPassword {
        email: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Disable an operator: signed out everywhere, no more sign-ins.
    Disable {
        email: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// The password from stdin (one line, the newline dropped) or a generated
/// one, with whether it was generated.
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((operators::generate_password(), true));
    }
    let mut text = String::new();
    std::io::stdin()
        .take(operators::MAX_PASSWORD as u64 + 2)
        .read_to_string(&mut text)
        .context("reading the password from stdin")?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text).to_string();
    operators::check_password(&text).map_err(anyhow::Error::msg)?;
    Ok((text, false))
}

async fn find(store: &dyn Store, email: &str) -> anyhow::Result<OperatorRow> {
    let email = operators::normalize_email(email).map_err(anyhow::Error::msg)?;
    match store.operator_by_email(&email).await? {
        Some(op) => Ok(op),
        None => bail!("no operator `{email}` (see `gangway operators list`)"),
    }
}

pub async fn run(command: OperatorsCommand) -> anyhow::Result<()> {
    match command {
        OperatorsCommand::Create {
            email,
            role,
            password_stdin,
            config,
        } => {
            let Some(role) = Role::parse(&role) else {
                bail!("--role: `{role}` is not a role; use viewer, reviewer or admin");
            };
            let email = operators::normalize_email(&email).map_err(anyhow::Error::msg)?;
            let (password, generated) = password(password_stdin)?;
            let (store, db) = open(config.as_deref()).await?;
            let op =
                operators::new_operator(&email, role, &password).map_err(anyhow::Error::msg)?;
            let entry = operators::audit_entry(
                audit::action::OPERATOR_CREATED,
                &Actor::cli(),
                &op,
                op.created_at,
            );
            if !store.create_operator(&op, &entry).await? {
                bail!("an operator `{email}` exists already in database {db}");
            }
            eprintln!(
                "Created operator {email} ({}) with the role {} in database {db}.",
                op.id,
                role.as_str()
            );
            if generated {
                eprintln!("Its password is shown only this once:");
                println!("{password}");
            }
        }
        OperatorsCommand::List { config } => {
            let (store, db) = open(config.as_deref()).await?;
            let all = store.operators().await?;
            eprintln!("{} operator(s) in database {db}", all.len());
            for op in all {
                let time = |ms| gangway_server::runtime::view::time_json(ms);
                let status = match op.disabled_at {
                    Some(at) => format!("disabled {}", time(Some(at))),
                    None if op.locked_until > ids::now_ms() => {
                        format!("locked until {}", time(Some(op.locked_until)))
                    }
                    None => "active".to_string(),
                };
                println!(
                    "{}  {}  {}  created {}  last sign-in {}  {status}",
                    op.id,
                    op.email,
                    op.role,
                    time(Some(op.created_at)),
                    time(op.last_login_at)
                );
            }
        }
        OperatorsCommand::SetPassword {
            email,
            password_stdin,
            config,
        } => {
            let (password, generated) = password(password_stdin)?;
            let (store, db) = open(config.as_deref()).await?;
            let op = find(store.as_ref(), &email).await?;
            let hash = operators::hash_password(&password).map_err(anyhow::Error::msg)?;
            let entry = operators::audit_entry(
                audit::action::OPERATOR_PASSWORD_SET,
                &Actor::cli(),
                &op,
                ids::now_ms(),
            );
            store.set_operator_password(&op.id, &hash, &entry).await?;
            eprintln!(
                "Set a new password for {} in database {db}; its console sessions ended.",
                op.email
            );
            if generated {
                eprintln!("It is shown only this once:");
                println!("{password}");
            }
        }
        OperatorsCommand::Disable { email, config } => {
            let (store, db) = open(config.as_deref()).await?;
            let op = find(store.as_ref(), &email).await?;
            let now = ids::now_ms();
            let entry =
                operators::audit_entry(audit::action::OPERATOR_DISABLED, &Actor::cli(), &op, now);
            store.disable_operator(&op.id, now, &entry).await?;
            eprintln!(
                "Disabled operator {} in database {db}; its console sessions ended.",
                op.email
            );
        }
    }
    Ok(())
}
