//! The simulator's own flow components ([`Builtin`]): customer lookup and
//! contact creation.

use serde_json::json;

use super::data::{self, scalar_text};
use super::flow::Builtin;
use super::run::{Kind, Run};

pub(super) async fn play(builtin: Builtin, run: &mut Run) {
    match builtin {
        Builtin::LookupCustomer => lookup_customer(run).await,
        Builtin::CreateContact => create_contact(run).await,
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
