//! minijinja templates: built-in defaults with Flask-Security's names (`security/login_user.html`,
//! `security/email/reset_instructions/…`), each overridable by a file of the same name in the
//! app's template folder (`SECURITY_TEMPLATE_DIR`) or by a template the app compiled in
//! ([`crate::SecurityBuilder::embedded_templates`]).
//!
//! Lookup order: `SECURITY_TEMPLATE_DIR` (so a deployment can restyle any page without a rebuild),
//! then the app's embedded templates, then the built-in ones. Apps may add their own pages to the
//! same environment (any name, e.g. `app/home.html`) and render them with [`page`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value, context};

use crate::config::names::{PageValue, SETTINGS};
use crate::web::context::AuthContext;
use crate::web::security::Security;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// The built-in templates.
const BUILTIN: &[(&str, &str)] = embedded![
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
    "security/change_email.html",
    "security/change_username.html",
    "security/recover_username.html",
    "security/two_factor_setup.html",
    "security/two_factor_verify_code.html",
    "security/mf_recovery_codes.html",
    "security/mf_recovery.html",
    "security/verify_user.html",
    "security/us_signin.html",
    "security/us_setup.html",
    "security/_us_setup_body.html",
    "security/us_verify.html",
    "security/_wan_js.html",
    "security/wan_register.html",
    "security/wan_signin.html",
    "security/wan_verify.html",
    "security/oauth_username.html",
    "security/email/welcome/subject.txt.j2",
    "security/email/welcome/body.txt.j2",
    "security/email/welcome/body.html.j2",
    "security/email/welcome_existing/subject.txt.j2",
    "security/email/welcome_existing/body.txt.j2",
    "security/email/welcome_existing/body.html.j2",
    "security/email/welcome_existing_username/subject.txt.j2",
    "security/email/welcome_existing_username/body.txt.j2",
    "security/email/welcome_existing_username/body.html.j2",
    "security/email/confirmation_instructions/subject.txt.j2",
    "security/email/confirmation_instructions/body.txt.j2",
    "security/email/confirmation_instructions/body.html.j2",
    "security/email/reset_instructions/subject.txt.j2",
    "security/email/reset_instructions/body.txt.j2",
    "security/email/reset_instructions/body.html.j2",
    "security/email/reset_notice/subject.txt.j2",
    "security/email/reset_notice/body.txt.j2",
    "security/email/reset_notice/body.html.j2",
    "security/email/change_notice/subject.txt.j2",
    "security/email/change_notice/body.txt.j2",
    "security/email/change_notice/body.html.j2",
    "security/email/change_email_instructions/subject.txt.j2",
    "security/email/change_email_instructions/body.txt.j2",
    "security/email/change_email_instructions/body.html.j2",
    "security/email/change_email_notice/subject.txt.j2",
    "security/email/change_email_notice/body.txt.j2",
    "security/email/change_email_notice/body.html.j2",
    "security/email/change_username_notice/subject.txt.j2",
    "security/email/change_username_notice/body.txt.j2",
    "security/email/change_username_notice/body.html.j2",
    "security/email/username_recovery/subject.txt.j2",
    "security/email/username_recovery/body.txt.j2",
    "security/email/username_recovery/body.html.j2",
    "security/email/change_email_existing/subject.txt.j2",
    "security/email/change_email_existing/body.txt.j2",
    "security/email/change_email_existing/body.html.j2",
    "security/email/us_instructions/subject.txt.j2",
    "security/email/us_instructions/body.txt.j2",
    "security/email/us_instructions/body.html.j2",
    "security/email/two_factor_instructions/subject.txt.j2",
    "security/email/two_factor_instructions/body.txt.j2",
    "security/email/two_factor_instructions/body.html.j2",
    "security/email/two_factor_rescue/subject.txt.j2",
    "security/email/two_factor_rescue/body.txt.j2",
    "security/email/two_factor_rescue/body.html.j2",
    "security/email/two_factor_changed/subject.txt.j2",
    "security/email/two_factor_changed/body.txt.j2",
    "security/email/two_factor_changed/body.html.j2",
    "security/email/unlock_instructions/subject.txt.j2",
    "security/email/unlock_instructions/body.txt.j2",
    "security/email/unlock_instructions/body.html.j2",
    "security/email/oauth_notice/subject.txt.j2",
    "security/email/oauth_notice/body.txt.j2",
    "security/email/oauth_notice/body.html.j2",
    "security/email/new_device/subject.txt.j2",
    "security/email/new_device/body.txt.j2",
    "security/email/new_device/body.html.j2",
];

/// The template environment (cheap to clone).
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

fn auto_escape(name: &str) -> minijinja::AutoEscape {
    let base = name.trim_end_matches(".j2");
    if base.ends_with(".html") || base.ends_with(".htm") {
        minijinja::AutoEscape::Html
    } else {
        minijinja::AutoEscape::None
    }
}

impl Templates {
    /// Templates from `override_dir` (if given) falling back to the built-in ones.
    pub fn new(override_dir: Option<&Path>) -> Result<Self, minijinja::Error> {
        Self::with_dirs(override_dir.into_iter().map(Path::to_path_buf).collect())
    }

    /// Templates from several folders, searched in order, then the built-in ones.
    pub fn with_dirs(dirs: Vec<PathBuf>) -> Result<Self, minijinja::Error> {
        Self::with_sources(dirs, Vec::new(), Vec::new())
    }

    /// Templates from several folders (searched in order), then `embedded` (name, source) pairs
    /// compiled into the app, then the built-in ones; `globals` are visible in every template.
    pub fn with_sources(
        dirs: Vec<PathBuf>,
        embedded: Vec<(&'static str, &'static str)>,
        globals: Vec<(String, Value)>,
    ) -> Result<Self, minijinja::Error> {
        Self::with_sources_and_catalogs(dirs, embedded, globals, crate::i18n::Catalogs::builtin())
    }

    /// [`Templates::with_sources`] whose `_()` texts come from `catalogs`.
    pub fn with_sources_and_catalogs(
        dirs: Vec<PathBuf>,
        embedded: Vec<(&'static str, &'static str)>,
        globals: Vec<(String, Value)>,
        catalogs: Arc<crate::i18n::Catalogs>,
    ) -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        crate::i18n::add_template_functions(&mut env, catalogs);
        for (name, value) in globals {
            env.add_global(name, value);
        }
        env.set_auto_escape_callback(auto_escape);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        // Built into minijinja only with its `urlencode` feature; the login form needs it for `next`.
        env.add_filter("urlencode", |value: String| -> String {
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
        });
        env.set_loader(move |name| {
            if name.contains("..") {
                return Ok(None);
            }
            for dir in &dirs {
                let path = dir.join(name);
                if path.is_file() {
                    return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            "cannot read template",
                        )
                        .with_source(e)
                    });
                }
            }
            Ok(embedded
                .iter()
                .chain(BUILTIN)
                .find(|(n, _)| *n == name)
                .map(|(_, source)| (*source).to_owned()))
        });
        Ok(Self { env: Arc::new(env) })
    }

    /// Renders template `name` with `ctx`.
    pub fn render(
        &self,
        name: &str,
        ctx: impl serde::Serialize,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// Whether a template exists (built-in or overridden).
    pub fn exists(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }
}

/// The settings pages need (`config` in every page): the template-facing entries of the settings
/// table ([`crate::config::names::SETTINGS`]) — URLs with `SECURITY_URL_PREFIX`, lifetimes in
/// words — and `recovery_codes`, on when two-factor sign-in and recovery codes both are.
pub(crate) fn page_config(security: &Security) -> Value {
    config_context(security.config())
}

/// [`page_config`] of a configuration.
fn config_context(c: &crate::SecurityConfig) -> Value {
    let mut config: std::collections::BTreeMap<&str, Value> = SETTINGS
        .iter()
        .filter_map(|setting| setting.page.as_ref())
        .map(|page| {
            let value = match (page.value)(c) {
                PageValue::Flag(on) => Value::from(on),
                PageValue::Text(text) => Value::from(text),
                PageValue::Url(path) => Value::from(c.url(path)),
                PageValue::Duration(within) => {
                    Value::from(crate::messages::describe_duration(within))
                }
            };
            (page.key, value)
        })
        .collect();
    config.insert(
        "recovery_codes",
        Value::from(c.two_factor.enabled && c.recovery_codes.enabled),
    );
    config.insert(
        "oauth_providers",
        Value::from_serialize(crate::config::oauth::providers_json(c)),
    );
    Value::from_iter(config)
}

/// The signed-in user as pages see it (`current_user`), if any.
fn current_user(ctx: &AuthContext) -> Option<Value> {
    let security = ctx.security();
    ctx.user().map(|u| {
        context! {
            email => u.user.email,
            username => u.user.username,
            roles => u.role_names(),
            two_factor => crate::model::second_factor_required(security.config(), &u.user)
                .then(|| u.user.tf_primary_method.clone())
                .flatten(),
        }
    })
}

/// Renders an HTML page with the common context: `csrf_token`, `flashes`, `current_user`,
/// `config`, merged with `extra`.
pub async fn page(
    ctx: &AuthContext,
    name: &str,
    status: StatusCode,
    extra: Value,
) -> crate::Result<Response> {
    let csrf_token = ctx.csrf_token().await?;
    let flashes = ctx.take_flashes().await?;
    let body = render_page(ctx, name, extra, &csrf_token, flashes)?;
    Ok(crate::web::reply::html(status, body))
}

/// The body of [`page`], with this token and these flashes.
fn render_page(
    ctx: &AuthContext,
    name: &str,
    extra: Value,
    csrf_token: &str,
    flashes: Vec<(String, String)>,
) -> crate::Result<String> {
    let security = ctx.security();
    let base = context! {
        csrf_token => csrf_token,
        flashes => flashes,
        current_user => current_user(ctx),
        config => security.page_config(),
    };
    Ok(security
        .templates()
        .render(name, context! { ..extra, ..base, ..ctx.page_values.get() })?)
}

/// Renders a form page: `form.values` (what the user typed, never passwords), `form.errors`
/// (per field) and `form.form_errors` (the `""` key), merged with `extra`.
pub(crate) async fn form_page(
    ctx: &AuthContext,
    name: &str,
    values: serde_json::Value,
    errors: &crate::web::forms::FieldErrors,
    extra: Value,
) -> crate::Result<Response> {
    let form = context! {
        values => values,
        errors => errors.to_json(),
        form_errors => errors.get("").to_vec(),
    };
    page(
        ctx,
        name,
        StatusCode::OK,
        context! { form => form, ..extra },
    )
    .await
}

/// [`form_page`] of an empty form whose context `extra` is the same for every visitor, for an
/// anonymous visitor without a session or page values: rendered once per language and kept
/// ([`crate::web::page_cache`]); each request signs its token and fills it in. Anyone else gets
/// [`form_page`].
pub(crate) async fn constant_form_page(
    ctx: &AuthContext,
    name: &'static str,
    extra: Value,
) -> crate::Result<Response> {
    let empty = crate::web::forms::FieldErrors::new();
    if ctx.user().is_some() || ctx.session().id().is_some() || ctx.page_values.is_set() {
        return form_page(ctx, name, serde_json::Value::Null, &empty, extra).await;
    }
    let csrf_token = ctx.csrf_token().await?;
    let security = ctx.security();
    let tag = crate::i18n::with_current(|c| c.map(|c| c.tag().to_owned())).unwrap_or_default();
    let segments = match security.page_cache().get(name, &tag) {
        Some(segments) => segments,
        None => {
            let form = context! {
                values => serde_json::Value::Null,
                errors => empty.to_json(),
                form_errors => empty.get("").to_vec(),
            };
            let body = render_page(
                ctx,
                name,
                context! { form => form, ..extra },
                crate::web::page_cache::PLACEHOLDER,
                Vec::new(),
            )?;
            let segments = Arc::new(crate::web::page_cache::Segments::of(&body));
            security.page_cache().put(name, tag, Arc::clone(&segments));
            segments
        }
    };
    Ok(crate::web::reply::html(
        StatusCode::OK,
        segments.fill(&csrf_token),
    ))
}

/// Renders the generic message page (`security/message.html`).
pub(crate) async fn message_page(
    ctx: &AuthContext,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> crate::Result<Response> {
    let link = link.map(|(href, text)| context! { href => href, text => text });
    page(
        ctx,
        "security/message.html",
        StatusCode::OK,
        context! { title => title, message => message, link => link },
    )
    .await
}

/// An error page or envelope for `status` with `message`, where the request (and so whether
/// someone is signed in) is unknown: the page offers what it offers a visitor.
pub(crate) fn render_error(
    security: &Security,
    is_json: bool,
    status: StatusCode,
    message: &str,
) -> Response {
    render_error_page(security, is_json, status, message, None, context! {})
}

/// An error page or envelope for `status` with `message`, in `ctx`'s format; the page knows
/// `current_user` (a visitor is offered sign-in, a user their way back).
pub(crate) fn render_error_for(ctx: &AuthContext, status: StatusCode, message: &str) -> Response {
    render_error_page(
        ctx.security(),
        ctx.is_json(),
        status,
        message,
        current_user(ctx),
        ctx.page_values.get(),
    )
}

/// The context of `security/error.html`: `status`, `title`, `message`, and `stock` (the message
/// is the standard text of the status, which an app may leave out for its own words).
pub(crate) fn error_context(status: StatusCode, message: &str) -> Value {
    context! {
        status => status.as_u16(),
        title => status.canonical_reason().unwrap_or("Error"),
        message => message,
        stock => message == crate::web::reply::status_message(status),
    }
}

fn render_error_page(
    security: &Security,
    is_json: bool,
    status: StatusCode,
    message: &str,
    current_user: Option<Value>,
    page_values: Value,
) -> Response {
    if is_json {
        return crate::web::reply::json_errors(status, &[message.to_owned()], None);
    }
    let ctx = minijinja::context! {
        config => security.page_config(),
        current_user => current_user,
        ..minijinja::value::merge_maps([error_context(status, message), page_values])
    };
    match security.templates().render("security/error.html", ctx) {
        Ok(body) => crate::web::reply::html(status, body),
        Err(error) => {
            tracing::error!(%error, "cannot render the error page");
            let mut response = (status, message.to_owned()).into_response();
            response
                .extensions_mut()
                .insert(crate::web::reply::Rendered);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_override_embedded_templates_which_override_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("security")).unwrap();
        std::fs::write(dir.path().join("security/message.html"), "from the folder").unwrap();
        let templates = Templates::with_sources(
            vec![dir.path().to_owned()],
            vec![
                ("security/message.html", "embedded message"),
                ("security/error.html", "embedded error {{ greeting }}"),
                ("app/page.html", "an app page"),
            ],
            vec![("greeting".into(), Value::from("hello"))],
        )
        .unwrap();
        let render = |name| templates.render(name, context! {}).unwrap();
        assert_eq!(render("security/message.html"), "from the folder");
        assert_eq!(render("security/error.html"), "embedded error hello");
        assert_eq!(render("app/page.html"), "an app page");
        assert!(
            templates.exists("security/login_user.html"),
            "built-ins remain"
        );
        assert!(!templates.exists("app/missing.html"));
    }
}

#[cfg(test)]
mod config_context_tests {
    use super::*;

    /// The `config` object as it was written out by hand before the settings table drove it.
    fn by_hand(c: &crate::SecurityConfig) -> Value {
        context! {
            app_name => c.app_name,
            registerable => c.register.enabled,
            recoverable => c.recover.enabled,
            confirmable => c.confirm.enabled,
            changeable => c.change.enabled,
            username_enable => c.username.enabled,
            username_required => c.username.required,
            default_remember_me => c.login.default_remember_me,
            login_url => c.url(&c.login.url),
            logout_url => c.url(&c.logout.url),
            register_url => c.url(&c.register.url),
            reset_url => c.url(&c.recover.url),
            confirm_url => c.url(&c.confirm.url),
            change_url => c.url(&c.change.url),
            change_email => c.change_email.enabled,
            change_email_url => c.url(&c.change_email.url),
            change_email_within => crate::messages::describe_duration(c.change_email.within),
            two_factor => c.two_factor.enabled,
            two_factor_setup_url => c.url(&c.two_factor.setup_url),
            two_factor_token_validation_url => c.url(&c.two_factor.token_validation_url),
            two_factor_rescue_url => c.url(&c.two_factor.rescue_url),
            recovery_codes => c.two_factor.enabled && c.recovery_codes.enabled,
            recovery_codes_url => c.url(&c.recovery_codes.url),
            recovery_url => c.url(&c.recovery_codes.recovery_url),
            webauthn => c.webauthn.enabled,
            wan_allow_as_first_factor => c.webauthn.allow_as_first_factor,
            wan_allow_user_hints => c.webauthn.allow_user_hints,
            wan_register_url => c.url(&c.webauthn.register_url),
            wan_signin_url => c.url(&c.webauthn.signin_url),
            wan_delete_url => c.url(&c.webauthn.delete_url),
            wan_rename_url => c.url(&c.webauthn.rename_url),
            wan_verify_url => c.url(&c.webauthn.verify_url),
            verify_url => c.url(&c.verify.url),
            unified_signin => c.unified_signin.enabled,
            us_signin_replaces_login => c.unified_signin.signin_replaces_login,
            us_signin_url => c.url(&c.unified_signin.signin_url),
            us_signin_send_code_url => c.url(&c.unified_signin.signin_send_code_url),
            us_setup_url => c.url(&c.unified_signin.setup_url),
            us_verify_url => c.url(&c.unified_signin.verify_url),
            us_verify_send_code_url => c.url(&c.unified_signin.verify_send_code_url),
            post_login_view => c.login.post_view,
            confirm_email_within => crate::messages::describe_duration(c.confirm.within),
            reset_password_within => crate::messages::describe_duration(c.recover.within),
            debug => c.debug,
            oauth_enable => c.oauth.enabled,
            oauth_start_url => c.url(&c.oauth.start_url),
            oauth_link_url => c.url(&c.oauth.link_url),
            oauth_verify_start_url => c.url(&c.oauth.verify_start_url),
            change_username => c.change_username.enabled,
            change_username_url => c.url(&c.change_username.url),
            username_recovery => c.username_recovery.enabled,
            username_recovery_url => c.url(&c.username_recovery.url),
            oauth_providers => Value::from_serialize(crate::config::oauth::providers_json(c)),
        }
    }

    fn as_json(value: &Value) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn the_table_driven_config_object_is_the_one_written_by_hand() {
        let default = crate::SecurityConfig::default();
        assert_eq!(
            as_json(&config_context(&default)),
            as_json(&by_hand(&default))
        );
        let settings = crate::Settings::from_pairs([
            ("SECRET_KEY", "0123456789abcdef0123"),
            ("SECURITY_PASSWORD_SALT", "salt"),
            ("DEBUG", "true"),
            ("SECURITY_APP_NAME", "Shop"),
            ("SECURITY_URL_PREFIX", "/auth"),
            ("SECURITY_REGISTERABLE", "true"),
            ("SECURITY_CONFIRMABLE", "true"),
            ("SECURITY_RECOVERABLE", "true"),
            ("SECURITY_CHANGEABLE", "true"),
            ("SECURITY_CHANGE_EMAIL", "true"),
            ("SECURITY_TWO_FACTOR", "true"),
            ("SECURITY_MULTI_FACTOR_RECOVERY_CODES", "true"),
            ("SECURITY_USERNAME_ENABLE", "true"),
            ("SECURITY_DEFAULT_REMEMBER_ME", "true"),
            ("SECURITY_CHANGE_URL", "/dashboard/security/"),
            ("SECURITY_POST_LOGIN_VIEW", "/home"),
            ("SECURITY_CONFIRM_EMAIL_WITHIN", "3 hours"),
        ]);
        let configured = crate::SecurityConfig::from_settings(&settings).unwrap();
        let object = as_json(&config_context(&configured));
        assert_eq!(object, as_json(&by_hand(&configured)));
        assert_eq!(object["change_url"], "/auth/dashboard/security/");
        assert_eq!(object["recovery_codes"], true);
    }
}
