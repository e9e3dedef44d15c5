//! Canonical spellings of email addresses and usernames, so that one account cannot be opened
//! twice under look-alike spellings (Flask-Security's `MailUtil.normalize` and
//! `UsernameUtil.normalize`).
//!
//! - **Emails**: NFKC over the whole address (fullwidth letters, ligatures such as `ﬁ`, `＠`), then
//!   the domain to its IDNA ASCII form (UTS #46: `exämple.com` and `xn--exmple-cua.com` are one
//!   domain, and domains are lower-cased). A local part with non-ASCII letters is lower-cased too,
//!   since the databases' `lower()` does not reliably fold them; ASCII local parts keep their case
//!   and are compared case-insensitively, as before.
//! - **Usernames**: `SECURITY_USERNAME_NORMALIZE_FORM` (NFKD by default), and non-ASCII letters
//!   case-folded, so that uniqueness is case-insensitive for every script. Usernames that mix
//!   scripts (`аlice` with a Cyrillic `а`), that are a whole-script look-alike of an ASCII name
//!   (`ѕсоре`), or that hide a mark in a letter (`ADMİN`, whose lower case `admi̇n` reads as
//!   `admin`) are refused, by the rules of UTS #39 (through the `unicode-security` crate).
//!
//! Lookups and writes in the [`crate::datastore::Datastore`] apply these functions themselves, so
//! every way in (forms, JSON, HTTP Basic, the CLI) reaches the same account.

use std::fmt;
use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::{GeneralSecurityProfile, MixedScript};

/// A Unicode normalisation form (`SECURITY_USERNAME_NORMALIZE_FORM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalizeForm {
    /// Canonical composition.
    Nfc,
    /// Canonical decomposition.
    Nfd,
    /// Compatibility composition.
    Nfkc,
    /// Compatibility decomposition (Flask-Security's default).
    Nfkd,
}

impl NormalizeForm {
    /// Applies this form to `text`.
    pub fn apply(self, text: &str) -> String {
        match self {
            Self::Nfc => text.nfc().collect(),
            Self::Nfd => text.nfd().collect(),
            Self::Nfkc => text.nfkc().collect(),
            Self::Nfkd => text.nfkd().collect(),
        }
    }

    /// The form's name: `NFC`, `NFD`, `NFKC` or `NFKD`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nfc => "NFC",
            Self::Nfd => "NFD",
            Self::Nfkc => "NFKC",
            Self::Nfkd => "NFKD",
        }
    }
}

impl fmt::Display for NormalizeForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of a normalisation form was not one of `NFC`, `NFD`, `NFKC`, `NFKD`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected NFC, NFD, NFKC or NFKD, got {0:?}")]
pub struct UnknownForm(pub String);

impl FromStr for NormalizeForm {
    type Err = UnknownForm;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_uppercase().as_str() {
            "NFC" => Ok(Self::Nfc),
            "NFD" => Ok(Self::Nfd),
            "NFKC" => Ok(Self::Nfkc),
            "NFKD" => Ok(Self::Nfkd),
            _ => Err(UnknownForm(text.to_owned())),
        }
    }
}

/// Why an email address has no canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Nothing was given.
    #[error("no email address")]
    Empty,
    /// The address is not `local@domain` with a valid local part and domain name.
    #[error("not a valid email address")]
    Invalid,
}

/// The canonical spelling of an email address: trimmed, NFKC, the domain in its IDNA ASCII form
/// (lower case), a non-ASCII local part lower-cased. Idempotent.
///
/// # Errors
///
/// [`EmailError::Empty`] for a blank address; [`EmailError::Invalid`] when the address has no
/// `@`, an empty or malformed local part, a domain that is not a valid (internationalised) host
/// name (domain literals such as `[1.2.3.4]` included), or whitespace or control characters.
pub fn normalize_email(email: &str) -> Result<String, EmailError> {
    let email = email.trim();
    if email.is_empty() {
        return Err(EmailError::Empty);
    }
    let email: String = email.nfkc().collect();
    let (local, domain) = email.rsplit_once('@').ok_or(EmailError::Invalid)?;
    if local.is_empty() || domain.is_empty() {
        return Err(EmailError::Invalid);
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_format_char(c))
    {
        return Err(EmailError::Invalid);
    }
    // UTS #46 with STD3 rules and DNS lengths: maps (case, width), then punycode.
    let domain = idna::domain_to_ascii_strict(domain).map_err(|_| EmailError::Invalid)?;
    if domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') {
        return Err(EmailError::Invalid);
    }
    let local = if local.is_ascii() {
        local.to_owned()
    } else {
        fold_non_ascii(local).to_ascii_lowercase()
    };
    let canonical = format!("{local}@{domain}");
    if email_address::EmailAddress::is_valid(&canonical) {
        Ok(canonical)
    } else {
        Err(EmailError::Invalid)
    }
}

/// The spelling an email is looked up by: its canonical form, or (for text that is not an email
/// address, which then matches no account created through Rampart) the trimmed text.
pub(crate) fn email_lookup_key(email: &str) -> String {
    normalize_email(email).unwrap_or_else(|_| email.trim().to_owned())
}

/// The canonical spelling of a username: trimmed, `form` applied (none when `None`), and
/// non-ASCII letters case-folded. ASCII letters keep their case (the databases compare them
/// case-insensitively). Idempotent for a given form.
pub fn normalize_username(username: &str, form: Option<NormalizeForm>) -> String {
    let username = username.trim();
    let username = match form {
        Some(form) => form.apply(username),
        None => username.to_owned(),
    };
    let folded = fold_non_ascii(&username);
    // Folding can leave text that is no longer in the form (e.g. `ẞ` → `ss` is fine, but a
    // decomposed capital may fold to a precomposed small letter): apply the form again.
    match form {
        Some(form) => form.apply(&folded),
        None => folded,
    }
}

/// Why a username is refused as a look-alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameRefusal {
    /// Letters of more than one script (`аlice` with a Cyrillic `а`).
    #[error("the username mixes scripts")]
    MixedScript,
    /// A character UTS #39 does not allow in identifiers.
    #[error("the username has a character that is not allowed in identifiers")]
    DisallowedCharacter,
    /// Not ASCII, but drawn only from characters that look like ASCII letters and digits
    /// (`ѕсоре` in Cyrillic).
    #[error("the username looks like an ASCII name")]
    AsciiLookalike,
    /// A mark hidden by its letter (`i` + combining dot above, as in the lower case of `İ`) or
    /// the same mark twice in a row.
    #[error("the username has a hidden or doubled mark")]
    HiddenMark,
}

/// Checks a username for look-alike spellings (UTS #39): mixed scripts, characters outside the
/// identifier profile, whole-script look-alikes of an ASCII name and hidden marks. The checks
/// run on the case-folded compatibility form, whatever `SECURITY_USERNAME_NORMALIZE_FORM` says,
/// because they are about what the name looks like.
///
/// # Errors
///
/// The [`UsernameRefusal`] that applies first.
pub(crate) fn check_username_lookalike(username: &str) -> Result<(), UsernameRefusal> {
    let folded = normalize_username(username, Some(NormalizeForm::Nfkd));
    let composed: String = folded.nfc().collect();
    if composed.is_ascii() {
        return Ok(());
    }
    if !composed
        .chars()
        .all(GeneralSecurityProfile::identifier_allowed)
    {
        return Err(UsernameRefusal::DisallowedCharacter);
    }
    if !composed.as_str().is_single_script() {
        return Err(UsernameRefusal::MixedScript);
    }
    // UTS #39 §5.4: a base letter and a mark that vanishes on it, or a doubled mark.
    let mut previous: Option<char> = None;
    for c in folded.chars() {
        if is_combining_mark(c)
            && let Some(before) = previous
            && (before == c || (c == '\u{307}' && matches!(before, 'i' | 'j' | 'I' | 'J')))
        {
            return Err(UsernameRefusal::HiddenMark);
        }
        previous = Some(c);
    }
    let skeleton: String = unicode_security::skeleton(&composed).collect();
    if skeleton.is_ascii() {
        return Err(UsernameRefusal::AsciiLookalike);
    }
    Ok(())
}

/// Unicode default case folding of the non-ASCII characters (approximated as upper then lower
/// case, which also maps `ß` to `ss` and final `ς` to `σ`); ASCII is left as it is.
fn fold_non_ascii(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            folded.push(c);
        } else {
            folded.extend(c.to_uppercase().flat_map(char::to_lowercase));
        }
    }
    folded
}

/// Invisible formatting characters (zero-width joiners, bidi controls…), refused in addresses.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NFKD: Option<NormalizeForm> = Some(NormalizeForm::Nfkd);

    #[test]
    fn fullwidth_and_ligature_emails_become_plain_ascii() {
        assert_eq!(
            normalize_email("ａｌｉｃｅ@example.com").unwrap(),
            "alice@example.com"
        );
        assert_eq!(
            normalize_email("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ").unwrap(),
            "alice@example.com"
        );
        assert_eq!(
            normalize_email("ﬁnance@example.com").unwrap(),
            "finance@example.com"
        );
        assert_eq!(
            normalize_email("  bob@example.com ").unwrap(),
            "bob@example.com"
        );
    }

    #[test]
    fn an_internationalised_domain_and_its_punycode_are_one_domain() {
        let unicode = normalize_email("alice@exämple.com").unwrap();
        assert_eq!(unicode, "alice@xn--exmple-cua.com");
        assert_eq!(
            normalize_email("alice@xn--exmple-cua.com").unwrap(),
            unicode
        );
        assert_eq!(normalize_email("alice@EXÄMPLE.COM").unwrap(), unicode);
        assert_eq!(
            normalize_email("alice@XN--EXMPLE-CUA.com").unwrap(),
            unicode
        );
        // Decomposed ä (a + combining diaeresis) is the same domain too.
        assert_eq!(
            normalize_email("alice@exa\u{308}mple.com").unwrap(),
            unicode
        );
    }

    #[test]
    fn ascii_local_parts_keep_their_case_and_others_are_folded() {
        assert_eq!(
            normalize_email("Alice@Example.COM").unwrap(),
            "Alice@example.com"
        );
        assert_eq!(
            normalize_email("ÄLICE@example.com").unwrap(),
            normalize_email("älice@example.com").unwrap()
        );
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for email in [
            "ａｌｉｃｅ@example.com",
            "alice@exämple.com",
            "ÄLICE@Exämple.com",
            "ﬁnance@example.com",
        ] {
            let once = normalize_email(email).unwrap();
            assert_eq!(normalize_email(&once).unwrap(), once, "{email}");
        }
        for name in ["ａｌｉｃｅ", "José", "Straße", "ЖЕНЯ", "ǅemal"] {
            let once = normalize_username(name, NFKD);
            assert_eq!(normalize_username(&once, NFKD), once, "{name}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        assert_eq!(normalize_email("  "), Err(EmailError::Empty));
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@exa mple.com",
            "alice@-bad.com",
            "alice@a..b",
            "alice@[1.2.3.4]",
            "al ice@example.com",
            "alice\u{200B}@example.com",
            "alice@exam\u{200D}ple.com",
        ] {
            assert_eq!(normalize_email(bad), Err(EmailError::Invalid), "{bad:?}");
        }
        assert_eq!(email_lookup_key(" not an address "), "not an address");
    }

    #[test]
    fn usernames_are_normalised_with_the_configured_form_and_folded() {
        assert_eq!(normalize_username("ａｌｉｃｅ", NFKD), "alice");
        assert_eq!(normalize_username("ＡＬＩＣＥ", NFKD), "ALICE");
        assert_eq!(normalize_username(" José ", NFKD), "Jose\u{301}");
        assert_eq!(
            normalize_username("José", NFKD),
            normalize_username("Jose\u{301}", NFKD)
        );
        assert_eq!(
            normalize_username("ЖЕНЯ", NFKD),
            normalize_username("женя", NFKD)
        );
        assert_eq!(normalize_username("Straße", NFKD), "Strasse");
        // Dotless ı folds to i: `admın` is `admin`.
        assert_eq!(normalize_username("admın", NFKD), "admin");
        assert_eq!(
            normalize_username("José", Some(NormalizeForm::Nfc)),
            "Jos\u{e9}"
        );
        assert_eq!(normalize_username("ａｌｉｃｅ", None), "ａｌｉｃｅ");
        assert_eq!("nfkc".parse::<NormalizeForm>(), Ok(NormalizeForm::Nfkc));
        assert!("NFX".parse::<NormalizeForm>().is_err());
    }

    #[test]
    fn look_alike_usernames_are_refused() {
        // Cyrillic а in a Latin name.
        assert_eq!(
            check_username_lookalike("аlice"),
            Err(UsernameRefusal::MixedScript)
        );
        assert_eq!(
            check_username_lookalike("рауpal"),
            Err(UsernameRefusal::MixedScript)
        );
        // All Cyrillic, but reads as ASCII.
        assert_eq!(
            check_username_lookalike("ѕсоре"),
            Err(UsernameRefusal::AsciiLookalike)
        );
        assert_eq!(
            check_username_lookalike("АДМ"),
            Ok(()),
            "Cyrillic that does not read as ASCII"
        );
        // İ: its lower case is i + a dot above, which the i's own dot hides.
        assert_eq!(
            check_username_lookalike("ADMİN"),
            Err(UsernameRefusal::HiddenMark)
        );
        assert_eq!(
            check_username_lookalike("admi\u{307}n"),
            Err(UsernameRefusal::HiddenMark)
        );
        assert_eq!(
            check_username_lookalike("Jose\u{301}\u{301}"),
            Err(UsernameRefusal::HiddenMark)
        );
    }

    #[test]
    fn ordinary_names_in_any_one_script_pass() {
        for name in [
            "alice",
            "ａｌｉｃｅ",
            "Alice42",
            "José",
            "Zoë",
            "Straße",
            "ЖЕНЯ",
            "Ελένη",
            "日本語",
            "山田たろう",
        ] {
            assert_eq!(check_username_lookalike(name), Ok(()), "{name}");
        }
    }
}
