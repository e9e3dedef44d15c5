//! Sending the framework's mails: render `security/email/<name>/…` and hand it to the mailer in
//! the background, after the database work committed. A failed send is logged; nothing is undone,
//! and the user can ask again (resend confirmation, forgot password).

use minijinja::{Value, context};

use crate::mail::Mail;
use crate::model::User;
use crate::web::security::Security;

/// The user fields mail templates may use.
pub(crate) fn user_context(user: &User) -> minijinja::Value {
    context! { email => user.email, username => user.username }
}

/// Renders mail `name` for `to` and sends it without making the request wait (so response time
/// does not reveal whether a mail was sent).
pub(crate) fn send(security: &Security, name: &str, to: &str, ctx: Value) -> crate::Result<()> {
    let mail = render(security, name, to, ctx)?;
    deliver(security, mail);
    Ok(())
}

/// Hands a rendered `mail` to the mailer in the background (see [`send`]).
pub(crate) fn deliver(security: &Security, mail: Mail) {
    let mailer = security.mailer().clone();
    tokio::spawn(async move {
        if let Err(error) = mailer.send(&mail).await {
            tracing::warn!(%error, subject = %mail.subject, "mail not sent");
        }
    });
}

/// Renders mail `name` without sending it.
pub(crate) fn render(security: &Security, name: &str, to: &str, ctx: Value) -> crate::Result<Mail> {
    let templates = security.templates();
    let base = format!("security/email/{name}");
    let subject = templates.render(&format!("{base}/subject.txt.j2"), &ctx)?;
    let text = templates.render(&format!("{base}/body.txt.j2"), &ctx)?;
    let html = templates.render(&format!("{base}/body.html.j2"), &ctx)?;
    Ok(Mail {
        from: security.config().email_sender.clone(),
        to: to.to_owned(),
        subject: subject.trim().to_owned(),
        text,
        html,
    })
}
