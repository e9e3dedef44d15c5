//! `GET /`: the dashboard (session only; anonymous browsers are redirected to
//! `/login?next=/`), and `GET /terms`, the terms of service linked from the sign-up form.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use rampart::AuthContext;

use super::{HandlerError, SignedIn, display_name, format_date, format_time, render};
use crate::AppState;
use crate::profile::Profile;

/// Where signing out lands (`SECURITY_POST_LOGOUT_VIEW`).
pub const SIGNED_OUT_PATH: &str = "/signed-out";

/// The message the sign-in page shows after signing out.
pub const SIGNED_OUT: &str = "You have signed out. See you soon!";

/// `GET /`, `GET /terms` and `GET /signed-out`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/terms", get(terms))
        .route(SIGNED_OUT_PATH, get(signed_out))
}

/// After signing out: the sign-in page with a note that it happened (someone still signed in,
/// e.g. a bookmark, goes to the dashboard).
async fn signed_out(ctx: AuthContext) -> Result<Response, HandlerError> {
    let config = ctx.security().config();
    if ctx.user().is_some() {
        return Ok(rampart::reply::redirect("/"));
    }
    ctx.flash("info", SIGNED_OUT).await?;
    Ok(rampart::reply::redirect(&config.url(&config.login.url)))
}

/// How much of the profile is filled in: `(filled, total)`.
pub fn completeness(profile: &Profile) -> (usize, usize) {
    let fields = [
        profile.first_name.is_some(),
        profile.last_name.is_some(),
        profile.dob.is_some(),
        profile.gender.is_some(),
        profile.phone.is_some(),
        profile.address.is_some(),
        profile.city.is_some(),
        profile.zip.is_some(),
        profile.country.is_some(),
        profile.avatar.is_some(),
    ];
    (fields.iter().filter(|f| **f).count(), fields.len())
}

async fn home(
    State(state): State<AppState>,
    loaded: Option<axum::Extension<crate::profile::Loaded>>,
    SignedIn { ctx, user }: SignedIn,
) -> Result<Response, HandlerError> {
    let loaded = loaded.map(|axum::Extension(loaded)| loaded);
    let profile = crate::profile::load_for(&state.security, user.user.id, loaded.as_ref()).await?;
    let is_admin = user.has_role(super::ADMIN_ROLE);
    let user_count = if is_admin {
        state.security.datastore().count_users().await?
    } else {
        0
    };
    let (filled, total) = completeness(&profile);
    let u = &user.user;
    let name = display_name(&user, profile.first_name.as_deref());
    render(
        &ctx,
        "app/home.html",
        context! {
            display_name => name,
            avatar_url => profile.avatar,
            roles => user.role_names(),
            is_admin => is_admin,
            user_count => user_count,
            account => context! {
                email => u.email,
                login_count => u.login_count.unwrap_or(0),
                // Trackable's "last" sign-in is this one until there is a second.
                first_sign_in => u.login_count.unwrap_or(0) <= 1,
                member_since => format_date(u.create_datetime),
                last_login_date => u.last_login_at.map_or_else(|| "—".to_owned(), format_date),
                last_login_time => u.last_login_at.map(format_time),
                last_login_ip => u.last_login_ip,
                confirmed => u.confirmed_at.is_some(),
            },
            completeness => context! {
                filled => filled,
                total => total,
                percent => filled * 100 / total.max(1),
            },
        },
    )
    .await
}

async fn terms(ctx: AuthContext) -> Result<Response, HandlerError> {
    render(&ctx, "app/terms.html", context! {}).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness_counts_filled_fields() {
        let mut profile = Profile::default();
        assert_eq!(completeness(&profile), (0, 10));
        profile.first_name = Some("Ada".into());
        profile.avatar = Some("/media/avatars/x.png".into());
        assert_eq!(completeness(&profile), (2, 10));
    }
}
