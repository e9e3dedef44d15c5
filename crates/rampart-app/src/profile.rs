//! The user's profile (the app's own `profile` table, one row per user): validation of partial
//! updates and storage. Axum-free, shared by the API and tests.
//!
//! Ten fields, all optional strings: `first_name`, `last_name`, `city`, `country` (at most 100
//! characters), `gender` (20), `phone` (an international number, stored in E.164 form:
//! `+442079460000`), `zip` (20), `address` (255), `dob` (`YYYY-MM-DD`, in the past, at most
//! [`MAX_AGE_YEARS`] ago) and `avatar`. Values are trimmed; `null` or `""` clears a field. An update is validated as a
//! whole and applied all-or-nothing. `avatar` is the URL of a picture the app stored (uploaded
//! on the profile page): an update may only clear it (`null`), and a loaded profile shows no
//! other text there ([`crate::avatar::stored_url`]).

use rampart::{FieldErrors, Security};
use serde_json::{Map, Value};
use time::Date;
use time::macros::format_description;

use crate::db::with_pool;

/// The profile's fields in display order, with their maximum length (`None`: the date).
pub const FIELDS: [(&str, Option<usize>); 10] = [
    ("first_name", Some(100)),
    ("last_name", Some(100)),
    ("dob", None),
    ("gender", Some(20)),
    ("phone", Some(32)),
    ("address", Some(255)),
    ("city", Some(100)),
    ("zip", Some(20)),
    ("country", Some(100)),
    ("avatar", Some(255)),
];

/// Message for a non-string value.
pub const MUST_BE_STRING: &str = "Must be a string";
/// Message for a malformed `dob`.
pub const MUST_BE_DATE: &str = "Must be a date (YYYY-MM-DD)";
/// Message for an `avatar` other than `null`: the picture is set only by an upload.
pub const AVATAR_UPLOAD_ONLY: &str =
    "Upload a picture on the profile page to set it; here only null (remove it) is accepted";
/// Message for a date of birth that is not in the past.
pub const DOB_IN_FUTURE: &str = "Enter a date of birth in the past.";
/// Message for a date of birth more than [`MAX_AGE_YEARS`] ago.
pub const DOB_TOO_OLD: &str = "Enter a date of birth within the last 130 years.";
/// The oldest plausible age, in years.
pub const MAX_AGE_YEARS: i32 = 130;
/// Message for a phone number that is not one.
pub const PHONE_INVALID: &str =
    "Enter a phone number with its country code, for example +44 20 7946 0000.";

/// Message for a field the profile does not have.
pub const UNKNOWN_FIELD: &str = "Unknown field";

const SELECT_PROFILE: &str = "SELECT \"first_name\", \"last_name\", \"dob\", \"gender\", \"phone\", \
     \"address\", \"city\", \"zip\", \"country\", \"avatar\" FROM \"profile\" WHERE \"user_id\" = $1";
const ENSURE_PROFILE: &str =
    "INSERT INTO \"profile\" (\"user_id\") VALUES ($1) ON CONFLICT (\"user_id\") DO NOTHING";

/// A user's profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Profile {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Date of birth.
    pub dob: Option<Date>,
    /// Gender, free text.
    pub gender: Option<String>,
    /// Phone number, free text.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Avatar URL: `/media/avatars/<name>` of a file the app stored.
    pub avatar: Option<String>,
}

impl Profile {
    /// The profile as the API returns it (`dob` as `YYYY-MM-DD`, absent values `null`).
    pub fn to_json(&self) -> Value {
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let dob = self
            .dob
            .and_then(|d| d.format(format_description!("[year]-[month]-[day]")).ok())
            .map_or(Value::Null, Value::String);
        let mut map = Map::new();
        map.insert("address".into(), text(&self.address));
        map.insert("avatar".into(), text(&self.avatar));
        map.insert("city".into(), text(&self.city));
        map.insert("country".into(), text(&self.country));
        map.insert("dob".into(), dob);
        map.insert("first_name".into(), text(&self.first_name));
        map.insert("gender".into(), text(&self.gender));
        map.insert("last_name".into(), text(&self.last_name));
        map.insert("phone".into(), text(&self.phone));
        map.insert("zip".into(), text(&self.zip));
        Value::Object(map)
    }
}

/// One validated new value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    /// A text field's new value (`None` clears it).
    Text(Option<String>),
    /// The date of birth's new value (`None` clears it).
    Date(Option<Date>),
}

/// A validated partial update: the fields given, with their new values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// `(column, value)` for each field given.
    pub fields: Vec<(&'static str, FieldValue)>,
}

/// Validation errors in body order, as `(field, message)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileErrors(pub Vec<(String, String)>);

impl ProfileErrors {
    /// `"field: message"` for each error, the flat list of the API's `errors`.
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(|(f, m)| format!("{f}: {m}")).collect()
    }

    /// The errors per field, the API's `field_errors`.
    pub fn field_errors(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        for (field, message) in &self.0 {
            errors.add(field, message.clone());
        }
        errors
    }
}

/// Validates a partial update; every problem is reported, and nothing is applied if there is one.
///
/// # Errors
///
/// [`ProfileErrors`] listing every refused field.
pub fn validate(body: &Map<String, Value>, today: Date) -> Result<ProfileUpdate, ProfileErrors> {
    let mut update = ProfileUpdate::default();
    let mut errors = Vec::new();
    for (key, value) in body {
        if key == "avatar" {
            // Only ever a file the app stored: set by uploading on the profile page.
            match value {
                Value::Null => update.fields.push(("avatar", FieldValue::Text(None))),
                _ => errors.push((key.clone(), AVATAR_UPLOAD_ONLY.to_owned())),
            }
            continue;
        }
        let Some((column, max)) = FIELDS.iter().find(|(name, _)| name == key) else {
            errors.push((key.clone(), UNKNOWN_FIELD.to_owned()));
            continue;
        };
        let text = match value {
            Value::Null => None,
            Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
            _ => {
                errors.push((key.clone(), MUST_BE_STRING.to_owned()));
                continue;
            }
        };
        if *column == "phone" {
            match text.as_deref().map(normalize_phone) {
                None => update.fields.push((column, FieldValue::Text(None))),
                Some(Some(e164)) => update.fields.push((column, FieldValue::Text(Some(e164)))),
                Some(None) => errors.push((key.clone(), PHONE_INVALID.to_owned())),
            }
            continue;
        }
        match max {
            Some(max) => match text {
                Some(t) if t.chars().count() > *max => {
                    errors.push((key.clone(), format!("Must be at most {max} characters")));
                }
                t => update.fields.push((column, FieldValue::Text(t))),
            },
            None => match text.as_deref().map(parse_date) {
                None => update.fields.push((column, FieldValue::Date(None))),
                Some(Some(date)) => match check_birth_date(date, today) {
                    Ok(()) => update.fields.push((column, FieldValue::Date(Some(date)))),
                    Err(message) => errors.push((key.clone(), message.to_owned())),
                },
                Some(None) => errors.push((key.clone(), MUST_BE_DATE.to_owned())),
            },
        }
    }
    if errors.is_empty() {
        Ok(update)
    } else {
        Err(ProfileErrors(errors))
    }
}

/// A date of birth must be before `today` and at most [`MAX_AGE_YEARS`] ago.
fn check_birth_date(date: Date, today: Date) -> Result<(), &'static str> {
    if date >= today {
        return Err(DOB_IN_FUTURE);
    }
    let age = today.year()
        - date.year()
        - i32::from((today.month(), today.day()) < (date.month(), date.day()));
    if age > MAX_AGE_YEARS {
        return Err(DOB_TOO_OLD);
    }
    Ok(())
}

/// A phone number typed with its country code (spaces, dashes, dots and brackets allowed), as
/// E.164 (`+442079460000`); `None` when it is not a valid number.
pub fn normalize_phone(text: &str) -> Option<String> {
    let number = phonenumber::parse(None, text).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// A stored number as people read it (`+44 20 7946 0000`); text that does not parse is shown
/// as it is.
pub fn format_phone(stored: &str) -> String {
    phonenumber::parse(None, stored).map_or_else(
        |_| stored.to_owned(),
        |number| {
            number
                .format()
                .mode(phonenumber::Mode::International)
                .to_string()
        },
    )
}

/// Parses exactly `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<Date> {
    if text.len() != 10 {
        return None;
    }
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// A profile already read for this request (by the header's middleware, before the page's
/// handler), in the request's extensions: a page reads it with [`load_for`] instead of querying
/// again.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Whose.
    pub user_id: i64,
    /// The profile as read.
    pub profile: std::sync::Arc<Profile>,
}

/// The profile of `user_id`: the one this request already read (`loaded`), else from the
/// database ([`load`]).
///
/// # Errors
///
/// The database's error.
pub async fn load_for(
    security: &Security,
    user_id: i64,
    loaded: Option<&Loaded>,
) -> Result<Profile, sqlx::Error> {
    match loaded.filter(|l| l.user_id == user_id) {
        Some(loaded) => Ok((*loaded.profile).clone()),
        None => load(security, user_id).await,
    }
}

/// The profile of `user_id` (all empty when the row is missing).
///
/// # Errors
///
/// The database's error.
pub async fn load(security: &Security, user_id: i64) -> Result<Profile, sqlx::Error> {
    let profile = with_pool!(security.datastore(), |pool| {
        sqlx::query_as::<_, Profile>(SELECT_PROFILE)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(profile.map(only_stored_avatar).unwrap_or_default())
}

/// The profile without an avatar that is not a file of ours (text set through the API before
/// it refused any): pages put the avatar in `<img src>`.
fn only_stored_avatar(mut profile: Profile) -> Profile {
    if crate::avatar::stored_url(profile.avatar.as_deref()).is_none() {
        profile.avatar = None;
    }
    profile
}

/// Applies a validated update in one transaction (creating the row if it is missing) and returns
/// the whole profile.
///
/// # Errors
///
/// The database's error; nothing is applied then.
pub async fn update(
    security: &Security,
    user_id: i64,
    update: &ProfileUpdate,
) -> Result<Profile, sqlx::Error> {
    // Column names come from `FIELDS`, never from the request.
    let assignments: Vec<String> = update
        .fields
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!("\"{column}\" = ${}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE \"profile\" SET {} WHERE \"user_id\" = $1",
        assignments.join(", ")
    );
    with_pool!(security.datastore(), |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(ENSURE_PROFILE)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if !update.fields.is_empty() {
            let mut query = sqlx::query(&sql).bind(user_id);
            for (_, value) in &update.fields {
                query = match value {
                    FieldValue::Text(text) => query.bind(text.clone()),
                    FieldValue::Date(date) => query.bind(*date),
                };
            }
            query.execute(&mut *tx).await?;
        }
        let profile = sqlx::query_as::<_, Profile>(SELECT_PROFILE)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(only_stored_avatar(profile))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    const TODAY: Date = time::macros::date!(2026 - 12 - 03);

    fn validate(body: &Map<String, Value>) -> Result<ProfileUpdate, ProfileErrors> {
        super::validate(body, TODAY)
    }

    #[test]
    fn phone_numbers_are_parsed_and_kept_in_e164() {
        let update = validate(&body(r#"{"phone": "+44 (20) 7946-0000"}"#)).unwrap();
        assert_eq!(
            update.fields,
            [("phone", FieldValue::Text(Some("+442079460000".into())))]
        );
        assert_eq!(format_phone("+442079460000"), "+44 20 7946 0000");
        for bad in ["not a phone ☎", "12345", "+44 12", "0207946000"] {
            let json = serde_json::json!({ "phone": bad });
            let errors = validate(json.as_object().unwrap()).unwrap_err();
            assert_eq!(errors.field_errors().get("phone"), [PHONE_INVALID], "{bad}");
        }
    }

    #[test]
    fn a_birth_date_is_in_the_past_and_plausible() {
        assert!(validate(&body(r#"{"dob": "1815-12-10"}"#)).is_err());
        assert!(validate(&body(r#"{"dob": "1990-01-12"}"#)).is_ok());
        assert!(validate(&body(r#"{"dob": "2026-12-02"}"#)).is_ok());
        let future = validate(&body(r#"{"dob": "2026-12-03"}"#)).unwrap_err();
        assert_eq!(future.field_errors().get("dob"), [DOB_IN_FUTURE]);
        let old = validate(&body(r#"{"dob": "1895-12-03"}"#)).unwrap_err();
        assert_eq!(old.field_errors().get("dob"), [DOB_TOO_OLD]);
        assert!(validate(&body(r#"{"dob": "1895-12-04"}"#)).is_ok());
    }

    #[test]
    fn values_are_trimmed_and_empty_strings_clear() {
        let update = validate(&body(
            r#"{"first_name": "  Ada ", "city": "", "dob": null}"#,
        ))
        .unwrap();
        assert!(
            update
                .fields
                .contains(&("first_name", FieldValue::Text(Some("Ada".into()))))
        );
        assert!(update.fields.contains(&("city", FieldValue::Text(None))));
        assert!(update.fields.contains(&("dob", FieldValue::Date(None))));
    }

    #[test]
    fn every_error_is_reported_with_its_field() {
        let errors = validate(&body(
            r#"{"dob": "12/01/1990", "foo": "x", "zip": 12345, "gender": "xxxxxxxxxxxxxxxxxxxxx"}"#,
        ))
        .unwrap_err();
        let messages = errors.messages();
        assert!(messages.contains(&"dob: Must be a date (YYYY-MM-DD)".to_owned()));
        assert!(messages.contains(&"foo: Unknown field".to_owned()));
        assert!(messages.contains(&"zip: Must be a string".to_owned()));
        assert!(messages.contains(&"gender: Must be at most 20 characters".to_owned()));
        assert_eq!(errors.field_errors().get("dob"), [MUST_BE_DATE]);
    }

    #[test]
    fn the_avatar_can_only_be_cleared() {
        for bad in [
            r#"{"avatar": "javascript:alert(1)"}"#,
            r#"{"avatar": "/media/avatars/1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.png"}"#,
            r#"{"avatar": ""}"#,
            r#"{"avatar": 1}"#,
        ] {
            let errors = validate(&body(bad)).unwrap_err();
            assert_eq!(
                errors.field_errors().get("avatar"),
                [AVATAR_UPLOAD_ONLY],
                "{bad}"
            );
        }
        let update = validate(&body(r#"{"avatar": null}"#)).unwrap();
        assert_eq!(update.fields, [("avatar", FieldValue::Text(None))]);
    }

    #[test]
    fn a_loaded_avatar_is_only_ever_a_file_of_ours() {
        let ours = format!("/media/avatars/3-{}.jpg", "0".repeat(32));
        for (stored, shown) in [
            (Some("javascript:alert(1)"), None),
            (Some("https://evil.example/a.png"), None),
            (Some(ours.as_str()), Some(ours.as_str())),
            (None, None),
        ] {
            let profile = only_stored_avatar(Profile {
                avatar: stored.map(str::to_owned),
                ..Profile::default()
            });
            assert_eq!(profile.avatar.as_deref(), shown, "{stored:?}");
        }
    }

    #[test]
    fn dates_must_be_real_and_exactly_formatted() {
        assert!(parse_date("1990-02-28").is_some());
        assert!(parse_date("1990-02-30").is_none());
        assert!(parse_date("1990-2-3").is_none());
        assert!(parse_date("+01990-02-03").is_none());
    }

    #[test]
    fn the_profile_serialises_with_dates_as_text() {
        let profile = Profile {
            dob: Some(time::macros::date!(1990 - 01 - 12)),
            ..Profile::default()
        };
        let json = profile.to_json();
        assert_eq!(json["dob"], "1990-01-12");
        assert_eq!(json["first_name"], Value::Null);
        assert_eq!(json.as_object().map(Map::len), Some(10));
    }
}
