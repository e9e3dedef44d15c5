//! The security layer (`security.layer()`): per request it loads the session or auth token,
//! resolves the user, checks CSRF, persists the session, renders errors in the request's format
//! and adds security headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tower_sessions::Session;
use tower_sessions::session::{Expiry, Id};

use crate::web::context::{AuthContext, ResponseCookies};
use crate::web::reply::{self, Rendered};
use crate::web::security::Security;

/// The tower layer returned by [`Security::layer`].
#[derive(Clone)]
pub struct SecurityLayer {
    security: Security,
    routes: RouteProbe,
}

impl SecurityLayer {
    pub(crate) fn new(security: Security) -> Self {
        let routes = RouteProbe::new(&security.router());
        Self { security, routes }
    }

    /// The app's whole router (its own routes and [`Security::router`], before this layer), so
    /// that routing decides before CSRF protection on the app's routes too: a state-changing
    /// request without a valid CSRF token to a route that lacks its method gets 405 with `Allow`
    /// rather than "CSRF token missing". Without it only the framework's routes are known.
    ///
    /// The layer keeps a copy of `router` in which every handler is replaced by a stub, so
    /// asking it which methods a path takes never runs a handler.
    #[must_use]
    pub fn routes(mut self, router: &axum::Router) -> Self {
        self.routes = RouteProbe::new(router);
        self
    }
}

impl<S> Layer<S> for SecurityLayer {
    type Service = SecurityService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityService {
            security: self.security.clone(),
            routes: self.routes.clone(),
            inner,
        }
    }
}

/// The service of [`SecurityLayer`].
#[derive(Clone)]
pub struct SecurityService<S> {
    security: Security,
    routes: RouteProbe,
    inner: S,
}

impl<S> Service<Request<Body>> for SecurityService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let security = self.security.clone();
        let routes = self.routes.clone();
        Box::pin(async move {
            let page = !wants_json(req.headers());
            let locale = security.locale_for(req.headers());
            if !security.metrics_enabled() {
                let answer = crate::messages::for_pages(page, handle(security, routes, inner, req));
                return Ok(match locale {
                    Some(locale) => crate::i18n::scope(locale, answer).await,
                    None => answer.await,
                });
            }
            // Metrics on: the route's template (never the path as requested) and the status.
            let started = std::time::Instant::now();
            let method = req.method().clone();
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or(crate::web::metrics::UNMATCHED, |path| path.as_str())
                .to_owned();
            let observer = security.clone();
            let answer = crate::messages::for_pages(page, handle(security, routes, inner, req));
            let response = match locale {
                Some(locale) => crate::i18n::scope(locale, answer).await,
                None => answer.await,
            };
            if let Some(metrics) = observer.metrics() {
                metrics.observe_request(&method, &route, response.status(), started.elapsed());
            }
            Ok(response)
        })
    }
}

/// The longest request target (path and query) answered: longer ones get 414 in the request's
/// format, as a reverse proxy's 8 KiB request-line buffer would refuse them. (hyper itself
/// refuses targets over 64 KiB with a bare 414 before any service runs; [`crate::serve`] reads
/// a connection's first request line before hyper and marks an over-long one [`AnswerWith`].)
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// Marks a body-less stand-in for a request the server could not hand on (its target too long
/// to parse: 414; its body too slow: 408): answered with this status in the request's format
/// before anything else, so no handler runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AnswerWith(pub(crate) StatusCode);

/// Whether the client speaks JSON: a JSON body, or `Accept: application/json`.
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::web::forms::is_json_content_type);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|part| {
                let mime = part.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
            }) && !v.contains("text/html")
        });
    content_type || accept
}

fn client_ip(req: &Request<Body>, trusted_proxies: usize) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if trusted_proxies == 0 {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // The last `trusted_proxies` entries were added by our proxies; the one before is the client.
    forwarded
        .len()
        .checked_sub(trusted_proxies)
        .and_then(|i| forwarded.get(i).copied())
        .or(peer)
}

pub(crate) fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

async fn handle<S>(
    security: Security,
    routes: RouteProbe,
    inner: S,
    mut req: Request<Body>,
) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let config = security.config();
    let is_json = wants_json(req.headers());
    if req.uri().path_and_query().map_or(0, |pq| pq.as_str().len()) > MAX_URI_BYTES {
        return finish(&security, is_json, StatusCode::URI_TOO_LONG.into_response());
    }
    if let Some(AnswerWith(status)) = req.extensions().get::<AnswerWith>().copied() {
        return finish(&security, is_json, status.into_response());
    }
    let body_limit = config.body_limit_for(req.uri().path());
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > body_limit
    {
        return finish(
            &security,
            is_json,
            StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        );
    }
    let session_id =
        read_cookie(req.headers(), &config.session.cookie_name).and_then(|v| v.parse::<Id>().ok());
    let had_session_cookie = session_id.is_some();
    let expiry = Expiry::OnInactivity(time::Duration::seconds(
        i64::try_from(config.session.lifetime.as_secs()).unwrap_or(i64::MAX),
    ));
    // A request with a session cookie gets a store of its own, which keeps the user it reads
    // with the session (one query for both); others share one.
    let store: Arc<crate::web::session_store::DbSessionStore> = if had_session_cookie {
        Arc::new(security.session_store().for_request())
    } else {
        security.session_store().clone()
    };
    let session = Session::new(session_id, store.clone(), Some(expiry));
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    // HTTP/1.1 sends `Host`; HTTP/2 the URI's authority.
    let raw_host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    if !config.trusted_hosts.is_empty()
        && !raw_host
            .as_deref()
            .is_some_and(|h| config.is_trusted_host(h))
    {
        return finish(&security, is_json, StatusCode::BAD_REQUEST.into_response());
    }
    let host = raw_host.filter(|h| valid_host(h));
    let mut ctx = AuthContext {
        security: security.clone(),
        session: session.clone(),
        user: None,
        is_json,
        client_ip: client_ip(&req, config.trusted_proxies),
        user_agent: req
            .headers()
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        host,
        path_and_query,
        remember_cookie: read_cookie(req.headers(), &config.session.remember_cookie_name)
            .map(str::to_owned),
        cookies: ResponseCookies::default(),
        anonymous_csrf: crate::web::csrf::AnonymousSecret::from_cookie(read_cookie(
            req.headers(),
            crate::web::csrf::anonymous_cookie_name(config),
        )),
        csrf_signed: crate::web::csrf::SignedToken::default(),
        page_values: crate::web::context::PageValues::default(),
    };

    match crate::web::auth::authenticate(&ctx, req.headers(), req.uri().query(), &store).await {
        Ok(user) => ctx.user = user,
        Err(error) => return finish(&security, is_json, error.into_response()),
    }
    crate::web::activity::touch_session(&ctx);

    let csrf = crate::web::csrf::protect(&ctx, &mut req).await;

    req.extensions_mut().insert(session.clone());
    req.extensions_mut().insert(ctx.clone());
    let mut response = match csrf {
        Ok(()) => {
            // `MAX_CONTENT_LENGTH` for the app's routes too (axum's extractors otherwise allow
            // 2 MB), so a body without `Content-Length` is refused with the same 413; a route may
            // set its own limit.
            let mut limited = axum::extract::DefaultBodyLimit::max(body_limit).layer(inner);
            match limited.call(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        Err(refusal) => match routing_refusal(&routes, &req) {
            Some(probe) => match probe.await {
                Some(not_routed) => not_routed,
                None => return finish(&security, is_json, refusal),
            },
            None => return finish(&security, is_json, refusal),
        },
    };
    response = crate::web::negotiate::render_marked(&ctx, response).await;
    if !is_json {
        response = error_page(&ctx, response).await;
    }

    if let Err(error) = persist_session(&security, &session, had_session_cookie, &ctx).await {
        response = error.into_response();
    }
    for cookie in ctx.cookies.take() {
        if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    finish(&security, is_json, response)
}

/// For a request refused by CSRF protection: the 404 or 405 routing gives it instead, if any.
///
/// Routing decides before CSRF does, so a `DELETE` to an unknown path is a 404 and a `PUT` to a
/// page that only answers `GET`/`POST` a 405 (with `Allow`), not "CSRF token missing".
/// `Router::layer` runs this layer after routing, around the matched handler (or the fallback),
/// so nothing may be called here to find out: a request without [`axum::extract::MatchedPath`]
/// reached the router's fallback (no route has its path), and for a matched path the
/// [`RouteProbe`] is asked. `None` (the CSRF refusal stands) for every route that takes the
/// method, and for a path whose methods are not known (a service, `any`).
fn routing_refusal(
    routes: &RouteProbe,
    req: &Request<Body>,
) -> Option<impl Future<Output = Option<Response>> + Send + use<>> {
    if req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_none()
    {
        let not_found = StatusCode::NOT_FOUND.into_response();
        return Some(futures_util::future::Either::Left(std::future::ready(
            Some(not_found),
        )));
    }
    let probe = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().path())
        .body(Body::empty())
        .ok()?;
    let router = routes.0.clone();
    Some(futures_util::future::Either::Right(async move {
        let response = match tower::ServiceExt::oneshot(router, probe).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        // Only a route's method fallback gets `Allow` (see `RouteProbe::new`).
        let allow = response.headers().get(header::ALLOW)?.clone();
        if response.status() != StatusCode::METHOD_NOT_ALLOWED || allow.is_empty() {
            return None;
        }
        let mut not_allowed = StatusCode::METHOD_NOT_ALLOWED.into_response();
        not_allowed.headers_mut().insert(header::ALLOW, allow);
        Some(not_allowed)
    }))
}

/// A copy of a router with every handler, fallback and service replaced by a stub: asked with a
/// request's method and path, it says which methods the route takes when it lacks this one
/// (405 with `Allow`), and never runs anything of the app's.
#[derive(Clone)]
struct RouteProbe(axum::Router);

impl RouteProbe {
    fn new(router: &axum::Router) -> Self {
        // `layer` reaches every handler, service and fallback. axum adds `Allow` only to what
        // a route's method fallback answers, so a stub's 405 with `Allow` means "not this
        // method", and one without means a handler (or `any`, or a service) would have run.
        Self(router.clone().layer(Stub(StatusCode::METHOD_NOT_ALLOWED)))
    }
}

/// The layer of [`RouteProbe`]: drops the service it wraps and answers its status, empty.
#[derive(Clone, Copy)]
struct Stub(StatusCode);

impl<S> Layer<S> for Stub {
    type Service = Stub;

    fn layer(&self, _dropped: S) -> Self::Service {
        *self
    }
}

impl Service<Request<Body>> for Stub {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        std::future::ready(Ok(self.0.into_response()))
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

async fn persist_session(
    security: &Security,
    session: &Session,
    had_cookie: bool,
    ctx: &AuthContext,
) -> crate::Result<()> {
    let config = security.config();
    if !session.is_modified() {
        return Ok(());
    }
    if session.is_empty().await {
        if session.id().is_some() {
            session.delete().await?;
        }
        if had_cookie {
            ctx.set_cookie(crate::web::auth::expired_cookie(
                config,
                &config.session.cookie_name,
                true,
            ));
        }
        return Ok(());
    }
    session.save().await?;
    if let Some(id) = session.id() {
        let max_age = time::Duration::seconds(
            i64::try_from(config.session.lifetime.as_secs()).unwrap_or(i64::MAX),
        );
        let cookie = cookie::Cookie::build((config.session.cookie_name.clone(), id.to_string()))
            .path("/")
            .http_only(true)
            .secure(config.session.cookie_secure)
            .same_site(cookie::SameSite::Lax)
            .max_age(max_age)
            .build();
        ctx.set_cookie(cookie);
    }
    Ok(())
}

/// An unrendered error answer of the app's routes (404, 405, …) as a full page: the signed-in
/// user keeps the navigation and user menu. Answers already rendered pass through; if the page
/// cannot be rendered, [`finish`] renders the plain one.
async fn error_page(ctx: &AuthContext, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Rendered>().is_some()
    {
        return response;
    }
    let extra = crate::web::templates::error_context(status, reply::status_message(status));
    match crate::web::templates::page(ctx, "security/error.html", status, extra).await {
        Ok(mut page) => {
            carry_headers(&response, &mut page);
            page
        }
        Err(_) => response,
    }
}

/// Keeps what an error answer says besides its body (`Retry-After`, `Allow`, `WWW-Authenticate`,
/// cookies) when it is replaced by a rendered page.
fn carry_headers(from: &Response, to: &mut Response) {
    for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(value) = from.headers().get(&name) {
            to.headers_mut().insert(name, value.clone());
        }
    }
    for cookie in from.headers().get_all(header::SET_COOKIE) {
        to.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
}

/// Renders unrendered error responses (404, 405, 413, 500, …) in the request's format and adds
/// security headers.
fn finish(security: &Security, is_json: bool, mut response: Response) -> Response {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<Rendered>().is_none()
    {
        let mut rendered = crate::web::templates::render_error(
            security,
            is_json,
            status,
            reply::status_message(status),
        );
        carry_headers(&response, &mut rendered);
        response = rendered;
    }
    let headers = response.headers_mut();
    // The headers below, at once rather than by regrowing the map.
    headers.reserve(6);
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if !headers.contains_key("content-security-policy") {
        // The sign-in buttons of social sign-in post forms that end at the provider: browsers
        // check `form-action` along the redirects, so its origins are allowed too.
        let providers = crate::config::oauth::form_action_origins(security.config());
        let policy = if providers.is_empty() {
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
            )
        } else {
            HeaderValue::from_str(&format!(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 frame-ancestors 'none'; form-action 'self' {providers}; base-uri 'self'"
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
        };
        headers.insert("content-security-policy", policy);
    }
    if security.config().session.cookie_secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn json_is_detected_from_content_type_or_accept() {
        let mut h = HeaderMap::new();
        assert!(!wants_json(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/json;q=0.9"),
        );
        assert!(!wants_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(wants_json(&h));
    }

    #[tokio::test]
    async fn the_route_probe_knows_the_methods_and_never_runs_a_handler() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let ran = Arc::new(AtomicUsize::new(0));
        let count = |ran: &Arc<AtomicUsize>| {
            let ran = Arc::clone(ran);
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
                std::future::ready("ran")
            }
        };
        let router: axum::Router = axum::Router::new()
            .route("/page", axum::routing::get(count(&ran)).post(count(&ran)))
            .route("/gone", axum::routing::delete(count(&ran)))
            .route("/any", axum::routing::any(count(&ran)))
            .fallback(count(&ran));
        let probe = RouteProbe::new(&router);
        let ask = |method: Method, path: &str| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            tower::ServiceExt::oneshot(probe.0.clone(), request)
        };
        let response = ask(Method::PUT, "/page").await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET,HEAD,POST");
        let response = ask(Method::POST, "/page").await.unwrap();
        assert!(response.headers().get(header::ALLOW).is_none());
        let response = ask(Method::POST, "/gone").await.unwrap();
        assert_eq!(response.headers()[header::ALLOW], "DELETE");
        let response = ask(Method::DELETE, "/gone").await.unwrap();
        assert!(response.headers().get(header::ALLOW).is_none());
        // `any` and the fallback take every method: no `Allow`, nothing run.
        let response = ask(Method::PUT, "/any").await.unwrap();
        assert!(response.headers().get(header::ALLOW).is_none());
        let response = ask(Method::PUT, "/elsewhere").await.unwrap();
        assert!(response.headers().get(header::ALLOW).is_none());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no handler ran");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xsession=1; session=abc; other=2"),
        );
        assert_eq!(read_cookie(&h, "session"), Some("abc"));
        assert_eq!(read_cookie(&h, "missing"), None);
    }

    #[test]
    fn hosts_with_odd_characters_are_not_trusted_for_links() {
        assert!(valid_host("127.0.0.1:5000"));
        assert!(valid_host("example.com"));
        assert!(!valid_host("evil.com/path"));
        assert!(!valid_host("a b"));
    }
}
