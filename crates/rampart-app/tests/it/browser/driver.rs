//! Headless Chromium driven through chromedriver (WebDriver) with fantoccini.
//!
//! [`Browser::start`] finds `chromium` and `chromedriver` (or `$CHROME` and `$CHROMEDRIVER`),
//! starts chromedriver on a free port and opens a session with a fresh profile. When they are
//! not installed the browser tests are skipped with a notice, except under CI (`CI` set), where
//! that is a failure. Waits poll the page with a bounded timeout; nothing sleeps a fixed time.
//!
//! Every page a test visits can be saved with [`Browser::shot`], at a desktop and a phone width:
//! into `$RAMPART_SCREENSHOTS` (relative paths from the workspace root, e.g.
//! `RAMPART_SCREENSHOTS=docs/screenshots` refreshes the README's pictures), else into the target
//! folder.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// How long a wait for the page may take (generous: under `.ci/run` the browser shares two cores
/// with the rest of the suite, and a page that took 15 s there once failed a run).
const WAIT: Duration = Duration::from_secs(40);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(40);

/// Desktop and phone viewport widths, and the desktop height.
const DESKTOP: (u32, u32) = (1280, 860);
const PHONE_WIDTH: u32 = 390;
/// Full-page screenshots stop at this height.
const MAX_SHOT_HEIGHT: u32 = 2600;

/// Only one Chromium at a time: the machine has 2 cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A program from `$var` or the first of `names` found on `PATH`.
fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Where screenshots go.
fn screenshot_dir() -> PathBuf {
    match std::env::var_os("RAMPART_SCREENSHOTS").filter(|p| !p.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(dir)
            }
        }
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    }
}

/// A browser session against the app at `base`.
pub(crate) struct Browser {
    pub(crate) client: Client,
    pub(crate) base: String,
    shots: PathBuf,
    _driver: Child,
    _profile: TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts Chromium for the app at `base`, or `None` (with a notice) when it is not installed
    /// and this is not CI.
    pub(crate) async fn start(base: &str) -> Option<Self> {
        Self::start_in(base, "en-US").await
    }

    /// [`Browser::start`] with `language` as the browser's language (its `Accept-Language`).
    pub(crate) async fn start_in(base: &str, language: &str) -> Option<Self> {
        let chrome = find_program(
            "CHROME",
            &["chromium", "chromium-browser", "google-chrome", "chrome"],
        );
        let driver = find_program("CHROMEDRIVER", &["chromedriver"]);
        let (Some(chrome), Some(driver)) = (chrome, driver) else {
            let message = "browser tests need Chromium and chromedriver \
                           (Debian: apt-get install chromium chromium-driver)";
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the browser tests: {message}");
            }
            // Straight to the stream: the test harness captures `eprintln!`, hiding the notice.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("port").port()
        };
        let driver_process = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&url).await;
        let profile = tempfile::tempdir().expect("profile dir");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chrome,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--lang={language}"),
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "intl.accept_languages": language },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("WebDriver session");
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Some(Self {
            client,
            base: base.to_owned(),
            shots,
            _driver: driver_process,
            _profile: profile,
            _turn: turn,
        })
    }

    /// Adds a WebDriver virtual authenticator (the WebAuthn extension chromedriver supports): a
    /// platform passkey that keeps discoverable credentials and verifies the user by itself.
    pub(crate) async fn add_virtual_authenticator(&self) {
        self.client
            .issue_cmd(AddVirtualAuthenticator)
            .await
            .expect("virtual authenticator");
    }

    /// Ends the session (Chromium exits; chromedriver is killed on drop).
    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Opens `path` (or an absolute URL).
    pub(crate) async fn open(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.client.goto(&url).await.expect("navigate");
    }

    /// The current path and query.
    pub(crate) async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the current path is `path` (query ignored).
    pub(crate) async fn wait_for_path(&self, path: &str) {
        let start = Instant::now();
        loop {
            let url = self.client.current_url().await.expect("url");
            if url.path() == path {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "still on {} instead of {path}",
                url.path()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The visible text of the page.
    pub(crate) async fn text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
        {
            Ok(Value::String(text)) => text,
            _ => String::new(),
        }
    }

    /// Waits until the page shows `text`, and returns the page's text.
    pub(crate) async fn wait_for_text(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let page = self.text().await;
            if page.contains(text) {
                return page;
            }
            assert!(
                start.elapsed() < WAIT,
                "the page {} does not show {text:?}; it shows:\n{page}",
                self.path().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks `css`.
    pub(crate) async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// An attribute of the element `css`.
    pub(crate) async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .attr(name)
            .await
            .expect("attribute")
    }

    /// Whether an element matches `css`.
    pub(crate) async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// Sets a field's value directly (date inputs take typed text in the browser's locale).
    pub(crate) async fn set_value(&self, css: &str, value: &str) {
        self.client
            .execute(
                "document.querySelector(arguments[0]).value = arguments[1];",
                vec![json!(css), json!(value)],
            )
            .await
            .expect("set value");
    }

    /// Signs in through the form and waits for `expect` on the next page.
    pub(crate) async fn sign_in(&self, identity: &str, password: &str, expect: &str) {
        self.submit_sign_in(identity, password).await;
        self.wait_for_text(expect).await;
    }

    /// Fills in and sends the sign-in form, waiting for nothing (a second factor may follow).
    pub(crate) async fn submit_sign_in(&self, identity: &str, password: &str) {
        self.open("/login").await;
        self.fill("#email", identity).await;
        self.fill("#password", password).await;
        self.click("#sign-in").await;
    }

    /// Signs out through the user menu (a POST form with the CSRF token).
    pub(crate) async fn sign_out(&self) {
        self.click(".usermenu summary").await;
        self.click("#sign-out").await;
        self.wait_for_path("/login").await;
        self.wait_for_text(rampart_app::routes::home::SIGNED_OUT)
            .await;
    }

    /// Whether every element matching `css` is whole at phone width (not cut by the window or
    /// by its own box): e.g. the main navigation's tabs.
    pub(crate) async fn fits_at_phone_width(&self, css: &str) -> bool {
        self.resize(PHONE_WIDTH, DESKTOP.1).await;
        let script = format!(
            "return [...document.querySelectorAll({css:?})].every(e => {{ \
               const r = e.getBoundingClientRect(); \
               return r.left >= 0 && r.right <= window.innerWidth && e.scrollWidth <= e.clientWidth; }})"
        );
        let fits = self
            .client
            .execute(&script, vec![])
            .await
            .expect("script")
            .as_bool()
            .unwrap_or(false);
        self.resize(DESKTOP.0, DESKTOP.1).await;
        fits
    }

    /// Saves `<name>-desktop.png` and `<name>-phone.png` of the whole page.
    pub(crate) async fn shot(&self, name: &str) {
        for (suffix, width) in [("desktop", DESKTOP.0), ("phone", PHONE_WIDTH)] {
            self.resize(width, DESKTOP.1).await;
            let height = match self
                .client
                .execute(
                    "return Math.ceil(document.documentElement.scrollHeight)",
                    vec![],
                )
                .await
            {
                Ok(value) => value
                    .as_u64()
                    .and_then(|h| u32::try_from(h).ok())
                    .unwrap_or(DESKTOP.1),
                Err(_) => DESKTOP.1,
            };
            self.resize(width, height.clamp(DESKTOP.1.min(700), MAX_SHOT_HEIGHT))
                .await;
            let png = self.client.screenshot().await.expect("screenshot");
            let path = self.shots.join(format!("{name}-{suffix}.png"));
            std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        self.resize(DESKTOP.0, DESKTOP.1).await;
    }

    /// Sets the viewport to `width` × `height` CSS pixels.
    async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        // The window has no browser UI in headless mode, but make sure: correct by the difference.
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .expect("viewport");
        let (w, h) = (
            inner[0].as_u64().unwrap_or(u64::from(width)),
            inner[1].as_u64().unwrap_or(u64::from(height)),
        );
        if (w, h) != (u64::from(width), u64::from(height)) {
            let dw = u32::try_from(u64::from(width).saturating_sub(w)).unwrap_or(0);
            let dh = u32::try_from(u64::from(height).saturating_sub(h)).unwrap_or(0);
            self.client
                .set_window_size(width + dw, height + dh)
                .await
                .expect("resize");
        }
    }
}

/// Polls chromedriver's `/status` until it is ready.
async fn wait_for_driver(url: &str) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(response) = http.get(format!("{url}/status")).send().await
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == true
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Browser {
    /// A test that fails mid-way never calls [`Browser::close`], and killing chromedriver leaves
    /// its Chromium running: end every process of this session's profile, so none linger to slow
    /// down what runs next.
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            // `--`: the pattern itself starts with dashes.
            .args(["-f", "--"])
            .arg(format!(
                "--user-data-dir={}",
                self._profile.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `POST /session/{id}/webauthn/authenticator` (WebAuthn Level 2, "Add Virtual Authenticator").
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}
