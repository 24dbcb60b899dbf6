//! QR codes rendered on the server as SVG, so that the browser gets a picture
//! (`present.svg` of a `qr` step) and no QR library. Used by connectors whose
//! provider hands out a QR payload (Ockto, providers.md 3.4).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the QR payload is empty")]
    Empty,
    #[error("the QR payload does not fit in a QR code: {0}")]
    TooLong(qrcode::types::QrError),
}

/// The SVG (no XML declaration, ready to inline) of `data` as a QR code with
/// medium error correction and a quiet zone, scaled by the viewBox.
pub fn svg(data: &str) -> Result<String, Error> {
    if data.is_empty() {
        return Err(Error::Empty);
    }
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(Error::TooLong)?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#101828"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    let body = match image.find("<svg") {
        Some(at) => &image[at..],
        None => image.as_str(),
    };
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_inline_svg() {
        let s = svg("https://ockto.example/app/s_123").expect("fits");
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.ends_with("</svg>"), "{s}");
        assert!(s.contains("viewBox"), "{s}");
        assert!(!s.contains("<script"), "{s}");
    }

    #[test]
    fn refuses_empty_and_oversized_payloads() {
        assert!(matches!(svg(""), Err(Error::Empty)));
        assert!(matches!(svg(&"x".repeat(5000)), Err(Error::TooLong(_))));
    }
}
