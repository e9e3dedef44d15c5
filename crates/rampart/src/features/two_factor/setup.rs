//! Turning two-factor sign-in on or off (signed in): `/tf-setup` makes a new secret and keeps it
//! in the session until its first right code at `/tf-validate` turns it on; `{"setup":
//! "disable"}` turns it off. The user is told by mail either way.

use std::fmt;
use std::time::Duration;

use axum::extract::Path;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    AUTHENTICATOR, CodeVerdict, EMAIL, Expected, SETUP_CODE, SMS, check, required, send_code,
    send_sms_code,
};
use crate::activity::{ActivityEvent, Device, NewActivity};
use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::{AuthContext, AuthUser};
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::{Limited, Rejection};
use crate::web::security::Security;

const SETUP_SECRET: &str = "tf_setup_secret";
const SETUP_METHOD: &str = "tf_setup_method";
const SETUP_SINCE: &str = "tf_setup_since";
const SETUP_PHONE: &str = "tf_setup_phone";
/// Flask-Security's `SECURITY_TWO_FACTOR_SETUP_SALT`: the setup state token (`tf_state_token`).
const STATE_SALT: &str = "tf-setup-salt";

/// The setup state token's payload, as Flask-Security's `two_factor_setup` signs it: the new
/// secret (stored form: passlib's encrypted JSON under `SECURITY_TOTP_SECRETS`, or base32), the
/// method and the phone (E.164, the SMS method). `POST /tf-setup/<token>` with the first code finishes
/// the setup without the session, for tokens of either server.
#[derive(Serialize, Deserialize)]
struct SetupState {
    totp_secret: String,
    method: String,
    phone: Option<String>,
}

/// How long a setup may wait for its first code (Flask-Security's `TWO_FACTOR_SETUP_WITHIN`).
const SETUP_WITHIN: Duration = Duration::from_secs(30 * 60);

/// A method being set up: made by [`start_setup`], on once [`confirm_setup`] accepts its first
/// code. Not on the user yet (the web keeps it in the session).
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSetup {
    /// [`AUTHENTICATOR`], [`EMAIL`] or [`SMS`].
    pub method: String,
    /// The phone codes are texted to (E.164; the SMS method only).
    pub phone: Option<String>,
    /// The new TOTP secret (base32).
    pub secret: String,
    /// When the setup began (Unix seconds, from the handle's clock).
    pub since: u64,
}

impl fmt::Debug for PendingSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSetup")
            .field("method", &self.method)
            .field("phone", &self.phone)
            .field("secret", &"[redacted]")
            .field("since", &self.since)
            .finish()
    }
}

/// What a setup's first code came to ([`confirm_setup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SetupVerdict {
    /// The method is on (and the user was told by mail).
    Enabled,
    /// The setup waited too long for its first code; start again.
    Expired,
    /// Wrong or expired.
    Invalid,
    /// A right code of a time step this user has used already (see
    /// [`CodeVerdict::AlreadyUsed`]).
    AlreadyUsed,
    /// Too many attempts for this user (see [`CodeVerdict::Limited`]).
    Limited(Limited),
}

/// Starts setting up `method` for `user`: a new secret, and for the email method a fresh code
/// mailed. `Err` with the form's errors when `method` is not one of
/// `SECURITY_TWO_FACTOR_ENABLED_METHODS`.
///
/// # Errors
///
/// The datastore's errors; rendering the mail fails.
pub async fn start_setup(
    security: &Security,
    user: &User,
    method: &str,
) -> crate::Result<Result<PendingSetup, FieldErrors>> {
    start_setup_to(security, user, method, None).await
}

/// [`start_setup`] with the phone (as typed) codes are texted to, for the [`SMS`] method: it
/// must be a valid number (E.164 after `SECURITY_PHONE_REGION_DEFAULT`), else the form's
/// `phone` error.
///
/// # Errors
///
/// As for [`start_setup`]; the text message provider's failure.
pub async fn start_setup_to(
    security: &Security,
    user: &User,
    method: &str,
    phone: Option<&str>,
) -> crate::Result<Result<PendingSetup, FieldErrors>> {
    if !available_methods(security.config()).contains(&method) {
        return Ok(Err(FieldErrors::single(
            "setup",
            security.msg("TWO_FACTOR_METHOD_NOT_AVAILABLE", &[]),
        )));
    }
    let phone = if method == SMS {
        let region = &security.config().sms.phone_region_default;
        match phone.and_then(|p| crate::phone::canonical(p, region)) {
            Some(phone) => Some(phone),
            None => {
                return Ok(Err(FieldErrors::single(
                    "phone",
                    security.msg("PHONE_INVALID", &[]),
                )));
            }
        }
    } else {
        None
    };
    let setup = PendingSetup {
        method: method.to_owned(),
        phone,
        secret: crate::totp::new_secret(),
        since: security.unix_now(),
    };
    if method == EMAIL {
        send_code(security, user, &user.email, SETUP_CODE).await?;
    }
    if let Some(phone) = setup.phone.as_deref()
        && !send_sms_code(security, user, phone, SETUP_CODE).await?
    {
        return Ok(Err(FieldErrors::single(
            "setup",
            security.msg("FAILED_TO_SEND_CODE", &[]),
        )));
    }
    Ok(Ok(setup))
}

/// Checks a setup's first `code` (the mailed one for the email method, see
/// [`super::check_code_for`]); a right one turns the method on for `user` (the secret stored as
/// `SECURITY_TOTP_SECRETS` writes it), signs them out everywhere else (a new `fs_uniquifier`;
/// every session and remember-me series ends) and tells them by mail.
///
/// # Errors
///
/// The datastore's errors; rendering the mail fails.
pub async fn confirm_setup(
    security: &Security,
    user: &User,
    setup: &PendingSetup,
    code: &str,
) -> crate::Result<SetupVerdict> {
    confirm_setup_from(security, user, setup, code, None).await
}

/// [`confirm_setup`] from a request's `device` (recorded with `two_factor_enabled`).
async fn confirm_setup_from(
    security: &Security,
    user: &User,
    setup: &PendingSetup,
    code: &str,
    device: Option<Device>,
) -> crate::Result<SetupVerdict> {
    if security.unix_now().saturating_sub(setup.since) > SETUP_WITHIN.as_secs() {
        return Ok(SetupVerdict::Expired);
    }
    let expected = if setup.method == EMAIL || setup.method == SMS {
        Expected::Mailed(SETUP_CODE)
    } else {
        Expected::Authenticator(&setup.secret)
    };
    match check(security, user, expected, code).await? {
        CodeVerdict::Accepted => {}
        CodeVerdict::Invalid => return Ok(SetupVerdict::Invalid),
        CodeVerdict::AlreadyUsed => return Ok(SetupVerdict::AlreadyUsed),
        // The setup's own secret is fresh base32: it is always readable.
        CodeVerdict::Unreadable => return Ok(SetupVerdict::Invalid),
        CodeVerdict::Limited(limited) => return Ok(SetupVerdict::Limited(limited)),
    }
    // Stored encrypted under SECURITY_TOTP_SECRETS (when set), and with a new uniquifier: every
    // other session, auth token and remember-me cookie of the user ends, so none issued before
    // skips the new factor.
    let sealed = super::seal_secret(security, &setup.secret)?;
    let datastore = security.datastore();
    let new_uniquifier = crate::model::new_uniquifier();
    let now = security.now_naive();
    let activity = change_activity(user, true, device);
    let phone = setup.phone.as_deref().filter(|_| setup.method == SMS);
    // The phone with the method, in one statement; the record in the same transaction.
    let id = datastore
        .enable_two_factor_recorded(
            user.id,
            &user.fs_uniquifier,
            &new_uniquifier,
            &setup.method,
            &sealed,
            phone,
            now,
            &activity,
        )
        .await?;
    crate::web::activity::broadcast(security, &activity, id, now);
    notify_change(security, user, Some(&setup.method))?;
    Ok(SetupVerdict::Enabled)
}

/// Turns two-factor sign-in off for `user`, telling them by mail (nothing happens when it is
/// off already).
///
/// # Errors
///
/// The datastore's errors; rendering the mail fails.
pub async fn disable(security: &Security, user: &User) -> crate::Result<()> {
    disable_from(security, user, None).await
}

/// [`disable`] from a request's `device` (recorded with `two_factor_disabled`).
async fn disable_from(
    security: &Security,
    user: &User,
    device: Option<Device>,
) -> crate::Result<()> {
    if required(security.config(), user) {
        let activity = change_activity(user, false, device);
        let now = security.now_naive();
        let id = security
            .datastore()
            .set_two_factor_recorded(user.id, None, None, now, &activity)
            .await?;
        crate::web::activity::broadcast(security, &activity, id, now);
        notify_change(security, user, None)?;
    }
    Ok(())
}

/// The activity record of two-factor sign-in turned on (`enabled`) or off for `user`, from the
/// `device` of the request that did it, when there is one.
fn change_activity(user: &User, enabled: bool, device: Option<Device>) -> NewActivity {
    NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: if enabled {
            ActivityEvent::TwoFactorEnabled
        } else {
            ActivityEvent::TwoFactorDisabled
        },
        device,
    }
}

/// Tells `user` by mail that two-factor sign-in is now `method` (on) or off (`None`), so a change
/// made by someone else does not go unnoticed.
fn notify_change(security: &Security, user: &User, method: Option<&str>) -> crate::Result<()> {
    crate::web::notify::send(
        security,
        "two_factor_changed",
        &user.email,
        context! {
            user => crate::web::notify::user_context(user),
            method => method,
            app_name => security.config().app_name,
        },
    )
}

/// The setup this session waits to finish, if any.
pub(super) async fn pending_setup(ctx: &AuthContext) -> crate::Result<Option<PendingSetup>> {
    let Some(secret) = ctx.session.get::<String>(SETUP_SECRET).await? else {
        return Ok(None);
    };
    let method: String = ctx.session.get(SETUP_METHOD).await?.unwrap_or_default();
    let since: u64 = ctx.session.get(SETUP_SINCE).await?.unwrap_or(0);
    let phone: Option<String> = ctx
        .session
        .get::<Option<String>>(SETUP_PHONE)
        .await?
        .flatten();
    Ok(Some(PendingSetup {
        method,
        phone,
        secret,
        since,
    }))
}

/// The method of the setup this session waits to finish, if any.
pub(super) async fn pending_method(ctx: &AuthContext) -> crate::Result<Option<String>> {
    Ok(ctx.session.get::<String>(SETUP_METHOD).await?)
}

async fn keep_setup(ctx: &AuthContext, setup: &PendingSetup) -> crate::Result<()> {
    ctx.session.insert(SETUP_SECRET, &setup.secret).await?;
    ctx.session.insert(SETUP_METHOD, &setup.method).await?;
    ctx.session.insert(SETUP_SINCE, setup.since).await?;
    ctx.session.insert(SETUP_PHONE, &setup.phone).await?;
    Ok(())
}

async fn forget_setup(ctx: &AuthContext) -> crate::Result<()> {
    for key in [SETUP_SECRET, SETUP_METHOD, SETUP_SINCE, SETUP_PHONE] {
        ctx.session.remove_value(key).await?;
    }
    Ok(())
}

fn available_methods(config: &SecurityConfig) -> Vec<&str> {
    [AUTHENTICATOR, EMAIL, SMS]
        .into_iter()
        .filter(|m| config.two_factor.enabled_methods.iter().any(|e| e == m))
        .collect()
}

/// Whether `user` has two-factor sign-in on, and their method if so.
fn current_method(config: &SecurityConfig, user: &User) -> (bool, Option<String>) {
    let enabled = required(config, user);
    (enabled, user.tf_primary_method.clone().filter(|_| enabled))
}

/// The setup page (`security/two_factor_setup.html`): the method that is on (if any), the ones
/// to choose from, and `setup` (see [`setup_context`]) while a new one waits for its first code.
fn setup_form(
    config: &SecurityConfig,
    enabled: bool,
    method: Option<String>,
    setup: Option<Value>,
) -> Form {
    Form::new("security/two_factor_setup.html").page(context! {
        enabled => enabled,
        method => method,
        available_methods => available_methods(config),
        setup => setup,
    })
}

/// The two-factor setup form: the methods and the one in use. Anonymous (no sign-in in progress): 400.
#[utoipa::path(
    get,
    path = "/tf-setup",
    tag = "tf",
    responses((status = 200, description = "The form.", body = TfSetupForm))
)]
pub(super) async fn get_setup(
    ctx: AuthContext,
    user: Option<CurrentUser>,
) -> Result<Reply, Rejection> {
    // Nobody signed in (e.g. a sign-in still waiting for its code): nothing to set up.
    let user = user.ok_or(Rejection::NothingPending)?;
    crate::web::auth::require_fresh(&ctx).await?;
    let config = ctx.security().config();
    let (enabled, method) = current_method(config, &user.user);
    Ok(Reply::Form(
        setup_form(config, enabled, method.clone(), None)
            .json("tf_available_methods", json!(available_methods(config)))
            .json("tf_method", json!(method))
            .json("tf_phone_number", json!(user.user.tf_phone_number))
            .json("tf_primary_method", json!(method))
            .json("tf_required", json!(enabled)),
    ))
}

/// Begins setting up a method (`authenticator`, `email`, `sms`), or turns two-factor off (`disable`).
#[utoipa::path(
    post,
    path = "/tf-setup",
    tag = "tf",
    request_body = TfSetupBody,
    responses((status = 200, description = "Begun (prove it at `/tf-validate`), or turned off.", body = TfSetupAnswer))
)]
pub(super) async fn post_setup(
    ctx: AuthContext,
    user: Option<CurrentUser>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let user = user.ok_or(Rejection::NothingPending)?;
    crate::web::auth::require_fresh(&ctx).await?;
    let security = ctx.security().clone();
    let config = security.config();
    let (enabled, method) = current_method(config, &user.user);
    let choice = input.text("setup").unwrap_or_default();
    let typed_phone = input.text("phone");
    if choice == "disable" {
        forget_setup(&ctx).await?;
        disable_from(
            &security,
            &user.user,
            Some(crate::web::activity::device(&ctx)),
        )
        .await?;
        let mut json = Map::new();
        json.insert("user".into(), ctx.user_payload(&user, false)?);
        return Ok(Reply::done(
            Json::Base(json),
            Html::flash_redirect(
                "success",
                security.msg("TWO_FACTOR_DISABLED", &[]),
                post_setup_view(config),
            ),
        ));
    }
    let setup = match start_setup_to(&security, &user.user, &choice, typed_phone.as_deref()).await?
    {
        Ok(setup) => setup,
        Err(errors) => {
            return Ok(Reply::Invalid(
                setup_form(config, enabled, method, None).errors(errors),
            ));
        }
    };
    keep_setup(&ctx, &setup).await?;
    let state = SetupState {
        totp_secret: super::seal_secret(&security, &setup.secret)?,
        method: choice.clone(),
        phone: setup.phone.clone(),
    };
    let state_token = security
        .signer()
        .sign(STATE_SALT, &state, security.clock().now())?;
    let mut json = Map::new();
    json.insert("tf_method".into(), json!(choice));
    json.insert("tf_primary_method".into(), json!(choice));
    json.insert("tf_state".into(), json!("validating_profile"));
    json.insert("tf_state_token".into(), json!(state_token));
    if choice == SMS {
        json.insert("tf_phone_number".into(), json!(setup.phone));
    }
    if choice == AUTHENTICATOR {
        let (issuer, uri) = authenticator(config, &user.user, &setup.secret);
        json.insert("tf_authr_b32key".into(), json!(setup.secret));
        json.insert("tf_authr_issuer".into(), json!(issuer));
        json.insert(
            "tf_authr_key".into(),
            json!(crate::totp::grouped(&setup.secret)),
        );
        json.insert("tf_authr_uri".into(), json!(uri));
        json.insert("tf_authr_username".into(), json!(user.user.email));
    }
    let context = setup_context(&security, &user.user, &choice, &setup.secret);
    Ok(Reply::done(
        Json::Base(json),
        Html::Form(setup_form(config, enabled, method, Some(context))),
    ))
}

/// `POST /tf-setup/<token>` (signed in): the first code of the setup the state token carries
/// (Flask-Security's `two_factor_setup_validate`), so a setup started by either server — or by a
/// client without the session — finishes here. A token older than the setup may wait, or not
/// signed by this deployment, is refused.
#[utoipa::path(
    post,
    path = "/tf-setup/{token}",
    tag = "tf",
    request_body = crate::web::openapi::CodeBody,
    params(("token" = String, Path, description = "The token from the link or the earlier answer.")),
    responses((status = 200, description = "The method is in use.", body = crate::web::openapi::UserAnswer))
)]
pub(super) async fn post_setup_validate(
    ctx: AuthContext,
    user: Option<CurrentUser>,
    Path(token): Path<String>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let user = user.ok_or(Rejection::NothingPending)?;
    let security = ctx.security().clone();
    let config = security.config();
    let code = input.text("code").unwrap_or_default();
    let now = security.clock().now();
    let refused = |message: String| {
        let (enabled, method) = current_method(config, &user.user);
        Reply::Invalid(
            setup_form(config, enabled, method, None).errors(FieldErrors::single("", message)),
        )
    };
    let (state, issued) = match security.signer().verify_with_timestamp::<SetupState>(
        STATE_SALT,
        &token,
        Some(SETUP_WITHIN),
        now,
    ) {
        Ok(found) => found,
        Err(crate::token::TokenError::Expired) => {
            let within = crate::messages::describe_duration(SETUP_WITHIN);
            return Ok(refused(
                security.msg("TWO_FACTOR_SETUP_EXPIRED", &[("within", &within)]),
            ));
        }
        Err(_) => return Ok(refused(security.msg("API_ERROR", &[]))),
    };
    if !available_methods(config).contains(&state.method.as_str()) {
        return Ok(refused(
            security.msg("TWO_FACTOR_METHOD_NOT_AVAILABLE", &[]),
        ));
    }
    let secret = match crate::totp::stored::open(
        &state.totp_secret,
        &config.two_factor.totp_secrets,
    ) {
        Ok(opened) => opened.base32,
        Err(error) => {
            tracing::error!(user_id = user.user.id, %error, "a setup state's secret cannot be read");
            return Ok(refused(security.msg("API_ERROR", &[])));
        }
    };
    let setup = PendingSetup {
        method: state.method,
        phone: state.phone,
        secret,
        since: u64::try_from(issued.unix_timestamp()).unwrap_or(0),
    };
    post_first_code(&ctx, &user, &setup, &code).await
}

/// `POST /tf-validate` while `setup` waits for its first code (signed in as `user`).
pub(super) async fn post_first_code(
    ctx: &AuthContext,
    user: &AuthUser,
    setup: &PendingSetup,
    code: &str,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let device = Some(crate::web::activity::device(ctx));
    match confirm_setup_from(&security, &user.user, setup, code, device).await? {
        SetupVerdict::Enabled => {}
        SetupVerdict::Expired => {
            forget_setup(ctx).await?;
            let within = crate::messages::describe_duration(SETUP_WITHIN);
            let message = security.msg("TWO_FACTOR_SETUP_EXPIRED", &[("within", &within)]);
            return Ok(Reply::done(
                Json::invalid(&FieldErrors::single("", message.clone())),
                Html::flash_redirect("error", message, config.url(&config.two_factor.setup_url)),
            ));
        }
        SetupVerdict::Limited(limited) => return Err(Rejection::Limited(limited)),
        verdict @ (SetupVerdict::Invalid | SetupVerdict::AlreadyUsed) => {
            let (enabled, current) = current_method(config, &user.user);
            let context = setup_context(&security, &user.user, &setup.method, &setup.secret);
            let errors = if verdict == SetupVerdict::AlreadyUsed {
                super::code_already_used(&security)
            } else {
                super::invalid_code(&security)
            };
            let form = setup_form(config, enabled, current, Some(context)).errors(errors);
            return Ok(Reply::Invalid(form));
        }
    }
    forget_setup(ctx).await?;
    // This session stays signed in under the new uniquifier (every other one has ended).
    let updated = security
        .datastore()
        .user_by_id(user.user.id)
        .await?
        .ok_or(Rejection::NothingPending)?;
    crate::web::auth::refresh_session_user(ctx, &updated).await?;
    let mut user = user.clone();
    user.user = updated;
    let mut json = Map::new();
    json.insert("user".into(), ctx.user_payload(&user, false)?);
    Ok(Reply::done(
        Json::Base(json),
        Html::flash_redirect(
            "success",
            security.msg("TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL", &[]),
            post_setup_view(config),
        ),
    ))
}

/// What the setup page shows while a new method waits for its first code: the QR code and the
/// key for an authenticator.
fn setup_context(security: &Security, user: &User, method: &str, secret: &str) -> Value {
    let qr = (method == AUTHENTICATOR)
        .then(|| crate::totp::qr_svg(&authenticator(security.config(), user, secret).1))
        .flatten();
    json!({
        "method": method,
        "qr": qr,
        "key": crate::totp::grouped(secret),
    })
}

/// The issuer authenticator apps show (`SECURITY_TOTP_ISSUER`, else the app's name) and the
/// `otpauth://` URI of `secret` for `user`.
fn authenticator(config: &SecurityConfig, user: &User, secret: &str) -> (String, String) {
    let issuer = config
        .two_factor
        .totp_issuer
        .clone()
        .unwrap_or_else(|| config.app_name.clone());
    let uri = crate::totp::authenticator_uri(&issuer, &user.email, secret);
    (issuer, uri)
}

fn post_setup_view(config: &SecurityConfig) -> String {
    config
        .two_factor
        .post_setup_view
        .clone()
        .unwrap_or_else(|| config.url(&config.two_factor.setup_url))
}

/// The answer of `GET /tf-setup`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_setup` renders")]
pub(crate) struct TfSetupForm {
    /// The session's CSRF token.
    csrf_token: String,
    /// The methods that can be set up.
    tf_available_methods: Vec<String>,
    /// The method in use (`null`: none).
    tf_method: Option<String>,
    /// The phone number of the `sms` method.
    tf_phone_number: Option<String>,
    /// The method in use (`null`: none).
    tf_primary_method: Option<String>,
    /// Whether two-factor is on.
    tf_required: bool,
}

/// The body of `POST /tf-setup`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct TfSetupBody {
    /// `authenticator`, `email`, `sms` or `disable`.
    setup: String,
    /// The phone number, for `sms`.
    #[schema(nullable = false)]
    phone: Option<String>,
}

/// The answer of `POST /tf-setup`: the setup begun (with the authenticator's secret), or
/// two-factor turned off (`user`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `post_setup` renders")]
pub(crate) struct TfSetupAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// The method being set up.
    #[schema(nullable = false)]
    tf_method: Option<String>,
    /// `validating_profile` while the setup waits for its first code.
    #[schema(nullable = false)]
    tf_state: Option<String>,
    /// The state token for `POST /tf-setup/{token}`.
    #[schema(nullable = false)]
    tf_state_token: Option<String>,
    /// The authenticator's secret (base32).
    #[schema(nullable = false)]
    tf_authr_key: Option<String>,
    /// The `otpauth://` URI for the authenticator app.
    #[schema(nullable = false)]
    tf_authr_uri: Option<String>,
    /// The user, when two-factor was turned off.
    #[schema(nullable = false)]
    user: Option<crate::web::openapi::UserPayload>,
}
