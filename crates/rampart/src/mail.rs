//! Outgoing mail: the [`Mail`] message, the [`Mailer`] trait and its backends.
//!
//! Rampart sends the mails of Flask-Security (`welcome`, `confirmation_instructions`,
//! `reset_instructions`, `reset_notice`, `change_notice`, `welcome_existing`, …) through a
//! [`SharedMailer`]. The mail bodies are rendered from the minijinja templates under
//! `templates/security/email/<name>/{subject.txt,body.txt,body.html}.j2`.
//!
//! Backends:
//! - [`ConsoleMailer`]: prints each mail to stdout, so links can be followed from the terminal
//!   (the default in development, like the seed app's `MAIL_BACKEND=console`);
//! - [`SmtpMailer`]: a pooled SMTP connection (lettre), configured by [`SmtpConfig`];
//! - [`MemoryMailer`]: keeps the mails in memory for in-process tests.
//!
//! [`find_link`] and [`find_code`] pull a link or a one-time code out of a mail's text, for tests
//! and tools that act on the mails they receive.

mod console;
mod memory;
mod smtp;

use std::sync::Arc;

pub use console::ConsoleMailer;
pub use memory::MemoryMailer;
pub use smtp::{SmtpConfig, SmtpMailer, SmtpSecurity};

/// One mail ready to send: addresses, subject, and the same content as plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mail {
    /// Sender, `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
    /// Recipient, `addr@example.com` or `Name <addr@example.com>`.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (the same content as [`Mail::text`]).
    pub html: String,
}

/// Something that delivers [`Mail`]s.
///
/// Implement it to send mail another way (an HTTP mail API, a queue, …) and hand it to the
/// security builder as a [`SharedMailer`].
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one mail; returns once the backend has accepted it.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// A [`Mailer`] shared by the whole application.
pub type SharedMailer = Arc<dyn Mailer>;

/// Why a mail could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// A sender or recipient is not a valid mail address.
    #[error("invalid mail address {address:?}")]
    Address {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        #[source]
        source: lettre::address::AddressError,
    },
    /// The message could not be assembled.
    #[error("could not build the mail message")]
    Build(#[source] lettre::error::Error),
    /// The SMTP transport could not be set up or the SMTP server refused the mail.
    #[error("SMTP error")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// Another backend failed to deliver the mail (for [`Mailer`]s outside this crate).
    #[error("mail transport error: {0}")]
    Transport(String),
    /// The mail could not be written out (console backend).
    #[error("could not write the mail")]
    Io(#[source] std::io::Error),
}

/// Finds the first absolute `http://` or `https://` URL in `text` whose path starts with
/// `path_prefix` (for example `"/confirm/"`), and returns it whole (query included).
///
/// Meant for the plain-text part of a mail; trailing sentence punctuation is not part of the link.
pub fn find_link(text: &str, path_prefix: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = next_url_start(rest) {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
            .unwrap_or(candidate.len());
        let link = candidate[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
        if let Ok(url) = url::Url::parse(link)
            && url.has_host()
            && url.path().starts_with(path_prefix)
        {
            return Some(link.to_owned());
        }
        // Skip past this scheme and keep looking.
        rest = &candidate[4..];
    }
    None
}

/// Byte offset of the next `http://` or `https://` in `text`.
fn next_url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Finds the first code of exactly six ASCII digits in `text`, standing on its own (not part of
/// a longer number, a word or a URL), as in two-factor and unified sign-in mails.
pub fn find_code(text: &str) -> Option<String> {
    text.split_whitespace()
        .filter(|word| !word.contains("://"))
        .find_map(|word| {
            word.split(|c: char| !c.is_ascii_alphanumeric())
                .find(|piece| piece.len() == 6 && piece.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::{Environment, context};

    #[test]
    fn find_link_returns_the_first_link_with_the_path_prefix() {
        let text = "See https://example.com/about, then use \
                    https://example.com/confirm/abc.DEF_12-x?next=%2F&a=b to confirm.\n\
                    Or http://example.com/reset/zzz.";
        assert_eq!(
            find_link(text, "/confirm/").as_deref(),
            Some("https://example.com/confirm/abc.DEF_12-x?next=%2F&a=b")
        );
        assert_eq!(
            find_link(text, "/reset/").as_deref(),
            Some("http://example.com/reset/zzz")
        );
        assert_eq!(
            find_link(text, "/").as_deref(),
            Some("https://example.com/about")
        );
    }

    #[test]
    fn find_link_ignores_relative_links_and_other_paths() {
        let text = "Go to /confirm/abc or https://example.com/login?next=/confirm/abc";
        assert_eq!(find_link(text, "/confirm/"), None);
    }

    #[test]
    fn find_link_stops_at_markup_and_brackets() {
        let text = "<p><a href=\"https://example.com:8080/reset/tok\">this link</a></p>\n\
                    (https://example.com/confirm/t2)";
        assert_eq!(
            find_link(text, "/reset/").as_deref(),
            Some("https://example.com:8080/reset/tok")
        );
        assert_eq!(
            find_link(text, "/confirm/").as_deref(),
            Some("https://example.com/confirm/t2")
        );
    }

    #[test]
    fn find_code_returns_the_first_standalone_six_digit_code() {
        assert_eq!(find_code("Your code is 123456.").as_deref(), Some("123456"));
        assert_eq!(
            find_code(
                "Order 1234567, ref ab123456cd, at https://x.test/123456 \u{2014} code: 654321"
            )
            .as_deref(),
            Some("654321")
        );
        assert_eq!(find_code("no code 12345 here"), None);
    }

    macro_rules! template {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!(
                    "../templates/security/email/",
                    $name,
                    "/subject.txt.j2"
                )),
                include_str!(concat!(
                    "../templates/security/email/",
                    $name,
                    "/body.txt.j2"
                )),
                include_str!(concat!(
                    "../templates/security/email/",
                    $name,
                    "/body.html.j2"
                )),
            )
        };
    }

    /// Every mail template as (name, subject, text body, HTML body).
    const TEMPLATES: &[(&str, &str, &str, &str)] = &[
        template!("welcome"),
        template!("welcome_existing"),
        template!("welcome_existing_username"),
        template!("confirmation_instructions"),
        template!("reset_instructions"),
        template!("reset_notice"),
        template!("change_notice"),
    ];

    /// Renders mail `name` with `ctx` as the lead's environment will: file names decide
    /// auto-escaping (HTML for `body.html.j2`, none for the text templates).
    fn render(name: &str, ctx: minijinja::Value) -> (String, String, String) {
        let mut env = Environment::new();
        crate::i18n::add_template_functions(&mut env, crate::i18n::Catalogs::builtin());
        for (n, subject, text, html) in TEMPLATES {
            let base = format!("security/email/{n}");
            env.add_template_owned(format!("{base}/subject.txt.j2"), *subject)
                .unwrap();
            env.add_template_owned(format!("{base}/body.txt.j2"), *text)
                .unwrap();
            env.add_template_owned(format!("{base}/body.html.j2"), *html)
                .unwrap();
        }
        let one = |part: &str| {
            env.get_template(&format!("security/email/{name}/{part}"))
                .unwrap()
                .render(&ctx)
                .unwrap()
        };
        (
            one("subject.txt.j2"),
            one("body.txt.j2"),
            one("body.html.j2"),
        )
    }

    const CONFIRM: &str = "https://example.com/confirm/InR.ok-en_1?next=%2Fa&b=c";
    const RESET: &str = "https://example.com/reset/InR.ok-en_2";
    const RECOVERY: &str = "https://example.com/reset";

    /// How a URL looks inside auto-escaped HTML.
    fn escaped(url: &str) -> String {
        url.replace('&', "&amp;").replace('/', "&#x2f;")
    }

    #[test]
    fn every_template_renders_a_one_line_subject_and_a_full_html_page() {
        let ctx = context! {
            user => context! { email => "a@example.com", username => "ann" },
            email => "a@example.com", username => "ann",
            confirmation_link => CONFIRM, reset_link => RESET, recovery_link => RECOVERY,
            expire_text => "1 day",
        };
        for (name, ..) in TEMPLATES {
            let (subject, text, html) = render(name, ctx.clone());
            assert!(!subject.is_empty() && !subject.contains('\n'), "{name}");
            assert_eq!(subject.trim(), subject, "{name}");
            assert!(!text.trim().is_empty(), "{name}");
            assert!(!text.contains("{{") && !text.contains("{%"), "{name}");
            assert!(html.starts_with("<!doctype html>"), "{name}");
            assert!(html.trim_end().ends_with("</html>"), "{name}");
        }
    }

    #[test]
    fn welcome_greets_and_asks_for_confirmation_when_confirmable() {
        let user = context! { email => "a@example.com" };
        let (subject, text, html) = render(
            "welcome",
            context! { user => user.clone(), confirmation_link => CONFIRM },
        );
        assert_eq!(subject, "Welcome");
        assert!(text.contains("Welcome a@example.com!"));
        assert!(text.contains(&format!("Use {CONFIRM} to confirm your email address.")));
        assert!(html.contains("Welcome a@example.com!"));
        assert!(html.contains(&format!(
            "Use <a href=\"{}\" style=\"color:#1a56db;\">this link</a> to confirm your email address.",
            escaped(CONFIRM)
        )));

        let (_, text, html) = render("welcome", context! { user });
        assert!(text.contains("Welcome a@example.com!"));
        assert!(!text.contains("confirm"));
        assert!(!html.contains("confirm"));
    }

    #[test]
    fn html_bodies_escape_user_data() {
        let user = context! { email => "<b>x</b>@example.com" };
        let (_, text, html) = render("welcome", context! { user });
        assert!(text.contains("Welcome <b>x</b>@example.com!"));
        assert!(html.contains("Welcome &lt;b&gt;x&lt;&#x2f;b&gt;@example.com!"));
    }

    #[test]
    fn confirmation_instructions_carry_the_link_and_expiry() {
        let (subject, text, html) = render(
            "confirmation_instructions",
            context! { confirmation_link => CONFIRM, expire_text => "5 days" },
        );
        assert_eq!(subject, "Please confirm your email");
        assert!(text.contains(&format!("Use {CONFIRM} to confirm your email address.")));
        assert!(text.contains("This link will expire in 5 days."));
        assert_eq!(find_link(&text, "/confirm/").as_deref(), Some(CONFIRM));
        assert!(html.contains(&escaped(CONFIRM)));
        assert!(html.contains("This link will expire in 5 days."));
    }

    #[test]
    fn reset_instructions_carry_the_link_and_expiry() {
        let (subject, text, html) = render(
            "reset_instructions",
            context! { reset_link => RESET, expire_text => "1 day" },
        );
        assert_eq!(subject, "Password reset instructions");
        assert!(text.contains(&format!("Use {RESET} to reset your password.")));
        assert!(text.contains("This link will expire in 1 day."));
        assert_eq!(find_link(&text, "/reset/").as_deref(), Some(RESET));
        assert!(html.contains(&format!(
            "Use <a href=\"{}\" style=\"color:#1a56db;\">this link</a> to reset your password.",
            escaped(RESET)
        )));
        assert!(html.contains("This link will expire in 1 day."));
    }

    #[test]
    fn reset_notice_says_the_password_was_reset() {
        let (subject, text, html) = render("reset_notice", context! {});
        assert_eq!(subject, "Your password has been reset");
        assert!(text.contains("Your password has been reset"));
        assert!(html.contains("Your password has been reset"));
    }

    #[test]
    fn change_notice_points_to_password_reset() {
        let (subject, text, html) = render("change_notice", context! { recovery_link => RECOVERY });
        assert_eq!(subject, "Your password has been changed");
        assert!(text.contains("Your password has been changed."));
        assert!(text.contains(&format!(
            "If you did not change your password, click the link below to reset it.\n{RECOVERY}"
        )));
        assert!(html.contains("Your password has been changed."));
        assert!(html.contains(&escaped(RECOVERY)));

        let (_, text, html) = render("change_notice", context! {});
        assert!(text.contains("Your password has been changed."));
        assert!(text.contains("If you did not change your password,"));
        assert!(!text.contains("http"));
        assert!(!html.contains("href"));
    }

    #[test]
    fn welcome_existing_tells_the_owner_and_offers_reset_and_confirmation() {
        let (subject, text, html) = render(
            "welcome_existing",
            context! {
                user => context! { email => "a@example.com", username => "ann" },
                recovery_link => RECOVERY, reset_link => RESET, confirmation_link => CONFIRM,
            },
        );
        assert_eq!(subject, "Welcome");
        assert!(text.contains("Hello a@example.com!"));
        assert!(text.contains(
            "Someone (you?) tried to register this email - which is already in our system."
        ));
        assert!(
            text.contains("This account also has the following username associated with it: ann")
        );
        assert!(text.contains(&format!(
            "You can use this link {RESET} to reset your password."
        )));
        assert!(text.contains(&format!(
            "You have not confirmed your email address yet - use this link: {CONFIRM} to do so now."
        )));
        assert!(html.contains("Hello a@example.com!"));
        assert!(html.contains(&escaped(RESET)));
        assert!(html.contains(&escaped(CONFIRM)));

        let (_, text, _) = render(
            "welcome_existing",
            context! { user => context! { email => "a@example.com" }, recovery_link => RECOVERY },
        );
        assert!(!text.contains("username"));
        assert!(!text.contains("confirmed"));
        assert!(text.contains(&format!("You can reset your password at {RECOVERY}.")));
    }

    #[test]
    fn welcome_existing_username_asks_for_another_username() {
        let (subject, text, html) = render(
            "welcome_existing_username",
            context! { email => "new@example.com", username => "ann" },
        );
        assert_eq!(subject, "Welcome");
        assert!(text.contains("Hello new@example.com!"));
        assert!(text.contains(
            "You attempted to register with a username \"ann\" that is already associated with another account."
        ));
        assert!(
            text.contains("Please restart the registration process with a different username.")
        );
        assert!(html.contains("&quot;ann&quot;"));
    }
}
