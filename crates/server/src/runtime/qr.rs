//! The browser's form of a `kind: qr` presentation (providers.md 3.4): the
//! provider's payload becomes an SVG rendered here, plus a deep link when it
//! is a URL. The payload is a capability for someone's data-sharing
//! session: only the client-secret holder sees it, never the timeline.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde_json::{Map, Value};

/// The SVG document of `payload`, or `None` if it cannot be encoded (too long).
pub fn svg(payload: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

/// The payload a `qr` presentation carries, if it is one.
pub fn payload(present: &Value) -> Option<&str> {
    (present.get("kind")?.as_str()? == "qr")
        .then(|| present.get("payload")?.as_str())
        .flatten()
        .filter(|p| !p.is_empty())
}

/// `{kind: qr, payload, ...}` as the browser gets it: `payload` is replaced
/// by `svg` (inline, without the XML declaration) and `svg_url`, or by
/// `image` when the provider sent a `data:image/` URL; `link` is the payload
/// when it is an http(s) URL (unless the workflow set one). Other keys pass.
pub fn for_browser(present: &Value, session_id: &str) -> Value {
    let Some(p) = payload(present) else {
        return present.clone();
    };
    let mut out: Map<String, Value> = present
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "payload")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if p.starts_with("data:image/") {
        out.insert("image".into(), Value::String(p.to_string()));
    } else {
        let inline = svg(p).map(|s| match s.find("<svg") {
            Some(i) => s[i..].to_string(),
            None => s,
        });
        out.insert("svg".into(), inline.map_or(Value::Null, Value::String));
        out.insert(
            "svg_url".into(),
            Value::String(format!("/v1/client/sessions/{session_id}/qr.svg")),
        );
    }
    let lower = p.to_ascii_lowercase();
    if !out.contains_key("link") && (lower.starts_with("https://") || lower.starts_with("http://"))
    {
        out.insert("link".into(), Value::String(p.to_string()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    #[test]
    fn url_payload_becomes_svg_and_link() {
        let v = super::for_browser(
            &json!({"kind": "qr", "payload": "https://x.example/app/1", "scanned": false}),
            "ses_1",
        );
        assert!(v["svg"].as_str().unwrap().starts_with("<svg"));
        assert_eq!(v["svg_url"], "/v1/client/sessions/ses_1/qr.svg");
        assert_eq!(v["link"], "https://x.example/app/1");
        assert_eq!(v["scanned"], false);
        assert!(v.get("payload").is_none());
    }

    #[test]
    fn data_urls_pass_and_other_kinds_are_untouched() {
        let v = super::for_browser(
            &json!({"kind": "qr", "payload": "data:image/png;base64,AA"}),
            "s",
        );
        assert_eq!(
            v,
            json!({"kind": "qr", "image": "data:image/png;base64,AA"})
        );
        let iframe = json!({"kind": "iframe", "url": "https://x"});
        assert_eq!(super::for_browser(&iframe, "s"), iframe);
        let opaque = super::for_browser(&json!({"kind": "qr", "payload": "OCKTO:1234"}), "s");
        assert!(opaque.get("link").is_none());
        assert!(opaque["svg"].is_string());
    }
}
