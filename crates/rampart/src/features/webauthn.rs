//! Passkeys and security keys (`SECURITY_WEBAUTHN`), Flask-Security's `webauthn.py` views and
//! JSON API, on kanidm's `webauthn-rs-core` (every CBOR, COSE and signature check is the
//! library's).
//!
//! Routes (Flask-Security's):
//! - `GET /wan-register` (signed in, fresh): the user's keys (`registered_credentials`: name,
//!   credential id, transports, last use, usage, backup state, device type, discoverable);
//!   `POST /wan-register {"name", "usage": "first"|"secondary"}` begins a registration
//!   (`credential_options` for `navigator.credentials.create()` and a `wan_state`);
//!   `POST /wan-register/<wan_state> {"credential": "<JSON of the credential>"}` finishes it.
//! - `POST /wan-signin {"identity"?, "remember"?}` begins a sign-in (`first` keys; during a
//!   two-factor sign-in, `secondary` keys), `POST /wan-signin/<wan_state> {"credential"}`
//!   finishes it.
//! - `POST /wan-delete {"name"}` (signed in, fresh) removes a key.
//! - `POST /wan-verify`, `POST /wan-verify/<wan_state>` (signed in): re-authentication with a
//!   key (`SECURITY_WAN_ALLOW_AS_VERIFY`), resetting freshness.
//!
//! Every finish posts the credential as a JSON *string*. The relying-party id is the request's
//! host without the port and the origin `PREFERRED_URL_SCHEME` with its host and port, unless `SECURITY_WAN_RP_ID`
//! / `SECURITY_WAN_ALLOWED_ORIGINS` say otherwise. The user handle is a `uuid4().hex` string
//! whose ASCII bytes are the WebAuthn user id (`fs_webauthn_user_handle`).
//!
//! Unlike Flask-Security, a `wan_state` is kept in the session that began the ceremony and is
//! used up by its first finish, right or wrong: it cannot be replayed, nor finished by another
//! browser. Sign counters are checked (a counter that goes back — a cloned authenticator — is
//! refused and logged) and recorded with a compare-and-swap, so one assertion cannot sign in
//! twice even from racing requests.
//!
//! Templates: `security/wan_register.html`, `security/wan_signin.html`,
//! `security/wan_verify.html`.
//!
//! Files: this one holds the router and what the ceremonies share (the relying party, the
//! states, stored credentials, the listing and delete); `webauthn/register.rs` registers a key,
//! `webauthn/signin.rs` signs in and verifies with one.

mod register;
mod signin;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationFormat, COSEKey, Credential, ParsedAttestation, RegisteredExtensions,
    UserVerificationPolicy,
};

use crate::config::SecurityConfig;
use crate::model::WebauthnCredential;
use crate::web::context::AuthContext;
use crate::web::extract::FreshUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

/// The usage of a key that signs in alone.
pub(crate) const FIRST: &str = "first";
/// The usage of a key that is a second factor.
pub(crate) const SECONDARY: &str = "secondary";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    let wan = &config.webauthn;
    let register = config.url(&wan.register_url);
    let signin = config.url(&wan.signin_url);
    let verify = config.url(&wan.verify_url);
    Router::new()
        .route(
            &register,
            get(register::get_register).post(register::post_register),
        )
        .route(
            &format!("{register}/{{state}}"),
            post(register::post_register_response),
        )
        // As Flask-Security: a sign-in begins only when nobody is signed in.
        .route(
            &signin,
            get(signin::get_signin)
                .post(signin::post_signin)
                .route_layer(crate::web::guard::anonymous_required()),
        )
        .route(
            &format!("{signin}/{{state}}"),
            post(signin::post_signin_response),
        )
        .route(&config.url(&wan.delete_url), post(post_delete))
        .route(&config.url(&wan.rename_url), post(post_rename))
        .route(&format!("{signin}.js"), get(script))
        .route(&verify, get(signin::get_verify).post(signin::post_verify))
        .route(
            &format!("{verify}/{{state}}"),
            post(signin::post_verify_response),
        )
}

/// The framework pages' script (`security/_wan_js.html` links it).
const SCRIPT: &str = include_str!("webauthn/wan.js");

async fn script() -> impl axum::response::IntoResponse {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
}

/// The relying party of this request: its id is `SECURITY_WAN_RP_ID` or the request's host
/// without the port; its origins `SECURITY_WAN_ALLOWED_ORIGINS` or the request's scheme, host and
/// port.
fn relying_party(ctx: &AuthContext, timeout_ms: u32) -> crate::Result<WebauthnCore> {
    let config = ctx.security().config();
    let wan = &config.webauthn;
    let host = ctx.host.as_deref().unwrap_or("localhost");
    let origin = url::Url::parse(&format!("{}://{host}", config.url_scheme))
        .map_err(|e| crate::Error::Internal(format!("webauthn origin: {e}")))?;
    let rp_id = match &wan.rp_id {
        Some(id) => id.clone(),
        None => origin.host_str().unwrap_or("localhost").to_owned(),
    };
    let origins = if wan.allowed_origins.is_empty() {
        vec![origin]
    } else {
        wan.allowed_origins
            .iter()
            .map(|o| url::Url::parse(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::Error::Internal(format!("SECURITY_WAN_ALLOWED_ORIGINS: {e}")))?
    };
    Ok(WebauthnCore::new_unsafe_experts_only(
        &wan.rp_name,
        &rp_id,
        origins,
        Duration::from_millis(u64::from(timeout_ms)),
        Some(false),
        Some(false),
    ))
}

/// The credential options as Flask-Security sends them: the inner `publicKey` object, without
/// the fields the library leaves empty.
fn options_json(public_key: &impl Serialize) -> crate::Result<Value> {
    let mut value = serde_json::to_value(public_key)
        .map_err(|e| crate::Error::Internal(format!("webauthn options: {e}")))?;
    strip_nulls(&mut value);
    Ok(value)
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// What a ceremony's `wan_state` stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Ceremony {
    Register,
    Signin,
    Verify,
}

/// A ceremony begun in this session, waiting for its finish.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    token: String,
    ceremony: Ceremony,
    /// Unix time after which it is refused.
    expires: u64,
    /// The library's state (`RegistrationState` / `AuthenticationState`).
    state: Value,
    /// Register: the user registering. Sign-in: the user named by a hint or the pending
    /// two-factor sign-in. Verify: the signed-in user.
    user_id: Option<i64>,
    /// Register: the key's name and usage.
    name: Option<String>,
    usage: Option<String>,
    /// Sign-in: a second factor (`secondary` keys), and remember-me.
    secondary: bool,
    remember: bool,
    /// Sign-in: a safe local `next` to land on afterwards (from the begin request).
    #[serde(default)]
    next: Option<String>,
}

/// The session key holding the ceremonies begun in this session.
const STATES_KEY: &str = "wan_states";
/// At most this many ceremonies wait at once in one session (the oldest goes).
const MAX_PENDING: usize = 4;

/// What looking up a `wan_state` found.
enum Lookup {
    Found(Box<Pending>),
    Expired,
    Unknown,
}

/// Keeps `pending` in the session; returns its `wan_state`.
async fn begin_ceremony(
    ctx: &AuthContext,
    ceremony: Ceremony,
    within: Duration,
    state: Value,
    fill: impl FnOnce(&mut Pending),
) -> crate::Result<String> {
    let now = ctx.security().unix_now();
    let token = crate::token::random_hex(24);
    let mut pending = Pending {
        token: token.clone(),
        ceremony,
        expires: now.saturating_add(within.as_secs()),
        state,
        user_id: None,
        name: None,
        usage: None,
        secondary: false,
        remember: false,
        next: None,
    };
    fill(&mut pending);
    let mut all: Vec<Pending> = ctx.session.get(STATES_KEY).await?.unwrap_or_default();
    all.retain(|p| p.expires >= now);
    all.push(pending);
    if all.len() > MAX_PENDING {
        let drop = all.len() - MAX_PENDING;
        all.drain(..drop);
    }
    ctx.session.insert(STATES_KEY, all).await?;
    Ok(token)
}

/// Takes (uses up) the ceremony `token` of kind `ceremony` begun in this session.
async fn take_ceremony(
    ctx: &AuthContext,
    token: &str,
    ceremony: Ceremony,
) -> crate::Result<Lookup> {
    let mut all: Vec<Pending> = ctx.session.get(STATES_KEY).await?.unwrap_or_default();
    let Some(index) = all
        .iter()
        .position(|p| bool::from(p.token.as_bytes().ct_eq(token.as_bytes())))
    else {
        return Ok(Lookup::Unknown);
    };
    let pending = all.remove(index);
    ctx.session.insert(STATES_KEY, all).await?;
    if pending.ceremony != ceremony {
        return Ok(Lookup::Unknown);
    }
    if pending.expires < ctx.security().unix_now() {
        return Ok(Lookup::Expired);
    }
    Ok(Lookup::Found(Box::new(pending)))
}

/// The refusal of a `wan_state` that is unknown (never begun here, or used) or expired.
fn state_refused(security: &Security, lookup_expired: bool, within: Duration) -> FieldErrors {
    let message = if lookup_expired {
        let within = crate::messages::describe_duration(within);
        security.msg("WEBAUTHN_EXPIRED", &[("within", &within)])
    } else {
        security.msg("API_ERROR", &[])
    };
    FieldErrors::single("", message)
}

/// A refusal: JSON clients get the 400 envelope, browsers a flash and `back`.
fn refused(errors: &FieldErrors, back: String) -> Reply {
    let message = errors.all_messages().join(" ");
    Reply::done(
        Json::invalid(errors),
        Html::flash_redirect("error", message, back),
    )
}

/// A stored credential as the library checks it. The stored columns are Flask-Security's, so
/// the policy and flags known only at registration are taken as the loosest the ceremony allows
/// (user verification is asked per ceremony instead).
fn core_credential(stored: &WebauthnCredential) -> Option<Credential> {
    let value: serde_cbor_2::Value = serde_cbor_2::from_slice(&stored.public_key).ok()?;
    let key = COSEKey::try_from(&value).ok()?;
    Some(Credential {
        cred_id: stored.credential_id.clone().into(),
        cred: key,
        counter: u32::try_from(stored.sign_count).unwrap_or(u32::MAX),
        transports: None,
        user_verified: false,
        backup_eligible: stored.device_type == "multi_device",
        backup_state: stored.backup_state,
        registration_policy: UserVerificationPolicy::Discouraged_DO_NOT_USE,
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    })
}

/// Whether a key registered for `usage` may be used for one of `allowed`.
fn usable(stored: &WebauthnCredential, allowed: &[&str]) -> bool {
    allowed.iter().any(|u| *u == stored.usage)
}

/// One key as the listing shows it (Flask-Security's `registered_credentials`).
fn listing_entry(cred: &WebauthnCredential) -> Value {
    use base64::Engine;
    let discoverable = cred
        .extensions
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .and_then(|e| e.get("credProps").and_then(|p| p.get("rk")).cloned())
        .unwrap_or_else(|| json!("Unknown"));
    let iso = |t: time::PrimitiveDateTime| {
        t.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
    };
    json!({
        "name": cred.name,
        "credential_id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&cred.credential_id),
        "transports": cred.transports,
        "lastuse": iso(cred.lastuse_datetime),
        "created": iso(cred.create_datetime),
        "usage": cred.usage,
        "backup_state": cred.backup_state,
        "device_type": cred.device_type,
        "discoverable": discoverable,
    })
}

/// The user's keys, as the listing shows them.
async fn listing(security: &Security, user_id: i64) -> crate::Result<Vec<Value>> {
    Ok(security
        .datastore()
        .webauthn_credentials(user_id)
        .await?
        .iter()
        .map(listing_entry)
        .collect())
}

/// A key's name as typed: NFKC, trimmed, letters, digits, spaces, `-` and `_` only (Flask-
/// Security's `WAN_NAME_ALLOWED_CHARS`), at most `SECURITY_WAN_NAME_MAX_LENGTH` characters.
fn clean_name(security: &Security, name: &str) -> Result<String, String> {
    use unicode_normalization::UnicodeNormalization;
    let name: String = name.nfkc().collect::<String>().trim().to_owned();
    if name.is_empty() {
        return Err(security.msg("WEBAUTHN_NAME_REQUIRED", &[]));
    }
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_';
    if !name.chars().all(allowed) {
        return Err(security.msg("INVALID_INPUT", &[]));
    }
    let max = security.config().webauthn.name_max_length;
    if name.chars().count() > max {
        return Err(security.msg("INVALID_INPUT_LENGTH", &[("length", &max.to_string())]));
    }
    Ok(name)
}

/// Removes the user's key named `name`, recording `passkey_removed` (from the request's
/// `device`) in the same transaction. `Ok(false)` when they have no key of that name.
///
/// # Errors
///
/// The datastore's errors.
pub(crate) async fn delete_key(
    security: &Security,
    user_id: i64,
    name: &str,
    device: crate::activity::Device,
) -> crate::Result<bool> {
    let activity = crate::activity::NewActivity {
        user_id,
        actor_id: Some(user_id),
        event: crate::activity::ActivityEvent::PasskeyRemoved,
        device: Some(device),
    };
    let now = security.now_naive();
    let recorded = security
        .datastore()
        .delete_webauthn_recorded(user_id, name, now, &activity)
        .await?;
    if let Some(id) = recorded {
        crate::web::activity::broadcast(security, &activity, id, now);
    }
    Ok(recorded.is_some())
}

/// Deletes one of the user's passkeys.
#[utoipa::path(
    post,
    path = "/wan-delete",
    tag = "wan",
    request_body = WanNameBody,
    responses((status = 200, description = "Deleted.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
async fn post_delete(
    ctx: AuthContext,
    user: FreshUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let back = config.url(&config.webauthn.register_url);
    let name = input.text("name").unwrap_or_default();
    let name = match clean_name(&security, &name) {
        Ok(name) => name,
        Err(message) => return Ok(refused(&FieldErrors::single("name", message), back)),
    };
    let device = crate::web::activity::device(&ctx);
    if !delete_key(&security, user.user.id, &name, device).await? {
        let message = security.msg("WEBAUTHN_NAME_NOT_FOUND", &[("name", &name)]);
        return Ok(refused(&FieldErrors::single("name", message), back));
    }
    tracing::info!(user = user.user.id, name = %name, "webauthn credential deleted");
    Ok(Reply::done(
        Json::base(),
        Html::flash_redirect(
            "info",
            security.msg("WEBAUTHN_CREDENTIAL_DELETED", &[("name", &name)]),
            back,
        ),
    ))
}

/// `POST /wan-rename {"name", "new_name"}`: renames one of the user's keys (a fresh sign-in
/// needed, as for removing one).
#[utoipa::path(
    post,
    path = "/wan-rename",
    tag = "wan",
    request_body = WanRenameBody,
    responses((status = 200, description = "Renamed.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
async fn post_rename(
    ctx: AuthContext,
    user: FreshUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let back = config.url(&config.webauthn.register_url);
    let mut errors = FieldErrors::default();
    let name = clean_name(&security, &input.text("name").unwrap_or_default())
        .map_err(|message| errors.add("name", message))
        .ok();
    let new_name = clean_name(&security, &input.text("new_name").unwrap_or_default())
        .map_err(|message| errors.add("new_name", message))
        .ok();
    let (Some(name), Some(new_name)) = (name, new_name) else {
        return Ok(refused(&errors, back));
    };
    let keys = security
        .datastore()
        .webauthn_credentials(user.user.id)
        .await?;
    if !keys.iter().any(|k| k.name == name) {
        let message = security.msg("WEBAUTHN_NAME_NOT_FOUND", &[("name", &name)]);
        return Ok(refused(&FieldErrors::single("name", message), back));
    }
    if name != new_name {
        if keys.iter().any(|k| k.name == new_name)
            || !security
                .datastore()
                .rename_webauthn(user.user.id, &name, &new_name)
                .await?
        {
            let message = security.msg("WEBAUTHN_NAME_INUSE", &[("name", &new_name)]);
            return Ok(refused(&FieldErrors::single("new_name", message), back));
        }
        tracing::info!(user = user.user.id, name = %name, new_name = %new_name, "webauthn credential renamed");
    }
    Ok(Reply::done(
        Json::base(),
        Html::flash_redirect(
            "info",
            security.msg(
                "WEBAUTHN_CREDENTIAL_RENAMED",
                &[("name", &name), ("new_name", &new_name)],
            ),
            back,
        ),
    ))
}

/// The JSON fields of the listing (`registered_credentials`).
fn listing_json(creds: Vec<Value>) -> Map<String, Value> {
    let mut json = Map::new();
    json.insert("registered_credentials".into(), Value::Array(creds));
    json
}

/// The register page's context besides the form.
fn register_page(config: &SecurityConfig, creds: &[Value]) -> minijinja::Value {
    context! {
        registered_credentials => creds,
        allow_first => config.webauthn.allow_as_first_factor,
    }
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        register::get_register,
        register::post_register,
        register::post_register_response,
        signin::get_signin,
        signin::post_signin,
        signin::post_signin_response,
        signin::get_verify,
        signin::post_verify,
        signin::post_verify_response,
        post_delete,
        post_rename
    ))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            ("/wan-register", config.url(&config.webauthn.register_url)),
            (
                "/wan-register/{state}",
                format!("{}/{{state}}", config.url(&config.webauthn.register_url)),
            ),
            ("/wan-signin", config.url(&config.webauthn.signin_url)),
            (
                "/wan-signin/{state}",
                format!("{}/{{state}}", config.url(&config.webauthn.signin_url)),
            ),
            ("/wan-verify", config.url(&config.webauthn.verify_url)),
            (
                "/wan-verify/{state}",
                format!("{}/{{state}}", config.url(&config.webauthn.verify_url)),
            ),
            ("/wan-delete", config.url(&config.webauthn.delete_url)),
            ("/wan-rename", config.url(&config.webauthn.rename_url)),
        ],
    )
}

/// The answer of `GET /wan-register`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_register` renders")]
pub(crate) struct WanListing {
    /// The session's CSRF token.
    csrf_token: String,
    /// The user's passkeys (name, usage, dates, transports).
    #[schema(value_type = Vec<Object>)]
    registered_credentials: Vec<Value>,
}

/// The answer that begins a WebAuthn ceremony.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the answer the ceremonies' first steps render"
)]
pub(crate) struct WanBegun {
    /// The session's CSRF token.
    csrf_token: String,
    /// The options for the browser's WebAuthn call.
    #[schema(value_type = Object)]
    credential_options: Value,
    /// The state token for the second step's URL.
    wan_state: String,
}

/// The body of the ceremonies' second step.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handlers read from the form or JSON body"
)]
pub(crate) struct WanCredentialBody {
    /// The authenticator's answer, as JSON text.
    credential: String,
    /// Remember me (sign-in).
    #[schema(nullable = false)]
    remember: Option<bool>,
}

/// The body of `POST /wan-delete`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct WanNameBody {
    /// The passkey's name.
    name: String,
}

/// The body of `POST /wan-rename`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct WanRenameBody {
    /// The passkey's name.
    name: String,
    /// Its new name.
    new_name: String,
}
