//! The command line: `serve` (the default) and Flask-Security's `flask users …` / `flask roles …`
//! administration commands, with its arguments and messages.
//!
//! ```text
//! rampart-app [serve] [--bind 127.0.0.1:5000]
//! rampart-app users create <email> [--username U] --password P|- [--active|--inactive] [--confirm]
//! rampart-app users activate|deactivate|reset-access <user>
//! rampart-app users change-password <user> --password P|-
//! rampart-app roles create <name> [--description D] [--permissions a,b]
//! rampart-app roles add|remove <user> <role>
//! rampart-app roles add-permissions|remove-permissions <role> <a,b>
//! ```
//!
//! `<user>` is an email address or a username. `--password -` reads the password from stdin.
//! Every command loads the configuration like the server does and applies the migrations.
//! Exit codes: 0 success, 1 a refused command (unknown user or role, password policy…),
//! 2 a configuration error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rampart::{ConfigError, FieldErrors, FormInput, NewUser, Security, User};
use serde_json::Value;

use crate::config::AppConfigError;
use crate::db::naive_utc;
use crate::{AppConfig, AppError, PROFILE_ON_USER_CREATED};

/// The listen address when neither `--bind` nor `RAMPART_BIND` is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:5000";

/// `rampart-app`: the Rampart sample app.
#[derive(Debug, Parser)]
#[command(
    name = "rampart-app",
    version,
    about = "The Rampart sample app and its administration commands"
)]
pub struct Cli {
    /// Settings file (TOML, Flask-Security key names).
    #[arg(long, global = true, default_value = "rampart.toml")]
    pub config: PathBuf,
    /// Environment file.
    #[arg(long, global = true, default_value = ".env")]
    pub env_file: PathBuf,
    /// Instance folder (generated secrets, default SQLite database).
    #[arg(long, global = true, default_value = "instance")]
    pub instance: PathBuf,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the web server.
    Serve {
        /// Address to listen on (default 127.0.0.1:5000).
        #[arg(long, env = "RAMPART_BIND")]
        bind: Option<String>,
    },
    /// Manages users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manages roles.
    #[command(subcommand)]
    Roles(RolesCommand),
}

/// `users …` commands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Creates a user: `users create me@example.com --password 'battery staple' --active`.
    Create {
        /// The email address (or `email:<address>`, `username:<name>`).
        #[arg(required = true)]
        attributes: Vec<String>,
        /// Username (needs SECURITY_USERNAME_ENABLE).
        #[arg(short, long)]
        username: Option<String>,
        /// The password, or `-` to read it from stdin.
        #[arg(short, long)]
        password: String,
        /// Marks the new user active (able to sign in).
        #[arg(short, long, conflicts_with = "inactive")]
        active: bool,
        /// Marks the new user inactive (the default, as in Flask-Security).
        #[arg(long)]
        inactive: bool,
        /// Marks the email address as confirmed.
        #[arg(long)]
        confirm: bool,
    },
    /// Activates a user.
    Activate {
        /// Email or username.
        user: String,
    },
    /// Deactivates a user.
    Deactivate {
        /// Email or username.
        user: String,
    },
    /// Signs a user out everywhere: new identity, sessions deleted, auth tokens invalid.
    #[command(alias = "reset_access")]
    ResetAccess {
        /// Email or username.
        user: String,
    },
    /// Sets a user's password (and signs them out everywhere).
    #[command(alias = "change_password")]
    ChangePassword {
        /// Email or username.
        user: String,
        /// The new password, or `-` to read it from stdin.
        #[arg(short, long)]
        password: String,
    },
}

/// `roles …` commands.
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Creates a role.
    Create {
        /// Role name.
        name: String,
        /// Description.
        #[arg(short, long)]
        description: Option<String>,
        /// Permissions, comma separated.
        #[arg(short, long)]
        permissions: Option<String>,
    },
    /// Gives a role to a user.
    Add {
        /// Email or username.
        user: String,
        /// Role name.
        role: String,
    },
    /// Takes a role from a user.
    Remove {
        /// Email or username.
        user: String,
        /// Role name.
        role: String,
    },
    /// Adds permissions (comma separated) to a role.
    #[command(alias = "add_permissions")]
    AddPermissions {
        /// Role name.
        role: String,
        /// Permissions, comma separated.
        permissions: String,
    },
    /// Removes permissions (comma separated) from a role.
    #[command(alias = "remove_permissions")]
    RemovePermissions {
        /// Role name.
        role: String,
        /// Permissions, comma separated.
        permissions: String,
    },
}

/// Why a command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No user with that email or username.
    #[error("User not found.")]
    UserNotFound,
    /// No role with that name.
    #[error("Cannot find role.")]
    RoleNotFound,
    /// The command was refused (Flask-Security's usage errors).
    #[error("{0}")]
    Refused(String),
    /// The password could not be read from stdin.
    #[error("cannot read the password from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    /// The app could not start (configuration, database…).
    #[error(transparent)]
    App(#[from] AppError),
}

impl CliError {
    /// The process exit code: 2 for configuration errors, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::App(error) if error.is_config() => 2,
            _ => 1,
        }
    }
}

impl From<rampart::DatastoreError> for CliError {
    fn from(error: rampart::DatastoreError) -> Self {
        Self::App(error.into())
    }
}

impl From<rampart::Error> for CliError {
    fn from(error: rampart::Error) -> Self {
        Self::App(error.into())
    }
}

impl From<rampart::PasswordError> for CliError {
    fn from(error: rampart::PasswordError) -> Self {
        Self::App(error.into())
    }
}

/// Parses the command line, runs it and returns the exit code. Errors are printed without
/// backtraces.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve { .. }));
    init_tracing(serving);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Logs to stderr (`RUST_LOG` overrides): INFO for the server (start-up, warnings, errors; no
/// line per request, like gunicorn, which keeps no access log unless asked — formatting two lines
/// per request costs a server a fifth of its throughput: `RUST_LOG=info,tower_http=debug` shows
/// them), warnings only for administration commands. Colours only on a terminal, and never with
/// `NO_COLOR` set, so a log file or a pipe gets plain text.
fn init_tracing(serving: bool) {
    use std::io::IsTerminal as _;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if json_logs() {
        init_json_tracing(filter);
        return;
    }
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether `RUST_LOG_FORMAT=json` asks for structured logs.
fn json_logs() -> bool {
    std::env::var("RUST_LOG_FORMAT").is_ok_and(|format| format.trim().eq_ignore_ascii_case("json"))
}

/// Structured logs: one JSON object per line on stderr (time, level, target, fields, spans), for
/// log collectors. Carries no more than the console format does (no request bodies or secrets).
fn init_json_tracing(filter: tracing_subscriber::EnvFilter) {
    let _already_set = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the configuration and runs the command (serving by default).
///
/// # Errors
///
/// [`CliError`] when the configuration is invalid, the server fails or a command is refused.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config =
        AppConfig::load(&cli.config, &cli.env_file, &cli.instance).map_err(AppError::from)?;
    match cli.command {
        None => serve(&config, None).await?,
        Some(Command::Serve { bind }) => serve(&config, bind.as_deref()).await?,
        Some(command) => {
            let security = crate::connect(&config).await?;
            let message = execute(&security, &command).await?;
            say(&message);
        }
    }
    Ok(())
}

/// The listen address: `--bind` / `RAMPART_BIND` from the command line or environment, else
/// `RAMPART_BIND` from the settings files, else [`DEFAULT_BIND`].
///
/// # Errors
///
/// A configuration error naming `RAMPART_BIND` when the address is not `host:port`.
pub fn bind_address(config: &AppConfig, flag: Option<&str>) -> Result<SocketAddr, AppError> {
    let text = flag
        .map(str::to_owned)
        .or_else(|| config.settings.string("RAMPART_BIND"))
        .unwrap_or_else(|| DEFAULT_BIND.to_owned());
    text.trim().parse().map_err(|_| {
        AppError::Config(AppConfigError::Config(ConfigError::Invalid {
            key: "RAMPART_BIND".into(),
            message: format!("expected an address such as 127.0.0.1:5000, got {text:?}"),
        }))
    })
}

/// Serves the app until Ctrl-C or SIGTERM, then stops accepting, finishes the requests in flight
/// (within `RAMPART_SHUTDOWN_TIMEOUT`, 30 s) and closes the database pool.
///
/// # Errors
///
/// [`AppError`] when the app cannot start or the address cannot be bound.
pub async fn serve(config: &AppConfig, bind: Option<&str>) -> Result<(), AppError> {
    let addr = bind_address(config, bind)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let config = with_own_server_name(config, local);
    let config = &config;
    let app = crate::build(config).await?;
    // Expired sessions are never loaded, but their rows are deleted hourly.
    let housekeeping = app
        .security
        .spawn_housekeeping(std::time::Duration::from_secs(3600));
    say(&format!(
        "{} is running on http://{local}/ (database: {}; press Ctrl-C to stop)",
        config.security.app_name,
        app.security.datastore().backend_name()
    ));
    // Header, body and keep-alive timeouts and a connection cap: slow clients are dropped.
    rampart::serve(listener, app.router, config.server).await?;
    housekeeping.abort();
    app.security.datastore().close().await;
    say("Stopped.");
    Ok(())
}

/// In `DEBUG` with neither `SERVER_NAME` nor `TRUSTED_HOSTS` set, `SERVER_NAME` becomes the
/// address the server listens on (`localhost:<port>` when it listens on every interface), so
/// links in mails never follow a forged `Host` header. Outside `DEBUG` the framework refuses to
/// start without one of them instead.
pub fn with_own_server_name(config: &AppConfig, local: SocketAddr) -> AppConfig {
    let mut config = config.clone();
    let security = &mut config.security;
    if security.debug && security.server_name.is_none() && security.trusted_hosts.is_empty() {
        security.server_name = Some(if local.ip().is_unspecified() {
            format!("localhost:{}", local.port())
        } else {
            local.to_string()
        });
    }
    config
}

/// Prints a line to stdout; a closed stdout (the reader went away) is not worth a panic.
fn say(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ignored = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Runs an administration command (`users …`, `roles …`) and returns its success message.
///
/// # Errors
///
/// [`CliError`] when the command is refused or the database fails.
pub async fn execute(security: &Security, command: &Command) -> Result<String, CliError> {
    match command {
        Command::Serve { .. } => Err(CliError::Refused(
            "serve is not an administration command".into(),
        )),
        Command::Users(command) => users(security, command).await,
        Command::Roles(command) => roles(security, command).await,
    }
}

async fn users(security: &Security, command: &UsersCommand) -> Result<String, CliError> {
    let datastore = security.datastore();
    let now = naive_utc(security.clock().now());
    match command {
        UsersCommand::Create {
            attributes,
            username,
            password,
            active,
            inactive: _,
            confirm,
        } => {
            let password = read_password(password)?;
            create_user(
                security,
                attributes,
                username.as_deref(),
                &password,
                *active,
                *confirm,
            )
            .await
        }
        UsersCommand::Activate { user } => {
            let found = lookup(security, user).await?;
            if found.active {
                return Ok(format!("User \"{user}\" was already activated."));
            }
            datastore.set_active(found.id, true, now).await?;
            Ok(format!("User \"{user}\" has been activated."))
        }
        UsersCommand::Deactivate { user } => {
            let found = lookup(security, user).await?;
            if !found.active {
                return Ok(format!("User \"{user}\" was already deactivated."));
            }
            datastore.set_active(found.id, false, now).await?;
            Ok(format!("User \"{user}\" has been deactivated."))
        }
        UsersCommand::ResetAccess { user } => {
            let found = lookup(security, user).await?;
            // The new identity alone signs the user out everywhere (sessions and tokens carry
            // the old one); deleting the sessions only tidies up.
            datastore
                .set_uniquifier(found.id, &rampart::random_hex(16), now)
                .await?;
            datastore.delete_sessions_of_user(found.id, None).await?;
            datastore.remember_series_delete_of_user(found.id).await?;
            Ok(format!(
                "User \"{user}\" authentication credentials have been reset."
            ))
        }
        UsersCommand::ChangePassword { user, password } => {
            let found = lookup(security, user).await?;
            let password = read_password(password)?;
            if let Err(violation) = security.hasher().policy().check(&password) {
                return Err(CliError::Refused(format!(
                    "Error changing password. {}",
                    python_dict(&FieldErrors::single("password", violation.to_string()))
                )));
            }
            let hash = security.hasher().hash(&password).await?;
            datastore
                .set_password(found.id, &hash, Some(&rampart::random_hex(16)), now)
                .await?;
            datastore.delete_sessions_of_user(found.id, None).await?;
            datastore.remember_series_delete_of_user(found.id).await?;
            Ok(format!("User \"{user}\" password has been changed."))
        }
    }
}

/// `users create`, validated like Flask-Security's registration form.
async fn create_user(
    security: &Security,
    attributes: &[String],
    username: Option<&str>,
    password: &str,
    active: bool,
    confirm: bool,
) -> Result<String, CliError> {
    let config = security.config();
    let mut email = None;
    let mut username = username.map(str::to_owned);
    for attribute in attributes {
        let (name, value) = attribute.split_once(':').unwrap_or(("email", attribute));
        match name {
            "email" => email = Some(value.to_owned()),
            "username" => username = Some(value.to_owned()),
            other => {
                return Err(CliError::Refused(format!(
                    "Attr {other} with value {value} wasn't accepted by ``SECURITY_USER_IDENTITY_ATTRIBUTES``"
                )));
            }
        }
    }
    if username.is_some() && !config.username.enabled {
        return Err(CliError::Refused(
            "--username is available only if SECURITY_USERNAME_ENABLE is set".into(),
        ));
    }
    let email = email.unwrap_or_default();
    let mut pairs = vec![
        ("email", email.as_str()),
        ("password", password),
        ("password_confirm", password),
    ];
    if let Some(name) = &username {
        pairs.push(("username", name.as_str()));
    }
    // Programmatic input, like the JSON API's: the sign-up page's own checks (the terms box) are
    // for people filling in the form, not for an administrator creating an account.
    let values = pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    let mut input = FormInput::from_json(values);
    let form = match rampart::validate_registration(security, &mut input).await? {
        Ok(form) => form,
        Err(errors) => return Err(creating_error(&errors)),
    };
    let datastore = security.datastore();
    let mut errors = FieldErrors::new();
    if datastore.user_by_email(&form.email).await?.is_some() {
        errors.add(
            "email",
            security.msg("EMAIL_ALREADY_ASSOCIATED", &[("email", &form.email)]),
        );
    }
    if let Some(name) = &form.username
        && datastore.user_by_username(name).await?.is_some()
    {
        errors.add(
            "username",
            security.msg("USERNAME_ALREADY_ASSOCIATED", &[("username", name)]),
        );
    }
    if !errors.is_empty() {
        return Err(creating_error(&errors));
    }
    let now = naive_utc(security.clock().now());
    let new_user = NewUser {
        email: form.email.clone(),
        username: form.username.clone(),
        password_hash: Some(security.hasher().hash(&form.password).await?),
        active,
        confirmed_at: confirm.then_some(now),
        roles: config.register.default_roles.clone(),
    };
    let user = datastore
        .create_user(
            &new_user,
            &rampart::random_hex(16),
            now,
            &[PROFILE_ON_USER_CREATED.to_owned()],
        )
        .await
        .map_err(|error| match error.conflict_column() {
            Some(column) => {
                CliError::Refused(format!("Error creating user. {column} already in use"))
            }
            None => error.into(),
        })?;
    Ok(format!(
        "User created successfully.\n{{'email': '{}', 'username': {}, 'password': '****', 'active': {}, 'confirmed': {}}}",
        user.email,
        user.username
            .as_deref()
            .map_or_else(|| "None".to_owned(), |u| format!("'{u}'")),
        python_bool(user.active),
        python_bool(user.confirmed_at.is_some()),
    ))
}

async fn roles(security: &Security, command: &RolesCommand) -> Result<String, CliError> {
    let datastore = security.datastore();
    let now = naive_utc(security.clock().now());
    match command {
        RolesCommand::Create {
            name,
            description,
            permissions,
        } => {
            let permissions = split_list(permissions.as_deref().unwrap_or_default());
            match datastore
                .create_role(name, description.as_deref(), &permissions, now)
                .await
            {
                Ok(_) => Ok(format!("Role \"{name}\" created successfully.")),
                Err(error) if error.is_conflict() => Err(CliError::Refused(format!(
                    "Role \"{name}\" already exists."
                ))),
                Err(error) => Err(error.into()),
            }
        }
        RolesCommand::Add { user, role } => {
            let found = lookup(security, user).await?;
            let role = find_role(security, role).await?;
            if datastore.add_role_to_user(found.id, &role.name).await? {
                Ok(format!(
                    "Role \"{}\" added to user \"{user}\" successfully.",
                    role.name
                ))
            } else {
                Err(CliError::Refused("Cannot add role to user.".into()))
            }
        }
        RolesCommand::Remove { user, role } => {
            let found = lookup(security, user).await?;
            let role = find_role(security, role).await?;
            if datastore
                .remove_role_from_user(found.id, &role.name)
                .await?
            {
                Ok(format!(
                    "Role \"{}\" removed from user \"{user}\" successfully.",
                    role.name
                ))
            } else {
                Err(CliError::Refused("Cannot remove role from user.".into()))
            }
        }
        RolesCommand::AddPermissions { role, permissions } => {
            let found = find_role(security, role).await?;
            let mut all = found.permissions.clone();
            for permission in split_list(permissions) {
                if !all.contains(&permission) {
                    all.push(permission);
                }
            }
            datastore
                .set_role_permissions(&found.name, &all, now)
                .await?;
            Ok(format!(
                "Permission(s) \"{permissions}\" added to role \"{}\" successfully.",
                found.name
            ))
        }
        RolesCommand::RemovePermissions { role, permissions } => {
            let found = find_role(security, role).await?;
            let remove = split_list(permissions);
            let kept: Vec<String> = found
                .permissions
                .iter()
                .filter(|p| !remove.contains(p))
                .cloned()
                .collect();
            datastore
                .set_role_permissions(&found.name, &kept, now)
                .await?;
            Ok(format!(
                "Permission(s) \"{permissions}\" removed from role \"{}\" successfully.",
                found.name
            ))
        }
    }
}

/// The user whose email or username is `identity`.
async fn lookup(security: &Security, identity: &str) -> Result<User, CliError> {
    security
        .datastore()
        .user_by_identity(identity.trim())
        .await?
        .ok_or(CliError::UserNotFound)
}

async fn find_role(security: &Security, name: &str) -> Result<rampart::Role, CliError> {
    security
        .datastore()
        .role_by_name(name.trim())
        .await?
        .ok_or(CliError::RoleNotFound)
}

/// The password given, or a line read from stdin for `-`.
fn read_password(given: &str) -> Result<String, CliError> {
    if given != "-" {
        return Ok(given.to_owned());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn creating_error(errors: &FieldErrors) -> CliError {
    CliError::Refused(format!("Error creating user. {}", python_dict(errors)))
}

fn python_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// Field errors as Flask-Security's CLI prints them: `{'password': ['Password not provided']}`.
fn python_dict(errors: &FieldErrors) -> String {
    let Value::Object(map) = errors.to_json() else {
        return String::new();
    };
    let fields: Vec<String> = map
        .iter()
        .map(|(field, messages)| {
            let messages: Vec<String> = messages
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(|m| format!("'{m}'"))
                        .collect()
                })
                .unwrap_or_default();
            format!("'{field}': [{}]", messages.join(", "))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses_flask_security_style_commands() {
        let cli =
            Cli::try_parse_from(["rampart-app", "users", "reset_access", "a@example.com"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Users(UsersCommand::ResetAccess { .. }))
        ));
        let cli = Cli::try_parse_from(["rampart-app", "roles", "add-permissions", "User", "a,b"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Roles(RolesCommand::AddPermissions { .. }))
        ));
        assert!(
            Cli::try_parse_from(["rampart-app"])
                .unwrap()
                .command
                .is_none()
        );
    }

    #[test]
    fn field_errors_print_like_python_dicts() {
        let errors = FieldErrors::single("password", "Password not provided");
        assert_eq!(
            python_dict(&errors),
            "{'password': ['Password not provided']}"
        );
    }
}
