//! Which account a provider's person signs in as, and linking and unlinking providers.
//!
//! - A returning person is found by the stored link (provider, subject).
//! - The first time, an existing account is matched by email only when the provider says the
//!   email is verified and the local account's email is confirmed (else anyone who can make a
//!   provider account with a victim's unverified address, or who registered an address locally
//!   without owning it, could take the other's account). The link is stored, and the account's
//!   owner is told by mail (`oauth_notice`).
//! - An unknown person with a verified email gets a new account (confirmed, the default roles,
//!   the app's `user_created_sql`, no password), with its link, in one transaction, when
//!   `SECURITY_REGISTERABLE` is on; an unverified email makes no account. When
//!   `SECURITY_USERNAME_ENABLE` and `SECURITY_USERNAME_REQUIRED` want a username, the person is
//!   asked for one first (`oauth/signup.rs`) and the account is made with it.

use minijinja::context;

use super::provider::Identity;
use crate::activity::{ActivityEvent, Device, NewActivity};
use crate::config::{OauthConfig, OauthProvider};
use crate::datastore::{DatastoreError, NewOauthLink, Unlinked};
use crate::model::{NewUser, User};
use crate::web::notify::user_context;
use crate::web::security::Security;

/// What a sign-in through a provider comes to.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// Sign this user in (after their second factor, if they have one).
    User(Box<User>),
    /// Nobody is signed in: the message says why.
    Refused(String),
    /// A new account may be made for this verified `email`, once the person has chosen a
    /// username.
    UsernameNeeded {
        /// The provider's verified address.
        email: String,
    },
}

/// What making an account through a provider came to.
#[derive(Debug)]
pub(crate) enum Created {
    /// The new account (with its link).
    User(Box<User>),
    /// The username was taken meanwhile: nothing was written.
    UsernameTaken,
    /// Nothing was written: the message says why.
    Refused(String),
}

/// What linking or unlinking came to: the message to show.
#[derive(Debug)]
pub(crate) enum LinkOutcome {
    /// Done.
    Done(String),
    /// Refused.
    Refused(String),
}

/// Tells the account's owner that `provider` was linked (or unlinked).
fn notify(security: &Security, user: &User, provider: &str, linked: bool, email: Option<&str>) {
    let result = crate::web::notify::send(
        security,
        "oauth_notice",
        &user.email,
        context! {
            user => user_context(user),
            provider => OauthConfig::title(provider),
            provider_email => email,
            linked => linked,
            app_name => security.config().app_name,
        },
    );
    if let Err(error) = result {
        tracing::warn!(%error, "oauth: notice not sent");
    }
}

/// The account `identity` signs in as, per the rules above (a link made on the way is recorded
/// from `device`).
pub(crate) async fn resolve(
    security: &Security,
    provider: &OauthProvider,
    identity: &Identity,
    device: Device,
) -> crate::Result<Resolved> {
    let datastore = security.datastore();
    let now = security.now_naive();
    if let Some(link) = datastore
        .oauth_link(&provider.name, &identity.subject)
        .await?
    {
        let Some(user) = datastore.user_by_id(link.user_id).await? else {
            return Ok(Resolved::Refused(security.msg("OAUTH_STATE_INVALID", &[])));
        };
        if !user.active {
            return Ok(Resolved::Refused(security.msg("DISABLED_ACCOUNT", &[])));
        }
        datastore.oauth_link_touch(link.id, now).await?;
        return Ok(Resolved::User(Box::new(user)));
    }
    let title = OauthConfig::title(&provider.name);
    let Some(email) = identity.email.as_deref().filter(|e| !e.trim().is_empty()) else {
        return Ok(Resolved::Refused(
            security.msg("OAUTH_EMAIL_MISSING", &[("provider", &title)]),
        ));
    };
    if !identity.email_verified {
        return Ok(Resolved::Refused(
            security.msg("OAUTH_EMAIL_NOT_VERIFIED", &[("provider", &title)]),
        ));
    }
    let link = NewOauthLink {
        provider: &provider.name,
        subject: &identity.subject,
        email: Some(email),
    };
    if let Some(user) = datastore.user_by_email(email).await? {
        if user.confirmed_at.is_none() {
            return Ok(Resolved::Refused(
                security.msg("OAUTH_ACCOUNT_UNCONFIRMED", &[("provider", &title)]),
            ));
        }
        if !user.active {
            return Ok(Resolved::Refused(security.msg("DISABLED_ACCOUNT", &[])));
        }
        match create_link(security, user.id, &link, device).await {
            Ok(()) => {}
            // Linked meanwhile (a racing callback of the same person): sign in through it.
            Err(DatastoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
        notify(security, &user, &provider.name, true, Some(email));
        return Ok(Resolved::User(Box::new(user)));
    }
    let config = security.config();
    if !config.register.enabled {
        return Ok(Resolved::Refused(
            security.msg("IDENTITY_NOT_REGISTERED", &[("id", email)]),
        ));
    }
    if config.username.enabled && config.username.required {
        return Ok(Resolved::UsernameNeeded {
            email: email.to_owned(),
        });
    }
    Ok(
        match create(security, &provider.name, &identity.subject, email, None).await? {
            Created::User(user) => Resolved::User(user),
            Created::Refused(message) => Resolved::Refused(message),
            Created::UsernameTaken => Resolved::Refused(security.msg("OAUTH_STATE_INVALID", &[])),
        },
    )
}

/// Makes the account of the provider's person (`provider`, `subject`) with its verified
/// `email` and `username` (canonical, already checked): confirmed, the default roles, the app's
/// `user_created_sql`, no password, and the link, in one transaction; then the welcome mail.
pub(crate) async fn create(
    security: &Security,
    provider: &str,
    subject: &str,
    email: &str,
    username: Option<&str>,
) -> crate::Result<Created> {
    let datastore = security.datastore();
    let config = security.config();
    let now = security.now_naive();
    let link = NewOauthLink {
        provider,
        subject,
        email: Some(email),
    };
    let new_user = NewUser {
        email: email.to_owned(),
        username: username.map(str::to_owned),
        password_hash: None,
        active: true,
        // The provider verified the address: nothing to confirm.
        confirmed_at: Some(now),
        roles: config.register.default_roles.clone(),
    };
    let user = match datastore
        .create_user_with_oauth_link(
            &new_user,
            &crate::model::new_uniquifier(),
            now,
            security.user_created_sql(),
            &link,
        )
        .await
    {
        Ok(user) => user,
        Err(DatastoreError::Invalid(_)) => {
            return Ok(Created::Refused(security.msg("INVALID_EMAIL_ADDRESS", &[])));
        }
        Err(DatastoreError::Conflict(_)) => {
            if let Some(name) = username
                && datastore.user_by_username(name).await?.is_some()
            {
                return Ok(Created::UsernameTaken);
            }
            // The address or the provider account was taken meanwhile: begin again.
            return Ok(Created::Refused(security.msg("OAUTH_STATE_INVALID", &[])));
        }
        Err(other) => return Err(other.into()),
    };
    if config.register.send_email {
        let sent = crate::web::notify::send(
            security,
            "welcome",
            &user.email,
            context! {
                user => user_context(&user),
                confirmation_link => None::<String>,
                app_name => config.app_name,
            },
        );
        if let Err(error) = sent {
            tracing::warn!(%error, "oauth: welcome mail not sent");
        }
    }
    Ok(Created::User(Box::new(user)))
}

/// Stores `link` for `user_id` with its `provider_linked` record (from `device`), in one
/// transaction, and hands the event to the app's subscribers.
async fn create_link(
    security: &Security,
    user_id: i64,
    link: &NewOauthLink<'_>,
    device: Device,
) -> Result<(), DatastoreError> {
    let activity = provider_activity(user_id, true, device);
    let now = security.now_naive();
    let id = security
        .datastore()
        .oauth_link_create(user_id, link, now, &activity)
        .await?;
    crate::web::activity::broadcast(security, &activity, id, now);
    Ok(())
}

/// The record of a provider linked (`linked`) or unlinked for `user_id` by themselves.
fn provider_activity(user_id: i64, linked: bool, device: Device) -> NewActivity {
    NewActivity {
        user_id,
        actor_id: Some(user_id),
        event: if linked {
            ActivityEvent::ProviderLinked
        } else {
            ActivityEvent::ProviderUnlinked
        },
        device: Some(device),
    }
}

/// Links the provider account `identity` to the user `user_id` (who began the link signed in
/// and fresh), from `device`.
pub(crate) async fn link(
    security: &Security,
    user_id: i64,
    provider: &OauthProvider,
    identity: &Identity,
    device: Device,
) -> crate::Result<LinkOutcome> {
    let datastore = security.datastore();
    let title = OauthConfig::title(&provider.name);
    let Some(user) = datastore.user_by_id(user_id).await? else {
        return Ok(LinkOutcome::Refused(
            security.msg("OAUTH_STATE_INVALID", &[]),
        ));
    };
    if let Some(existing) = datastore
        .oauth_link(&provider.name, &identity.subject)
        .await?
    {
        return Ok(if existing.user_id == user_id {
            LinkOutcome::Done(security.msg("OAUTH_LINKED", &[("provider", &title)]))
        } else {
            LinkOutcome::Refused(security.msg("OAUTH_LINKED_ELSEWHERE", &[("provider", &title)]))
        });
    }
    let already = datastore
        .oauth_links(user_id)
        .await?
        .into_iter()
        .any(|l| l.provider == provider.name);
    if already {
        return Ok(LinkOutcome::Refused(
            security.msg("OAUTH_ALREADY_LINKED", &[("provider", &title)]),
        ));
    }
    let link = NewOauthLink {
        provider: &provider.name,
        subject: &identity.subject,
        email: identity.email.as_deref(),
    };
    match create_link(security, user_id, &link, device).await {
        Ok(()) => {}
        Err(DatastoreError::Conflict(_)) => {
            return Ok(LinkOutcome::Refused(
                security.msg("OAUTH_LINKED_ELSEWHERE", &[("provider", &title)]),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    notify(
        security,
        &user,
        &provider.name,
        true,
        identity.email.as_deref(),
    );
    Ok(LinkOutcome::Done(
        security.msg("OAUTH_LINKED", &[("provider", &title)]),
    ))
}

/// Unlinks `provider` from `user`, unless it is their last way to sign in (no password, no
/// other link, no passkey that signs in alone): checked and removed in one atomic step, so
/// concurrent unlinks cannot remove the last way.
pub(crate) async fn unlink(
    security: &Security,
    user: &User,
    provider: &str,
    device: Device,
) -> crate::Result<LinkOutcome> {
    let config = security.config();
    let title = OauthConfig::title(provider);
    let passkeys_sign_in = config.webauthn.enabled && config.webauthn.allow_as_first_factor;
    let activity = provider_activity(user.id, false, device);
    let now = security.now_naive();
    match security
        .datastore()
        .oauth_unlink_unless_last(user.id, provider, passkeys_sign_in, &activity, now)
        .await?
    {
        Unlinked::NotLinked => Ok(LinkOutcome::Refused(
            security.msg("OAUTH_NOT_LINKED", &[("provider", &title)]),
        )),
        Unlinked::LastWay => Ok(LinkOutcome::Refused(
            security.msg("OAUTH_LAST_SIGNIN_METHOD", &[("provider", &title)]),
        )),
        Unlinked::Removed(id) => {
            crate::web::activity::broadcast(security, &activity, id, now);
            notify(security, user, provider, false, None);
            Ok(LinkOutcome::Done(
                security.msg("OAUTH_UNLINKED", &[("provider", &title)]),
            ))
        }
    }
}
