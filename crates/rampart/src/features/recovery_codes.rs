//! Recovery codes (`SECURITY_MULTI_FACTOR_RECOVERY_CODES`), Flask-Security's
//! `mf-recovery-codes` and `mf-recovery` views: one-time codes that stand in for the second
//! factor when the phone is lost.
//!
//! `POST /mf-recovery-codes` (signed in) makes `SECURITY_MULTI_FACTOR_RECOVERY_CODES_N` new codes
//! (`xxxx-xxxx-xxxx`, 48 random bits each), replacing the old ones, and shows them **once**: only
//! keyed digests are stored (`mf_recovery_codes`), like passwords, so a database dump reveals
//! none. (Flask-Security stores them readable and shows them again on `GET`; here `GET` tells how
//! many are left.) `POST /mf-recovery {"code"}` completes a login waiting for its second factor
//! and spends the code; wrong codes count against the same per-user limit as one-time codes.
//!
//! Templates: `security/mf_recovery_codes.html`, `security/mf_recovery.html`.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use secrecy::ExposeSecret as _;
use serde_json::{Map, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::FreshUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::pending_login::{self, PendingSignIn};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

/// Prefix of the data whose keyed digest is stored, so the digests serve nothing else.
const DIGEST_LABEL: &str = "mf-recovery-code:";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new()
        .route(
            &config.url(&config.recovery_codes.url),
            get(get_codes).post(post_codes),
        )
        .route(
            &config.url(&config.recovery_codes.recovery_url),
            get(get_recovery).post(post_recovery),
        )
}

/// A new code: 12 lowercase hex digits in groups of four (`f856-2245-5bac`).
fn new_code() -> String {
    let hex = crate::token::random_hex(6);
    format!("{}-{}-{}", &hex[..4], &hex[4..8], &hex[8..])
}

/// A code as typed: case, spaces and dashes do not matter.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn digest(security: &Security, code: &str) -> String {
    security
        .signer()
        .hash_data(&format!("{DIGEST_LABEL}{}", normalize(code)))
}

/// The user's unused codes as stored: Rampart's keyed digests (a JSON list), or, from a
/// Flask-Security deployment, its comma-separated codes, plain or Fernet-encrypted.
enum Stored {
    /// Rampart's keyed digests.
    Digests(Vec<String>),
    /// Flask-Security's entries, as stored.
    Flask(Vec<String>),
}

fn stored(user: &User) -> Stored {
    let raw = user.mf_recovery_codes.as_deref().unwrap_or_default().trim();
    if raw.starts_with('[') {
        return Stored::Digests(serde_json::from_str(raw).unwrap_or_default());
    }
    Stored::Flask(
        raw.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

impl Stored {
    fn len(&self) -> usize {
        match self {
            Self::Digests(d) => d.len(),
            Self::Flask(c) => c.len(),
        }
    }
}

/// A Flask-Security entry in plain text: decrypted with `SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS`
/// (Fernet, any key) when it is encrypted; `None` (logged) when no key opens it.
fn flask_code(config: &SecurityConfig, entry: &str) -> Option<String> {
    if config.recovery_codes.keys.is_empty() || !entry.starts_with("gAAAAA") {
        return Some(entry.to_owned());
    }
    let keys: Vec<fernet::Fernet> = config
        .recovery_codes
        .keys
        .iter()
        .filter_map(|k| fernet::Fernet::new(k.expose_secret().trim()))
        .collect();
    let plain = fernet::MultiFernet::new(keys)
        .decrypt(entry)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    if plain.is_none() {
        tracing::warn!("a stored recovery code cannot be decrypted with the configured keys");
    }
    plain
}

/// Makes and stores a new set of codes for `user`, replacing the old ones, and records
/// `recovery_codes_generated` (from the request's `device`) in the same transaction; returns the
/// codes.
pub(crate) async fn generate(
    security: &Security,
    user: &User,
    device: crate::activity::Device,
) -> crate::Result<Vec<String>> {
    let n = security.config().recovery_codes.count;
    let codes: Vec<String> = (0..n).map(|_| new_code()).collect();
    let digests: Vec<String> = codes.iter().map(|c| digest(security, c)).collect();
    let stored = serde_json::to_string(&digests)
        .map_err(|e| crate::Error::Internal(format!("recovery codes: {e}")))?;
    let activity = crate::activity::NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: crate::activity::ActivityEvent::RecoveryCodesGenerated,
        device: Some(device),
    };
    let now = security.now_naive();
    let id = security
        .datastore()
        .set_recovery_codes_recorded(user.id, Some(&stored), now, &activity)
        .await?;
    crate::web::activity::broadcast(security, &activity, id, now);
    Ok(codes)
}

/// Spends `code` if it is one of `user`'s unused codes: `true` when it was (and is now gone).
/// Flask-Security's stored codes are read (decrypted) and, once one is spent, the others are
/// stored as Rampart's keyed digests.
pub(crate) async fn spend(security: &Security, user: &User, code: &str) -> crate::Result<bool> {
    let Some(raw) = user.mf_recovery_codes.as_deref() else {
        return Ok(false);
    };
    let signer = security.signer();
    let data = format!("{DIGEST_LABEL}{}", normalize(code));
    let digests: Vec<String> = match stored(user) {
        Stored::Digests(digests) => digests,
        Stored::Flask(entries) => {
            if security
                .config()
                .recovery_codes
                .keys
                .iter()
                .any(|k| fernet::Fernet::new(k.expose_secret().trim()).is_none())
            {
                tracing::error!("SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS holds a malformed key");
            }
            entries
                .iter()
                .filter_map(|e| flask_code(security.config(), e))
                .map(|c| digest(security, &c))
                .collect()
        }
    };
    // Every digest is checked (constant time each), whichever matches.
    let matches: Vec<bool> = digests
        .iter()
        .map(|d| signer.verify_hash_data(&data, d))
        .collect();
    let Some(index) = matches.iter().position(|m| *m) else {
        return Ok(false);
    };
    let mut left = digests;
    left.remove(index);
    let new = serde_json::to_string(&left)
        .map_err(|e| crate::Error::Internal(format!("recovery codes: {e}")))?;
    Ok(security
        .datastore()
        .swap_recovery_codes(user.id, raw, &new, security.now_naive())
        .await?)
}

const CODES_TEMPLATE: &str = "security/mf_recovery_codes.html";

/// How many recovery codes are left (the codes are shown once, when made).
#[utoipa::path(
    get,
    path = "/mf-recovery-codes",
    tag = "mf-recovery",
    responses((status = 200, description = "The count.", body = RecoveryCodesAnswer)),
    security(("signed_in" = []))
)]
async fn get_codes(user: FreshUser) -> Reply {
    let left = stored(&user.user).len();
    let mut json = Map::new();
    json.insert("recovery_codes".into(), json!([]));
    json.insert("recovery_codes_left".into(), json!(left));
    Reply::done(
        Json::Base(json),
        Html::Page {
            template: CODES_TEMPLATE,
            context: context! { left => left, codes => Option::<Vec<String>>::None },
        },
    )
}

/// Makes new recovery codes, replacing the old ones.
#[utoipa::path(
    post,
    path = "/mf-recovery-codes",
    tag = "mf-recovery",
    responses((status = 200, description = "The new codes.", body = RecoveryCodesAnswer)),
    security(("signed_in" = []))
)]
async fn post_codes(ctx: AuthContext, user: FreshUser) -> Result<Reply, Rejection> {
    let device = crate::web::activity::device(&ctx);
    let codes = generate(ctx.security(), &user.user, device).await?;
    let mut json = Map::new();
    json.insert("recovery_codes".into(), json!(codes));
    let left = codes.len();
    Ok(Reply::done(
        Json::Base(json),
        Html::Page {
            template: CODES_TEMPLATE,
            context: context! { left => left, codes => Some(codes) },
        },
    ))
}

fn recovery_form() -> Form {
    Form::new("security/mf_recovery.html")
}

/// The recovery-code form of a sign-in in progress.
#[utoipa::path(
    get,
    path = "/mf-recovery",
    tag = "mf-recovery",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
async fn get_recovery(_pending: PendingSignIn) -> Reply {
    Reply::Form(recovery_form())
}

/// Finishes a sign-in in progress with a recovery code instead of the second factor.
#[utoipa::path(
    post,
    path = "/mf-recovery",
    tag = "mf-recovery",
    request_body = crate::web::openapi::CodeBody,
    params(crate::web::openapi::IncludeAuthToken),
    responses((status = 200, description = "Signed in.", body = crate::web::openapi::SignInAnswer))
)]
async fn post_recovery(
    ctx: AuthContext,
    PendingSignIn(user): PendingSignIn,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    // Counted before the check, atomically: a concurrent burst gets at most the limit checked.
    crate::web::rate_limit::count_code(&security, user.id).await??;
    let code = input.text("code").unwrap_or_default();
    if !spend(&security, &user, &code).await? {
        crate::web::activity::sign_in_failed(&ctx, user.id).await?;
        let errors = FieldErrors::single("code", security.msg("INVALID_RECOVERY_CODE", &[]));
        return Ok(Reply::Invalid(recovery_form().errors(errors)).into_response());
    }
    crate::web::rate_limit::clear_codes(&security, user.id).await?;
    Ok(pending_login::complete_login(&ctx, &user).await?)
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_codes, post_codes, get_recovery, post_recovery))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            ("/mf-recovery-codes", config.url(&config.recovery_codes.url)),
            (
                "/mf-recovery",
                config.url(&config.recovery_codes.recovery_url),
            ),
        ],
    )
}

/// The answer of `/mf-recovery-codes`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer the handlers render")]
pub(crate) struct RecoveryCodesAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// New codes (after `POST`; empty on `GET`).
    recovery_codes: Vec<String>,
    /// How many unused codes are left (on `GET`).
    #[schema(nullable = false)]
    recovery_codes_left: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_look_like_flask_securitys_and_are_read_leniently() {
        let code = new_code();
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
        assert_ne!(code, new_code());
        assert_eq!(normalize(" F856-2245-5BAC "), "f85622455bac");
        assert_eq!(normalize("f856 2245 5bac"), "f85622455bac");
    }
}
