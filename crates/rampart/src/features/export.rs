//! Data export (Rampart's security centre): everything the account holds about its owner, as
//! one JSON file — the account (without the password hash, second-factor secrets, recovery
//! codes or the uniquifier), roles, the app's own sections (the sample app's profile, through
//! [`SecurityBuilder::export_section`](crate::SecurityBuilder::export_section)), linked identity
//! providers, passkeys (names and dates, no key material), live sessions and the activity log.
//!
//! Route: `GET /api/account/export` — a fresh sign-in is required (`SECURITY_FRESHNESS`: JSON
//! 401 `reauth_required`, browsers go to `/verify` and come back); the answer is the document
//! itself (not the JSON envelope) with `Content-Disposition: attachment;
//! filename="account-export.json"`. The format is documented in `docs/export.md`.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::FreshUser;
use crate::web::security::Security;

/// The version of the export format (`docs/export.md`).
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// Most activity events an export carries (newest first); older ones are purged anyway
/// (`SECURITY_ACTIVITY_RETENTION`).
const MAX_EXPORTED_EVENTS: i64 = 10_000;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(&config.url("/api/account/export"), get(get_export))
}

fn iso(at: time::PrimitiveDateTime) -> String {
    crate::activity::iso::format(at)
}

/// The linked identity providers of `user_id`, oldest first, for the export: the provider, the
/// email it gave when the link was made, and when the link was made and last signed in. The
/// provider's subject and any token stay out.
async fn linked_providers(security: &Security, user_id: i64) -> crate::Result<Vec<Value>> {
    let links = security.datastore().oauth_links(user_id).await?;
    Ok(links
        .into_iter()
        .map(|link| {
            json!({
                "provider": link.provider,
                "email": link.email,
                "linked_at": iso(link.created_at),
                "last_used_at": link.last_used_at.map(iso),
            })
        })
        .collect())
}

/// The export of `user` (see the module docs and `docs/export.md`).
///
/// # Errors
///
/// The datastore's, or an app section's.
pub async fn export_account(ctx: &AuthContext, user: &User) -> crate::Result<Value> {
    let security = ctx.security();
    let datastore = security.datastore();
    let roles = datastore.user_roles(user.id).await?;
    let passkeys = datastore.webauthn_credentials(user.id).await?;
    let sessions = crate::web::session_list::list_sessions(ctx, user).await?;
    let activity = datastore
        .activity_of_user(user.id, None, MAX_EXPORTED_EVENTS)
        .await?;
    let mut document = Map::new();
    document.insert("format".into(), json!("rampart-account-export"));
    document.insert("version".into(), json!(EXPORT_FORMAT_VERSION));
    document.insert("exported_at".into(), json!(iso(security.now_naive())));
    document.insert(
        "account".into(),
        json!({
            "id": user.id,
            "email": user.email,
            "username": user.username,
            "active": user.active,
            "confirmed_at": user.confirmed_at.map(iso),
            "created_at": iso(user.create_datetime),
            "updated_at": iso(user.update_datetime),
            "last_login_at": user.last_login_at.map(iso),
            "current_login_at": user.current_login_at.map(iso),
            "last_login_ip": user.last_login_ip,
            "current_login_ip": user.current_login_ip,
            "login_count": user.login_count,
            "has_password": user.password.is_some(),
            "two_factor_method": user.tf_primary_method,
            "has_recovery_codes": user.mf_recovery_codes.as_deref().is_some_and(|c| !c.is_empty()),
        }),
    );
    document.insert(
        "roles".into(),
        json!(roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
    );
    for (name, section) in security.export_sections() {
        let value = section(security.clone(), user.id).await?;
        document.insert(name.clone(), value);
    }
    document.insert(
        "providers".into(),
        Value::Array(linked_providers(security, user.id).await?),
    );
    document.insert(
        "passkeys".into(),
        Value::Array(
            passkeys
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "usage": p.usage,
                        "created_at": iso(p.create_datetime),
                        "last_used_at": iso(p.lastuse_datetime),
                    })
                })
                .collect(),
        ),
    );
    document.insert("sessions".into(), json!(sessions));
    document.insert("activity".into(), json!(activity));
    Ok(Value::Object(document))
}

/// Everything stored about the user, as a download (not in the envelope).
#[utoipa::path(
    get,
    path = "/api/account/export",
    tag = "export",
    responses((status = 200, description = "The export (`Content-Disposition: attachment`).", body = AccountExport)),
    security(("signed_in" = []))
)]
async fn get_export(ctx: AuthContext, user: FreshUser) -> crate::Result<Response> {
    let document = export_account(&ctx, &user.user).await?;
    let body = serde_json::to_vec_pretty(&document)
        .map_err(|e| crate::Error::Internal(format!("export: {e}")))?;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"account-export.json\""),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
        .extensions_mut()
        .insert(crate::web::reply::Rendered);
    Ok(response)
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_export))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/api/account/export", config.url("/api/account/export"))],
    )
}

/// The account export (`docs/export.md`): a JSON document, not in the envelope.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the document `export_account` builds")]
pub(crate) struct AccountExport {
    /// `rampart-account-export`.
    format: String,
    /// The format's version.
    version: u32,
    /// When (ISO 8601, naive UTC).
    exported_at: String,
    /// The account's fields.
    #[schema(value_type = Object)]
    account: serde_json::Value,
}
