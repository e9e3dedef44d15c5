//! One negotiated reply. A handler says what happened — a form to fill in, a form refused with
//! its errors, or done (a JSON body for single-page apps; a flash and a redirect, or a page, for
//! browsers) — as a [`Reply`], and the security layer renders it once, in the request's format:
//! Flask-Security's JSON envelope or an HTML page. Refusals that end a request early are
//! [`Rejection`](crate::web::rejection::Rejection)s, rendered the same way.
//!
//! A `Reply` needs the request (CSRF token, flashes) to be rendered, so its `IntoResponse`
//! only marks the answer; [`render_marked`] (called by the layer) renders it. Middleware inside
//! the security layer sees the unrendered mark; headers it adds are kept.

use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde_json::{Map, Value};

use crate::web::context::AuthContext;
use crate::web::forms::FieldErrors;

/// What a handler came to; the security layer renders it once per request format.
#[derive(Debug)]
#[must_use]
pub enum Reply {
    /// A form to fill in: JSON clients get `csrf_token` and the form's JSON fields (200),
    /// browsers the form's page.
    Form(Form),
    /// The form's input was refused: a 400 envelope with `errors` and `field_errors` for JSON
    /// clients, the form's page again (with what was typed and the errors) for browsers.
    Invalid(Form),
    /// Done: JSON clients get [`Json`], browsers [`Html`].
    Done {
        /// The answer to a JSON client.
        json: Json,
        /// The answer to a browser.
        html: Html,
    },
}

/// A form page: its template, what was typed, the errors, and what else the page and the JSON
/// answer show.
#[derive(Debug)]
#[must_use]
pub struct Form {
    template: &'static str,
    values: Value,
    errors: FieldErrors,
    page: minijinja::Value,
    json: Map<String, Value>,
    same_for_every_visitor: bool,
}

impl Form {
    /// The form of template `template` (e.g. `security/change_password.html`), empty.
    pub fn new(template: &'static str) -> Self {
        Self {
            template,
            values: Value::Null,
            errors: FieldErrors::new(),
            page: context! {},
            json: Map::new(),
            same_for_every_visitor: false,
        }
    }

    /// Says that the page's own context ([`page`](Self::page)) is the same for every visitor
    /// (nothing from the request in it): shown empty to an anonymous visitor without a session,
    /// the page is then rendered once per language and only its CSRF token filled in per
    /// request.
    pub fn same_for_every_visitor(mut self) -> Self {
        self.same_for_every_visitor = true;
        self
    }

    /// What the user typed (`form.values` in the template; never passwords).
    pub fn values(mut self, values: Value) -> Self {
        self.values = values;
        self
    }

    /// The form's errors (`form.errors` and `form.form_errors` in the template; `errors` and
    /// `field_errors` in the JSON envelope).
    pub fn errors(mut self, errors: FieldErrors) -> Self {
        self.errors = errors;
        self
    }

    /// More context for the page's template.
    pub fn page(mut self, page: minijinja::Value) -> Self {
        self.page = page;
        self
    }

    /// The form's JSON fields (see [`json`](Self::json)), e.g. to answer a POST as the GET does.
    pub fn into_json(self) -> Map<String, Value> {
        self.json
    }

    /// A field of the JSON answer to a GET, beside `csrf_token`.
    pub fn json(mut self, key: &str, value: Value) -> Self {
        self.json.insert(key.to_owned(), value);
        self
    }
}

/// The answer to a JSON client.
#[derive(Debug)]
#[must_use]
pub enum Json {
    /// 200 with `csrf_token` and these fields.
    Base(Map<String, Value>),
    /// This status and `response` body, as given.
    Body(StatusCode, Value),
}

impl Json {
    /// 200 with just `csrf_token`.
    pub fn base() -> Self {
        Self::Base(Map::new())
    }

    /// 200 with this `response` body.
    pub fn ok(body: Value) -> Self {
        Self::Body(StatusCode::OK, body)
    }

    /// 400 with `errors` and `field_errors`, as [`Reply::Invalid`] answers: for input refused
    /// where browsers are answered another way (e.g. a flash and a redirect).
    pub fn invalid(errors: &FieldErrors) -> Self {
        Self::Body(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "errors": errors.all_messages(),
                "field_errors": errors.to_json(),
            }),
        )
    }
}

/// The answer to a browser.
#[derive(Debug)]
#[must_use]
pub enum Html {
    /// A flash message (if any), then a `302` to `to`.
    Redirect {
        /// Where to.
        to: String,
        /// The flash message's category (`success`, `info`, `error`) and text.
        flash: Option<(&'static str, String)>,
    },
    /// A form page (200).
    Form(Form),
    /// A page of `template` (200) with `context` besides the common one.
    Page {
        /// The template, e.g. `security/mf_recovery_codes.html`.
        template: &'static str,
        /// What else the template gets.
        context: minijinja::Value,
    },
    /// The generic message page (`security/message.html`), with an optional link (href, text).
    Message {
        /// The page's title.
        title: String,
        /// What it says.
        message: String,
        /// A link to go on with: (href, text).
        link: Option<(String, String)>,
    },
}

impl Html {
    /// A redirect with no flash message.
    pub fn redirect(to: impl Into<String>) -> Self {
        Self::Redirect {
            to: to.into(),
            flash: None,
        }
    }

    /// A flash message of `category`, then a redirect.
    pub fn flash_redirect(category: &'static str, message: String, to: impl Into<String>) -> Self {
        Self::Redirect {
            to: to.into(),
            flash: Some((category, message)),
        }
    }
}

impl Reply {
    /// Done: `json` for JSON clients, `html` for browsers.
    pub fn done(json: Json, html: Html) -> Self {
        Self::Done { json, html }
    }

    /// Renders the reply in `ctx`'s format.
    ///
    /// # Errors
    ///
    /// The session's or the templates' error.
    pub async fn render(self, ctx: &AuthContext) -> crate::Result<Response> {
        match self {
            Self::Form(form) => {
                if ctx.is_json() {
                    render_json(ctx, Json::Base(form.json)).await
                } else {
                    render_form(ctx, form).await
                }
            }
            Self::Invalid(form) => {
                if ctx.is_json() {
                    Ok(crate::web::reply::json_errors(
                        StatusCode::BAD_REQUEST,
                        &[],
                        Some(&form.errors),
                    ))
                } else {
                    render_form(ctx, form).await
                }
            }
            Self::Done { json, html } => {
                if ctx.is_json() {
                    render_json(ctx, json).await
                } else {
                    render_html(ctx, html).await
                }
            }
        }
    }
}

async fn render_json(ctx: &AuthContext, json: Json) -> crate::Result<Response> {
    Ok(match json {
        Json::Base(fields) => {
            let mut response = ctx.json_base().await?;
            response.extend(fields);
            crate::web::reply::json_ok(response)
        }
        Json::Body(status, body) => crate::web::reply::json(status, body),
    })
}

async fn render_form(ctx: &AuthContext, form: Form) -> crate::Result<Response> {
    if form.same_for_every_visitor && form.values.is_null() && form.errors.is_empty() {
        return crate::web::templates::constant_form_page(ctx, form.template, form.page).await;
    }
    crate::web::templates::form_page(ctx, form.template, form.values, &form.errors, form.page).await
}

async fn render_html(ctx: &AuthContext, html: Html) -> crate::Result<Response> {
    match html {
        Html::Redirect { to, flash } => {
            if let Some((category, message)) = flash {
                ctx.flash(category, &message).await?;
            }
            Ok(crate::web::reply::redirect(&to))
        }
        Html::Form(form) => render_form(ctx, form).await,
        Html::Page { template, context } => {
            crate::web::templates::page(ctx, template, StatusCode::OK, context).await
        }
        Html::Message {
            title,
            message,
            link,
        } => {
            let link = link
                .as_ref()
                .map(|(href, text)| (href.as_str(), text.as_str()));
            crate::web::templates::message_page(ctx, &title, &message, link).await
        }
    }
}

/// What a handler answered before it is rendered: a reply or a rejection.
#[derive(Debug)]
pub(crate) enum Unrendered {
    Reply(Reply),
    Rejection(crate::web::rejection::Rejection),
}

/// The mark an unrendered answer carries to the layer (taken once).
#[derive(Clone)]
struct Mark(Arc<Mutex<Option<Unrendered>>>);

impl Unrendered {
    /// The marked placeholder: a 500 (what a handler's answer stays without the security
    /// layer, which would be a wiring bug) carrying the answer for [`render_marked`].
    pub(crate) fn into_marked_response(self) -> Response {
        let mut response = (
            StatusCode::INTERNAL_SERVER_ERROR,
            "this answer is rendered by the security layer (`security.layer()`)",
        )
            .into_response();
        response
            .extensions_mut()
            .insert(Mark(Arc::new(Mutex::new(Some(self)))));
        response
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        Unrendered::Reply(self).into_marked_response()
    }
}

/// Renders a marked answer (a [`Reply`] or a rejection) in `ctx`'s format, keeping the headers
/// middleware added to the mark; other responses pass through.
pub(crate) async fn render_marked(ctx: &AuthContext, mut response: Response) -> Response {
    let Some(Mark(slot)) = response.extensions_mut().remove::<Mark>() else {
        return response;
    };
    let taken = slot.lock().ok().and_then(|mut answer| answer.take());
    let Some(answer) = taken else {
        return response;
    };
    let mut rendered = match answer {
        Unrendered::Reply(reply) => reply
            .render(ctx)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Unrendered::Rejection(rejection) => rejection.render(ctx).await,
    };
    for (name, value) in response.headers() {
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            continue;
        }
        if name == header::SET_COOKIE {
            rendered.headers_mut().append(name, value.clone());
        } else if !rendered.headers().contains_key(name) {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
}
