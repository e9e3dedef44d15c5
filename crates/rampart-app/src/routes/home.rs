//! `GET /`: the signed-in user's home page (session only; anonymous browsers are redirected to
//! `/login?next=/`).

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rampart::{AuthContext, AuthMethod, AuthRejection, CurrentUser};

use crate::AppState;

/// `GET /`.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

async fn home(ctx: AuthContext, user: Option<CurrentUser>) -> Response {
    let Some(user) = user.filter(|u| u.method == AuthMethod::Session) else {
        return AuthRejection::Unauthenticated(Box::new(ctx)).into_response();
    };
    let csrf_token = match ctx.csrf_token().await {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    let config = ctx.security().config();
    let roles = user.role_names().join(", ");
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{app}</title></head>
<body>
<main>
  <h1>{app}</h1>
  <p>Signed in as <strong id="email">{email}</strong>{roles}.</p>
  <ul>
    <li><a href="{change}">Security: change your password</a></li>
    <li><a href="/api/me">Your account (JSON)</a></li>
    <li><a href="/api/profile">Your profile (JSON)</a></li>
  </ul>
  <form method="post" action="{logout}">
    <input type="hidden" name="csrf_token" value="{csrf}">
    <button type="submit">Log out</button>
  </form>
</main>
</body>
</html>
"#,
        app = escape(&config.app_name),
        email = escape(&user.user.email),
        roles = if roles.is_empty() {
            String::new()
        } else {
            format!(" (roles: {})", escape(&roles))
        },
        change = escape(&config.url(&config.change_url)),
        logout = escape(&config.url(&config.logout_url)),
        csrf = escape(&csrf_token),
    );
    rampart::reply::html(StatusCode::OK, body)
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;"
        );
    }
}
