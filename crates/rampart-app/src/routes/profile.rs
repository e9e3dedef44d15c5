//! The profile page, `GET|POST /dashboard/profile/`, and profile pictures,
//! `GET /media/avatars/{name}`.
//!
//! The form is `multipart/form-data` (fields and an optional picture); its CSRF token is checked
//! by the security layer like any form's. Fields are validated by [`crate::profile::validate`]
//! (the API's rules), the picture by [`crate::avatar::process`] (in one of the store's decode
//! slots: when all are busy, 503 with `Retry-After`; a picture too large, 413); nothing is saved
//! unless all of it is valid. The picture is the only way to set a profile's avatar. A new picture gets a new random name, and the old file is deleted.

use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use rampart::FieldErrors;
use serde_json::{Map, Value};

use super::{HandlerError, SignedIn, display_name, render};
use crate::AppState;
use crate::avatar::{
    AVATAR_MAX_BYTES, AVATAR_MAX_SIDE, AVATAR_MAX_TEXT, AvatarRejection, BUSY_RETRY_AFTER_SECS,
};
use crate::profile::{FIELDS, FieldValue, Profile};

/// The profile page's URL.
pub const PROFILE_URL: &str = "/dashboard/profile/";

/// The choices of the gender field (value, label); other values set through the API are kept.
pub const GENDERS: [(&str, &str); 5] = [
    ("female", "Female"),
    ("male", "Male"),
    ("non-binary", "Non-binary"),
    ("other", "Other"),
    ("undisclosed", "Prefer not to say"),
];

/// The profile page and pictures.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PROFILE_URL, get(get_profile).post(post_profile))
        .route(
            "/dashboard/profile",
            get(|| async { rampart::reply::redirect(PROFILE_URL) }),
        )
        .route("/media/avatars/{name}", get(get_avatar))
}

/// The profile as form values (`dob` as `YYYY-MM-DD`).
fn form_values(profile: &Profile) -> Value {
    let mut values = profile.to_json();
    if let Some(map) = values.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    values
}

async fn render_form(
    page: &SignedIn,
    profile: &Profile,
    values: Value,
    errors: &FieldErrors,
) -> Result<Response, HandlerError> {
    let mut genders: Vec<(String, String)> = GENDERS
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
    if let Some(Value::String(current)) = values.get("gender")
        && !genders.iter().any(|(v, _)| v == current)
    {
        genders.push((current.clone(), current.clone()));
    }
    let name = display_name(&page.user, profile.first_name.as_deref());
    render(
        &page.ctx,
        "app/profile.html",
        context! {
            form => context! { values => values, errors => errors.to_json() },
            avatar_url => profile.avatar,
            display_name => name,
            genders => genders,
            avatar_limit => AVATAR_MAX_TEXT,
            avatar_size => AVATAR_MAX_SIDE,
        },
    )
    .await
}

async fn get_profile(
    State(state): State<AppState>,
    page: SignedIn,
) -> Result<Response, HandlerError> {
    let profile = crate::profile::load(&state.security, page.user.user.id).await?;
    render_form(&page, &profile, form_values(&profile), &FieldErrors::new()).await
}

/// What the form sent.
#[derive(Debug, Default)]
struct Submission {
    fields: Map<String, Value>,
    upload: Option<Vec<u8>>,
    too_large: bool,
    remove_avatar: bool,
}

async fn read_submission(mut multipart: Multipart) -> Result<Submission, HandlerError> {
    let mut submission = Submission::default();
    while let Some(mut field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "avatar" => {
                // An empty file input still sends a part, without a file name.
                if field.file_name().is_none_or(str::is_empty) {
                    continue;
                }
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await? {
                    // Past the limit, read on (the body is bounded by MAX_CONTENT_LENGTH) but
                    // keep nothing.
                    if submission.too_large || bytes.len() + chunk.len() > AVATAR_MAX_BYTES {
                        submission.too_large = true;
                        bytes = Vec::new();
                        continue;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                if !submission.too_large && !bytes.is_empty() {
                    submission.upload = Some(bytes);
                }
            }
            "remove_avatar" => submission.remove_avatar = !field.text().await?.is_empty(),
            other if FIELDS.iter().any(|(f, _)| *f == other && *f != "avatar") => {
                let text = field.text().await?;
                submission.fields.insert(name, Value::String(text));
            }
            // The CSRF token (checked by the layer) and anything unknown.
            _ => {}
        }
    }
    Ok(submission)
}

async fn post_profile(
    State(state): State<AppState>,
    page: SignedIn,
    multipart: Multipart,
) -> Result<Response, HandlerError> {
    let user_id = page.user.user.id;
    let submission = read_submission(multipart).await?;
    let mut errors = FieldErrors::new();
    let mut update = match crate::profile::validate(&submission.fields) {
        Ok(update) => update,
        Err(invalid) => {
            errors = invalid.field_errors();
            crate::profile::ProfileUpdate::default()
        }
    };
    let avatar = match (submission.too_large, submission.upload) {
        (true, _) => Err(AvatarRejection::TooLarge),
        (false, Some(bytes)) => state.media.process_upload(bytes).await.map(Some),
        (false, None) => Ok(None),
    };
    let (avatar, refused) = match avatar {
        Ok(avatar) => (avatar, None),
        Err(rejection) => {
            errors.add("avatar", rejection.to_string());
            (None, Some(rejection))
        }
    };
    let old = crate::profile::load(&state.security, user_id).await?;
    if !errors.is_empty() {
        let mut response =
            render_form(&page, &old, Value::Object(submission.fields), &errors).await?;
        // Field errors redisplay the form (200, as Flask-Security's forms); a picture too large
        // is 413, and every decode slot busy 503 with `Retry-After`.
        match refused {
            Some(AvatarRejection::Busy) => {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(BUSY_RETRY_AFTER_SECS),
                );
            }
            Some(rejection) if rejection.is_too_large() => {
                *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            }
            _ => {}
        }
        return Ok(response);
    }
    let new_avatar = match &avatar {
        Some(avatar) => Some(state.media.save_avatar(user_id, avatar).await?),
        None => None,
    };
    match &new_avatar {
        Some(url) => update
            .fields
            .push(("avatar", FieldValue::Text(Some(url.clone())))),
        None if submission.remove_avatar => update.fields.push(("avatar", FieldValue::Text(None))),
        None => {}
    }
    let saved = match crate::profile::update(&state.security, user_id, &update).await {
        Ok(saved) => saved,
        Err(error) => {
            // Don't leave the new file behind.
            state
                .media
                .delete_avatar(user_id, new_avatar.as_deref())
                .await;
            return Err(error.into());
        }
    };
    if old.avatar != saved.avatar {
        state
            .media
            .delete_avatar(user_id, old.avatar.as_deref())
            .await;
    }
    page.ctx
        .flash("success", "Your profile has been saved.")
        .await?;
    Ok(rampart::reply::redirect(PROFILE_URL))
}

async fn get_avatar(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, HandlerError> {
    let Some((bytes, content_type)) = state.media.read_avatar(&name).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // Names are random and never reused: the file under a name never changes.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}
