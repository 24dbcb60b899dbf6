//! Generated score and OCR data, derived from a hash of the interview id.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::UNKNOWN;
use super::interview::Verdict;

// ---------------------------------------------------------------------------
// Generated data

/// The score object of providers.md 2.3; values derive from sha256(interviewId).
pub(super) fn score_json(
    interview_id: &str,
    verdict: Option<&Verdict>,
    manual: Option<bool>,
) -> Value {
    let Some(verdict) = verdict else {
        let unknown = json!({ "status": UNKNOWN });
        return json!({
            "idValidation": {
                "photoSecurityAndQuality": [],
                "idSpecific": [],
                "customFields": [],
                "overall": unknown,
            },
            "liveness": { "overall": unknown },
            "faceRecognition": { "overall": unknown },
            "idOcrConfidence": { "overallConfidence": unknown },
            "overall": { "value": "0.0", "status": UNKNOWN },
        });
    };
    let h = Sha256::digest(interview_id.as_bytes());
    let tenths = |base: f64, span: u8, b: u8| format!("{:.1}", base + f64::from(b % span) / 10.0);
    let ok = |key: &str, value: &str| json!({ "key": key, "value": value, "status": "OK" });
    let (tamper, screen, id_status, id_value, overall_status, overall_value) = match verdict {
        Verdict::Ok => (
            ok("tamperCheck", "PASSED"),
            ok("screenIdLiveness", "PASSED"),
            "OK",
            "100.0".to_owned(),
            "OK".to_owned(),
            tenths(90.0, 100, h[0]),
        ),
        Verdict::Fail => (
            json!({ "key": "tamperCheck", "value": "FAILED", "status": "FAIL" }),
            ok("screenIdLiveness", "PASSED"),
            "FAIL",
            "0.0".to_owned(),
            "FAIL".to_owned(),
            tenths(0.0, 250, h[0]),
        ),
        Verdict::Review(status) => (
            ok("tamperCheck", "PASSED"),
            json!({ "key": "screenIdLiveness", "value": "WARNING", "status": "WARN" }),
            "WARN",
            tenths(60.0, 250, h[1]),
            status.clone(),
            tenths(60.0, 250, h[0]),
        ),
    };
    let overall_status = match manual {
        Some(true) => "MANUAL_OK".to_owned(),
        Some(false) => "MANUAL_FAIL".to_owned(),
        None => overall_status,
    };
    let liveness = tenths(90.0, 100, h[2]);
    json!({
        "idValidation": {
            "photoSecurityAndQuality": [
                tamper,
                ok("postitCheck", "PASSED"),
                ok("alignment", "PASSED"),
                ok("fakeCheck", "PASSED"),
                screen,
                ok("paperIdLiveness", "PASSED"),
                ok("balancedLightFront", "PASSED"),
                ok("sharpnessFront", "PASSED"),
            ],
            "idSpecific": [
                ok("documentClassification", "100"),
                ok("visiblePhotoFeatures", "PASSED"),
                ok("issueDateValidity", "100"),
                ok("documentExpired", "100"),
                ok("birthDateValidity", "100"),
                ok("expirationDateValidity", "100"),
            ],
            "customFields": [],
            "overall": { "value": id_value, "status": id_status },
        },
        "liveness": {
            "overall": { "value": liveness, "status": "OK" },
            "photoQuality": { "value": tenths(60.0, 250, h[3]) },
            "livenessScore": { "value": liveness, "status": "OK" },
        },
        "faceRecognition": {
            "existingUser": false,
            "maskCheck": { "value": "0.0", "status": "OK" },
            "nameMatch": { "value": "100.0", "status": "OK" },
            "overall": { "value": tenths(85.0, 150, h[4]), "status": "OK" },
        },
        "idOcrConfidence": {
            "overallConfidence": { "value": tenths(90.0, 100, h[5]), "status": "OK" },
        },
        "overall": { "value": overall_value, "status": overall_status },
    })
}

/// OCR data of providers.md 2.1; values derive from sha256(interviewId).
pub(super) fn ocr_json(interview_id: &str) -> Value {
    const FIRST: [&str; 8] = [
        "Ana", "Jonas", "Maria", "Pieter", "Sofia", "Liam", "Emma", "Noah",
    ];
    const LAST: [&str; 8] = [
        "Jansen", "Garcia", "de Vries", "Smith", "Rossi", "Kowalski", "Silva", "Bakker",
    ];
    const COUNTRIES: [&str; 4] = ["NLD", "USA", "MEX", "ESP"];
    let h = Sha256::digest(interview_id.as_bytes());
    let first = FIRST[usize::from(h[0]) % FIRST.len()];
    let last = LAST[usize::from(h[1]) % LAST.len()];
    // Born between 1950 and ~2005 (ms since the epoch).
    let days = i64::from(u16::from_be_bytes([h[2], h[3]]) % 20_000) - 7_300;
    let birth_ms = days * 86_400_000;
    json!({
        "name": {
            "fullName": format!("{first} {last}"),
            "firstName": first,
            "paternalLastName": last,
            "maternalLastName": "",
        },
        "birthDate": birth_ms,
        "gender": if h[4] % 2 == 0 { "F" } else { "M" },
        "documentNumber": format!("X{}", hex::encode_upper(&h[5..9])),
        "typeOfId": if h[9] % 2 == 0 { "ID" } else { "Passport" },
        "issuingCountry": COUNTRIES[usize::from(h[10]) % COUNTRIES.len()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_deterministic() {
        let a = score_json("abc", Some(&Verdict::Ok), None);
        assert_eq!(a, score_json("abc", Some(&Verdict::Ok), None));
        assert_eq!(a["overall"]["status"], "OK");
        let f = score_json("abc", Some(&Verdict::Fail), Some(true));
        assert_eq!(f["overall"]["status"], "MANUAL_OK");
        assert_eq!(score_json("abc", None, None)["overall"]["status"], UNKNOWN);
    }
}
