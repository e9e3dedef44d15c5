//! Flask-Security's user-facing messages (`SECURITY_MSG_*`), overridable per key, in the
//! language of the request.
//!
//! The English texts here are Flask-Security's defaults, kept exact so clients that match on them
//! keep working; placeholders use Flask-Security's `%(name)s` syntax. Other languages come from
//! the Fluent catalogs ([`crate::i18n`], same keys, `{ $name }` placeholders). Precedence, for a
//! request in the default language (`BABEL_DEFAULT_LOCALE`): `SECURITY_PAGE_MSG_*` (pages
//! only), then `SECURITY_MSG_*`, then the app's catalog (`SECURITY_I18N_DIRNAME`), then the
//! built-in text. For a request in another language the overrides — texts in the default
//! language — are skipped: the app's catalog for that language, then the built-in one, then
//! English.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::i18n::{Catalog, Catalogs};

/// The default message table: (key, text, flash category).
const DEFAULTS: &[(&str, &str, &str)] = &[
    (
        "API_ERROR",
        "Input not appropriate for requested API",
        "error",
    ),
    (
        "GENERIC_AUTHN_FAILED",
        "Authentication failed - identity or password/passcode invalid",
        "error",
    ),
    (
        "GENERIC_RECOVERY",
        "If that email address is in our system, you will receive an email describing how to reset your password.",
        "info",
    ),
    (
        "GENERIC_US_SIGNIN",
        "If that identity is in our system, you were sent a code.",
        "info",
    ),
    (
        "UNAUTHORIZED",
        "You do not have permission to view this resource.",
        "error",
    ),
    (
        "UNAUTHENTICATED",
        "You must sign in to view this resource.",
        "error",
    ),
    (
        "REAUTHENTICATION_REQUIRED",
        "You must reauthenticate to access this endpoint",
        "error",
    ),
    (
        "CONFIRM_REGISTRATION",
        "Thank you. To confirm your email address %(email)s, please click on the link in the email we have just sent to you.",
        "success",
    ),
    (
        "EMAIL_CONFIRMED",
        "Thank you. Your email has been confirmed.",
        "success",
    ),
    (
        "ALREADY_CONFIRMED",
        "Your email has already been confirmed.",
        "info",
    ),
    (
        "INVALID_CONFIRMATION_TOKEN",
        "Invalid confirmation token.",
        "error",
    ),
    (
        "EMAIL_ALREADY_ASSOCIATED",
        "%(email)s is already associated with an account.",
        "error",
    ),
    (
        "IDENTITY_ALREADY_ASSOCIATED",
        "Identity attribute '%(attr)s' with value '%(value)s' is already associated with an account.",
        "error",
    ),
    (
        "IDENTITY_NOT_REGISTERED",
        "Identity %(id)s not registered",
        "error",
    ),
    (
        "OAUTH_HANDSHAKE_ERROR",
        "An error occurred while communicating with the OAuth provider: (%(exerror)s - %(exdesc)s). Please try again.",
        "error",
    ),
    // Rampart's own: social sign-up and account linking (Flask-Security only signs in).
    (
        "OAUTH_STATE_INVALID",
        "This sign-in could not be completed: it expired, was already used or was begun in another browser. Please try again.",
        "error",
    ),
    (
        "OAUTH_EMAIL_MISSING",
        "%(provider)s did not give an email address, so it cannot sign you in.",
        "error",
    ),
    (
        "OAUTH_EMAIL_NOT_VERIFIED",
        "%(provider)s has not verified your email address, so it cannot sign you in to an account. Sign in another way and link %(provider)s from your security page.",
        "error",
    ),
    (
        "OAUTH_ACCOUNT_UNCONFIRMED",
        "An account with this email address exists but its address is not confirmed. Sign in with your password, then link %(provider)s from your security page.",
        "error",
    ),
    (
        "OAUTH_USERNAME_REQUIRED",
        "Choose a username to finish signing up with %(provider)s.",
        "error",
    ),
    (
        "OAUTH_LINKED",
        "%(provider)s is linked to your account.",
        "success",
    ),
    (
        "OAUTH_UNLINKED",
        "%(provider)s is no longer linked to your account.",
        "success",
    ),
    (
        "OAUTH_LINKED_ELSEWHERE",
        "This %(provider)s account is linked to another user.",
        "error",
    ),
    (
        "OAUTH_ALREADY_LINKED",
        "Another %(provider)s account is linked to yours already: unlink it first.",
        "error",
    ),
    (
        "OAUTH_NOT_LINKED",
        "%(provider)s is not linked to your account.",
        "error",
    ),
    (
        "OAUTH_LAST_SIGNIN_METHOD",
        "%(provider)s is your only way to sign in: set a password before you unlink it.",
        "error",
    ),
    ("PASSWORD_MISMATCH", "Password does not match", "error"),
    (
        "RETYPE_PASSWORD_MISMATCH",
        "Passwords do not match",
        "error",
    ),
    (
        "INVALID_REDIRECT",
        "Redirections outside the domain are forbidden",
        "error",
    ),
    ("INVALID_RECOVERY_CODE", "Recovery code invalid", "error"),
    (
        "NO_RECOVERY_CODES_SETUP",
        "No recovery codes generated yet",
        "info",
    ),
    (
        "PASSWORD_RESET_REQUEST",
        "Instructions to reset your password have been sent to %(email)s.",
        "info",
    ),
    (
        "PASSWORD_RESET_EXPIRED",
        "You did not reset your password within %(within)s. ",
        "error",
    ),
    (
        "INVALID_RESET_PASSWORD_TOKEN",
        "Invalid reset password token.",
        "error",
    ),
    (
        "CONFIRMATION_REQUIRED",
        "Email requires confirmation.",
        "error",
    ),
    (
        "CONFIRMATION_REQUEST",
        "Confirmation instructions have been sent to %(email)s.",
        "info",
    ),
    (
        "CONFIRMATION_EXPIRED",
        "You did not confirm your email within %(within)s. ",
        "error",
    ),
    (
        "LOGIN_EXPIRED",
        "You did not login within %(within)s. New instructions to login have been sent to %(email)s.",
        "error",
    ),
    (
        "LOGIN_EMAIL_SENT",
        "Instructions to login have been sent to %(email)s.",
        "success",
    ),
    ("INVALID_LOGIN_TOKEN", "Invalid login token.", "error"),
    ("DISABLED_ACCOUNT", "Account is disabled.", "error"),
    ("EMAIL_NOT_PROVIDED", "Email not provided", "error"),
    // WTForms' `DataRequired` text (Flask-Security's `RequiredLocalize`, e.g. a missing identity).
    ("FIELD_REQUIRED", "This field is required.", "error"),
    ("INVALID_EMAIL_ADDRESS", "Invalid email address", "error"),
    ("INVALID_CODE", "Invalid code", "error"),
    (
        "INVALID_INPUT",
        "Value entered is not valid for the field",
        "error",
    ),
    (
        "INVALID_INPUT_LENGTH",
        "Value entered must be less than %(length) characters",
        "error",
    ),
    ("PASSWORD_NOT_PROVIDED", "Password not provided", "error"),
    (
        "PASSWORD_INVALID_LENGTH",
        "Password must be at least %(length)s characters",
        "error",
    ),
    (
        "PASSWORD_TOO_SIMPLE",
        "Password not complex enough",
        "error",
    ),
    ("PASSWORD_BREACHED", "Password on breached list", "error"),
    (
        "PASSWORD_BREACHED_SITE_ERROR",
        "Failed to contact breached passwords site",
        "error",
    ),
    (
        "PHONE_INVALID",
        "Phone number not valid e.g. missing country code",
        "error",
    ),
    (
        "USER_DOES_NOT_EXIST",
        "Specified user does not exist",
        "error",
    ),
    ("INVALID_PASSWORD", "Invalid password", "error"),
    (
        "INVALID_PASSWORD_CODE",
        "Password or code submitted is not valid",
        "error",
    ),
    (
        "PASSWORDLESS_LOGIN_SUCCESSFUL",
        "You have successfully logged in.",
        "success",
    ),
    ("FORGOT_PASSWORD", "Forgot password?", "info"),
    (
        "PASSWORD_RESET",
        "You successfully reset your password and you have been logged in automatically.",
        "success",
    ),
    (
        "PASSWORD_RESET_NO_LOGIN",
        "You successfully reset your password. Please authenticate using your new password.",
        "success",
    ),
    (
        "PASSWORD_IS_THE_SAME",
        "Your new password must be different than your previous password.",
        "error",
    ),
    (
        "PASSWORD_CHANGE",
        "You successfully changed your password.",
        "success",
    ),
    ("LOGIN", "Please log in to access this page.", "info"),
    (
        "REFRESH",
        "Please reauthenticate to access this page.",
        "info",
    ),
    (
        "REFRESH_TOKEN_INVALID",
        "Refresh token is invalid (%(reason)s)",
        "error",
    ),
    (
        "REAUTHENTICATION_SUCCESSFUL",
        "Reauthentication successful",
        "info",
    ),
    (
        "ANONYMOUS_USER_REQUIRED",
        "You can only access this endpoint when not logged in.",
        "error",
    ),
    ("CODE_HAS_BEEN_SENT", "Code has been sent.", "info"),
    (
        "FAILED_TO_SEND_CODE",
        "Failed to send code. Please try again later",
        "error",
    ),
    ("TWO_FACTOR_INVALID_TOKEN", "Invalid code", "error"),
    (
        "TWO_FACTOR_SECRET_UNREADABLE",
        "Your authenticator cannot be checked right now. Use a recovery code or get a code by email.",
        "error",
    ),
    (
        "TWO_FACTOR_CODE_ALREADY_USED",
        "This code was just used. Wait for the next one.",
        "error",
    ),
    (
        "TWO_FACTOR_LOGIN_SUCCESSFUL",
        "Your code has been confirmed",
        "success",
    ),
    (
        "TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL",
        "You successfully changed your two-factor method.",
        "success",
    ),
    (
        "TWO_FACTOR_PERMISSION_DENIED",
        "You currently do not have permissions to access this page",
        "error",
    ),
    (
        "TWO_FACTOR_METHOD_NOT_AVAILABLE",
        "Marked method is not valid",
        "error",
    ),
    (
        "TWO_FACTOR_DISABLED",
        "You successfully disabled two-factor authorization.",
        "success",
    ),
    (
        "TWO_FACTOR_SETUP_EXPIRED",
        "Setup must be completed within %(within)s. Please start over.",
        "error",
    ),
    (
        "US_CURRENT_METHODS",
        "Currently active sign in options: %(method_list)s.",
        "info",
    ),
    (
        "US_METHOD_NOT_AVAILABLE",
        "Requested method is not valid",
        "error",
    ),
    (
        "US_SETUP_EXPIRED",
        "Setup must be completed within %(within)s. Please start over.",
        "error",
    ),
    (
        "US_SETUP_SUCCESSFUL",
        "Unified sign in setup successful",
        "info",
    ),
    (
        "US_SPECIFY_IDENTITY",
        "You must specify a valid identity to sign in",
        "error",
    ),
    ("USE_CODE", "Use this code to sign in: %(code)s", "info"),
    (
        "USERNAME_CHANGE",
        "You successfully changed your username",
        "success",
    ),
    (
        "USERNAME_INVALID_LENGTH",
        "Username must be at least %(min)d characters and less than %(max)d characters",
        "error",
    ),
    (
        "USERNAME_ILLEGAL_CHARACTERS",
        "Username contains illegal characters",
        "error",
    ),
    (
        "USERNAME_DISALLOWED_CHARACTERS",
        "Username can contain only letters and numbers",
        "error",
    ),
    ("USERNAME_NOT_PROVIDED", "Username not provided", "error"),
    (
        "USERNAME_ALREADY_ASSOCIATED",
        "%(username)s is already associated with an account.",
        "error",
    ),
    (
        "WEBAUTHN_EXPIRED",
        "Passkey operations must be completed within %(within)s. Please start over.",
        "error",
    ),
    (
        "WEBAUTHN_NAME_REQUIRED",
        "Nickname for new passkey is required.",
        "error",
    ),
    (
        "WEBAUTHN_NAME_INUSE",
        "%(name)s is already associated with a passkey.",
        "error",
    ),
    (
        "WEBAUTHN_NAME_NOT_FOUND",
        "%(name)s not registered with current user.",
        "error",
    ),
    (
        "WEBAUTHN_CREDENTIAL_DELETED",
        "Successfully deleted the passkey with name: %(name)s",
        "info",
    ),
    // Rampart's own (Flask-Security cannot rename a passkey).
    (
        "WEBAUTHN_CREDENTIAL_RENAMED",
        "Renamed the passkey %(name)s to %(new_name)s",
        "info",
    ),
    (
        "WEBAUTHN_REGISTER_SUCCESSFUL",
        "Successfully added the passkey with name: %(name)s",
        "info",
    ),
    (
        "WEBAUTHN_CREDENTIAL_ID_INUSE",
        "Passkey already registered.",
        "error",
    ),
    (
        "WEBAUTHN_UNKNOWN_CREDENTIAL_ID",
        "Unregistered passkey.",
        "error",
    ),
    (
        "WEBAUTHN_ORPHAN_CREDENTIAL_ID",
        "Passkey doesn't belong to any user.",
        "error",
    ),
    (
        "WEBAUTHN_NO_VERIFY",
        "Could not verify passkey: %(cause)s.",
        "error",
    ),
    (
        "WEBAUTHN_CREDENTIAL_WRONG_USAGE",
        "Passkey not registered for this use (first or secondary)",
        "error",
    ),
    (
        "WEBAUTHN_MISMATCH_USER_HANDLE",
        "Credential user handle didn't match",
        "error",
    ),
    (
        "CHANGE_EMAIL_EXPIRED",
        "Confirmation must be completed within %(within)s. Please start over.",
        "error",
    ),
    (
        "CHANGE_EMAIL_CONFIRMED",
        "Change of email address confirmed",
        "success",
    ),
    (
        "CHANGE_EMAIL_SENT",
        "Instructions to confirm your new email address have been sent to %(email)s.",
        "success",
    ),
    (
        "USERNAME_RECOVERY_REQUEST",
        "If registered, your username will be sent to your email.",
        "info",
    ),
    (
        "PASSWORD_TOO_LONG",
        "Password must be at most %(length)s characters",
        "error",
    ),
    ("RATE_LIMITED", "%(limit)s", "error"),
    ("CSRF_MISSING", "The CSRF token is missing.", "error"),
    ("CSRF_INVALID", "The CSRF token is invalid.", "error"),
    ("CSRF_MISMATCH", "The CSRF tokens do not match.", "error"),
    (
        "CROSS_SITE_REFUSED",
        "Cross-site requests are not allowed.",
        "error",
    ),
    (
        "UNLOCK_SUCCESSFUL",
        "Your account is unlocked: you can sign in again now.",
        "success",
    ),
    (
        "UNLOCK_INVALID",
        "This unlock link is invalid or has expired. The pause ends by itself shortly.",
        "error",
    ),
    (
        "CSRF_SESSION_MISSING",
        "The CSRF session token is missing.",
        "error",
    ),
    ("BODY_NOT_JSON", "Request body is not valid JSON", "error"),
    (
        "BODY_NOT_OBJECT",
        "Request body must be a JSON object",
        "error",
    ),
    (
        "CONFIRMATION_LINK_SENT_GENERIC",
        "If that email address is in our system and not yet confirmed, you will receive an email with a new confirmation link.",
        "info",
    ),
    (
        "REGISTER_CHECK_EMAIL",
        "Thank you. Please check your email to finish signing up.",
        "success",
    ),
    ("LOGOUT", "You have been signed out.", "info"),
];

/// Message lookup with per-key overrides (`SECURITY_MSG_<KEY>` in the configuration), and
/// overrides for HTML pages only (`SECURITY_PAGE_MSG_<KEY>`), used while the security layer
/// answers a request for an HTML page; in the request's language ([`crate::i18n`]).
#[derive(Clone, Debug)]
pub struct Messages {
    overrides: Arc<HashMap<String, String>>,
    page_overrides: Arc<HashMap<String, String>>,
    catalogs: Arc<Catalogs>,
}

impl Default for Messages {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

tokio::task_local! {
    /// Set while the security layer answers a request: whether it answers an HTML page.
    static ANSWERING_A_PAGE: bool;
}

/// Runs `answer` with page wording on (`page` is true for an HTML answer, false for JSON): while
/// it runs, [`Messages::get`] prefers the `SECURITY_PAGE_MSG_*` overrides. The security layer
/// wraps every request in it.
pub(crate) async fn for_pages<F: std::future::Future>(page: bool, answer: F) -> F::Output {
    ANSWERING_A_PAGE.scope(page, answer).await
}

impl Messages {
    /// Messages with the given overrides (key without the `SECURITY_MSG_` prefix → text).
    pub fn new(overrides: HashMap<String, String>) -> Self {
        Self {
            overrides: Arc::new(overrides),
            page_overrides: Arc::default(),
            catalogs: Catalogs::builtin(),
        }
    }

    /// These messages with `catalogs` for the languages (default: the built-in ones, English
    /// the default language).
    pub fn with_catalogs(mut self, catalogs: Arc<Catalogs>) -> Self {
        self.catalogs = catalogs;
        self
    }

    /// The language catalogs.
    pub fn catalogs(&self) -> &Arc<Catalogs> {
        &self.catalogs
    }

    /// These messages with overrides used for HTML pages only (key → text): a sample app's
    /// plain words for people, while JSON clients keep matching Flask-Security's text.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// let m = rampart::Messages::default()
    ///     .with_page_overrides(HashMap::from([("INVALID_PASSWORD".into(), "Wrong password.".into())]));
    /// // Outside an HTML answer (JSON, mail, logs) the framework's wording stays.
    /// assert_eq!(m.get("INVALID_PASSWORD", &[]), "Invalid password");
    /// ```
    pub fn with_page_overrides(mut self, page_overrides: HashMap<String, String>) -> Self {
        self.page_overrides = Arc::new(page_overrides);
        self
    }

    /// Whether `key` names a known message.
    pub fn is_known(key: &str) -> bool {
        DEFAULTS.iter().any(|(k, _, _)| *k == key)
    }

    /// The text of `key` with `%(name)s` / `%(name)d` placeholders filled from `args`.
    ///
    /// ```
    /// let m = rampart::Messages::default();
    /// assert_eq!(m.get("PASSWORD_INVALID_LENGTH", &[("length", "8")]), "Password must be at least 8 characters");
    /// ```
    pub fn get(&self, key: &str, args: &[(&str, &str)]) -> String {
        crate::i18n::with_current(|current| {
            let catalog: Option<&Catalog> =
                current.or_else(|| self.catalogs.default_catalog().map(Arc::as_ref));
            if catalog.is_none_or(Catalog::is_default)
                && let Some(text) = self.override_of(key)
            {
                return interpolate(text, args);
            }
            if let Some(catalog) = catalog.filter(|c| !c.is_builtin_english())
                && let Some(text) = catalog.format(key, args)
            {
                return text;
            }
            interpolate(Self::english(key).unwrap_or(key), args)
        })
    }

    /// The app's own text for `key` (`SECURITY_PAGE_MSG_*` on a page, `SECURITY_MSG_*`).
    fn override_of(&self, key: &str) -> Option<&str> {
        let on_a_page = !self.page_overrides.is_empty()
            && ANSWERING_A_PAGE.try_with(|page| *page).unwrap_or(false);
        on_a_page
            .then(|| self.page_overrides.get(key))
            .flatten()
            .or_else(|| self.overrides.get(key))
            .map(String::as_str)
    }

    /// Flask-Security's English text of `key`.
    fn english(key: &str) -> Option<&'static str> {
        DEFAULTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, t, _)| *t)
    }

    /// The flash category of `key` (`error`, `info`, `success`).
    pub fn category(key: &str) -> &'static str {
        DEFAULTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("info", |(_, _, c)| c)
    }
}

fn interpolate(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        let spec_len = after[end + 1..].chars().next().map_or(0, char::len_utf8);
        match args.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 1 + spec_len]),
        }
        rest = &after[end + 1 + spec_len..];
    }
    out.push_str(rest);
    out
}

/// "1 day", "2 hours", "30 minutes": how Flask-Security words a duration in messages.
pub(crate) fn describe_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    count_of(n, unit)
}

/// A count of a unit in words, singular or plural: "1 minute", "8 minutes" (in the request's
/// language: the catalogs' `duration-<unit>`).
pub(crate) fn count_of(n: u64, unit: &str) -> String {
    let localized = crate::i18n::with_current(|current| {
        current
            .filter(|c| !c.is_builtin_english())
            .and_then(|c| c.format(&format!("duration-{unit}"), &[("n", &n.to_string())]))
    });
    if let Some(text) = localized {
        text
    } else if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// How long to wait, in words, rounded up to whole minutes past the first minute: "40 seconds",
/// "1 minute", "8 minutes".
pub(crate) fn describe_wait(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs < 60 {
        count_of(secs, "second")
    } else {
        count_of(secs.div_ceil(60), "minute")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_worded_in_the_singular_or_the_plural() {
        assert_eq!(describe_wait(Duration::from_secs(1)), "1 second");
        assert_eq!(describe_wait(Duration::from_secs(40)), "40 seconds");
        assert_eq!(describe_wait(Duration::from_secs(60)), "1 minute");
        assert_eq!(describe_wait(Duration::from_secs(61)), "2 minutes");
        assert_eq!(describe_wait(Duration::from_secs(452)), "8 minutes");
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        assert_eq!(
            interpolate(
                "%(email)s is already associated with an account.",
                &[("email", "a@b.c")]
            ),
            "a@b.c is already associated with an account."
        );
        assert_eq!(interpolate("x %(nope)s y", &[]), "x %(nope)s y");
        assert_eq!(
            interpolate(
                "at least %(min)d and less than %(max)d",
                &[("min", "4"), ("max", "32")]
            ),
            "at least 4 and less than 32"
        );
    }

    #[tokio::test]
    async fn page_overrides_apply_to_pages_only() {
        let m = Messages::new(HashMap::from([("INVALID_PASSWORD".into(), "Nope".into())]))
            .with_page_overrides(HashMap::from([(
                "INVALID_PASSWORD".into(),
                "That password is not right.".into(),
            )]));
        assert_eq!(
            for_pages(true, async { m.get("INVALID_PASSWORD", &[]) }).await,
            "That password is not right."
        );
        assert_eq!(
            for_pages(false, async { m.get("INVALID_PASSWORD", &[]) }).await,
            "Nope"
        );
        assert_eq!(
            m.get("INVALID_PASSWORD", &[]),
            "Nope",
            "outside any request"
        );
        assert_eq!(
            for_pages(true, async { m.get("PASSWORD_MISMATCH", &[]) }).await,
            Messages::default().get("PASSWORD_MISMATCH", &[]),
            "keys without a page wording keep theirs"
        );
    }

    #[test]
    fn overrides_replace_defaults() {
        let m = Messages::new(HashMap::from([("INVALID_PASSWORD".into(), "Nope".into())]));
        assert_eq!(m.get("INVALID_PASSWORD", &[]), "Nope");
        assert_eq!(
            m.get("USER_DOES_NOT_EXIST", &[]),
            "Specified user does not exist"
        );
    }
}
