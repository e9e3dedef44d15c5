//! One-time codes for two-factor sign-in: RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps, as every
//! authenticator app and Flask-Security use) on `totp-rs`, the `otpauth://` URI and its QR code
//! (`qrcode`, as SVG), and matching a code to the time step it belongs to, so a step can be used
//! only once. [`stored`] reads and writes secrets at rest as Flask-Security does (passlib's
//! encrypted JSON under `SECURITY_TOTP_SECRETS`).

pub mod stored;

use rand::RngCore as _;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;

/// A new random secret (160 bits), base32 without padding, as authenticator apps take it.
pub fn new_secret() -> String {
    let mut bytes = [0_u8; 20];
    OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    Some(TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP, bytes))
}

/// The code of `secret` at `unix_time` (`None` for a malformed secret).
///
/// ```
/// // RFC 6238's SHA-1 test secret ("12345678901234567890"), base32.
/// let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// assert_eq!(rampart::totp::code_at(secret, 59).as_deref(), Some("287082"));
/// ```
pub fn code_at(secret: &str, unix_time: u64) -> Option<String> {
    Some(totp(secret)?.generate(unix_time))
}

/// The time step (`unix_time / 30`) whose code `code` is, searched from `back` steps before
/// `unix_time` to `forward` steps after it; every candidate is compared in constant time.
///
/// ```
/// let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// let now = 1_000_000_000;
/// let code = rampart::totp::code_at(secret, now - 60).unwrap();
/// assert_eq!(rampart::totp::matching_step(secret, &code, now, 4, 4), Some(now / 30 - 2));
/// assert_eq!(rampart::totp::matching_step(secret, &code, now, 1, 4), None);
/// ```
pub fn matching_step(
    secret: &str,
    code: &str,
    unix_time: u64,
    back: u64,
    forward: u64,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret)?;
    let now = unix_time / STEP;
    let mut found = None;
    for step in now.saturating_sub(back)..=now.saturating_add(forward) {
        let candidate = totp.generate(step * STEP);
        if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The secret in groups of four joined by dashes, for typing it by hand.
///
/// ```
/// assert_eq!(rampart::totp::grouped("MZGISEMCCDBHQT3J"), "MZGI-SEMC-CDBH-QT3J");
/// ```
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The `otpauth://totp/…` URI an authenticator app reads (from the QR code).
///
/// ```
/// assert_eq!(
///     rampart::totp::authenticator_uri("FST Sample", "ann@example.com", "MZGISEMC"),
///     "otpauth://totp/FST%20Sample:ann%40example.com?secret=MZGISEMC&issuer=FST%20Sample"
/// );
/// ```
pub fn authenticator_uri(issuer: &str, account: &str, secret: &str) -> String {
    let encode = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}",
        encode(issuer),
        encode(account),
        encode(issuer)
    )
}

/// The QR code of `data` as an `<svg>` element to put in a page (the XML prolog the renderer
/// writes is left out); `None` if `data` is too long for a QR code.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Some(svg[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        // RFC 6238 appendix B gives 8 digits; a 6-digit code is their last six.
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(secret, time).as_deref(), Some(&eight[2..]));
        }
    }

    #[test]
    fn secrets_are_fresh_base32_of_160_bits() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(code_at(&a, 0).is_some());
    }

    #[test]
    fn malformed_codes_and_secrets_match_nothing() {
        let secret = new_secret();
        let code = code_at(&secret, 3000).unwrap();
        assert_eq!(matching_step(&secret, &code, 3000, 0, 0), Some(100));
        assert_eq!(
            matching_step(&secret, &format!(" {code} "), 3000, 0, 0),
            Some(100)
        );
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(matching_step(&secret, bad, 3000, 4, 4), None);
        }
        assert_eq!(matching_step("not base32!", &code, 3000, 4, 4), None);
    }

    #[test]
    fn a_qr_code_renders_as_svg() {
        let svg = qr_svg("otpauth://totp/A:b?secret=MZGISEMC&issuer=A").unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
    }
}
