//! Setting sign-in methods up (signed in, fresh): `GET|POST /us-setup` and
//! `POST /us-setup/<state>`.
//!
//! Nothing is stored until the new method proves itself: `POST /us-setup` signs the new secret,
//! the method and the phone into `state` (Flask-Security's payload, salt
//! `SECURITY_US_SETUP_SALT`, living `SECURITY_US_SETUP_WITHIN`) and sends a code (or shows the
//! authenticator's QR code); the first right code at `/us-setup/<state>` stores it.

use axum::extract::Path;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    AUTHENTICATOR, EMAIL, PASSWORD, SMS, active_methods, available_methods, identity_attributes,
    is_enabled, secrets, send_code, send_failed, setup_methods, setup_purpose,
};
use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const TEMPLATE: &str = "security/us_setup.html";
/// Flask-Security's `SECURITY_US_SETUP_SALT`: the setup `state`.
const STATE_SALT: &str = "us-setup-salt";

/// The setup state's payload, as Flask-Security's `us_setup` signs it: the new secret (stored
/// form: passlib's encrypted JSON under `SECURITY_TOTP_SECRETS`, or base32), the method and the
/// phone (E.164, text messages only).
#[derive(Serialize, Deserialize)]
struct SetupState {
    totp_secret: String,
    chosen_method: String,
    phone_number: Option<String>,
}

/// The phone shown with the setup (with the text-message method only).
fn phone(config: &SecurityConfig, user: &User) -> Option<String> {
    is_enabled(config, SMS)
        .then(|| user.us_phone_number.clone())
        .flatten()
}

/// The setup page; JSON: `active_methods`, `available_methods`, `identity_attributes`,
/// `phone`, `setup_methods`.
fn setup_form(security: &Security, user: &User, setup: Option<Value>) -> Form {
    let config = security.config();
    let active = active_methods(config, user);
    Form::new(TEMPLATE)
        .page(context! {
            active_methods => active,
            available_methods => available_methods(config),
            setup_methods => setup_methods(config),
            phone => phone(config, user),
            setup => setup,
        })
        .json("active_methods", json!(active))
        .json("available_methods", json!(available_methods(config)))
        .json("identity_attributes", json!(identity_attributes(config)))
        .json("phone", json!(phone(config, user)))
        .json("setup_methods", json!(setup_methods(config)))
}

/// The unified sign-in setup form: the methods in use and those that can be set up.
#[utoipa::path(
    get,
    path = "/us-setup",
    tag = "us",
    responses((status = 200, description = "The form.", body = UsSetupForm)),
    security(("signed_in" = []))
)]
pub(super) async fn get_setup(ctx: AuthContext, user: CurrentUser) -> Result<Reply, Rejection> {
    crate::web::auth::require_fresh(&ctx).await?;
    Ok(Reply::Form(setup_form(ctx.security(), &user.user, None)))
}

/// The methods to delete: `delete_method` as a list, or one name (a form's checkbox).
fn delete_methods(input: &FormInput) -> Vec<String> {
    match input.values().get("delete_method") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter(|m| !m.is_empty())
            .collect(),
        Some(Value::String(one)) if !one.is_empty() => one
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// Begins setting up a sign-in method (a code is sent, or the authenticator secret shown).
#[utoipa::path(
    post,
    path = "/us-setup",
    tag = "us",
    request_body = UsSetupBody,
    responses((status = 200, description = "Begun: prove it at `POST /us-setup/{state}`.", body = UsSetupAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn post_setup(
    ctx: AuthContext,
    user: CurrentUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    crate::web::auth::require_fresh(&ctx).await?;
    let security = ctx.security().clone();
    let config = security.config();
    let mut user = user.user.clone();
    let chosen = input.text("chosen_method").filter(|m| !m.is_empty());
    let typed_phone = input.text("phone").filter(|p| !p.trim().is_empty());
    let delete = delete_methods(&input);
    let mut errors = input.take_errors();
    errors.remove("delete_method");
    let refuse = |user: &User, errors: FieldErrors| -> Result<Reply, Rejection> {
        Ok(Reply::Invalid(
            setup_form(&security, user, None).errors(errors),
        ))
    };
    if !errors.is_empty() {
        return refuse(&user, errors);
    }
    if chosen.is_none() && delete.is_empty() {
        return refuse(
            &user,
            FieldErrors::single("", security.msg("API_ERROR", &[])),
        );
    }
    let mut new_phone = None;
    if let Some(method) = chosen.as_deref() {
        if !setup_methods(config).iter().any(|m| m == method) {
            return refuse(
                &user,
                FieldErrors::single(
                    "chosen_method",
                    security.msg("US_METHOD_NOT_AVAILABLE", &[]),
                ),
            );
        }
        if method == SMS {
            let canonical = typed_phone
                .as_deref()
                .and_then(|p| crate::phone::canonical(p, &config.sms.phone_region_default));
            let Some(canonical) = canonical else {
                return refuse(
                    &user,
                    FieldErrors::single("phone", security.msg("PHONE_INVALID", &[])),
                );
            };
            if let Some(other) = security.datastore().user_by_us_phone(&canonical).await?
                && other.id != user.id
            {
                let message = security.msg(
                    "IDENTITY_ALREADY_ASSOCIATED",
                    &[("attr", "us_phone_number"), ("value", &canonical)],
                );
                return refuse(&user, FieldErrors::single("phone", message));
            }
            new_phone = Some(canonical);
        }
    }
    if !delete.is_empty() {
        let active = active_methods(config, &user);
        if delete.iter().any(|m| m == PASSWORD || !active.contains(m)) {
            return refuse(
                &user,
                FieldErrors::single(
                    "delete_method",
                    security.msg("US_METHOD_NOT_AVAILABLE", &[]),
                ),
            );
        }
        let mut kept = secrets(&user);
        for method in &delete {
            kept.remove(method);
        }
        let phone = if delete.iter().any(|m| m == SMS) {
            None
        } else {
            user.us_phone_number.clone()
        };
        let stored = (!kept.is_empty())
            .then(|| serde_json::to_string(&kept))
            .transpose()
            .map_err(|e| crate::Error::Internal(format!("us_totp_secrets: {e}")))?;
        security
            .datastore()
            .set_unified_signin(
                user.id,
                stored.as_deref(),
                phone.as_deref(),
                security.now_naive(),
            )
            .await?;
        user.us_totp_secrets = stored;
        user.us_phone_number = phone;
    }
    let Some(method) = chosen else {
        return Ok(Reply::done(
            Json::base(),
            Html::flash_redirect(
                "success",
                security.msg("US_SETUP_SUCCESSFUL", &[]),
                post_setup_view(config),
            ),
        ));
    };
    let secret = crate::totp::new_secret();
    let sealed = crate::totp::stored::seal(&secret, &config.two_factor.totp_secrets)
        .map_err(|e| crate::Error::Internal(format!("unified sign-in secret: {e}")))?;
    if method == EMAIL || method == SMS {
        let sent = send_code(
            &security,
            &user,
            &method,
            setup_purpose(&method),
            new_phone.as_deref(),
            None,
        )
        .await?;
        if sent.is_err() {
            let errors = send_failed(&security);
            return Ok(Reply::done(
                Json::Body(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"errors": errors.all_messages(), "field_errors": errors.to_json()}),
                ),
                Html::Form(setup_form(&security, &user, None).errors(errors)),
            ));
        }
    }
    let state = SetupState {
        totp_secret: sealed,
        chosen_method: method.clone(),
        phone_number: new_phone.clone(),
    };
    let token = security
        .signer()
        .sign(STATE_SALT, &state, security.clock().now())?;
    let mut json = Map::new();
    json.insert("chosen_method".into(), json!(method));
    json.insert("phone".into(), json!(new_phone));
    json.insert("state".into(), json!(token));
    let mut qr = None;
    if method == AUTHENTICATOR {
        let issuer = config
            .two_factor
            .totp_issuer
            .clone()
            .unwrap_or_else(|| config.app_name.clone());
        let uri = crate::totp::authenticator_uri(&issuer, &user.email, &secret);
        json.insert("authr_key".into(), json!(crate::totp::grouped(&secret)));
        json.insert("authr_b32key".into(), json!(secret));
        json.insert("authr_username".into(), json!(user.email));
        json.insert("authr_issuer".into(), json!(issuer));
        json.insert("authr_uri".into(), json!(uri));
        qr = crate::totp::qr_svg(&uri);
    }
    let setup = json!({
        "method": method,
        "state": token,
        "qr": qr,
        "key": (method == AUTHENTICATOR).then(|| crate::totp::grouped(&secret)),
        "code_sent": method == EMAIL || method == SMS,
    });
    Ok(Reply::done(
        Json::Base(json),
        Html::Form(setup_form(&security, &user, Some(setup))),
    ))
}

fn post_setup_view(config: &SecurityConfig) -> String {
    config
        .unified_signin
        .post_setup_view
        .clone()
        .unwrap_or_else(|| config.url(&config.unified_signin.setup_url))
}

/// Finishes a setup with its state token and a passcode.
#[utoipa::path(
    post,
    path = "/us-setup/{state}",
    tag = "us",
    request_body = PasscodeBody,
    params(("state" = String, Path, description = "The state from the link or the earlier answer.")),
    responses((status = 200, description = "The method is in use.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn post_setup_validate(
    ctx: AuthContext,
    user: CurrentUser,
    Path(token): Path<String>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let user = user.user.clone();
    let setup_url = config.url(&config.unified_signin.setup_url);
    let refuse = |errors: FieldErrors, flash: String| {
        Reply::done(
            Json::invalid(&errors),
            Html::flash_redirect("error", flash, setup_url.clone()),
        )
    };
    let within = config.unified_signin.setup_within;
    let verified = security.signer().verify::<SetupState>(
        STATE_SALT,
        &token,
        Some(within),
        security.clock().now(),
    );
    let state = match verified {
        Ok(state) => state,
        Err(crate::token::TokenError::Expired) => {
            let within = crate::messages::describe_duration(within);
            let message = security.msg("US_SETUP_EXPIRED", &[("within", &within)]);
            return Ok(refuse(FieldErrors::single("", message.clone()), message));
        }
        Err(_) => {
            let message = security.msg("API_ERROR", &[]);
            return Ok(refuse(FieldErrors::single("", message.clone()), message));
        }
    };
    let passcode = input.text("passcode").unwrap_or_default();
    if passcode.trim().is_empty() {
        let message = security.msg("FIELD_REQUIRED", &[]);
        return Ok(refuse(
            FieldErrors::single("passcode", message.clone()),
            message,
        ));
    }
    let method = state.chosen_method.clone();
    if !setup_methods(config).contains(&method) {
        let message = security.msg("US_METHOD_NOT_AVAILABLE", &[]);
        return Ok(refuse(FieldErrors::single("", message.clone()), message));
    }
    if let Err(limited) = crate::web::rate_limit::count_code(&security, user.id).await? {
        return Err(Rejection::Limited(limited));
    }
    let right = if method == AUTHENTICATOR {
        super::authenticator_accepts(&security, &user, &state.totp_secret, &passcode).await?
    } else {
        crate::web::mailed_code::redeem(&security, &user, setup_purpose(&method), &passcode).await?
    };
    if !right {
        let message = security.msg("INVALID_PASSWORD_CODE", &[]);
        return Ok(refuse(
            FieldErrors::single("passcode", message.clone()),
            message,
        ));
    }
    crate::web::rate_limit::clear_codes(&security, user.id).await?;
    let mut all = secrets(&user);
    all.insert(method.clone(), state.totp_secret.clone());
    let stored = serde_json::to_string(&all)
        .map_err(|e| crate::Error::Internal(format!("us_totp_secrets: {e}")))?;
    let phone = if method == SMS {
        state.phone_number.clone()
    } else {
        user.us_phone_number.clone()
    };
    match security
        .datastore()
        .set_unified_signin(
            user.id,
            Some(&stored),
            phone.as_deref(),
            security.now_naive(),
        )
        .await
    {
        Ok(()) => {}
        Err(error) if error.is_conflict() => {
            let message = security.msg(
                "IDENTITY_ALREADY_ASSOCIATED",
                &[
                    ("attr", "us_phone_number"),
                    ("value", phone.as_deref().unwrap_or_default()),
                ],
            );
            return Ok(refuse(FieldErrors::single("", message.clone()), message));
        }
        Err(error) => return Err(crate::Error::from(error).into()),
    }
    let mut json = Map::new();
    json.insert("chosen_method".into(), json!(method));
    json.insert(
        "phone".into(),
        json!(is_enabled(config, SMS).then_some(phone).flatten()),
    );
    Ok(Reply::done(
        Json::Base(json),
        Html::flash_redirect(
            "success",
            security.msg("US_SETUP_SUCCESSFUL", &[]),
            post_setup_view(config),
        ),
    ))
}

/// The answer of `GET /us-setup`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_setup` renders")]
pub(crate) struct UsSetupForm {
    /// The session's CSRF token.
    csrf_token: String,
    /// The methods in use.
    active_methods: Vec<String>,
    /// The sign-in methods.
    available_methods: Vec<String>,
    /// The methods that can be set up.
    setup_methods: Vec<String>,
    /// The phone number of the `sms` method.
    phone: Option<String>,
}

/// The body of `POST /us-setup`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct UsSetupBody {
    /// `email`, `authenticator` or `sms`.
    chosen_method: String,
    /// The phone number, for `sms`.
    #[schema(nullable = false)]
    phone: Option<String>,
}

/// The answer of `POST /us-setup`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `post_setup` renders")]
pub(crate) struct UsSetupAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// The method being set up.
    chosen_method: String,
    /// The state token for `POST /us-setup/{state}`.
    state: String,
    /// The authenticator's secret, grouped by four.
    #[schema(nullable = false)]
    authr_key: Option<String>,
    /// The `otpauth://` URI for the authenticator app.
    #[schema(nullable = false)]
    authr_uri: Option<String>,
}

/// The body of `POST /us-setup/{state}` and `POST /us-verify`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct PasscodeBody {
    /// The code (or, at `/us-verify`, the password).
    passcode: String,
}
