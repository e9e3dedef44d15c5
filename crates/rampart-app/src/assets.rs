//! The app's templates and static files, compiled into the binary so that `cargo run` (or the
//! installed binary) serves the same pages from any working directory.
//!
//! The templates override the framework's built-in ones of the same name (`security/base.html`,
//! `security/login_user.html`, …) and add the app's own pages (`app/*.html`). A deployment can
//! still restyle any page by putting a file of the same name in `SECURITY_TEMPLATE_DIR`.
//! Static files are served from `/static/<name>`; pages link them with `?v=<asset version>` so
//! they can be cached for a long time.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// The app's templates, as `(name, source)` pairs.
pub const TEMPLATES: &[(&str, &str)] = embedded![
    "security/base.html",
    "security/_macros.html",
    "security/_messages.html",
    "security/error.html",
    "security/message.html",
    "security/login_user.html",
    "security/register_user.html",
    "security/send_confirmation.html",
    "security/forgot_password.html",
    "security/reset_password.html",
    "security/change_password.html",
    "security/settings/password.html",
    "security/settings/two_factor.html",
    "security/settings/sessions.html",
    "security/settings/email.html",
    "security/settings/danger_zone.html",
    "security/change_email.html",
    "security/settings/username.html",
    "security/change_username.html",
    "security/recover_username.html",
    "security/two_factor_setup.html",
    "security/mf_recovery_codes.html",
    "security/settings/passkeys.html",
    "security/settings/unified_signin.html",
    "security/us_signin.html",
    "security/us_setup.html",
    "security/settings/oauth.html",
    "security/_oauth_buttons.html",
    "app/home.html",
    "app/profile.html",
    "app/delete_account.html",
    "app/admin_users.html",
    "app/activity.html",
    "app/admin_activity.html",
    "app/terms.html",
];

/// A static file: name, content type, bytes.
type StaticFile = (&'static str, &'static str, &'static [u8]);

/// The files served under `/static/`.
pub const STATIC_FILES: &[StaticFile] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/app.css"),
    ),
    (
        "passkeys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/passkeys.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../static/favicon.svg"),
    ),
];

/// A short fingerprint of the static files (FNV-1a, hex), for cache-busting `?v=` links.
pub fn asset_version() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, _, bytes) in STATIC_FILES {
        for byte in *bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", hash >> 32)
}

/// `GET /static/{name}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{name}", get(static_file))
}

async fn static_file(Path(name): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = STATIC_FILES.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (*bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=604800"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = minijinja::Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn every_template_file_is_compiled_in() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("templates dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let name = path.strip_prefix(&root).expect("under root");
                    files.push(name.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        for file in files {
            assert!(
                TEMPLATES.iter().any(|(name, _)| *name == file),
                "templates/{file} is not in TEMPLATES"
            );
        }
    }

    #[test]
    fn the_asset_version_is_stable_and_short() {
        assert_eq!(asset_version(), asset_version());
        assert_eq!(asset_version().len(), 8);
    }
}
