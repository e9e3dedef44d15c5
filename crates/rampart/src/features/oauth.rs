//! Social sign-in (`SECURITY_OAUTH_ENABLE`): OAuth 2 / OpenID Connect providers, Flask-Security
//! 5's `oauth_glue` routes, with sign-up and account linking as django-allauth does.
//!
//! Flow: `POST /login/oauthstart/<name>` (a form button with the CSRF token, so no other site can
//! begin a sign-in; `next` in the form or the query; each start counts against
//! `SECURITY_LOGIN_RATE_LIMIT` for the client's address, taken back when the sign-in completes)
//! → the flow's `state`, `nonce` and PKCE
//! verifier (S256) are kept in this browser's session, single use, for `SECURITY_OAUTH_WITHIN`
//! → redirect to the provider → `GET /login/oauthresponse/<name>` (the redirect URI,
//! `{base}/login/oauthresponse/<name>`): the flow is taken (used up, right or wrong) by its
//! `state` → the code is exchanged with the PKCE verifier (redirects not followed) → the ID token
//! is checked against the provider's JWKS (signature, issuer, audience, expiry, nonce; discovery
//! and keys fetched afresh for each step, so rotated keys are always known) → the email and
//! whether it is verified come from the userinfo endpoint (GitHub: its `/user` and
//! `/user/emails` API, the verified primary email only) → the account (`oauth/account.rs`) →
//! the second factor when the user has one (hand-off `oauth → two_factor`) → signed in as any
//! login is ([`finish_login`](crate::web::auth::finish_login)), to `next` or
//! `SECURITY_POST_LOGIN_VIEW`.
//!
//! Refusals (unknown or used `state`, a flow begun in another browser, an expired flow, a bad ID
//! token, the provider's `error=…`) sign nobody in: browsers go back to the sign-in page with the
//! message (`OAUTH_HANDSHAKE_ERROR` for the provider's errors), JSON clients get the 400
//! envelope. An unknown provider name is a 404.
//!
//! A new person when `SECURITY_USERNAME_ENABLE` and `SECURITY_USERNAME_REQUIRED` want a username
//! is asked for one first (`oauth/signup.rs`): browsers go to
//! `<SECURITY_OAUTH_RESPONSE_URL>/<name>/username`, JSON clients get a 400 envelope naming it
//! (`username_url`); the provider's verified identity waits in the session meanwhile.
//!
//! Re-authentication (signed in, as Flask-Security 5.8's `oauth_verify_start`):
//! `POST <SECURITY_OAUTH_VERIFY_START_URL>/<name>` begins the same flow (answered at the same
//! redirect URI), which ends by marking the session fresh when the provider account is the one
//! linked to the signed-in user (then to `next`, with `REAUTHENTICATION_SUCCESSFUL`); anything
//! else leaves the session as it was and goes back to `SECURITY_VERIFY_URL`.
//!
//! Linking (signed in, fresh): `POST /oauth-link/<name>` begins the same flow, which ends by
//! linking the provider account to the signed-in user; `POST /oauth-link/<name>/delete` unlinks
//! (refused when it is the last way to sign in: no password and no other link).
//!
//! Settings: `SECURITY_OAUTH_ENABLE`, `SECURITY_OAUTH_PROVIDERS`, `OAUTH_<NAME>_ISSUER`,
//! `OAUTH_<NAME>_CLIENT_ID`, `OAUTH_<NAME>_CLIENT_SECRET`, `GITHUB_CLIENT_ID`,
//! `GITHUB_CLIENT_SECRET`, `GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET`, `SECURITY_OAUTH_START_URL`,
//! `SECURITY_OAUTH_RESPONSE_URL`, `SECURITY_OAUTH_LINK_URL`, `SECURITY_OAUTH_WITHIN`.
//! Mails: `welcome` (an account made through a provider), `oauth_notice` (a provider linked or
//! unlinked).

mod account;
mod flow;
mod provider;
mod signup;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::config::{OauthProvider, SecurityConfig};
use crate::web::context::AuthContext;
use crate::web::extract::{CurrentUser, FreshUser};
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

pub(crate) use account::{LinkOutcome, Resolved};
use flow::{Flow, Purpose};

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    let oauth = &config.oauth;
    Router::new()
        .route(
            &format!("{}/{{name}}", config.url(&oauth.start_url)),
            post(post_start),
        )
        .route(
            &format!("{}/{{name}}", config.url(&oauth.response_url)),
            get(get_response),
        )
        .route(
            &format!("{}/{{name}}/username", config.url(&oauth.response_url)),
            get(signup::get_username).post(signup::post_username),
        )
        .route(
            &format!("{}/{{name}}", config.url(&oauth.verify_start_url)),
            post(post_verify_start),
        )
        .route(
            &format!("{}/{{name}}", config.url(&oauth.link_url)),
            get(get_link).post(post_link),
        )
        .route(
            &format!("{}/{{name}}/delete", config.url(&oauth.link_url)),
            post(post_unlink),
        )
}

/// The redirect URI of `provider`: `{base}<SECURITY_OAUTH_RESPONSE_URL>/<name>`.
fn redirect_uri(ctx: &AuthContext, provider: &OauthProvider) -> String {
    let config = ctx.security().config();
    ctx.external_url(&config.url(&format!("{}/{}", config.oauth.response_url, provider.name)))
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// A refusal: JSON clients get the 400 envelope, browsers a flash and `back`.
fn refused(message: String, back: String) -> Response {
    let errors = FieldErrors::single("", message.clone());
    Reply::done(
        Json::invalid(&errors),
        Html::flash_redirect("error", message, back),
    )
    .into_response()
}

/// The sign-in page, where refusals of a sign-in go.
fn login_page(config: &SecurityConfig) -> String {
    config.url(&config.login.url)
}

/// `next` if it is a safe local target; an unsafe one is dropped.
fn safe_next(ctx: &AuthContext, next: Option<String>) -> Option<String> {
    next.filter(|n| !n.is_empty()).and_then(|n| {
        crate::redirect::safe_next(ctx.security().config(), ctx.host.as_deref(), &n).ok()
    })
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Begins a flow with `provider` for `purpose`: the authorization URL to send the browser to.
async fn begin(
    ctx: &AuthContext,
    provider: &OauthProvider,
    purpose: Purpose,
    next: Option<String>,
) -> Result<Response, Rejection> {
    let security = ctx.security();
    let config = security.config();
    let redirect = redirect_uri(ctx, provider);
    let begun = match provider::authorization(config, provider, &redirect).await {
        Ok(begun) => begun,
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "oauth: cannot begin");
            let message = handshake_message(security, "provider_unavailable", &error.to_string());
            let back = match purpose {
                Purpose::Login => login_page(config),
                Purpose::Link(_) => next.unwrap_or_else(|| config.login.post_view.clone()),
                Purpose::Verify(_) => verify_page(config, next.as_deref()),
            };
            return Ok(refused(message, back));
        }
    };
    flow::save(
        ctx,
        Flow {
            provider: provider.name.clone(),
            state: begun.state,
            nonce: begun.nonce,
            verifier: begun.verifier,
            redirect_uri: redirect,
            next,
            purpose,
            expires: security
                .unix_now()
                .saturating_add(config.oauth.within.as_secs()),
        },
    )
    .await?;
    if ctx.is_json() {
        return Ok(crate::web::reply::json(
            StatusCode::OK,
            json!({ "location": begun.url }),
        ));
    }
    Ok(crate::web::reply::redirect(&begun.url))
}

/// Begins a sign-in through the provider `name`: JSON clients get the provider's URL to open.
#[utoipa::path(
    post,
    path = "/login/oauthstart/{name}",
    tag = "oauth",
    request_body = NextBody,
    params(("name" = String, Path, description = "The name from the link or the earlier answer.")),
    responses((status = 200, description = "Where to send the browser.", body = LocationAnswer))
)]
async fn post_start(
    ctx: AuthContext,
    Path(name): Path<String>,
    Query(query): Query<NextQuery>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let Some(provider) = config.oauth.provider(&name) else {
        return Ok(not_found());
    };
    if ctx.user().is_some() {
        // As Flask-Security: a signed-in browser goes on; JSON is told it is signed in.
        if ctx.is_json() {
            let message = security.msg("ANONYMOUS_USER_REQUIRED", &[]);
            return Ok(crate::web::reply::json_errors(
                StatusCode::BAD_REQUEST,
                &[message],
                None,
            ));
        }
        return Ok(crate::web::reply::redirect(&config.login.post_view));
    }
    crate::web::rate_limit::check_oauth_start(&ctx).await?;
    let next = safe_next(&ctx, input.text("next").or(query.next));
    begin(&ctx, &provider, Purpose::Login, next).await
}

/// Where a link or unlink goes back to: the form's (or the query's) safe `next` — the app's
/// security page — else `SECURITY_POST_LOGIN_VIEW`.
fn link_back(ctx: &AuthContext, input: &mut FormInput, query: NextQuery) -> String {
    safe_next(ctx, input.text("next").or(query.next))
        .unwrap_or_else(|| ctx.security().config().login.post_view.clone())
}

/// Back from re-authenticating (`/verify?next=` this URL): to the page the link began on.
async fn get_link(ctx: AuthContext, Query(query): Query<NextQuery>) -> Response {
    let target = safe_next(&ctx, query.next)
        .unwrap_or_else(|| ctx.security().config().login.post_view.clone());
    crate::web::reply::redirect(&target)
}

/// Begins linking the provider `name` to the signed-in account.
#[utoipa::path(
    post,
    path = "/oauth-link/{name}",
    tag = "oauth",
    request_body = NextBody,
    params(("name" = String, Path, description = "The name from the link or the earlier answer.")),
    responses((status = 200, description = "Where to send the browser.", body = LocationAnswer)),
    security(("signed_in" = []))
)]
async fn post_link(
    ctx: AuthContext,
    user: FreshUser,
    Path(name): Path<String>,
    Query(query): Query<NextQuery>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let Some(provider) = ctx.security().config().oauth.provider(&name) else {
        return Ok(not_found());
    };
    let back = link_back(&ctx, &mut input, query);
    begin(&ctx, &provider, Purpose::Link(user.user.id), Some(back)).await
}

/// Begins re-authenticating the signed-in user through `name`; back to `next` (safe) once
/// done.
#[utoipa::path(
    post,
    path = "/login/oauth-verify-start/{name}",
    tag = "oauth",
    request_body = NextBody,
    params(("name" = String, Path, description = "The name from the link or the earlier answer.")),
    responses((status = 200, description = "Where to send the browser.", body = LocationAnswer)),
    security(("signed_in" = []))
)]
async fn post_verify_start(
    ctx: AuthContext,
    user: CurrentUser,
    Path(name): Path<String>,
    Query(query): Query<NextQuery>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let Some(provider) = ctx.security().config().oauth.provider(&name) else {
        return Ok(not_found());
    };
    let next = safe_next(&ctx, input.text("next").or(query.next));
    begin(&ctx, &provider, Purpose::Verify(user.user.id), next).await
}

/// The verify page, with `next` kept, where a failed re-authentication goes back to.
fn verify_page(config: &SecurityConfig, next: Option<&str>) -> String {
    let page = config.url(&config.verify.url);
    match next {
        Some(next) => format!(
            "{page}?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ),
        None => page,
    }
}

/// Unlinks the provider `name` from the account.
#[utoipa::path(
    post,
    path = "/oauth-link/{name}/delete",
    tag = "oauth",
    request_body = NextBody,
    params(("name" = String, Path, description = "The name from the link or the earlier answer.")),
    responses((status = 200, description = "Unlinked.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
async fn post_unlink(
    ctx: AuthContext,
    user: FreshUser,
    Path(name): Path<String>,
    Query(query): Query<NextQuery>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let Some(provider) = security.config().oauth.provider(&name) else {
        return Ok(not_found());
    };
    let back = link_back(&ctx, &mut input, query);
    let device = crate::web::activity::device(&ctx);
    match account::unlink(&security, &user.user, &provider.name, device).await? {
        LinkOutcome::Done(message) => Ok(Reply::done(
            Json::base(),
            Html::flash_redirect("success", message, back),
        )
        .into_response()),
        LinkOutcome::Refused(message) => Ok(refused(message, back)),
    }
}

/// The query of the provider's redirect.
#[derive(Deserialize)]
struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// Flask-Security's `OAUTH_HANDSHAKE_ERROR` with the error and its description.
fn handshake_message(security: &Security, error: &str, description: &str) -> String {
    security.msg(
        "OAUTH_HANDSHAKE_ERROR",
        &[("exerror", error), ("exdesc", description)],
    )
}

async fn get_response(
    ctx: AuthContext,
    Path(name): Path<String>,
    Query(callback): Query<Callback>,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let Some(provider) = config.oauth.provider(&name) else {
        return Ok(not_found());
    };
    // The flow is used up by its first answer, right or wrong.
    let taken = match callback.state.as_deref() {
        Some(state) => flow::take(&ctx, state).await?,
        None => None,
    };
    let back = match taken.as_ref() {
        Some(Flow {
            purpose: Purpose::Link(_),
            next,
            ..
        }) => next
            .clone()
            .unwrap_or_else(|| config.login.post_view.clone()),
        Some(Flow {
            purpose: Purpose::Verify(_),
            next,
            ..
        }) => verify_page(config, next.as_deref()),
        _ => login_page(config),
    };
    if let Some(error) = callback.error.as_deref() {
        let description = callback.error_description.as_deref().unwrap_or("");
        return Ok(refused(
            handshake_message(&security, error, description),
            back,
        ));
    }
    let now = security.unix_now();
    let flow = match taken {
        Some(flow) if flow.provider == provider.name && flow.expires >= now => flow,
        _ => return Ok(refused(security.msg("OAUTH_STATE_INVALID", &[]), back)),
    };
    if let Some(iss) = callback.iss.as_deref()
        && !provider.issuer.is_empty()
        && iss != provider.issuer
    {
        // RFC 9207: the answer of another provider (a mix-up).
        return Ok(refused(security.msg("OAUTH_STATE_INVALID", &[]), back));
    }
    let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(refused(
            handshake_message(&security, "invalid_request", "no authorization code"),
            back,
        ));
    };
    let identity = match provider::identity(config, &provider, &flow, code).await {
        Ok(identity) => identity,
        Err(error) => {
            tracing::info!(provider = %provider.name, %error, "oauth: sign-in refused");
            return Ok(refused(
                handshake_message(&security, error.code(), &error.to_string()),
                back,
            ));
        }
    };
    match flow.purpose {
        Purpose::Link(user_id) => {
            // The link is for the user who began it, still signed in here.
            if ctx.user().map(|u| u.user.id) != Some(user_id) {
                return Ok(refused(security.msg("OAUTH_STATE_INVALID", &[]), back));
            }
            let device = crate::web::activity::device(&ctx);
            match account::link(&security, user_id, &provider, &identity, device).await? {
                LinkOutcome::Done(message) => Ok(Reply::done(
                    Json::base(),
                    Html::flash_redirect("success", message, back),
                )
                .into_response()),
                LinkOutcome::Refused(message) => Ok(refused(message, back)),
            }
        }
        Purpose::Verify(user_id) => {
            // Only the provider account linked to the user who began it, still signed in here.
            let linked = security
                .datastore()
                .oauth_link(&provider.name, &identity.subject)
                .await?
                .is_some_and(|link| link.user_id == user_id);
            let Some(user) = ctx.user().filter(|u| u.user.id == user_id && linked) else {
                let title = crate::config::OauthConfig::title(&provider.name);
                return Ok(refused(
                    security.msg("OAUTH_NOT_LINKED", &[("provider", &title)]),
                    back,
                ));
            };
            crate::web::auth::mark_fresh(&ctx).await?;
            let mut json = serde_json::Map::new();
            json.insert("user".into(), ctx.user_payload(user, false)?);
            let target = flow.next.unwrap_or_else(|| config.login.post_view.clone());
            Ok(Reply::done(
                Json::Base(json),
                Html::flash_redirect(
                    "success",
                    security.msg("REAUTHENTICATION_SUCCESSFUL", &[]),
                    target,
                ),
            )
            .into_response())
        }
        Purpose::Login => {
            if ctx.user().is_some() {
                return Ok(crate::web::reply::redirect(&config.login.post_view));
            }
            let device = crate::web::activity::device(&ctx);
            match account::resolve(&security, &provider, &identity, device).await? {
                Resolved::Refused(message) => Ok(refused(message, back)),
                Resolved::User(user) => Ok(sign_in(&ctx, &user, flow.next).await?),
                Resolved::UsernameNeeded { email } => {
                    Ok(
                        signup::ask_username(&ctx, &provider, &identity.subject, &email, flow.next)
                            .await?,
                    )
                }
            }
        }
    }
}

/// Signs in `user`, who came through a provider: the start's rate-limit hit is taken back, then
/// the second factor when they have one, else signed in as any login, to `next` or
/// `SECURITY_POST_LOGIN_VIEW`.
async fn sign_in(
    ctx: &AuthContext,
    user: &crate::model::User,
    next: Option<String>,
) -> crate::Result<Response> {
    let security = ctx.security();
    crate::web::rate_limit::undo_oauth_start(ctx).await?;
    if crate::web::pending_login::second_factor_needed(security, user).await? {
        let reply = crate::features::two_factor::begin_login_reply(
            ctx,
            user,
            false,
            next,
            crate::activity::SignInMethod::Provider,
        )
        .await?;
        return Ok(reply.into_response());
    }
    crate::web::auth::finish_login(
        ctx,
        user,
        false,
        next,
        crate::activity::SignInMethod::Provider,
    )
    .await
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        post_start,
        post_link,
        post_verify_start,
        post_unlink,
        signup::get_username,
        signup::post_username
    ))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            (
                "/login/oauthstart/{name}",
                format!("{}/{{name}}", config.url(&config.oauth.start_url)),
            ),
            (
                "/oauth-link/{name}",
                format!("{}/{{name}}", config.url(&config.oauth.link_url)),
            ),
            (
                "/login/oauth-verify-start/{name}",
                format!("{}/{{name}}", config.url(&config.oauth.verify_start_url)),
            ),
            (
                "/oauth-link/{name}/delete",
                format!("{}/{{name}}/delete", config.url(&config.oauth.link_url)),
            ),
            (
                "/login/oauthresponse/{name}/username",
                format!(
                    "{}/{{name}}/username",
                    config.url(&config.oauth.response_url)
                ),
            ),
        ],
    )
}

/// The optional body of the provider flows: where to go once done.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct NextBody {
    /// A local path to go to afterwards.
    #[schema(nullable = false)]
    next: Option<String>,
}

/// The answer to a JSON client that begins a provider flow.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `begin` renders")]
pub(crate) struct LocationAnswer {
    /// The provider's authorization URL.
    location: String,
}
