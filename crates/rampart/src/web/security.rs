//! [`Security`]: the framework's handle (cheap to clone), its builder and its layer (its router
//! is assembled in [`crate::features`]).

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::SecurityConfig;
use crate::datastore::Datastore;
use crate::error::{Error, Result};
use crate::mail::{ConsoleMailer, Mailer, SharedMailer};
use crate::messages::Messages;
use crate::password::PasswordHasher;
use crate::token::TokenSigner;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::layer::SecurityLayer;
use crate::web::session_store::DbSessionStore;
use crate::web::templates::Templates;

/// The framework: configuration, datastore, hasher, signer, mailer and templates.
///
/// Clone it freely (it is an `Arc`). Apps add [`Security::router`] to their router and wrap the
/// whole app in [`Security::layer`].
#[derive(Clone)]
pub struct Security {
    inner: Arc<Inner>,
}

struct Inner {
    config: SecurityConfig,
    datastore: Datastore,
    hasher: PasswordHasher,
    signer: TokenSigner,
    mailer: SharedMailer,
    templates: Templates,
    clock: Arc<dyn Clock>,
    messages: Messages,
    session_store: Arc<DbSessionStore>,
    user_created_sql: Vec<String>,
    register_checks: Vec<RegisterCheck>,
    /// The `config` every page template sees, built on first use (the configuration is fixed).
    page_config: std::sync::OnceLock<minijinja::Value>,
}

/// An extra check of the registration form, run by the registration form's validation after the
/// built-in ones: it reads the input and adds messages to the errors (see
/// [`SecurityBuilder::register_check`]).
pub type RegisterCheck = Arc<dyn Fn(&mut FormInput, &mut FieldErrors) + Send + Sync>;

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("backend", &self.inner.datastore.backend_name())
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Starts building a [`Security`] from a configuration.
    pub fn builder(config: SecurityConfig) -> SecurityBuilder {
        SecurityBuilder {
            config,
            datastore: None,
            mailer: None,
            clock: None,
            user_created_sql: Vec::new(),
            migrate: true,
            embedded_templates: Vec::new(),
            template_globals: Vec::new(),
            register_checks: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SecurityConfig {
        &self.inner.config
    }

    /// The datastore.
    pub fn datastore(&self) -> &Datastore {
        &self.inner.datastore
    }

    /// The password hasher (bounded blocking pool).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The token signer (`SECRET_KEY` key ring).
    pub fn signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    /// The mailer.
    pub fn mailer(&self) -> &SharedMailer {
        &self.inner.mailer
    }

    /// The templates (built-in, overridable from `SECURITY_TEMPLATE_DIR`).
    pub fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    /// The settings page templates see as `config` (built once).
    pub(crate) fn page_config(&self) -> minijinja::Value {
        self.inner
            .page_config
            .get_or_init(|| crate::web::templates::page_config(self))
            .clone()
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// User-facing messages with the configured overrides.
    pub fn messages(&self) -> &Messages {
        &self.inner.messages
    }

    /// The message `key`, with placeholders filled.
    pub fn msg(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.inner.messages.get(key, args)
    }

    pub(crate) fn session_store(&self) -> &Arc<DbSessionStore> {
        &self.inner.session_store
    }

    pub(crate) fn user_created_sql(&self) -> &[String] {
        &self.inner.user_created_sql
    }

    pub(crate) fn register_checks(&self) -> &[RegisterCheck] {
        &self.inner.register_checks
    }

    /// Now in whole seconds since 1970 (0 before), as session timestamps and one-time codes use.
    pub(crate) fn unix_now(&self) -> u64 {
        u64::try_from(self.clock().now().unix_timestamp()).unwrap_or(0)
    }

    /// Naive UTC now, as stored in the database.
    pub(crate) fn now_naive(&self) -> time::PrimitiveDateTime {
        crate::clock::naive(self.clock().now())
    }

    /// Deletes expired sessions; returns how many. See [`Security::spawn_housekeeping`].
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        Ok(self
            .datastore()
            .delete_expired_sessions(self.now_naive())
            .await?)
    }

    /// Spawns a task that purges expired sessions every `every` (errors are logged).
    pub fn spawn_housekeeping(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let security = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                match security.purge_expired_sessions().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired sessions purged"),
                    Err(error) => tracing::warn!(%error, "purging expired sessions failed"),
                }
            }
        })
    }

    /// The layer that loads the session or auth token, resolves the user, checks CSRF, renders
    /// errors in the request's format and sets security headers. Wrap the whole app in it, and
    /// give it the app's router with [`SecurityLayer::routes`] so that a wrong method on the
    /// app's routes gets 405 rather than a CSRF refusal.
    pub fn layer(&self) -> SecurityLayer {
        SecurityLayer::new(self.clone())
    }
}

/// Builds a [`Security`]; see [`Security::builder`].
pub struct SecurityBuilder {
    config: SecurityConfig,
    datastore: Option<Datastore>,
    mailer: Option<SharedMailer>,
    clock: Option<Arc<dyn Clock>>,
    user_created_sql: Vec<String>,
    migrate: bool,
    embedded_templates: Vec<(&'static str, &'static str)>,
    template_globals: Vec<(String, minijinja::Value)>,
    register_checks: Vec<RegisterCheck>,
}

impl SecurityBuilder {
    /// The datastore (required).
    pub fn datastore(mut self, datastore: Datastore) -> Self {
        self.datastore = Some(datastore);
        self
    }

    /// The mailer; the console mailer by default.
    pub fn mailer(mut self, mailer: impl Mailer) -> Self {
        self.mailer = Some(Arc::new(mailer));
        self
    }

    /// A shared mailer (e.g. a memory mailer the test keeps a handle to).
    pub fn shared_mailer(mut self, mailer: SharedMailer) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The clock; the system clock by default.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// An SQL statement run in the same transaction as every user creation, with `$1` bound to
    /// the new user's id (e.g. `INSERT INTO profile (user_id) VALUES ($1)`).
    pub fn on_user_created_sql(mut self, sql: impl Into<String>) -> Self {
        self.user_created_sql.push(sql.into());
        self
    }

    /// Templates compiled into the app, as `(name, source)` pairs (e.g. from `include_str!`): they
    /// override the built-in templates of the same name (`security/login_user.html`, …) and may add
    /// pages of the app's own. Files in `SECURITY_TEMPLATE_DIR` still take precedence, so a
    /// deployment can restyle a page without a rebuild.
    pub fn embedded_templates(
        mut self,
        templates: impl IntoIterator<Item = (&'static str, &'static str)>,
    ) -> Self {
        self.embedded_templates.extend(templates);
        self
    }

    /// A value visible in every template under `name` (e.g. an asset version).
    pub fn template_global(
        mut self,
        name: impl Into<String>,
        value: impl serde::Serialize,
    ) -> Self {
        self.template_globals
            .push((name.into(), minijinja::Value::from_serialize(value)));
        self
    }

    /// An extra check of the registration form, like a field of Flask-Security's
    /// `ExtendedRegisterForm`: it runs after the built-in checks, for form posts and JSON alike
    /// ([`FormInput::is_json`] tells them apart), and adds its messages to the errors.
    ///
    /// ```
    /// # fn f(builder: rampart::SecurityBuilder) -> rampart::SecurityBuilder {
    /// builder.register_check(|input, errors| {
    ///     if !input.is_json && input.flag("terms") != Some(true) {
    ///         errors.add("terms", "You must agree to the terms to sign up.");
    ///     }
    /// })
    /// # }
    /// ```
    pub fn register_check(
        mut self,
        check: impl Fn(&mut FormInput, &mut FieldErrors) + Send + Sync + 'static,
    ) -> Self {
        self.register_checks.push(Arc::new(check));
        self
    }

    /// Whether `build` applies the framework's migrations (default: yes).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Validates the configuration, applies migrations and builds the [`Security`].
    ///
    /// Outside `DEBUG`, one of `SERVER_NAME` and `TRUSTED_HOSTS` is required: without either,
    /// links in mails would follow the request's (forgeable) `Host` header.
    pub async fn build(self) -> Result<Security> {
        self.config.validate()?;
        require_own_host(&self.config)?;
        let datastore = self
            .datastore
            .ok_or_else(|| Error::Internal("SecurityBuilder: no datastore given".into()))?;
        datastore.set_username_normalize_form(self.config.username.normalize_form);
        if self.migrate {
            datastore.migrate().await?;
            datastore.normalize_stored_identities().await?;
        }
        datastore.set_cache_ttl(self.config.auth_cache_ttl);
        let hasher = PasswordHasher::new(&self.config.password)?;
        let signer = TokenSigner::new(
            self.config.secret_key.clone(),
            self.config.secret_key_fallbacks.clone(),
        );
        let templates = Templates::with_sources(
            self.config.template_dir.iter().cloned().collect(),
            self.embedded_templates,
            self.template_globals,
        )?;
        let messages = Messages::new(self.config.messages.clone())
            .with_page_overrides(self.config.page_messages.clone());
        let session_store = Arc::new(DbSessionStore::new(datastore.clone()));
        Ok(Security {
            inner: Arc::new(Inner {
                page_config: std::sync::OnceLock::new(),
                mailer: self.mailer.unwrap_or_else(|| Arc::new(ConsoleMailer)),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config: self.config,
                datastore,
                hasher,
                signer,
                templates,
                messages,
                session_store,
                user_created_sql: self.user_created_sql,
                register_checks: self.register_checks,
            }),
        })
    }
}

/// Outside `DEBUG`, refuses a configuration with neither `SERVER_NAME` nor `TRUSTED_HOSTS`: links
/// in mails (confirmation, password reset) would then be built from the request's `Host` header,
/// which anyone can forge to point a victim's reset link at their own site.
fn require_own_host(config: &SecurityConfig) -> std::result::Result<(), crate::ConfigError> {
    if config.debug || config.server_name.is_some() || !config.trusted_hosts.is_empty() {
        return Ok(());
    }
    Err(crate::ConfigError::Missing {
        key: "SERVER_NAME".into(),
        message: "outside DEBUG, set SERVER_NAME (the host and port of the links in mails, e.g. \
                  app.example.com) or TRUSTED_HOSTS (the hosts this app answers for); without \
                  either, links in mails follow the request's Host header, which a client can forge"
            .into(),
    })
}

#[cfg(test)]
mod own_host_tests {
    use super::*;

    /// A configuration that passes `validate` (secret key and salt set), outside `DEBUG`.
    fn valid() -> SecurityConfig {
        SecurityConfig::from_settings(&crate::Settings::from_pairs([
            ("SECRET_KEY", "unit-test-secret-key-0123456789"),
            ("SECURITY_PASSWORD_SALT", "unit-test-salt"),
        ]))
        .expect("valid settings")
    }

    #[tokio::test]
    async fn outside_debug_start_up_needs_server_name_or_trusted_hosts() {
        let Err(error) = Security::builder(valid()).build().await else {
            panic!("built without SERVER_NAME or TRUSTED_HOSTS");
        };
        assert_eq!(error.kind(), crate::ErrorKind::Config);
        let text = error.to_string();
        assert!(text.contains("SERVER_NAME"), "{text}");
        assert!(text.contains("TRUSTED_HOSTS"), "{text}");

        for config in [
            SecurityConfig {
                debug: true,
                ..valid()
            },
            SecurityConfig {
                server_name: Some("app.example.com".into()),
                ..valid()
            },
            SecurityConfig {
                trusted_hosts: vec!["app.example.com".into()],
                ..valid()
            },
        ] {
            assert!(require_own_host(&config).is_ok());
            // Past the check, the build stops at the next missing piece: the datastore.
            let Err(error) = Security::builder(config).build().await else {
                panic!("built without a datastore");
            };
            assert!(!error.to_string().contains("TRUSTED_HOSTS"), "{error}");
        }
    }
}
