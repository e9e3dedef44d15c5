//! Registering a key: `GET /wan-register` lists the user's keys, `POST /wan-register {"name",
//! "usage"}` begins, `POST /wan-register/<wan_state> {"credential"}` finishes.

use axum::extract::Path;
use serde_json::{Value, json};
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, RegisterPublicKeyCredential, Registration, RegistrationState,
    UserVerificationPolicy,
};

use super::{
    Ceremony, FIRST, Lookup, SECONDARY, begin_ceremony, clean_name, listing, listing_json,
    options_json, refused, register_page, relying_party, state_refused, take_ceremony,
};
use crate::model::{NewWebauthnCredential, User};
use crate::web::context::AuthContext;
use crate::web::extract::{CurrentUser, FreshUser};
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;

const TEMPLATE: &str = "security/wan_register.html";

/// The user's passkeys.
#[utoipa::path(
    get,
    path = "/wan-register",
    tag = "wan",
    responses((status = 200, description = "The passkeys.", body = super::WanListing)),
    security(("signed_in" = []))
)]
pub(super) async fn get_register(ctx: AuthContext, user: FreshUser) -> Result<Reply, Rejection> {
    let security = ctx.security();
    let creds = listing(security, user.user.id).await?;
    let page = super::register_page(security.config(), &creds);
    let mut form = Form::new(TEMPLATE).page(page);
    for (key, value) in listing_json(creds) {
        form = form.json(&key, value);
    }
    Ok(Reply::Form(form))
}

/// A registration begun ([`begin`]): the options for `navigator.credentials.create()` and the
/// state that finishes it.
struct Begun {
    options: Value,
    state: RegistrationState,
}

/// Begins registering a key named `name` for `usage` (`first` or `secondary`): the options
/// exclude the user's keys; `first` keys are asked to verify the user when they can and to be
/// discoverable; `secondary` keys are not asked to verify the user.
fn begin(
    ctx: &AuthContext,
    user: &User,
    handle: &str,
    usage: &str,
    excluded: Vec<Vec<u8>>,
) -> crate::Result<Begun> {
    let config = ctx.security().config();
    let wan = &config.webauthn;
    let rp = relying_party(ctx, wan.register_timeout)?;
    let user_name = user.username.clone().unwrap_or_else(|| user.email.clone());
    let policy = if usage == FIRST {
        UserVerificationPolicy::Preferred
    } else {
        UserVerificationPolicy::Discouraged_DO_NOT_USE
    };
    let builder = rp
        .new_challenge_register_builder(handle.as_bytes(), &user_name, &user_name)
        .map_err(|e| crate::Error::Internal(format!("webauthn: {e:?}")))?
        .attestation(AttestationConveyancePreference::None)
        .user_verification_policy(policy)
        .require_resident_key(!wan.allow_user_hints)
        .exclude_credentials(Some(excluded.into_iter().map(Into::into).collect()));
    let (challenge, state) = rp
        .generate_challenge_register(builder)
        .map_err(|e| crate::Error::Internal(format!("webauthn: {e:?}")))?;
    let mut options = options_json(&challenge.public_key)?;
    // As Flask-Security: discoverable preferred (required without user hints), and ask whether
    // the key was made discoverable (credProps).
    if let Some(selection) = options
        .get_mut("authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        let resident = if wan.allow_user_hints {
            "preferred"
        } else {
            "required"
        };
        selection.insert("residentKey".into(), json!(resident));
        selection.insert("requireResidentKey".into(), json!(!wan.allow_user_hints));
    }
    if let Some(map) = options.as_object_mut() {
        map.insert("extensions".into(), json!({"credProps": true}));
    }
    Ok(Begun { options, state })
}

/// Begins registering a passkey: the options for `navigator.credentials.create`.
#[utoipa::path(
    post,
    path = "/wan-register",
    tag = "wan",
    request_body = WanRegisterBody,
    responses((status = 200, description = "Begun.", body = super::WanBegun)),
    security(("signed_in" = []))
)]
pub(super) async fn post_register(
    ctx: AuthContext,
    user: FreshUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let user = &user.user;
    let name = input.text("name").unwrap_or_default();
    let usage = input.text("usage").unwrap_or_else(|| SECONDARY.to_owned());
    let existing = security.datastore().webauthn_credentials(user.id).await?;
    let mut errors = FieldErrors::new();
    let name = match clean_name(&security, &name) {
        Ok(name) => Some(name),
        Err(message) => {
            errors.add("name", message);
            None
        }
    };
    if let Some(name) = &name
        && existing.iter().any(|c| &c.name == name)
    {
        errors.add(
            "name",
            security.msg("WEBAUTHN_NAME_INUSE", &[("name", name)]),
        );
    }
    if usage != FIRST && usage != SECONDARY {
        errors.add("usage", security.msg("INVALID_INPUT", &[]));
    }
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        let creds = existing
            .iter()
            .map(super::listing_entry)
            .collect::<Vec<_>>();
        return Ok(Reply::Invalid(
            Form::new(TEMPLATE)
                .page(register_page(config, &creds))
                .values(json!({"name": input.values().get("name")}))
                .errors(errors),
        ));
    };
    let usage = if config.webauthn.allow_as_first_factor {
        usage
    } else {
        SECONDARY.to_owned()
    };
    let handle = security
        .datastore()
        .webauthn_user_handle(user.id, security.now_naive())
        .await?;
    let excluded = existing.iter().map(|c| c.credential_id.clone()).collect();
    let begun = begin(&ctx, user, &handle, &usage, excluded)?;
    let state = serde_json::to_value(&begun.state)
        .map_err(|e| crate::Error::Internal(format!("webauthn state: {e}")))?;
    let token = begin_ceremony(
        &ctx,
        Ceremony::Register,
        config.webauthn.register_within,
        state,
        |p| {
            p.user_id = Some(user.id);
            p.name = Some(name.clone());
            p.usage = Some(usage.clone());
        },
    )
    .await?;
    let mut json = serde_json::Map::new();
    json.insert("credential_options".into(), begun.options.clone());
    json.insert("wan_state".into(), json!(token));
    let creds = listing(&security, user.id).await?;
    Ok(Reply::done(
        Json::Base(json),
        Html::Page {
            template: TEMPLATE,
            context: minijinja::context! {
                registered_credentials => creds,
                allow_first => config.webauthn.allow_as_first_factor,
                wan_state => token,
                credential_options => begun.options.to_string(),
                name => name,
            },
        },
    ))
}

/// What a registration's finish came to.
enum Finish {
    Stored { name: String },
    Refused(FieldErrors),
}

/// Checks the posted `credential` (a JSON string) against the begun registration and stores
/// the key.
async fn finish(
    ctx: &AuthContext,
    user: &User,
    pending: &super::Pending,
    credential: &str,
) -> crate::Result<Finish> {
    let security = ctx.security();
    let api_error = || {
        Finish::Refused(FieldErrors::single(
            "credential",
            security.msg("API_ERROR", &[]),
        ))
    };
    let (Some(name), Some(usage)) = (pending.name.clone(), pending.usage.clone()) else {
        return Ok(api_error());
    };
    if pending.user_id != Some(user.id) {
        return Ok(api_error());
    }
    let Ok(state) = serde_json::from_value::<RegistrationState>(pending.state.clone()) else {
        return Ok(api_error());
    };
    let Ok(raw) = serde_json::from_str::<Value>(credential) else {
        return Ok(api_error());
    };
    let Ok(reg) = serde_json::from_value::<RegisterPublicKeyCredential>(raw.clone()) else {
        return Ok(api_error());
    };
    let existing = security.datastore().webauthn_credentials(user.id).await?;
    if existing.iter().any(|c| c.name == name) {
        let message = security.msg("WEBAUTHN_NAME_INUSE", &[("name", &name)]);
        return Ok(Finish::Refused(FieldErrors::single("credential", message)));
    }
    let rp = relying_party(ctx, security.config().webauthn.register_timeout)?;
    let cred = match rp.register_credential(&reg, &state, None) {
        Ok(cred) => cred,
        Err(error) => {
            let cause = format!("{error:?}");
            let message = security.msg("WEBAUTHN_NO_VERIFY", &[("cause", &cause)]);
            return Ok(Finish::Refused(FieldErrors::single("credential", message)));
        }
    };
    let Some(public_key) = cose_public_key(&reg) else {
        return Ok(api_error());
    };
    if security
        .datastore()
        .webauthn_by_credential_id(cred.cred_id.as_ref())
        .await?
        .is_some()
    {
        let message = security.msg("WEBAUTHN_CREDENTIAL_ID_INUSE", &[]);
        return Ok(Finish::Refused(FieldErrors::single("credential", message)));
    }
    let transports = raw
        .pointer("/response/transports")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let extensions = raw
        .get("clientExtensionResults")
        .or_else(|| raw.get("extensions"))
        .filter(|e| e.as_object().is_some_and(|m| !m.is_empty()))
        .map(Value::to_string)
        .filter(|e| e.len() <= 255);
    let new = NewWebauthnCredential {
        credential_id: cred.cred_id.as_ref().to_vec(),
        public_key,
        sign_count: cred.counter,
        transports,
        backup_state: cred.backup_state,
        device_type: if cred.backup_eligible {
            "multi_device".into()
        } else {
            "single_device".into()
        },
        extensions,
        name: name.clone(),
        usage,
    };
    let activity = crate::activity::NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: crate::activity::ActivityEvent::PasskeyAdded,
        device: Some(crate::web::activity::device(ctx)),
    };
    let now = security.now_naive();
    match security
        .datastore()
        .create_webauthn_recorded(user.id, &new, now, &activity)
        .await
    {
        Ok(id) => crate::web::activity::broadcast(security, &activity, id, now),
        Err(error) if error.is_conflict() => {
            let message = security.msg("WEBAUTHN_CREDENTIAL_ID_INUSE", &[]);
            return Ok(Finish::Refused(FieldErrors::single("credential", message)));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(user = user.id, name = %name, "webauthn credential registered");
    Ok(Finish::Stored { name })
}

/// The credential's public key as COSE (CBOR) bytes, as Flask-Security stores it: read from the
/// attested credential data of the (already verified) attestation object.
fn cose_public_key(reg: &RegisterPublicKeyCredential) -> Option<Vec<u8>> {
    let object: serde_cbor_2::Value =
        serde_cbor_2::from_slice(reg.response.attestation_object.as_ref()).ok()?;
    let serde_cbor_2::Value::Map(map) = object else {
        return None;
    };
    let auth_data = map.iter().find_map(|(k, v)| match (k, v) {
        (serde_cbor_2::Value::Text(k), serde_cbor_2::Value::Bytes(b)) if k == "authData" => {
            Some(b.as_slice())
        }
        _ => None,
    })?;
    let data = AuthenticatorData::<Registration>::try_from(auth_data).ok()?;
    serde_cbor_2::to_vec(&data.acd?.credential_pk).ok()
}

/// Finishes registering a passkey with the authenticator's answer.
#[utoipa::path(
    post,
    path = "/wan-register/{state}",
    tag = "wan",
    request_body = super::WanCredentialBody,
    params(("state" = String, Path, description = "The state from the link or the earlier answer.")),
    responses((status = 200, description = "Registered.", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
pub(super) async fn post_register_response(
    ctx: AuthContext,
    user: CurrentUser,
    Path(token): Path<String>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let back = config.url(&config.webauthn.register_url);
    let within = config.webauthn.register_within;
    let pending = match take_ceremony(&ctx, &token, Ceremony::Register).await? {
        Lookup::Found(pending) => pending,
        Lookup::Expired => return Ok(refused(&state_refused(&security, true, within), back)),
        Lookup::Unknown => return Ok(refused(&state_refused(&security, false, within), back)),
    };
    let credential = input.text("credential").unwrap_or_default();
    match finish(&ctx, &user.user, &pending, &credential).await? {
        Finish::Refused(errors) => Ok(refused(&errors, back)),
        Finish::Stored { name } => {
            let to = config.webauthn.post_register_view.clone().unwrap_or(back);
            let mut json = serde_json::Map::new();
            json.insert("user".into(), ctx.user_payload(&user, false)?);
            Ok(Reply::done(
                Json::Base(json),
                Html::flash_redirect(
                    "info",
                    security.msg("WEBAUTHN_REGISTER_SUCCESSFUL", &[("name", &name)]),
                    to,
                ),
            ))
        }
    }
}

/// The body of `POST /wan-register`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct WanRegisterBody {
    /// The passkey's name.
    name: String,
    /// `first` or `secondary`.
    #[schema(nullable = false)]
    usage: Option<String>,
}
