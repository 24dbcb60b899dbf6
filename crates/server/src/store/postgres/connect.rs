//! The first connection, made when the store opens: a wrong host, port,
//! database, user or password stops the start with one sentence
//! (`connection refused to 127.0.0.1:5433`) instead of the pool's "pool
//! timed out" once its acquire timeout has run out.

use super::super::Error;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;

pub(super) async fn check(options: &PgConnectOptions, timeout: Duration) -> Result<(), Error> {
    let target = format!("{}:{}", options.get_host(), options.get_port());
    let timeout = timeout.max(Duration::from_secs(1));
    match tokio::time::timeout(timeout, options.connect()).await {
        Err(_) => Err(Error::Connect(format!(
            "no answer from {target} within {}",
            humantime::format_duration(timeout)
        ))),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(Error::Connect(describe(&e, &target, options.get_host()))),
    }
}

fn describe(e: &sqlx::Error, target: &str, host: &str) -> String {
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => format!(
                "connection refused to {target}: is PostgreSQL listening on that host and port?"
            ),
            std::io::ErrorKind::TimedOut => format!("no answer from {target}"),
            // getaddrinfo's failures carry no kind of their own.
            _ if io.to_string().contains("lookup address") => {
                format!("cannot resolve the host `{host}` ({io})")
            }
            _ => format!("cannot connect to {target}: {io}"),
        },
        sqlx::Error::Database(db) => {
            let message = db.message();
            match db.code().as_deref() {
                Some("3D000") => format!(
                    "{message} on {target}: create it (`createdb`) or correct the database name in database_url"
                ),
                Some("28000" | "28P01") => {
                    format!("{message} on {target}: correct the user or password in database_url")
                }
                _ => format!("{message} (on {target})"),
            }
        }
        sqlx::Error::Tls(t) => format!("TLS with {target} failed: {t}"),
        other => format!("cannot connect to {target}: {other}"),
    }
}
