//! Generated data, derived from a SHA-256 of its key so that runs are
//! reproducible: customers, contacts, identity-provider users and their
//! Graph-style profiles.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The identity provider's demo users: e-mail, given name, surname.
pub const DEMO_USERS: [(&str, &str, &str); 3] = [
    ("ada.lovelace@example.com", "Ada", "Lovelace"),
    ("grace.hopper@example.com", "Grace", "Hopper"),
    ("alan.turing@example.com", "Alan", "Turing"),
];

const FIRST_NAMES: [&str; 8] = [
    "Maria", "Jan", "Sofia", "Liam", "Noor", "Lucas", "Emma", "Daan",
];
const LAST_NAMES: [&str; 8] = [
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos",
];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
const JOB_TITLES: [&str; 5] = [
    "Analyst",
    "Software Engineer",
    "Product Manager",
    "Operations Lead",
    "Research Scientist",
];
const OFFICES: [&str; 4] = ["London", "Amsterdam", "Berlin", "New York"];
const LANGUAGES: [&str; 3] = ["en-US", "en-GB", "nl-NL"];

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

/// Given name and surname of a user: the demo user's, else derived from the
/// e-mail's local part (`jane.doe` → Jane Doe).
pub fn user_names(email: &str) -> (String, String) {
    if let Some((_, given, surname)) = DEMO_USERS
        .iter()
        .find(|(e, _, _)| e.eq_ignore_ascii_case(email))
    {
        return ((*given).to_owned(), (*surname).to_owned());
    }
    let local = email.split('@').next().unwrap_or_default();
    let mut parts = local
        .split(['.', '_', '-', '+'])
        .filter(|p| !p.is_empty())
        .map(capitalize);
    let given = parts.next().unwrap_or_else(|| "User".to_owned());
    let surname = parts.collect::<Vec<_>>().join(" ");
    (given, surname)
}

/// `Given Surname`, or the given name alone.
pub fn display_name(email: &str) -> String {
    let (given, surname) = user_names(email);
    if surname.is_empty() {
        given
    } else {
        format!("{given} {surname}")
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// The Graph `/me` profile of a user (the fields the `graph-me` flow returns).
pub fn profile(email: &str) -> Value {
    let email = email.to_lowercase();
    let h = digest("profile", &email);
    let hx = hex::encode(&h[..16]);
    let (given, surname) = user_names(&email);
    json!({
        "id": format!("{}-{}-{}-{}-{}", &hx[..8], &hx[8..12], &hx[12..16], &hx[16..20], &hx[20..32]),
        "displayName": display_name(&email),
        "givenName": given,
        "surname": surname,
        "mail": email,
        "jobTitle": pick(&JOB_TITLES, h[16]),
        "officeLocation": pick(&OFFICES, h[17]),
        "mobilePhone": format!("+1 202 555 01{:02}", h[18] % 100),
        "preferredLanguage": pick(&LANGUAGES, h[19]),
    })
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
    fn names_and_profiles() {
        assert_eq!(display_name("ada.lovelace@example.com"), "Ada Lovelace");
        assert_eq!(display_name("jane_van-dam@x.org"), "Jane Van Dam");
        assert_eq!(display_name("root@x.org"), "Root");
        let p = profile("Ada.Lovelace@example.com");
        assert_eq!(p, profile("ada.lovelace@example.com"));
        assert_eq!(p["givenName"], "Ada");
        assert_eq!(p["mail"], "ada.lovelace@example.com");
        assert_eq!(p["id"].as_str().map(str::len), Some(36));
        assert_eq!(contact_id("r1"), contact_id("r1"));
        assert_ne!(contact_id("r1"), contact_id("r2"));
    }
}
