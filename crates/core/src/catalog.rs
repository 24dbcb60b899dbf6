//! The connector actions a workflow may call, with their arguments, so that
//! validation can reject an unknown action or argument before anything runs.
//! The runtime implements each entry; a test there checks both lists agree.

/// One callable connector action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    /// `connector.action`, as written after `call:`.
    pub name: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    pub summary: &'static str,
}

pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        name: "http.request",
        required: &["service", "path"],
        optional: &["method", "body", "query", "headers"],
        summary: "A JSON request to a configured HTTP service; result is {status, body}.",
    },
    ActionSpec {
        name: "incode.start",
        required: &[],
        optional: &[
            "configuration_id",
            "language",
            "country_code",
            "external_customer_id",
            "redirection_url",
            "custom_fields",
        ],
        summary: "Starts an Incode Omni session; result is {interview_id, url, token (sealed)}.",
    },
    ActionSpec {
        name: "incode.status",
        required: &["interview_id", "token"],
        optional: &[],
        summary: "Reads the onboarding status; result is {onboarding_status, event}.",
    },
    ActionSpec {
        name: "incode.score",
        required: &["interview_id", "token"],
        optional: &[],
        summary: "Reads the score; result is {overall_status, overall_value, score}.",
    },
    ActionSpec {
        name: "ockto.sources",
        required: &[],
        optional: &["ockto_type", "required"],
        summary: "Checks which Ockto data sources are available; result is {available, sources, unavailable, unavailable_text}.",
    },
    ActionSpec {
        name: "ockto.start",
        required: &[],
        optional: &[
            "session_id",
            "test_case_id",
            "consent_code",
            "ockto_type",
            "odm_version",
            "request_documents",
            "disable_partner",
            "psd2_info_included",
            "psd2_amount_of_months",
        ],
        summary: "Starts an Ockto session; result is {session_id, qr_code}.",
    },
    ActionSpec {
        name: "ockto.status",
        required: &["session_id"],
        optional: &[],
        summary: "Reads an Ockto session's status; result is {session_id, status, event, scanned, terminal, qr_code}.",
    },
    ActionSpec {
        name: "ockto.result",
        required: &["session_id"],
        optional: &[],
        summary: "Reads the shared data (ODM); result is {odm, summary}.",
    },
    ActionSpec {
        name: "dialog360.start",
        required: &["session_id"],
        optional: &[
            "hub",
            "origin",
            "return_url",
            "number",
            "email",
            "name",
            "next",
            "client_id",
        ],
        summary: "Builds the 360dialog permissions URL with a one-time state; result is {state, url, hub, payment, origin, return_url}.",
    },
    ActionSpec {
        name: "dialog360.confirm",
        required: &["hub", "state", "redirect"],
        optional: &[],
        summary: "Confirms a redirect's client and channels with the Partner API; result is {confirmed, reason, client, channels, revoked}.",
    },
    ActionSpec {
        name: "dialog360.channels",
        required: &["hub", "client", "channels"],
        optional: &[],
        summary: "Reads the channels' statuses; result is {statuses, all_running, any_error, all_gone, pending}.",
    },
    ActionSpec {
        name: "dialog360.create_keys",
        required: &["hub", "channels"],
        optional: &[],
        summary: "Creates one API key per running channel, sealed; result is {created, permission_missing, reason, secrets}.",
    },
    ActionSpec {
        name: "dialog360.key_permission",
        required: &["hub", "channels"],
        optional: &[],
        summary: "Whether the client allows API key creation (Direct Payment); result is {allowed}.",
    },
    ActionSpec {
        name: "oih.trigger",
        required: &["flow"],
        optional: &["input", "session_id"],
        summary: "Triggers an Open Integration Hub flow (POST /hook/{flow}, HMAC-signed) with a per-run callback URL; result is {request_id, flow, sent_ms}. The flow answers with oih.progress, oih.result and oih.error events.",
    },
];

pub fn action(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

impl ActionSpec {
    pub fn accepts(&self, arg: &str) -> bool {
        self.required.contains(&arg) || self.optional.contains(&arg)
    }
}
