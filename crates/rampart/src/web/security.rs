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
    sms_sender: crate::sms::SharedSmsSender,
    templates: Templates,
    clock: Arc<dyn Clock>,
    messages: Messages,
    session_store: Arc<DbSessionStore>,
    user_created_sql: Vec<String>,
    register_checks: Vec<RegisterCheck>,
    /// Prometheus metrics, when on ([`SecurityBuilder::metrics`]).
    metrics: crate::web::metrics::SharedMetrics,
    /// The `config` every page template sees, built on first use (the configuration is fixed).
    page_config: std::sync::OnceLock<minijinja::Value>,
    /// Pages the same for every anonymous visitor but for the CSRF token, rendered once.
    page_cache: crate::web::page_cache::PageCache,
    /// The activity channel and the sessions' last-seen throttle.
    activity_hub: crate::web::activity::ActivityHub,
    /// The app's sections of the data export, by name.
    export_sections: Vec<(String, ExportSection)>,
}

/// An app's section of the data export: given the framework and the user's id, its JSON value
/// (see [`SecurityBuilder::export_section`]).
pub type ExportSection = Arc<
    dyn Fn(
            Security,
            i64,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value>> + Send>>
        + Send
        + Sync,
>;

/// A subscriber to the account events (see [`SecurityBuilder::on_activity`]).
pub type ActivityHook = Arc<dyn Fn(&crate::activity::Activity) + Send + Sync>;

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
            sms_sender: None,
            clock: None,
            user_created_sql: Vec::new(),
            migrate: true,
            embedded_templates: Vec::new(),
            template_globals: Vec::new(),
            catalogs: Vec::new(),
            register_checks: Vec::new(),
            metrics: false,
            activity_hooks: Vec::new(),
            export_sections: Vec::new(),
        }
    }

    pub(crate) fn export_sections(&self) -> &[(String, ExportSection)] {
        &self.inner.export_sections
    }

    /// A receiver of every account event recorded from now on (sign-ins, failed sign-ins,
    /// password changes, …; see [`ActivityEvent`](crate::activity::ActivityEvent)) — the
    /// counterpart of Flask-Security's signals. A receiver that falls more than 1024 events
    /// behind misses the oldest ([`tokio::sync::broadcast`]).
    pub fn subscribe_activity(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::activity::Activity> {
        self.inner.activity_hub.subscribe()
    }

    /// Appends an account event to the activity log and hands it to the subscribers: for an
    /// app's own events about accounts (an administrator's role change, a deletion). The
    /// framework records its own.
    ///
    /// # Errors
    ///
    /// The datastore's.
    pub async fn record_activity(&self, activity: crate::activity::NewActivity) -> Result<()> {
        crate::web::activity::record(self, activity).await
    }

    /// Deletes the account `user_id` (as [`Datastore::delete_user`]) and records
    /// `account_deleted` by `actor_id` from `device` in the same transaction. `false` when there
    /// was no such user.
    ///
    /// # Errors
    ///
    /// The datastore's; nothing is deleted or recorded then.
    pub async fn delete_user_recorded(
        &self,
        user_id: i64,
        actor_id: Option<i64>,
        device: Option<crate::activity::Device>,
    ) -> Result<bool> {
        let activity = crate::activity::NewActivity {
            user_id,
            actor_id,
            event: crate::activity::ActivityEvent::AccountDeleted,
            device,
        };
        let now = self.now_naive();
        let recorded = self
            .datastore()
            .delete_user_recorded(user_id, &activity, now)
            .await?;
        if let Some(id) = recorded {
            crate::web::activity::broadcast(self, &activity, id, now);
        }
        Ok(recorded.is_some())
    }

    /// Activates or deactivates the account `user_id` (as [`Datastore::set_active`]) and records
    /// `account_activated` / `account_deactivated` by `actor_id` (an administrator) from `device`
    /// in the same transaction.
    ///
    /// # Errors
    ///
    /// The datastore's (not found for an unknown user); nothing is written then.
    pub async fn set_active_recorded(
        &self,
        user_id: i64,
        active: bool,
        actor_id: Option<i64>,
        device: Option<crate::activity::Device>,
    ) -> Result<()> {
        let activity = crate::activity::NewActivity {
            user_id,
            actor_id,
            event: if active {
                crate::activity::ActivityEvent::AccountActivated
            } else {
                crate::activity::ActivityEvent::AccountDeactivated
            },
            device,
        };
        let now = self.now_naive();
        let id = self
            .datastore()
            .set_active_recorded(user_id, active, now, &activity)
            .await?;
        crate::web::activity::broadcast(self, &activity, id, now);
        Ok(())
    }

    /// Gives (`add`) or takes the role named `role` to or from `user_id` (as
    /// [`Datastore::add_role_to_user`] / [`Datastore::remove_role_from_user`]) and records
    /// `role_added` / `role_removed` by `actor_id` (an administrator) from `device` in the same
    /// transaction. `false`, nothing written, when they already had (or did not have) it.
    ///
    /// # Errors
    ///
    /// The datastore's (not found for an unknown role or user when adding); nothing is written
    /// then.
    pub async fn change_role_recorded(
        &self,
        user_id: i64,
        role: &str,
        add: bool,
        actor_id: Option<i64>,
        device: Option<crate::activity::Device>,
    ) -> Result<bool> {
        let role_name = role.to_owned();
        let activity = crate::activity::NewActivity {
            user_id,
            actor_id,
            event: if add {
                crate::activity::ActivityEvent::RoleAdded { role: role_name }
            } else {
                crate::activity::ActivityEvent::RoleRemoved { role: role_name }
            },
            device,
        };
        let now = self.now_naive();
        let recorded = self
            .datastore()
            .change_role_recorded(user_id, role, add, now, &activity)
            .await?;
        if let Some(id) = recorded {
            crate::web::activity::broadcast(self, &activity, id, now);
        }
        Ok(recorded.is_some())
    }

    pub(crate) fn activity_hub(&self) -> &crate::web::activity::ActivityHub {
        &self.inner.activity_hub
    }

    /// Deletes account events older than `SECURITY_ACTIVITY_RETENTION`; returns how many. Run
    /// by [`Security::spawn_housekeeping`].
    pub async fn purge_old_activity(&self) -> Result<u64> {
        let retention = time::Duration::try_from(self.config().activity.retention)
            .unwrap_or(time::Duration::MAX);
        let before = self.now_naive().checked_sub(retention);
        match before {
            Some(before) => Ok(self.datastore().delete_activity_before(before).await?),
            None => Ok(0),
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

    /// The text message sender (`SECURITY_SMS_SERVICE`).
    pub fn sms_sender(&self) -> &crate::sms::SharedSmsSender {
        &self.inner.sms_sender
    }

    /// The templates (built-in, overridable from `SECURITY_TEMPLATE_DIR`).
    pub fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    /// The settings page templates see as `config` (built once).
    pub(crate) fn page_config(&self) -> minijinja::Value {
        self.inner
            .page_config
            // Computed once for every request: in English, whatever the first request's language.
            .get_or_init(|| crate::i18n::in_english(|| crate::web::templates::page_config(self)))
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

    /// The language to answer a request with these headers in: the best match of its
    /// `Accept-Language` among the catalogs, else the default language.
    pub fn locale_for(&self, headers: &axum::http::HeaderMap) -> Option<Arc<crate::i18n::Catalog>> {
        let header = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        self.inner.messages.catalogs().negotiate(header).cloned()
    }

    /// The message `key`, with placeholders filled.
    pub fn msg(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.inner.messages.get(key, args)
    }

    /// The pages rendered once for every anonymous visitor.
    pub(crate) fn page_cache(&self) -> &crate::web::page_cache::PageCache {
        &self.inner.page_cache
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

    /// The metrics, when on.
    pub(crate) fn metrics(&self) -> Option<&crate::web::metrics::Metrics> {
        self.inner.metrics.as_deref()
    }

    /// Whether Prometheus metrics are on ([`SecurityBuilder::metrics`]).
    pub fn metrics_enabled(&self) -> bool {
        self.inner.metrics.is_some()
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

    /// Spawns a task that purges expired sessions and account events older than
    /// `SECURITY_ACTIVITY_RETENTION` every `every` (errors are logged).
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
                match security.purge_old_activity().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "old account events purged"),
                    Err(error) => tracing::warn!(%error, "purging old account events failed"),
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
    sms_sender: Option<crate::sms::SharedSmsSender>,
    clock: Option<Arc<dyn Clock>>,
    user_created_sql: Vec<String>,
    migrate: bool,
    embedded_templates: Vec<(&'static str, &'static str)>,
    template_globals: Vec<(String, minijinja::Value)>,
    catalogs: Vec<(String, String)>,
    register_checks: Vec<RegisterCheck>,
    metrics: bool,
    activity_hooks: Vec<ActivityHook>,
    export_sections: Vec<(String, ExportSection)>,
}

impl SecurityBuilder {
    /// Prometheus metrics (off by default): request counts and latency by route template and
    /// status, sign-ins by outcome, the hashing pool's load and refusals, the authentication
    /// cache's hits and misses, served at `GET /metrics` by [`Security::health_router`]. No
    /// label carries personal data. Off, they cost one branch per request.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Adds the section `name` to the data export (`GET /api/account/export`): `section` is
    /// given the framework and the user's id and answers the section's JSON (the sample app's
    /// `profile`). Sections come after `roles`, in the order they were added.
    pub fn export_section<F, Fut>(mut self, name: impl Into<String>, section: F) -> Self
    where
        F: Fn(Security, i64) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<serde_json::Value>> + Send + 'static,
    {
        type Boxed =
            std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value>> + Send>>;
        let section: ExportSection = Arc::new(move |security: Security, user_id: i64| -> Boxed {
            Box::pin(section(security, user_id))
        });
        self.export_sections.push((name.into(), section));
        self
    }

    /// Calls `hook` with every account event once it is recorded (a sign-in, a failed sign-in,
    /// a password change, …), like a receiver of Flask-Security's signals. It runs on a task of
    /// its own, after the event is stored; keep it quick (hand slow work to a task). See also
    /// [`Security::subscribe_activity`].
    pub fn on_activity(
        mut self,
        hook: impl Fn(&crate::activity::Activity) + Send + Sync + 'static,
    ) -> Self {
        self.activity_hooks.push(Arc::new(hook));
        self
    }

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

    /// The text message sender; by default the one `SECURITY_SMS_SERVICE` names (the console
    /// sender unless configured).
    pub fn sms_sender(mut self, sender: crate::sms::SharedSmsSender) -> Self {
        self.sms_sender = Some(sender);
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

    /// A Fluent catalog compiled into the app for language `tag` (`de`): its entries (the app's
    /// page texts, or rewordings of `SECURITY_MSG_*` keys) win over the built-in catalog of that
    /// language, and `SECURITY_I18N_DIRNAME`'s win over them. A language Rampart lacks is added.
    pub fn catalog(mut self, tag: &str, source: &str) -> Self {
        self.catalogs.push((tag.to_owned(), source.to_owned()));
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
        let catalogs = Arc::new(
            crate::i18n::Catalogs::load_with(
                &self.catalogs,
                self.config.i18n.dirname.as_deref(),
                &self.config.i18n.domain,
                &self.config.i18n.default_locale,
            )
            .map_err(|e| {
                Error::Config(crate::config::ConfigError::Invalid {
                    key: "SECURITY_I18N_DIRNAME".into(),
                    message: e.to_string(),
                })
            })?,
        );
        let templates = Templates::with_sources_and_catalogs(
            self.config.template_dir.iter().cloned().collect(),
            self.embedded_templates,
            self.template_globals,
            catalogs.clone(),
        )?;
        let messages = Messages::new(self.config.messages.clone())
            .with_page_overrides(self.config.page_messages.clone())
            .with_catalogs(catalogs);
        let session_store = Arc::new(DbSessionStore::new(datastore.clone()));
        let sms_sender = match self.sms_sender {
            Some(sender) => sender,
            None => crate::sms::from_config(&self.config.sms)
                .map_err(|e| Error::Internal(format!("SECURITY_SMS_SERVICE: {e}")))?,
        };
        let metrics = if self.metrics {
            let metrics = crate::web::metrics::Metrics::new()
                .map_err(|e| Error::Internal(format!("metrics: {e}")))?;
            Some(Arc::new(metrics))
        } else {
            None
        };
        let activity_hub = crate::web::activity::ActivityHub::default();
        if !self.activity_hooks.is_empty() {
            spawn_activity_hooks(activity_hub.subscribe(), self.activity_hooks);
        }
        let security = Security {
            inner: Arc::new(Inner {
                page_config: std::sync::OnceLock::new(),
                page_cache: crate::web::page_cache::PageCache::default(),
                mailer: self.mailer.unwrap_or_else(|| Arc::new(ConsoleMailer)),
                sms_sender,
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
                metrics,
                activity_hub,
                export_sections: self.export_sections,
            }),
        };
        if security.metrics_enabled() {
            crate::web::metrics::start_counting(&security);
        }
        Ok(security)
    }
}

/// Runs the builder's activity hooks for every event, until the [`Security`] is dropped.
fn spawn_activity_hooks(
    mut events: tokio::sync::broadcast::Receiver<crate::activity::Activity>,
    hooks: Vec<ActivityHook>,
) {
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    for hook in &hooks {
                        hook(&event);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "activity hooks fell behind; events skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
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
