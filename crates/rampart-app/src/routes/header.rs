//! The header's user menu on every page: the signed-in user's picture and display name (the
//! profile's, as the dashboard shows them), added to each page a browser session renders,
//! the framework's included ([`rampart::AuthContext::set_page_values`]); on the security page,
//! also the user's sessions (`sessions`, [`rampart::list_sessions`]).

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
    mut request: Request,
    next: Next,
) -> Response {
    let mut loaded = None;
    let path = request.uri().path();
    let skip =
        path.starts_with("/static/") || path.starts_with("/media/") || path.starts_with("/api/");
    if !skip
        && let Some(ctx) = request.extensions().get::<AuthContext>()
        && let Some(user) = ctx
            .user()
            .filter(|u| u.method == AuthMethod::Session && !ctx.is_json())
    {
        // The security page lists the sign-in providers linked to the account.
        let config = state.security.config();
        let oauth_links = if config.oauth.enabled && path == config.url(&config.change.url) {
            match state.security.datastore().oauth_links(user.user.id).await {
                Ok(links) => Some(
                    links
                        .into_iter()
                        .map(|link| {
                            minijinja::context! {
                                provider => link.provider,
                                email => link.email,
                                created_at => link.created_at.date().to_string(),
                                last_used_at => link.last_used_at.map(|at| at.date().to_string()),
                            }
                        })
                        .collect::<Vec<_>>(),
                ),
                Err(error) => {
                    tracing::warn!(%error, "cannot load the linked sign-in providers");
                    None
                }
            }
        } else {
            None
        };
        // The security page lists the user's sessions (the security centre's partial).
        let sessions = if path == config.url(&config.change.url) {
            match rampart::list_sessions(ctx, &user.user).await {
                Ok(sessions) => Some(sessions),
                Err(error) => {
                    tracing::warn!(%error, "cannot list the sessions for the security page");
                    None
                }
            }
        } else {
            None
        };
        match crate::profile::load(&state.security, user.user.id).await {
            Ok(profile) => {
                ctx.set_page_values(minijinja::context! {
                    menu_name => super::display_name(user, profile.first_name.as_deref()),
                    menu_avatar_url => profile.avatar,
                    oauth_links => oauth_links,
                    sessions => sessions,
                });
                loaded = Some(crate::profile::Loaded {
                    user_id: user.user.id,
                    profile: std::sync::Arc::new(profile),
                });
            }
            Err(error) => tracing::warn!(%error, "cannot load the profile for the header"),
        }
    }
    // The page's handler reads the same profile from here instead of again.
    if let Some(loaded) = loaded {
        request.extensions_mut().insert(loaded);
    }
    next.run(request).await
}
