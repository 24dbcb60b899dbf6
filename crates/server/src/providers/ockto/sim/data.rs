//! The simulator's Ockto Data Model results (providers.md 3.4, shape
//! assumed): realistic Dutch household finances, derived from a hash of the
//! session id so runs are reproducible, or fixed profiles for scripted tests.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const ODM_VERSION: &str = "v4_3";

/// Profiles with known outcomes under `workflows/ockto-mortgage.yaml`'s rules.
pub const PROFILES: [&str; 3] = ["approve", "decline", "review"];

const EMPLOYERS: [&str; 8] = [
    "Rivierland Zorg BV",
    "Gemeente Utrecht",
    "Hollandse Bouw Groep NV",
    "Noordzee Logistiek BV",
    "Stichting Onderwijs Oost",
    "Polder Software BV",
    "Albert Heijn BV",
    "Waterschap Rijn en IJssel",
];
const LAST_NAMES: [&str; 8] = [
    "Visser", "de Jong", "Jansen", "Bakker", "Smit", "Meijer", "de Boer", "Mulder",
];
const INITIALS: [&str; 6] = ["J.", "M.", "A.C.", "P.", "S.E.", "L."];
const CREDITORS: [&str; 5] = [
    "Santander Consumer Finance",
    "ING Bank",
    "DUO",
    "Rabobank",
    "ABN AMRO",
];
const DEBT_TYPES: [&str; 4] = ["personal_loan", "credit_card", "student_loan", "car_lease"];

struct Household {
    gross: u64,
    net: u64,
    rent: u64,
    insurance: u64,
    other: u64,
    /// (type, creditor, outstanding, monthly payment)
    debts: Vec<(&'static str, &'static str, u64, u64)>,
    contract: &'static str,
}

fn profile(name: &str) -> Option<Household> {
    Some(match name {
        // Comfortable: far below both limits.
        "approve" => Household {
            gross: 96_000,
            net: 5_400,
            rent: 1_200,
            insurance: 180,
            other: 120,
            debts: vec![],
            contract: "permanent",
        },
        // Spends more than comes in: negative disposable income.
        "decline" => Household {
            gross: 30_000,
            net: 1_950,
            rent: 1_450,
            insurance: 190,
            other: 160,
            debts: vec![("personal_loan", "Santander Consumer Finance", 9_000, 350)],
            contract: "permanent",
        },
        // Maximum loan 270 000 (4.5 x income): 250 000 is within 10% of it.
        "review" => Household {
            gross: 60_000,
            net: 3_600,
            rent: 1_150,
            insurance: 160,
            other: 90,
            debts: vec![("personal_loan", "ING Bank", 8_200, 240)],
            contract: "permanent",
        },
        _ => return None,
    })
}

fn varied(h: &[u8]) -> Household {
    let n = |i: usize| u64::from(u16::from_be_bytes([h[i], h[i + 1]]));
    let gross = 24_000 + (n(0) % 193) * 500; // 24 000 .. 120 000
    let rate = 0.72 - gross as f64 / 600_000.0;
    let net = ((gross as f64 * rate / 12.0) / 10.0).round() as u64 * 10;
    let debts = (0..usize::from(h[6] % 4))
        .map(|i| {
            let kind = DEBT_TYPES[usize::from(h[7 + i]) % DEBT_TYPES.len()];
            let outstanding = 500 + (n(10 + 2 * i) % 246) * 100;
            let months = if kind == "student_loan" { 180 } else { 36 };
            (
                kind,
                CREDITORS[usize::from(h[16 + i]) % CREDITORS.len()],
                outstanding,
                outstanding.div_ceil(months),
            )
        })
        .collect();
    Household {
        gross,
        net,
        rent: 650 + (n(2) % 101) * 10,
        insurance: 110 + n(4) % 151,
        other: 40 + u64::from(h[20]) % 201,
        debts,
        contract: if h[21].is_multiple_of(4) {
            "temporary"
        } else {
            "permanent"
        },
    }
}

/// The ODM of `session_id`: a fixed `profile`, or varied by the hash.
/// `documents` are `(type, id, url, expiresAt)`.
pub fn odm(
    session_id: &str,
    profile_name: Option<&str>,
    documents: &[(String, String, String, String)],
) -> Value {
    let h = Sha256::digest(session_id.as_bytes());
    let hh = profile_name.and_then(profile).unwrap_or_else(|| varied(&h));
    let employer = EMPLOYERS[usize::from(h[22]) % EMPLOYERS.len()];
    let start_year = 2000 + u32::from(h[23]) % 24;
    let birth_year = 1960 + u32::from(h[24]) % 40;
    let debts: Vec<Value> = hh
        .debts
        .iter()
        .map(|(kind, creditor, outstanding, monthly)| {
            json!({"type": kind, "creditor": creditor, "outstanding": outstanding, "monthlyPayment": monthly})
        })
        .collect();
    json!({
        "odmVersion": ODM_VERSION,
        "sessionId": session_id,
        "persons": [{
            "role": "applicant",
            "name": {
                "initials": INITIALS[usize::from(h[25]) % INITIALS.len()],
                "lastName": LAST_NAMES[usize::from(h[26]) % LAST_NAMES.len()],
            },
            "birthDate": format!("{birth_year}-{:02}-{:02}", 1 + h[27] % 12, 1 + h[28] % 28),
            "employment": [{
                "employer": employer,
                "contract": hh.contract,
                "startDate": format!("{start_year}-{:02}-01", 1 + h[29] % 12),
                "grossYearlyIncome": hh.gross,
            }],
            "income": {"grossYearly": hh.gross, "netMonthly": hh.net},
            "fixedCosts": {"rentMonthly": hh.rent, "insuranceMonthly": hh.insurance, "otherMonthly": hh.other},
            "debts": debts,
        }],
        "documents": documents.iter().map(|(kind, id, url, expires)| {
            json!({"type": kind, "id": id, "url": url, "expiresAt": expires})
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reproducible_and_varied() {
        let a = super::odm("ock_a", None, &[]);
        assert_eq!(a, super::odm("ock_a", None, &[]));
        let incomes: std::collections::HashSet<String> = (0..20)
            .map(|i| {
                super::odm(&format!("ock_{i}"), None, &[])["persons"][0]["income"]["grossYearly"]
                    .to_string()
            })
            .collect();
        assert!(incomes.len() > 10, "{incomes:?}");
        for i in 0..200 {
            let g = super::odm(&format!("s{i}"), None, &[])["persons"][0]["income"]["grossYearly"]
                .as_u64()
                .unwrap_or_default();
            assert!((24_000..=120_000).contains(&g), "{g}");
        }
    }
}
