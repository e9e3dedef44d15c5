//! The one-email form: a visitor types an address and asks for a mail to it (resend
//! confirmation, forgot password). Both read the address the same way, count the mail against
//! `SECURITY_MAIL_RATE_LIMIT` before anything is looked up, show the detailed refusal (unknown
//! user, already confirmed) only without `SECURITY_RETURN_GENERIC_RESPONSES`, and answer JSON
//! clients with just `csrf_token`; only what a browser sees once it is done differs.

use serde_json::json;

use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;

/// A one-email form of template `template` (e.g. `security/forgot_password.html`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmailForm {
    template: &'static str,
}

impl EmailForm {
    /// The form of `template`.
    pub(crate) const fn new(template: &'static str) -> Self {
        Self { template }
    }

    /// The empty form (`GET`): `csrf_token` for JSON clients, the page for browsers.
    pub(crate) fn empty(self) -> Reply {
        Reply::Form(Form::new(self.template))
    }

    /// Reads the address and counts the mail about to go to it: `Ok(email)` (canonical) to go
    /// on, `Err(reply)` with the form refused.
    ///
    /// # Errors
    ///
    /// [`Rejection::Limited`] when the address had enough mail; [`Rejection::Failed`] when the
    /// datastore fails.
    pub(crate) async fn read(
        self,
        ctx: &AuthContext,
        input: &mut FormInput,
    ) -> Result<Result<String, Reply>, Rejection> {
        let (email, errors) = crate::web::forms::read_email_field(ctx.security(), input);
        if !errors.is_empty() {
            return Ok(Err(self.refused(&email, errors)));
        }
        crate::web::rate_limit::check_mail(ctx, &email).await?;
        Ok(Ok(email))
    }

    /// The answer once the mail was asked for: `sent` is the feature's outcome, whose detailed
    /// refusal is shown only without generic responses; otherwise done, with `csrf_token` for
    /// JSON clients and `html` for browsers.
    pub(crate) fn answer(
        self,
        ctx: &AuthContext,
        email: &str,
        sent: Result<(), FieldErrors>,
        html: Html,
    ) -> Reply {
        match sent {
            Err(detailed) if !ctx.security().config().return_generic_responses => {
                self.refused(email, detailed)
            }
            _ => Reply::done(Json::base(), html),
        }
    }

    fn refused(self, email: &str, errors: FieldErrors) -> Reply {
        Reply::Invalid(
            Form::new(self.template)
                .values(json!({ "email": email }))
                .errors(errors),
        )
    }
}
