//! One module per Flask-Security feature, each with its routes, forms, templates and mails, and
//! the one place that assembles their routers.
//!
//! A feature imports the core and [`crate::web`]; it reaches another feature only through a named
//! hand-off: register → confirm, login → two_factor, login → unlock, webauthn → two_factor (a passkey
//! sign-in that still needs the second factor), and any → verify.

pub(crate) mod change;
pub(crate) mod change_email;
pub(crate) mod confirm;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod recover;
pub(crate) mod recovery_codes;
pub(crate) mod register;
pub(crate) mod two_factor;
pub(crate) mod unlock;
pub(crate) mod verify;
pub(crate) mod webauthn;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::web::security::Security;

impl Security {
    /// The framework's routes (login, logout, register, confirm, reset, change), per the
    /// configuration. Merge it into the app's router.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let config = self.config();
        let mut router = Router::new()
            .merge(login::router(config))
            .merge(logout::router(config))
            .merge(verify::router(config))
            .merge(unlock::router(config));
        if config.register.enabled {
            router = router.merge(register::router(config));
        }
        if config.confirm.enabled {
            router = router.merge(confirm::router(config));
        }
        if config.recover.enabled {
            router = router.merge(recover::router(config));
        }
        if config.change.enabled {
            router = router.merge(change::router(config));
        }
        if config.change_email.enabled {
            router = router.merge(change_email::router(config));
        }
        if config.webauthn.enabled {
            router = router.merge(webauthn::router(config));
        }
        if config.two_factor.enabled {
            router = router.merge(two_factor::router(config));
            if config.recovery_codes.enabled {
                router = router.merge(recovery_codes::router(config));
            }
        }
        router
            .layer(DefaultBodyLimit::max(config.max_content_length))
            .with_state(self.clone())
    }
}
