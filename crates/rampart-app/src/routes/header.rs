//! The header's user menu on every page: the signed-in user's picture and display name (the
//! profile's, as the dashboard shows them), added to each page a browser session renders,
//! the framework's included ([`rampart::AuthContext::set_page_values`]).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rampart::{AuthContext, AuthMethod};

use crate::AppState;

/// Loads the profile of a signed-in browser session for the header (`menu_name`,
/// `menu_avatar_url`). Requests for files and JSON clients are left alone; a failed load leaves
/// the header to the username (the page itself reports real failures).
pub async fn header_values(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let skip =
        path.starts_with("/static/") || path.starts_with("/media/") || path.starts_with("/api/");
    if !skip
        && let Some(ctx) = request.extensions().get::<AuthContext>()
        && let Some(user) = ctx
            .user()
            .filter(|u| u.method == AuthMethod::Session && !ctx.is_json())
    {
        match crate::profile::load(&state.security, user.user.id).await {
            Ok(profile) => ctx.set_page_values(minijinja::context! {
                menu_name => super::display_name(user, profile.first_name.as_deref()),
                menu_avatar_url => profile.avatar,
            }),
            Err(error) => tracing::warn!(%error, "cannot load the profile for the header"),
        }
    }
    next.run(request).await
}
