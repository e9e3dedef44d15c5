//! Phone numbers (Flask-Security's `PhoneUtil`): validated and kept in E.164 (`+15551234567`),
//! a number typed without a country code read in `SECURITY_PHONE_REGION_DEFAULT`.

use std::str::FromStr as _;

/// `text` as an E.164 number if it is a valid phone number (without a country code it is read
/// in `region`, e.g. `US`); `None` otherwise (Flask-Security's `PHONE_INVALID`).
///
/// ```
/// assert_eq!(rampart::phone::canonical("+1 650-253-0000", "US").as_deref(), Some("+16502530000"));
/// assert_eq!(rampart::phone::canonical("(650) 253-0000", "US").as_deref(), Some("+16502530000"));
/// assert_eq!(rampart::phone::canonical("12", "US"), None);
/// ```
#[must_use]
pub fn canonical(text: &str, region: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let region = phonenumber::country::Id::from_str(&region.trim().to_ascii_uppercase()).ok();
    let number = phonenumber::parse(region, text).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}
