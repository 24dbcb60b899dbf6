//! The simulator's own flow components ([`Builtin`]): customer lookup,
//! contact creation, the OAuth login through the Secret Service, and the
//! Graph profile read with a stored secret.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::data::{self, scalar_text};
use super::flow::Builtin;
use super::hub::{LOGIN_TTL, LoginAttempt, LoginOutcome};
use super::random_hex;
use super::run::{Kind, Run};

/// The profile fields `graph-me` passes on.
const PROFILE_FIELDS: [&str; 9] = [
    "id",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "jobTitle",
    "officeLocation",
    "mobilePhone",
    "preferredLanguage",
];

pub(super) async fn play(builtin: Builtin, run: &mut Run) {
    match builtin {
        Builtin::LookupCustomer => lookup_customer(run).await,
        Builtin::CreateContact => create_contact(run).await,
        Builtin::OauthLogin => oauth_login(run).await,
        Builtin::GraphMe => graph_me(run).await,
    }
}

async fn lookup_customer(run: &mut Run) {
    match data::customer(&run.trigger.input) {
        Some(c) => {
            let message = format!(
                "Found customer {} ({})",
                c["name"].as_str().unwrap_or_default(),
                c["tier"].as_str().unwrap_or_default()
            );
            run.out
                .emit(Kind::Result, message, json!({"customer": c}))
                .await;
        }
        None => {
            run.out
                .emit(
                    Kind::Error,
                    "lookup-customer needs input.customer_id or input.email".into(),
                    json!({}),
                )
                .await;
        }
    }
}

async fn create_contact(run: &mut Run) {
    let input = &run.trigger.input;
    let id = data::contact_id(&run.trigger.request_id);
    let name = scalar_text(&input["name"]).unwrap_or_default();
    let email = scalar_text(&input["email"]).unwrap_or_default();
    let message = if name.is_empty() {
        format!("Created contact {id}")
    } else {
        format!("Created contact {name}")
    };
    let data = json!({"contact": {"id": id, "name": name, "email": email}});
    run.out.emit(Kind::Result, message, data).await;
}

/// Opens a login attempt, calls back with the login URL, then waits for the
/// hub's OAuth callback to end the attempt (at most [`LOGIN_TTL`]).
async fn oauth_login(run: &mut Run) {
    let state = random_hex(16);
    let (done, outcome) = oneshot::channel();
    run.sim.lock().hub.open(
        state.clone(),
        LoginAttempt::new(&run.trigger.request_id, &run.trigger.session_id, done),
    );
    let url = run.sim.login_url(&state);
    run.out
        .emit(
            Kind::Progress,
            "Sign in to continue".into(),
            json!({"login_url": url}),
        )
        .await;
    // The user cannot sign in without the URL: `reorder` must not hold it.
    run.out.flush().await;
    match tokio::time::timeout(LOGIN_TTL, outcome).await {
        Ok(Ok(LoginOutcome::SignedIn {
            secret_id,
            name,
            email,
        })) => {
            let data = json!({"secret_id": secret_id, "user": {"name": name, "email": email}});
            run.out
                .emit(Kind::Result, format!("Signed in as {name}"), data)
                .await;
        }
        Ok(Ok(LoginOutcome::Declined(message))) => {
            run.out.emit(Kind::Error, message, json!({})).await;
        }
        // Timed out, or the attempt was forgotten (reset): no callback.
        Ok(Err(_)) | Err(_) => {
            run.sim.lock().hub.forget(&state);
        }
    }
}

/// Reads `/me` over HTTP with the access token of secret `input.secret_id`.
async fn graph_me(run: &mut Run) {
    let Some(secret_id) = scalar_text(&run.trigger.input["secret_id"]) else {
        let message = "No secret_id in the input: sign in with /auth first".to_owned();
        return run.out.emit(Kind::Error, message, json!({})).await;
    };
    let token = run.sim.lock().hub.access_token(&secret_id);
    let Some(token) = token else {
        let message =
            format!("No secret {secret_id} in the secret service: sign in with /auth first");
        return run.out.emit(Kind::Error, message, json!({})).await;
    };
    let (kind, message, data) = match read_profile(run, &token).await {
        Ok(profile) => (
            Kind::Result,
            format!(
                "Profile of {}",
                profile["displayName"].as_str().unwrap_or_default()
            ),
            json!({"profile": profile}),
        ),
        Err(message) => (Kind::Error, message, json!({})),
    };
    run.out.emit(kind, message, data).await;
}

async fn read_profile(run: &Run, token: &str) -> Result<Value, String> {
    let url = format!("{}/graph/v1.0/me", run.sim.public_url());
    let resp = run
        .sim
        .shared
        .http
        .get(&url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| {
            format!(
                "The profile service could not be reached: {}",
                e.without_url()
            )
        })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let why = body["error"]["message"].as_str().unwrap_or("no details");
        return Err(format!("The profile service answered {status}: {why}"));
    }
    Ok(PROFILE_FIELDS
        .iter()
        .map(|k| ((*k).to_owned(), body[*k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into())
}
