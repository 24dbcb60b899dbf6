//! The figures business rules read from an Ockto Data Model result
//! (providers.md 3.4): CEL has no fold, so sums over lists are made here.
//! All amounts are JSON doubles, so rules can mix them freely.

use serde_json::{Value, json};

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `{gross_yearly_income, net_monthly_income, fixed_costs_monthly (rent
/// included), rent_monthly, debt_payments_monthly, debts_outstanding, debt_count, employer, contract,
/// employment_start, persons, documents}` of the applicant. An ODM without
/// an applicant or without income is unusable (the session fails).
pub fn summary(odm: &Value) -> Result<Value, String> {
    let persons = list(odm, "persons");
    let applicant = persons
        .iter()
        .find(|p| p.get("role").and_then(Value::as_str) == Some("applicant"))
        .or_else(|| persons.first())
        .ok_or("the Ockto result names no person")?;
    let employment = list(applicant, "employment");
    let income = applicant.get("income");
    let gross = number(income.and_then(|i| i.get("grossYearly"))).or_else(|| {
        let sum: f64 = employment
            .iter()
            .filter_map(|e| number(e.get("grossYearlyIncome")))
            .sum();
        (sum > 0.0).then_some(sum)
    });
    let net = number(income.and_then(|i| i.get("netMonthly")));
    let (Some(gross), Some(net)) = (gross, net) else {
        return Err(
            "the Ockto result has no gross yearly and net monthly income for the applicant".into(),
        );
    };
    let fixed: f64 = applicant
        .get("fixedCosts")
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(Value::as_f64).sum())
        .unwrap_or(0.0);
    let rent = number(
        applicant
            .get("fixedCosts")
            .and_then(|f| f.get("rentMonthly")),
    )
    .unwrap_or(0.0);
    let debts = list(applicant, "debts");
    let payments: f64 = debts
        .iter()
        .filter_map(|d| number(d.get("monthlyPayment")))
        .sum();
    let outstanding: f64 = debts
        .iter()
        .filter_map(|d| number(d.get("outstanding")))
        .sum();
    let job = employment.first();
    let text = |key: &str| job.and_then(|j| j.get(key)).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "gross_yearly_income": gross,
        "net_monthly_income": net,
        "fixed_costs_monthly": fixed,
        "rent_monthly": rent,
        "debt_payments_monthly": payments,
        "debts_outstanding": outstanding,
        "debt_count": debts.len(),
        "employer": text("employer"),
        "contract": text("contract"),
        "employment_start": text("startDate"),
        "persons": persons.len(),
        "documents": list(odm, "documents").len(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    #[test]
    fn sums_costs_and_debts_as_doubles() {
        let odm = json!({"persons": [{"role": "applicant",
            "employment": [{"employer": "Rivierland Zorg BV", "contract": "permanent", "startDate": "2016-09-01", "grossYearlyIncome": 54000}],
            "income": {"grossYearly": 54000, "netMonthly": 3350},
            "fixedCosts": {"rentMonthly": 1150, "insuranceMonthly": 160, "otherMonthly": 90},
            "debts": [{"outstanding": 8200, "monthlyPayment": 240}, {"outstanding": 1000, "monthlyPayment": 60}]}]});
        let s = super::summary(&odm).unwrap();
        assert_eq!(s["fixed_costs_monthly"], json!(1400.0));
        assert_eq!(s["debt_payments_monthly"], json!(300.0));
        assert_eq!(s["debts_outstanding"], json!(9200.0));
        assert_eq!(s["gross_yearly_income"], json!(54000.0));
        assert_eq!(s["employer"], "Rivierland Zorg BV");
        assert!(s["gross_yearly_income"].is_f64());
    }

    #[test]
    fn no_person_or_income_is_unusable() {
        assert!(super::summary(&json!({"persons": []})).is_err());
        assert!(super::summary(&json!({"persons": [{"role": "applicant"}]})).is_err());
    }
}
