//! Generated data, derived from a SHA-256 of its key so that runs are
//! reproducible: customers and contacts.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FIRST_NAMES: [&str; 8] = [
    "Maria", "Jan", "Sofia", "Liam", "Noor", "Lucas", "Emma", "Daan",
];
const LAST_NAMES: [&str; 8] = [
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos",
];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
fn digest(domain: &str, key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.finalize().into()
}

fn pick<'a>(list: &[&'a str], byte: u8) -> &'a str {
    list[usize::from(byte) % list.len()]
}

fn number(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// A JSON scalar as text (strings unquoted); `None` for null, empty, objects and arrays.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The customer `lookup-customer` finds for `input.customer_id` or
/// `input.email`; `None` when the input names neither.
pub fn customer(input: &Value) -> Option<Value> {
    let id = scalar_text(&input["customer_id"]);
    let email = scalar_text(&input["email"]);
    let key = id.clone().or_else(|| email.clone())?;
    let h = digest("customer", &key);
    let (first, last) = (pick(&FIRST_NAMES, h[0]), pick(&LAST_NAMES, h[1]));
    let name = format!("{first} {last}");
    let email = email.unwrap_or_else(|| {
        format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            last.to_lowercase().replace(' ', "")
        )
    });
    let id = id.unwrap_or_else(|| format!("C{:06}", number(&h[2..6]) % 1_000_000));
    let since = time::Date::from_calendar_date(2015, time::Month::January, 1)
        .ok()
        .and_then(|d| d.checked_add(time::Duration::days((number(&h[6..8]) % 3650) as i64)))
        .map(|d| d.to_string())
        .unwrap_or_default();
    Some(json!({
        "id": id,
        "name": name,
        "email": email,
        "tier": pick(&TIERS, h[8]),
        "since": since,
        "open_orders": h[9] % 6,
    }))
}

/// The id `create-contact` gives the contact created by one request.
pub fn contact_id(request_id: &str) -> String {
    format!("ct_{}", &hex::encode(digest("contact", request_id))[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_deterministic() {
        let a = customer(&json!({"customer_id": "42"}));
        assert_eq!(a, customer(&json!({"customer_id": 42})));
        assert_ne!(a, customer(&json!({"customer_id": "43"})));
        assert_eq!(customer(&json!({"name": "x"})), None);
        let by_mail = customer(&json!({"email": "x@y.z"})).unwrap_or_default();
        assert_eq!(by_mail["email"], "x@y.z");
        assert!(by_mail["since"].as_str().is_some_and(|s| s.len() == 10));
    }

    #[test]
    fn contact_ids() {
        assert_eq!(contact_id("r1"), contact_id("r1"));
        assert_ne!(contact_id("r1"), contact_id("r2"));
    }
}
