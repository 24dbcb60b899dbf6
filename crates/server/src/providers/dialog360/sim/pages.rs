//! The hub's pages: the permissions page (sign-up, numbers, Accept, Cancel),
//! the Direct Payment step and the Client Hub.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{Dialog360Sim, SimChannel, SimClient, lock, random_id};

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn params(raw: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", raw.trim_start_matches('?')))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param(p: &[(String, String)], k: &str) -> String {
    p.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn page(body: String) -> Response {
    let mut r = Html(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action *",
        ),
    );
    r
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let mut r = page(format!(
        "<!doctype html><title>360dialog</title><h1>Something went wrong</h1><p>{}</p>",
        html_escape(message)
    ));
    *r.status_mut() = status;
    r
}

pub(super) async fn permissions_page(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(partner) = sim.partner(&pid).cloned() else {
        return error_page(StatusCode::NOT_FOUND, "unknown partner");
    };
    let q = params(raw.as_deref().unwrap_or_default());
    let redirect = param(&q, "redirect_url");
    if !redirect.is_empty() && !redirect.starts_with(&partner.redirect_prefix) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_url does not match the partner's registered redirect URL",
        );
    }
    let email = param(&q, "email");
    let earlier: Vec<SimChannel> = {
        let inner = lock(&sim.shared.inner);
        inner
            .clients
            .values()
            .find(|c| c.partner_id == pid && !email.is_empty() && c.email == email)
            .map(|c| {
                inner
                    .channels
                    .values()
                    .filter(|ch| ch.client_id == c.id && !ch.revoked)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let hidden: String = ["redirect_url", "state", "partner"]
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                html_escape(&param(&q, k))
            )
        })
        .collect();
    let revoke: String = earlier
        .iter()
        .map(|c| {
            format!(
                "<label><input type=\"checkbox\" name=\"revoke\" value=\"{id}\"> remove permission for {phone} ({id}, {status})</label><br>",
                id = html_escape(&c.id),
                phone = html_escape(&c.phone_number),
                status = html_escape(&c.status)
            )
        })
        .collect();
    let payment = if partner.direct {
        "<p id=\"next\">Direct Payment: price and payment details follow after you continue.</p>"
    } else {
        ""
    };
    page(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>360dialog — connect WhatsApp</title></head>
<body><h1>Connect your WhatsApp number</h1>
<form method="post">{hidden}
<section id="signup"><label>E-mail <input name="email" value="{email}"></label><br><label>Name <input name="name" value="{name}"></label></section>
{payment}
<section id="numbers"><h2>Numbers</h2><label>Add number <input name="number" value="{number}"></label><br>{revoke}</section>
<button name="action" value="accept">Accept</button> <button name="action" value="cancel">Cancel</button>
</form></body></html>"#,
        email = html_escape(&email),
        name = html_escape(&param(&q, "name")),
        number = html_escape(&param(&q, "number")),
    ))
}

pub(super) async fn permissions_submit(
    State(sim): State<Dialog360Sim>,
    Path(pid): Path<String>,
    body: Bytes,
) -> Response {
    let Some(partner) = sim.partner(&pid).cloned() else {
        return error_page(StatusCode::NOT_FOUND, "unknown partner");
    };
    let f = params(std::str::from_utf8(&body).unwrap_or_default());
    if param(&f, "action") != "accept" {
        return page("<!doctype html><title>360dialog</title><p>Canceled. You can close this window.</p><script>window.close()</script>".into());
    }
    let redirect = param(&f, "redirect_url");
    let redirect = if redirect.is_empty() {
        partner.redirect_prefix.clone()
    } else {
        redirect
    };
    if !redirect.starts_with(&partner.redirect_prefix) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_url does not match the partner's registered redirect URL",
        );
    }
    let email = {
        let e = param(&f, "email");
        if e.is_empty() {
            format!("{}@client.example", random_id(6).to_lowercase())
        } else {
            e
        }
    };
    // Direct Payment: the price and payment page comes between account
    // creation and the number signup, and asks for the API key permission.
    if partner.direct && param(&f, "payment_confirmed") != "on" {
        return payment_page(&f);
    }
    let payload = Some(param(&f, "partner")).filter(|p| !p.is_empty());
    let allow_keys = param(&f, "key_permission") == "on";
    let (client_id, is_new) = {
        let mut inner = lock(&sim.shared.inner);
        match inner
            .clients
            .values_mut()
            .find(|c| c.partner_id == pid && c.email == email)
        {
            Some(c) => {
                c.partner_payload = payload.clone().or(c.partner_payload.take());
                c.key_permission |= allow_keys;
                (c.id.clone(), false)
            }
            None => {
                let id = random_id(10);
                inner.clients.insert(
                    id.clone(),
                    SimClient {
                        id: id.clone(),
                        partner_id: pid.clone(),
                        email: email.clone(),
                        name: Some(param(&f, "name"))
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| "Simulated Client".into()),
                        partner_payload: payload,
                        key_permission: allow_keys,
                    },
                );
                (id, true)
            }
        }
    };
    if is_new {
        sim.send_event("client_created", None, &client_id);
    }
    let mut revoked = Vec::new();
    {
        let mut inner = lock(&sim.shared.inner);
        for (k, v) in &f {
            if k == "revoke"
                && let Some(ch) = inner.channels.get_mut(v)
                && ch.client_id == client_id
                && !ch.revoked
            {
                ch.revoked = true;
                revoked.push(v.clone());
            }
        }
    }
    let mut channels = Vec::new();
    let number = param(&f, "number");
    if !number.trim().is_empty() {
        let id = sim.new_channel(&client_id, &pid, number.trim());
        sim.send_event("channel_created", Some(&id), &client_id);
        sim.spawn_advance(id.clone());
        channels.push(id);
    }
    // The real format: literal brackets, unquoted, comma-separated.
    let mut location = redirect;
    location.push(if location.contains('?') { '&' } else { '?' });
    location.push_str(&format!(
        "client={client_id}&channels=[{}]",
        channels.join(",")
    ));
    if !revoked.is_empty() {
        location.push_str(&format!("&revoked=[{}]", revoked.join(",")));
    }
    let state = param(&f, "state");
    if !state.is_empty() {
        let enc: String = reqwest::Url::parse_with_params("http://x/", &[("s", &state)])
            .ok()
            .and_then(|u| u.query().map(|q| q.trim_start_matches("s=").to_string()))
            .unwrap_or_default();
        location.push_str(&format!("&state={enc}"));
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The Direct Payment step: carries the first form over, shows the price,
/// takes payment details and the API key permission.
fn payment_page(f: &[(String, String)]) -> Response {
    let carried: String = f
        .iter()
        .filter(|(k, _)| k != "action" && k != "key_permission" && k != "payment_confirmed")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    page(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>360dialog — price and payment</title></head>
<body><h1>Price and payment</h1>
<p>WhatsApp Business API: 49 EUR per number and month, billed by 360dialog (Direct Payment).</p>
<form method="post">{carried}<input type="hidden" name="payment_confirmed" value="on">
<label>Card <input name="card" value="4242 4242 4242 4242"></label><br>
<label><input type="checkbox" name="key_permission" value="on" checked> allow the partner to generate API keys for my numbers</label><br>
<button name="action" value="accept">Pay and continue</button> <button name="action" value="cancel">Cancel</button>
</form></body></html>"#
    ))
}

pub(super) async fn client_hub(
    State(sim): State<Dialog360Sim>,
    Path(client): Path<String>,
) -> Response {
    let Some(c) = lock(&sim.shared.inner).clients.get(&client).cloned() else {
        return error_page(StatusCode::NOT_FOUND, "unknown client");
    };
    page(format!(
        "<!doctype html><title>360dialog Client Hub</title><h1>Client Hub: {}</h1><p>Partner may generate API keys: {}</p><form method=\"post\" action=\"{}/permission\"><button>Allow the partner to generate API keys</button></form>",
        html_escape(&c.name),
        c.key_permission,
        html_escape(&c.id)
    ))
}

pub(super) async fn client_hub_grant(
    State(sim): State<Dialog360Sim>,
    Path(client): Path<String>,
) -> Response {
    match lock(&sim.shared.inner).clients.get_mut(&client) {
        Some(c) => {
            c.key_permission = true;
            page(
                "<!doctype html><title>360dialog Client Hub</title><p>Permission granted.</p>"
                    .into(),
            )
        }
        None => error_page(StatusCode::NOT_FOUND, "unknown client"),
    }
}
