//! The profile page, `GET|POST /dashboard/profile/`, and profile pictures,
//! `GET /media/avatars/{name}`.
//!
//! The form is `multipart/form-data` (fields and an optional picture); its CSRF token is checked
//! by the security layer like any form's. Fields are validated by [`crate::profile::validate`]
//! (the API's rules), the picture by [`crate::avatar::process`] (in one of the store's decode
//! slots: when all are busy, 503 with `Retry-After`; a picture too large, 413); nothing is saved
//! unless all of it is valid. The picture is the only way to set a profile's avatar. A new picture gets a new random name, and the old file is deleted.

use axum::Router;
use axum::body::Body;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
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

/// Set by [`upload_guard`] (and only by it: a client's is removed) on a profile form whose body
/// was over [`crate::config::PROFILE_FORM_MAX_BYTES`]: the picture was left out, the other
/// values kept.
pub const UPLOAD_TOO_LARGE: &str = "x-rampart-app-upload-too-large";

/// Profile forms up to this size are read (the picture's bytes thrown away as they come) to keep
/// the other values; larger ones get the framework's 413 page.
pub const PROFILE_FORM_HARD_CAP: u64 = 32 * 1024 * 1024;

/// What one kept text value may hold (the longest profile field is 255 characters).
const KEPT_VALUE_MAX: usize = 4096;

/// A profile form over the body limit, known from its `Content-Length` before anything is read,
/// is answered on the profile page like a picture between the picture limit and the form's
/// (issue 14): its text values are kept and the picture's bytes dropped as they stream past,
/// then the form goes on (CSRF checked as usual) without the picture and with
/// [`UPLOAD_TOO_LARGE`]. Runs outside the security layer, before its body limit.
pub async fn upload_guard(mut request: Request, next: Next) -> Response {
    request.headers_mut().remove(UPLOAD_TOO_LARGE);
    let limit = u64::try_from(crate::config::PROFILE_FORM_MAX_BYTES).unwrap_or(u64::MAX);
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let over = request.method() == Method::POST
        && request.uri().path() == PROFILE_URL
        && length.is_some_and(|length| length > limit && length <= PROFILE_FORM_HARD_CAP);
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let (true, Some(boundary)) = (over, boundary) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let Some(kept) = kept_values(body, boundary.clone()).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut rebuilt = String::new();
    for (name, value) in kept {
        rebuilt.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    rebuilt.push_str(&format!("--{boundary}--\r\n"));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(rebuilt.len()));
    parts
        .headers
        .insert(UPLOAD_TOO_LARGE, HeaderValue::from_static("1"));
    next.run(Request::from_parts(parts, Body::from(rebuilt)))
        .await
}

/// The form's text values (the ones the page knows, each up to [`KEPT_VALUE_MAX`] bytes); files
/// are read and thrown away. `None` when the body is not a well-formed form.
async fn kept_values(body: Body, boundary: String) -> Option<Vec<(String, String)>> {
    let limits = multer::SizeLimit::new().whole_stream(PROFILE_FORM_HARD_CAP);
    let mut multipart = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut kept = Vec::new();
    while let Some(mut field) = multipart.next_field().await.ok()? {
        let name = field.name().unwrap_or_default().to_owned();
        let known = name == "csrf_token"
            || name == "gender_other"
            || name == "remove_avatar"
            || FIELDS.iter().any(|(f, _)| *f == name && *f != "avatar");
        let keep = known && field.file_name().is_none();
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.ok()? {
            if keep && value.len() + chunk.len() <= KEPT_VALUE_MAX {
                value.extend_from_slice(&chunk);
            }
        }
        if keep {
            let value = String::from_utf8_lossy(&value).replace(['\r', '\n'], " ");
            kept.push((name, value));
        }
    }
    Some(kept)
}

/// The choices of the gender field (value, label). Besides them, "Prefer to self-describe"
/// ([`SELF_DESCRIBE`]) takes the words of the `gender_other` field (up to 20 characters), which
/// are stored as they are, like any other text set through the API.
pub const GENDERS: [(&str, &str); 4] = [
    ("female", "Female"),
    ("male", "Male"),
    ("non-binary", "Non-binary"),
    ("undisclosed", "Prefer not to say"),
];

/// The gender choice that takes the person's own words (`gender_other`).
pub const SELF_DESCRIBE: &str = "self-describe";

/// Message for "Prefer to self-describe" without the words.
pub const SELF_DESCRIBE_EMPTY: &str =
    "Describe your gender in a few words, or choose another option.";

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

/// The profile as form values (`dob` as `YYYY-MM-DD`, the phone number formatted, a gender in
/// the person's own words as "self-describe" with the words).
fn form_values(profile: &Profile) -> Value {
    let mut values = profile.to_json();
    if let Some(map) = values.as_object_mut() {
        map.retain(|_, v| !v.is_null());
        if let Some(phone) = profile.phone.as_deref() {
            map.insert(
                "phone".into(),
                Value::String(crate::profile::format_phone(phone)),
            );
        }
        if let Some(gender) = profile.gender.as_deref()
            && !GENDERS.iter().any(|(value, _)| *value == gender)
        {
            map.insert("gender".into(), Value::String(SELF_DESCRIBE.into()));
            map.insert("gender_other".into(), Value::String(gender.into()));
        }
    }
    values
}

async fn render_form(
    page: &SignedIn,
    profile: &Profile,
    values: Value,
    errors: &FieldErrors,
) -> Result<Response, HandlerError> {
    let mut genders: Vec<(&str, &str)> = GENDERS.to_vec();
    genders.push((SELF_DESCRIBE, "Prefer to self-describe"));
    let name = display_name(&page.user, profile.first_name.as_deref());
    render(
        &page.ctx,
        "app/profile.html",
        context! {
            form => context! { values => values, errors => errors.to_json() },
            avatar_url => profile.avatar,
            display_name => name,
            genders => genders,
            today => page.ctx.security().clock().now().date().to_string(),
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
    gender_other: String,
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
            "gender_other" => submission.gender_other = field.text().await?,
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
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, HandlerError> {
    let user_id = page.user.user.id;
    let mut submission = read_submission(multipart).await?;
    if headers.contains_key(UPLOAD_TOO_LARGE) {
        submission.too_large = true;
    }
    let mut errors = FieldErrors::new();
    // "Prefer to self-describe" stores the person's words.
    let mut fields = submission.fields.clone();
    let self_described = fields.get("gender").and_then(Value::as_str) == Some(SELF_DESCRIBE);
    if self_described {
        fields.insert(
            "gender".into(),
            Value::String(submission.gender_other.trim().to_owned()),
        );
    }
    let today = state.security.clock().now().date();
    let mut update = match crate::profile::validate(&fields, today) {
        Ok(update) => update,
        Err(invalid) => {
            errors = invalid.field_errors();
            crate::profile::ProfileUpdate::default()
        }
    };
    if self_described {
        // The words' problems are the words field's.
        let gender = errors.remove("gender");
        if !gender.is_empty() || submission.gender_other.trim().is_empty() {
            let message = gender
                .into_iter()
                .next()
                .unwrap_or_else(|| SELF_DESCRIBE_EMPTY.to_owned());
            errors.add("gender_other", message);
        }
    }
    let mut values = submission.fields.clone();
    values.insert(
        "gender_other".into(),
        Value::String(submission.gender_other.clone()),
    );
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
        let mut response = render_form(&page, &old, Value::Object(values), &errors).await?;
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
