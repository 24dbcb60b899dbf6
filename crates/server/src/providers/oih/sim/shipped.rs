//! The flows the simulator ships (providers.md 5.4), all requiring an HMAC.

use serde_json::json;

use super::flow::{Builtin, ScriptStep, SimFlow};

/// Pause between the progress messages of `slow-progress`.
const SLOW_STEP_MS: u64 = 300;

/// `lookup-customer`, `create-contact`, `slow-progress`, `always-fail`,
/// `never-callback`, `oauth-login` and `graph-me`, active, each requiring a
/// base64 HMAC-SHA256 in `x-hmac` keyed with `hmac_key`.
pub fn shipped_flows(hmac_key: &str) -> Vec<SimFlow> {
    let flow = |id: &str, script: Vec<ScriptStep>| SimFlow {
        id: id.to_owned(),
        require_webhook_auth: true,
        hmac_key: hmac_key.to_owned(),
        script,
        ..SimFlow::default()
    };
    let step = |n: u64, what: &str| {
        ScriptStep::progress(
            SLOW_STEP_MS,
            &format!("step {n} of 3: {what}"),
            json!({"step": n, "of": 3}),
        )
    };
    vec![
        flow(
            "lookup-customer",
            vec![ScriptStep::builtin(300, Builtin::LookupCustomer)],
        ),
        flow(
            "create-contact",
            vec![ScriptStep::builtin(200, Builtin::CreateContact)],
        ),
        flow(
            "slow-progress",
            vec![
                step(1, "collecting the records"),
                step(2, "merging duplicates"),
                step(3, "writing the report"),
                ScriptStep::result(
                    SLOW_STEP_MS,
                    "Report ready",
                    json!({"steps": 3, "report": "report-{{requestId}}", "note": "{{input.note}}"}),
                ),
            ],
        ),
        flow(
            "always-fail",
            vec![ScriptStep::error(
                200,
                "The flow failed: the CRM answered 500 Internal Server Error",
                json!({"code": "UPSTREAM_ERROR", "component": "crm-adapter", "status": 500}),
            )],
        ),
        flow("never-callback", Vec::new()),
        flow(
            "oauth-login",
            vec![ScriptStep::builtin(0, Builtin::OauthLogin)],
        ),
        flow("graph-me", vec![ScriptStep::builtin(0, Builtin::GraphMe)]),
    ]
}
