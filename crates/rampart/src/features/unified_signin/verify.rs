//! Re-authentication with any active method (freshness): `GET|POST /us-verify` and
//! `POST /us-verify/send-code`.

use axum::extract::Query;
use axum::http::StatusCode;
use minijinja::context;
use serde_json::{Map, json};

use super::{
    EMAIL, PasscodeVerdict, SMS, active_code_methods, available_methods, check_passcode,
    invalid_passcode, secrets, send_code, send_failed, signin_purpose,
};
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const TEMPLATE: &str = "security/us_verify.html";

#[derive(serde::Deserialize)]
pub(super) struct VerifyQuery {
    next: Option<String>,
}

/// The verify form; JSON: `available_methods`, `code_methods` (the user's),
/// `has_webauthn_verify_credential`, `oauth_enabled`, `oauth_providers`.
async fn verify_form(
    ctx: &AuthContext,
    user: &User,
    next: Option<&str>,
    chosen_method: Option<&str>,
) -> crate::Result<Form> {
    let security = ctx.security();
    let config = security.config();
    let next = next.filter(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).is_ok());
    let webauthn = config.webauthn.enabled
        && !config.webauthn.allow_as_verify.is_empty()
        && security
            .datastore()
            .has_webauthn_usage(user.id, "first")
            .await?;
    let codes = active_code_methods(config, user);
    Ok(Form::new(TEMPLATE)
        .page(context! {
            code_methods => codes,
            chosen_method => chosen_method,
            next => next,
            has_webauthn_verify_credential => webauthn,
        })
        .json("available_methods", json!(available_methods(config)))
        .json("code_methods", json!(codes))
        .json("has_webauthn_verify_credential", json!(webauthn))
        .json("oauth_enabled", json!(false))
        .json("oauth_providers", json!([])))
}

/// The re-authentication form of unified sign-in.
#[utoipa::path(
    get,
    path = "/us-verify",
    tag = "us",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn get_verify(
    ctx: AuthContext,
    user: CurrentUser,
    Query(query): Query<VerifyQuery>,
) -> Result<Reply, Rejection> {
    let mut form = verify_form(&ctx, &user.user, query.next.as_deref(), None).await?;
    form = form.json("user", ctx.user_payload(&user, false)?);
    Ok(Reply::Form(form))
}

/// Re-authenticates with a passcode (`SECURITY_FRESHNESS`).
#[utoipa::path(
    post,
    path = "/us-verify",
    tag = "us",
    request_body = super::setup::PasscodeBody,
    responses((status = 200, description = "Confirmed.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn post_verify(
    ctx: AuthContext,
    user: CurrentUser,
    Query(query): Query<VerifyQuery>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let passcode = input.text("passcode").unwrap_or_default();
    let errors = input.take_errors();
    let next = query.next.as_deref();
    if !errors.is_empty() {
        return refused(&ctx, &user.user, next, errors).await;
    }
    if passcode.is_empty() {
        return refused(&ctx, &user.user, next, invalid_passcode(&security)).await;
    }
    match check_passcode(&security, &user.user, &passcode).await? {
        PasscodeVerdict::Accepted(_) => {}
        PasscodeVerdict::Invalid => {
            return refused(&ctx, &user.user, next, invalid_passcode(&security)).await;
        }
        PasscodeVerdict::Limited(limited) => return Err(Rejection::Limited(limited)),
    }
    crate::web::auth::mark_fresh(&ctx).await?;
    let mut json = Map::new();
    json.insert(
        "user".into(),
        ctx.user_payload(&user, include_auth_token(&ctx))?,
    );
    let target = query
        .next
        .as_deref()
        .and_then(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).ok())
        .unwrap_or_else(|| config.login.post_view.clone());
    Ok(Reply::done(
        Json::Base(json),
        Html::flash_redirect(
            "info",
            security.msg("REAUTHENTICATION_SUCCESSFUL", &[]),
            target,
        ),
    ))
}

/// The verify form again with `errors`.
async fn refused(
    ctx: &AuthContext,
    user: &User,
    next: Option<&str>,
    errors: FieldErrors,
) -> Result<Reply, Rejection> {
    Ok(Reply::Invalid(
        verify_form(ctx, user, next, None).await?.errors(errors),
    ))
}

fn include_auth_token(ctx: &AuthContext) -> bool {
    ctx.path_and_query().split_once('?').is_some_and(|(_, q)| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "include_auth_token")
    })
}

/// Checks the method of a verify's send-code for `user`.
fn check_method(security: &Security, user: &User, method: &str) -> Result<(), FieldErrors> {
    let config = security.config();
    if !super::is_enabled(config, method) || !secrets(user).contains_key(method) {
        return Err(FieldErrors::single(
            "chosen_method",
            security.msg("US_METHOD_NOT_AVAILABLE", &[]),
        ));
    }
    if method == SMS && user.us_phone_number.is_none() {
        return Err(FieldErrors::single(
            "chosen_method",
            security.msg("PHONE_INVALID", &[]),
        ));
    }
    Ok(())
}

/// Sends a re-authentication code.
#[utoipa::path(
    post,
    path = "/us-verify/send-code",
    tag = "us",
    request_body = ChosenMethodBody,
    responses((status = 200, description = "Sent.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn post_send_code(
    ctx: AuthContext,
    user: CurrentUser,
    Query(query): Query<VerifyQuery>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let method = input.text("chosen_method").unwrap_or_default();
    let mut errors = input.take_errors();
    if errors.is_empty()
        && let Err(refused) = check_method(&security, &user.user, &method)
    {
        errors = refused;
    }
    let form = verify_form(&ctx, &user.user, query.next.as_deref(), Some(&method)).await?;
    if !errors.is_empty() {
        return Ok(Reply::Invalid(form.errors(errors)));
    }
    crate::web::rate_limit::check_mail(&ctx, &format!("us-verify:{}", user.user.id)).await?;
    if method == EMAIL || method == SMS {
        let phone = user.user.us_phone_number.clone();
        let sent = send_code(
            &security,
            &user.user,
            &method,
            signin_purpose(&method),
            phone.as_deref(),
            None,
        )
        .await?;
        if sent.is_err() {
            let errors = send_failed(&security);
            return Ok(Reply::done(
                Json::Body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"errors": errors.all_messages(), "field_errors": errors.to_json()}),
                ),
                Html::Form(form.errors(errors)),
            ));
        }
    }
    let message = security.msg("CODE_HAS_BEEN_SENT", &[]);
    Ok(Reply::done(
        Json::base(),
        Html::Form(form.page(context! {
            code_methods => active_code_methods(security.config(), &user.user),
            chosen_method => method,
            code_sent => true,
            flash_message => message,
        })),
    ))
}

/// The body of `POST /us-verify/send-code`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct ChosenMethodBody {
    /// `email` or `sms`.
    chosen_method: String,
}
