//! Redaction of secrets before anything reaches the timeline or logs.

use serde_json::Value;

/// Words that mark a key as secret for every provider; each provider adds
/// its own ([`crate::providers::Registration::secret_words`]).
const SECRET_WORDS: [&str; 8] = [
    "secret",
    "token",
    "password",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "signature",
];

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_WORDS
        .iter()
        .chain(
            crate::providers::REGISTRY
                .iter()
                .flat_map(|p| p.secret_words),
        )
        .any(|w| k.contains(w))
}

/// A copy of `v` with the values of secret-looking keys replaced.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    if is_secret_key(k) {
                        (k.clone(), Value::String("[redacted]".into()))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn hides_secret_keys_at_any_depth() {
        let v = json!({"a": 1, "headers": {"Authorization": "Bearer x"}, "list": [{"session_token": "t"}]});
        assert_eq!(
            super::redact(&v),
            json!({"a": 1, "headers": {"Authorization": "[redacted]"}, "list": [{"session_token": "[redacted]"}]})
        );
    }
}
