//! Signing in and re-authenticating with a key: `POST /wan-signin` begins (a first factor, or
//! during a two-factor sign-in the second), `POST /wan-signin/<wan_state>` finishes;
//! `POST /wan-verify`, `POST /wan-verify/<wan_state>` re-authenticate the signed-in user.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{AuthenticationState, PublicKeyCredential, UserVerificationPolicy};

use super::{
    Ceremony, FIRST, Lookup, SECONDARY, begin_ceremony, core_credential, options_json, refused,
    relying_party, state_refused, take_ceremony, usable,
};
use crate::model::{User, WebauthnCredential};
use crate::web::context::AuthContext;
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::pending_login;
use crate::web::rejection::Rejection;

const SIGNIN_TEMPLATE: &str = "security/wan_signin.html";
const VERIFY_TEMPLATE: &str = "security/wan_verify.html";

/// The user whose two-factor sign-in waits and who has a `secondary` key, if any.
async fn secondary_user(ctx: &AuthContext) -> crate::Result<Option<User>> {
    let Some(user) = pending_login::pending_user(ctx).await? else {
        return Ok(None);
    };
    let has = pending_login::webauthn_second_factor(ctx.security(), &user).await?;
    Ok(has.then_some(user))
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The passkey sign-in form.
#[utoipa::path(
    get,
    path = "/wan-signin",
    tag = "wan",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
pub(super) async fn get_signin(ctx: AuthContext) -> Result<Response, Rejection> {
    let is_secondary = secondary_user(&ctx).await?.is_some();
    if !is_secondary && !ctx.security().config().webauthn.allow_as_first_factor {
        return Ok(not_found());
    }
    let next = safe_next(&ctx, query_next(&ctx));
    let form = Form::new(SIGNIN_TEMPLATE)
        .page(minijinja::context! { is_secondary => is_secondary, next => next })
        .json("is_secondary", json!(is_secondary));
    Ok(Reply::Form(form).into_response())
}

/// The `next` of the request's query string, if any.
fn query_next(ctx: &AuthContext) -> Option<String> {
    let (_, query) = ctx.path_and_query().split_once('?')?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "next")
        .map(|(_, value)| value.into_owned())
}

/// `next` if it is a safe local target (as the password sign-in checks it); an unsafe one is
/// dropped, so the sign-in lands on the post-login view.
fn safe_next(ctx: &AuthContext, next: Option<String>) -> Option<String> {
    next.filter(|n| !n.is_empty()).and_then(|n| {
        crate::redirect::safe_next(ctx.security().config(), ctx.host.as_deref(), &n).ok()
    })
}

/// Begins an assertion for `creds` (empty: any discoverable key) with `policy`; returns the
/// options JSON and the library's state.
fn begin_assertion(
    ctx: &AuthContext,
    creds: &[WebauthnCredential],
    policy: UserVerificationPolicy,
) -> crate::Result<(serde_json::Value, serde_json::Value)> {
    let rp = relying_party(ctx, ctx.security().config().webauthn.signin_timeout)?;
    let allowed = creds.iter().filter_map(core_credential).collect();
    let builder = rp
        .new_challenge_authenticate_builder(allowed, Some(policy))
        .map_err(|e| crate::Error::Internal(format!("webauthn: {e:?}")))?
        .allow_backup_eligible_upgrade(true);
    let (challenge, state) = rp
        .generate_challenge_authenticate(builder)
        .map_err(|e| crate::Error::Internal(format!("webauthn: {e:?}")))?;
    let mut options = options_json(&challenge.public_key)?;
    // Every key of the list, with the transports it reported.
    if let Some(list) = options
        .get_mut("allowCredentials")
        .and_then(serde_json::Value::as_array_mut)
    {
        for (entry, cred) in list.iter_mut().zip(creds) {
            if !cred.transports.is_empty()
                && let Some(map) = entry.as_object_mut()
            {
                map.insert("transports".into(), json!(cred.transports));
            }
        }
    }
    let state = serde_json::to_value(&state)
        .map_err(|e| crate::Error::Internal(format!("webauthn state: {e}")))?;
    Ok((options, state))
}

/// Begins a passkey sign-in: the options for `navigator.credentials.get`.
#[utoipa::path(
    post,
    path = "/wan-signin",
    tag = "wan",
    request_body = WanSigninBody,
    responses((status = 200, description = "Begun.", body = super::WanBegun))
)]
pub(super) async fn post_signin(
    ctx: AuthContext,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let pending_user = secondary_user(&ctx).await?;
    let is_secondary = pending_user.is_some();
    if !is_secondary && !config.webauthn.allow_as_first_factor {
        return Ok(not_found());
    }
    let remember = input
        .flag("remember")
        .unwrap_or(config.login.default_remember_me);
    let next = safe_next(&ctx, input.text("next").or_else(|| query_next(&ctx)));
    let user = match pending_user {
        Some(user) => Some(user),
        None if config.webauthn.allow_user_hints => match input.text("identity") {
            Some(identity) if !identity.trim().is_empty() => security
                .datastore()
                .user_by_identity(identity.trim())
                .await?
                .filter(|u| u.active),
            _ => None,
        },
        None => None,
    };
    let usage = if is_secondary { SECONDARY } else { FIRST };
    let creds: Vec<WebauthnCredential> = match &user {
        Some(user) => security
            .datastore()
            .webauthn_credentials(user.id)
            .await?
            .into_iter()
            .filter(|c| usable(c, &[usage]))
            .collect(),
        None => Vec::new(),
    };
    let policy = if is_secondary {
        UserVerificationPolicy::Discouraged_DO_NOT_USE
    } else {
        UserVerificationPolicy::Preferred
    };
    let (options, state) = begin_assertion(&ctx, &creds, policy)?;
    let user_id = user.as_ref().map(|u| u.id);
    let token = begin_ceremony(
        &ctx,
        Ceremony::Signin,
        config.webauthn.signin_within,
        state,
        |p| {
            p.user_id = user_id;
            p.secondary = is_secondary;
            p.remember = remember;
            p.next = next.clone();
        },
    )
    .await?;
    let mut json = Map::new();
    json.insert("credential_options".into(), options.clone());
    json.insert("wan_state".into(), json!(token));
    json.insert("remember".into(), json!(remember));
    json.insert("is_secondary".into(), json!(is_secondary));
    Ok(Reply::done(
        Json::Base(json),
        Html::Page {
            template: SIGNIN_TEMPLATE,
            context: minijinja::context! {
                is_secondary => is_secondary,
                wan_state => token,
                credential_options => options.to_string(),
                remember => remember,
            },
        },
    )
    .into_response())
}

/// What checking an assertion came to.
enum Checked {
    /// Right: the user, and whether the key verified the user (PIN, biometrics).
    Accepted {
        user: Box<User>,
        user_verified: bool,
    },
    Refused(FieldErrors),
}

/// Checks the posted `credential` (a JSON string) against the begun ceremony: a known key of an
/// active user, usable for `allowed`, of the expected user (if one was known), its user handle
/// matching, the signature, challenge, origin, RP id, user presence (and verification when
/// asked) and counter right. The use is recorded (counter and last use).
async fn check_assertion(
    ctx: &AuthContext,
    pending: &super::Pending,
    credential: &str,
    allowed: &[&str],
) -> crate::Result<Checked> {
    let security = ctx.security();
    let refuse = |key: &str, args: &[(&str, &str)]| {
        Checked::Refused(FieldErrors::single("credential", security.msg(key, args)))
    };
    let Ok(mut state) = serde_json::from_value::<AuthenticationState>(pending.state.clone()) else {
        return Ok(refuse("API_ERROR", &[]));
    };
    let Ok(assertion) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(refuse("API_ERROR", &[]));
    };
    let Some(stored) = security
        .datastore()
        .webauthn_by_credential_id(assertion.raw_id.as_ref())
        .await?
    else {
        return Ok(refuse("WEBAUTHN_UNKNOWN_CREDENTIAL_ID", &[]));
    };
    let Some(user) = security.datastore().user_by_id(stored.user_id).await? else {
        return Ok(refuse("WEBAUTHN_ORPHAN_CREDENTIAL_ID", &[]));
    };
    if let Some(handle) = assertion.get_user_unique_id() {
        let expected = user.fs_webauthn_user_handle.as_deref().unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(handle, expected.as_bytes())) {
            return Ok(refuse("WEBAUTHN_MISMATCH_USER_HANDLE", &[]));
        }
    }
    if pending.user_id.is_some_and(|id| id != user.id) {
        return Ok(refuse("WEBAUTHN_MISMATCH_USER_HANDLE", &[]));
    }
    if !usable(&stored, allowed) {
        return Ok(refuse("WEBAUTHN_CREDENTIAL_WRONG_USAGE", &[]));
    }
    if !user.active {
        return Ok(refuse("DISABLED_ACCOUNT", &[]));
    }
    let Some(core) = core_credential(&stored) else {
        return Ok(refuse("API_ERROR", &[]));
    };
    state.set_allowed_credentials(vec![core]);
    let rp = relying_party(ctx, security.config().webauthn.signin_timeout)?;
    let result = match rp.authenticate_credential(&assertion, &state) {
        Ok(result) => result,
        Err(error) => {
            if matches!(error, WebauthnError::CredentialPossibleCompromise) {
                tracing::warn!(
                    user = user.id,
                    credential = stored.id,
                    "webauthn: the sign counter went back (a cloned authenticator?); refused"
                );
            }
            let cause = format!("{error:?}");
            return Ok(refuse("WEBAUTHN_NO_VERIFY", &[("cause", &cause)]));
        }
    };
    let recorded = security
        .datastore()
        .record_webauthn_use(
            stored.id,
            stored.sign_count,
            result.counter(),
            result.backup_state(),
            security.now_naive(),
        )
        .await?;
    if !recorded {
        return Ok(refuse("API_ERROR", &[]));
    }
    Ok(Checked::Accepted {
        user: Box::new(user),
        user_verified: result.user_verified(),
    })
}

/// Takes the ceremony `token`, answering a refusal (unknown, used, expired) as `Err`.
async fn take(
    ctx: &AuthContext,
    token: &str,
    ceremony: Ceremony,
    back: &str,
) -> Result<Result<super::Pending, Reply>, Rejection> {
    let security = ctx.security();
    let within = security.config().webauthn.signin_within;
    Ok(match take_ceremony(ctx, token, ceremony).await? {
        Lookup::Found(pending) => Ok(*pending),
        Lookup::Expired => Err(refused(
            &state_refused(security, true, within),
            back.to_owned(),
        )),
        Lookup::Unknown => Err(refused(
            &state_refused(security, false, within),
            back.to_owned(),
        )),
    })
}

/// Finishes a passkey sign-in with the authenticator's answer.
#[utoipa::path(
    post,
    path = "/wan-signin/{state}",
    tag = "wan",
    request_body = super::WanCredentialBody,
    params(crate::web::openapi::IncludeAuthToken, ("state" = String, Path, description = "The state from the link or the earlier answer.")),
    responses((status = 200, description = "Signed in, or the second factor is needed.", body = crate::web::openapi::SignInAnswer))
)]
pub(super) async fn post_signin_response(
    ctx: AuthContext,
    Path(token): Path<String>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let back = config.url(&config.webauthn.signin_url);
    let pending = match take(&ctx, &token, Ceremony::Signin, &back).await? {
        Ok(pending) => pending,
        Err(reply) => return Ok(reply.into_response()),
    };
    let credential = input.text("credential").unwrap_or_default();
    if pending.secondary {
        // The pending two-factor sign-in must still be the one the ceremony began for.
        let Some(waiting) = secondary_user(&ctx).await? else {
            return Err(Rejection::NothingPending);
        };
        if Some(waiting.id) != pending.user_id {
            return Err(Rejection::NothingPending);
        }
        return Ok(
            match check_assertion(&ctx, &pending, &credential, &[SECONDARY]).await? {
                Checked::Refused(errors) => refused(&errors, back).into_response(),
                Checked::Accepted { user, .. } => {
                    pending_login::complete_login(&ctx, &user).await?
                }
            },
        );
    }
    if !config.webauthn.allow_as_first_factor {
        return Ok(not_found());
    }
    match check_assertion(&ctx, &pending, &credential, &[FIRST]).await? {
        Checked::Refused(errors) => Ok(refused(&errors, back).into_response()),
        Checked::Accepted {
            user,
            user_verified,
        } => {
            // A key that verified the user is two factors in one; one that did not still asks
            // for the second factor of a user who has one.
            let multi = user_verified && config.webauthn.allow_as_multi_factor;
            let needs_second = pending_login::second_factor_needed(&security, &user).await?;
            if needs_second && !multi {
                let reply = crate::features::two_factor::begin_login_reply(
                    &ctx,
                    &user,
                    pending.remember,
                    pending.next.clone(),
                    crate::activity::SignInMethod::Passkey,
                )
                .await?;
                return Ok(reply.into_response());
            }
            Ok(crate::web::auth::finish_login(
                &ctx,
                &user,
                pending.remember,
                pending.next,
                crate::activity::SignInMethod::Passkey,
            )
            .await?)
        }
    }
}

/// The keys that may re-authenticate (`SECURITY_WAN_ALLOW_AS_VERIFY`).
fn verify_usages(ctx: &AuthContext) -> Vec<&str> {
    ctx.security()
        .config()
        .webauthn
        .allow_as_verify
        .iter()
        .map(String::as_str)
        .collect()
}

/// The passkey re-authentication form.
#[utoipa::path(
    get,
    path = "/wan-verify",
    tag = "wan",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn get_verify(
    ctx: AuthContext,
    _user: CurrentUser,
) -> Result<Response, Rejection> {
    if verify_usages(&ctx).is_empty() {
        return Ok(not_found());
    }
    Ok(Reply::Form(Form::new(VERIFY_TEMPLATE)).into_response())
}

/// Begins re-authenticating with a passkey.
#[utoipa::path(
    post,
    path = "/wan-verify",
    tag = "wan",
    responses((status = 200, description = "Begun.", body = super::WanBegun)),
    security(("signed_in" = []))
)]
pub(super) async fn post_verify(
    ctx: AuthContext,
    user: CurrentUser,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let usages = verify_usages(&ctx);
    if usages.is_empty() {
        return Ok(not_found());
    }
    let creds: Vec<WebauthnCredential> = security
        .datastore()
        .webauthn_credentials(user.user.id)
        .await?
        .into_iter()
        .filter(|c| usable(c, &usages))
        .collect();
    let policy = if usages.contains(&SECONDARY) {
        UserVerificationPolicy::Discouraged_DO_NOT_USE
    } else {
        UserVerificationPolicy::Preferred
    };
    let (options, state) = begin_assertion(&ctx, &creds, policy)?;
    let user_id = user.user.id;
    let token = begin_ceremony(
        &ctx,
        Ceremony::Verify,
        config.webauthn.signin_within,
        state,
        |p| p.user_id = Some(user_id),
    )
    .await?;
    let mut json = Map::new();
    json.insert("credential_options".into(), options.clone());
    json.insert("wan_state".into(), json!(token));
    Ok(Reply::done(
        Json::Base(json),
        Html::Page {
            template: VERIFY_TEMPLATE,
            context: minijinja::context! {
                wan_state => token,
                credential_options => options.to_string(),
            },
        },
    )
    .into_response())
}

/// Finishes re-authenticating with a passkey.
#[utoipa::path(
    post,
    path = "/wan-verify/{state}",
    tag = "wan",
    request_body = super::WanCredentialBody,
    params(("state" = String, Path, description = "The state from the link or the earlier answer.")),
    responses((status = 200, description = "Confirmed.", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn post_verify_response(
    ctx: AuthContext,
    user: CurrentUser,
    Path(token): Path<String>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let back = config.url(&config.webauthn.verify_url);
    let usages = verify_usages(&ctx);
    if usages.is_empty() {
        return Ok(not_found());
    }
    let pending = match take(&ctx, &token, Ceremony::Verify, &back).await? {
        Ok(pending) => pending,
        Err(reply) => return Ok(reply.into_response()),
    };
    if pending.user_id != Some(user.user.id) {
        let errors = FieldErrors::single("", security.msg("API_ERROR", &[]));
        return Ok(refused(&errors, back).into_response());
    }
    let credential = input.text("credential").unwrap_or_default();
    match check_assertion(&ctx, &pending, &credential, &usages).await? {
        Checked::Refused(errors) => Ok(refused(&errors, back).into_response()),
        Checked::Accepted { .. } => {
            crate::web::auth::mark_fresh(&ctx).await?;
            let mut json = Map::new();
            json.insert("user".into(), ctx.user_payload(&user, false)?);
            Ok(Reply::done(
                Json::Base(json),
                Html::flash_redirect(
                    "success",
                    security.msg("REAUTHENTICATION_SUCCESSFUL", &[]),
                    config.login.post_view.clone(),
                ),
            )
            .into_response())
        }
    }
}

/// The body of `POST /wan-signin`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct WanSigninBody {
    /// An email address or username (absent: any discoverable passkey).
    #[schema(nullable = false)]
    identity: Option<String>,
    /// Remember me.
    #[schema(nullable = false)]
    remember: Option<bool>,
}
