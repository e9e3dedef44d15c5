//! Passkeys / WebAuthn (`SECURITY_WEBAUTHN`, Flask-Security's `/wan-*` JSON API), with
//! `webauthn-authenticator-rs`'s software passkey making real attestations and assertions.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a step that cannot be done must fail the test at once, saying which"
)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions,
};

use crate::harness::{
    HOST, PASSWORD, TestApp, TestClient, TestResponse, backend_test, csrf_in_html,
};

const ON: &[(&str, &str)] = &[
    ("SECURITY_WEBAUTHN", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

const WITH_TWO_FACTOR: &[(&str, &str)] = &[
    ("SECURITY_WEBAUTHN", "true"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

const API_ERROR: &str = "Input not appropriate for requested API";
const NO_VERIFY: &str = "Could not verify passkey";

fn origin() -> Url {
    Url::parse(&format!("http://{HOST}")).expect("origin")
}

/// Begins a registration of `name` for `usage`; returns the credential options and wan_state.
async fn begin_register(client: &TestClient, name: &str, usage: &str) -> (Value, String) {
    let begun = client
        .post("/wan-register")
        .json(&json!({"name": name, "usage": usage}))
        .csrf()
        .send()
        .await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
    let response = begun.response();
    let state = response["wan_state"]
        .as_str()
        .expect("wan_state")
        .to_owned();
    (response["credential_options"].clone(), state)
}

/// The authenticator's answer to `options`, from `origin`, as the JSON string every finish posts.
fn create(key: &mut SoftPasskey, options: &Value, origin: Url) -> String {
    let options: PublicKeyCredentialCreationOptions =
        serde_json::from_value(options.clone()).expect("creation options");
    let credential = key
        .perform_register(origin, options, 60_000)
        .expect("the authenticator registers");
    serde_json::to_string(&credential).expect("JSON")
}

/// Registers a key named `name` for `usage` with `key`.
async fn register(client: &TestClient, key: &mut SoftPasskey, name: &str, usage: &str) {
    let (options, state) = begin_register(client, name, usage).await;
    let credential = create(key, &options, origin());
    let done = client
        .post(&format!("/wan-register/{state}"))
        .json(&json!({ "credential": credential }))
        .csrf()
        .send()
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
}

/// The authenticator's assertion for `options`, from `origin`. A software passkey is not
/// discoverable: an empty allow list (a passkey sign-in) is filled with `ids`, as a browser's
/// account chooser would pick one.
fn get(key: &mut SoftPasskey, options: &Value, ids: &[Vec<u8>], origin: Url) -> String {
    let mut options: PublicKeyCredentialRequestOptions =
        serde_json::from_value(options.clone()).expect("request options");
    if options.allow_credentials.is_empty() {
        options.allow_credentials = ids
            .iter()
            .map(|id| AllowCredentials {
                type_: "public-key".into(),
                id: id.clone().into(),
                transports: None,
            })
            .collect();
    }
    let credential = key
        .perform_auth(origin, options, 60_000)
        .expect("the authenticator signs");
    serde_json::to_string(&credential).expect("JSON")
}

/// The ids of `email`'s keys.
async fn key_ids(app: &TestApp, email: &str) -> Vec<Vec<u8>> {
    let user = app.user(email).await;
    app.datastore()
        .webauthn_credentials(user.id)
        .await
        .expect("keys")
        .into_iter()
        .map(|c| c.credential_id)
        .collect()
}

/// Begins a sign-in; returns the options and wan_state.
async fn begin_signin(client: &TestClient, body: &Value) -> (Value, String) {
    let begun = client.post("/wan-signin").json(body).send().await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
    let response = begun.response();
    let state = response["wan_state"]
        .as_str()
        .expect("wan_state")
        .to_owned();
    (response["credential_options"].clone(), state)
}

async fn finish_signin(client: &TestClient, state: &str, credential: &str) -> TestResponse {
    client
        .post(&format!("/wan-signin/{state}"))
        .json(&json!({ "credential": credential }))
        .send()
        .await
}

/// Signs in with `key` through the HTML pages, beginning at `/wan-signin{query}`: the finish's
/// `Location`.
async fn html_signin(app: &TestApp, key: &mut SoftPasskey, query: &str) -> String {
    let browser = app.client();
    let page = browser.get(&format!("/wan-signin{query}")).send().await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    // As a browser reads the attribute.
    let html = page.text().replace("&#x2f;", "/").replace("&amp;", "&");
    let next_field = html
        .split("name=\"next\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned);
    let token = csrf_in_html(&html);
    let mut pairs = vec![("csrf_token", token.as_str())];
    if let Some(next) = &next_field {
        pairs.push(("next", next.as_str()));
    }
    let begun = browser.post("/wan-signin").form(&pairs).send().await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
    let html = begun.text().replace("&#x2f;", "/");
    let state = html
        .split("/wan-signin/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the finish form's wan_state")
        .to_owned();
    let options = html
        .split("data-wan-options=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("options")
        .replace("&quot;", "\"")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let options: Value = serde_json::from_str(&options).expect("options JSON");
    let ids = key_ids(app, "ann@example.com").await;
    let assertion = get(key, &options, &ids, origin());
    let token = csrf_in_html(&html);
    let done = browser
        .post(&format!("/wan-signin/{state}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("credential", assertion.as_str()),
        ])
        .send()
        .await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
    done.location().expect("a redirect").to_owned()
}

backend_test!(
    the_passkey_pages_carry_a_safe_next_and_drop_an_unsafe_one,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let mut key = SoftPasskey::new(false);
        register(&client, &mut key, "laptop", "first").await;
        client.logout().await;
        assert_eq!(
            html_signin(&app, &mut key, "?next=%2Fsettings%3Ftab%3Dkeys").await,
            "/settings?tab=keys"
        );
        assert_eq!(
            html_signin(&app, &mut key, "?next=%2F%2Fevil.example").await,
            "/"
        );
        assert_eq!(html_signin(&app, &mut key, "").await, "/");
    }
);

backend_test!(
    a_passkey_is_renamed_and_names_stay_unique,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let mut laptop = SoftPasskey::new(false);
        register(&client, &mut laptop, "laptop", "first").await;
        let mut phone = SoftPasskey::new(false);
        register(&client, &mut phone, "phone", "first").await;
        let rename = |name: &str, new_name: &str| {
            client
                .post("/wan-rename")
                .json(&json!({"name": name, "new_name": new_name}))
                .csrf()
                .send()
        };
        let renamed = rename("laptop", "work laptop").await;
        assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
        let listed = client.get("/wan-register").accept_json().send().await;
        let names: Vec<String> = listed.response()["registered_credentials"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        assert!(names.contains(&"work laptop".to_owned()), "{names:?}");
        assert!(!names.contains(&"laptop".to_owned()), "{names:?}");

        // Another key's name, an unknown key, a name of other characters: refused, unchanged.
        let taken = rename("phone", "work laptop").await;
        assert_eq!(taken.status, StatusCode::BAD_REQUEST, "{}", taken.text());
        assert!(
            taken.text().contains("already associated"),
            "{}",
            taken.text()
        );
        let unknown = rename("tablet", "old tablet").await;
        assert_eq!(
            unknown.status,
            StatusCode::BAD_REQUEST,
            "{}",
            unknown.text()
        );
        let odd = rename("phone", "<b>phone</b>").await;
        assert_eq!(odd.status, StatusCode::BAD_REQUEST, "{}", odd.text());
        assert_eq!(key_ids(&app, "ann@example.com").await.len(), 2);

        // The renamed key still signs in.
        client.logout().await;
        let browser = app.client();
        let (options, state) = begin_signin(&browser, &json!({})).await;
        let ids = key_ids(&app, "ann@example.com").await;
        let assertion = get(&mut laptop, &options, &ids, origin());
        let done = finish_signin(&browser, &state, &assertion).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        // Signed out, nothing can be renamed.
        let anonymous = app
            .client()
            .post("/wan-rename")
            .json(&json!({"name": "phone", "new_name": "x"}))
            .send()
            .await;
        assert!(anonymous.status.is_client_error(), "{}", anonymous.text());
    }
);

backend_test!(
    a_passkey_is_registered_listed_and_signs_in_without_a_password,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let mut key = SoftPasskey::new(false);
        register(&client, &mut key, "laptop", "first").await;

        let user = app.user("ann@example.com").await;
        let handle = user.fs_webauthn_user_handle.expect("a user handle");
        assert_eq!(handle.len(), 32, "{handle}");
        assert!(handle.chars().all(|c| c.is_ascii_hexdigit()), "{handle}");

        let listed = client.get("/wan-register").accept_json().send().await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
        let creds = listed.response()["registered_credentials"].clone();
        let cred = &creds[0];
        assert_eq!(cred["name"], "laptop");
        assert_eq!(cred["usage"], "first");
        assert!(cred["credential_id"].is_string());
        assert!(cred["transports"].is_array());
        assert!(cred["lastuse"].is_string());
        assert_eq!(cred["backup_state"], false);
        assert_eq!(cred["device_type"], "single_device");
        assert!(cred.get("discoverable").is_some());

        // The same name twice is refused.
        let again = client
            .post("/wan-register")
            .json(&json!({"name": "laptop", "usage": "first"}))
            .csrf()
            .send()
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text());

        client.logout().await;
        let browser = app.client();
        let (options, state) = begin_signin(&browser, &json!({})).await;
        assert_eq!(options["rpId"], HOST);
        let ids = key_ids(&app, "ann@example.com").await;
        let assertion = get(&mut key, &options, &ids, origin());
        let done = finish_signin(&browser, &state, &assertion).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["tf_required"], false);
        assert_eq!(browser.me().await.status, StatusCode::OK);
        // Signed in, a new sign-in does not begin (as Flask-Security's anonymous_user_required).
        let signed_in = browser
            .post("/wan-signin")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::BAD_REQUEST,
            "{}",
            signed_in.text()
        );

        // The state is used up: the same assertion cannot sign in again.
        let replayed = browser
            .post(&format!("/wan-signin/{state}"))
            .json(&json!({ "credential": assertion }))
            .csrf()
            .send()
            .await;
        assert_eq!(
            replayed.status,
            StatusCode::BAD_REQUEST,
            "{}",
            replayed.text()
        );
        assert!(replayed.text().contains(API_ERROR), "{}", replayed.text());
        // Nor against a new state (another challenge).
        let other = app.client();
        let (_, state) = begin_signin(&other, &json!({})).await;
        let replayed = finish_signin(&other, &state, &assertion).await;
        assert_eq!(
            replayed.status,
            StatusCode::BAD_REQUEST,
            "{}",
            replayed.text()
        );
        assert!(replayed.text().contains(NO_VERIFY), "{}", replayed.text());
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_wan_state_is_single_use_bound_to_its_session_and_checks_origin_and_rp_id,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("bob@example.com").await;
        let mut key = SoftPasskey::new(false);

        // A registration from another origin is refused.
        let (options, state) = begin_register(&client, "phone", "first").await;
        let evil = Url::parse("http://evil.test").expect("url");
        let credential = create(&mut key, &options, evil.clone());
        let refused = client
            .post(&format!("/wan-register/{state}"))
            .json(&json!({ "credential": credential }))
            .csrf()
            .send()
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{}",
            refused.text()
        );
        assert!(refused.text().contains(NO_VERIFY), "{}", refused.text());
        assert!(key_ids(&app, "bob@example.com").await.is_empty());

        register(&client, &mut key, "phone", "first").await;
        client.logout().await;
        let ids = key_ids(&app, "bob@example.com").await;

        // Begun in one browser, finished in another: refused.
        let first = app.client();
        let (options, state) = begin_signin(&first, &json!({})).await;
        let assertion = get(&mut key, &options, &ids, origin());
        let other = app.client();
        let stolen = finish_signin(&other, &state, &assertion).await;
        assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.text());
        assert!(stolen.text().contains(API_ERROR), "{}", stolen.text());
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);

        // Wrong origin.
        let (options, state) = begin_signin(&first, &json!({})).await;
        let assertion = get(&mut key, &options, &ids, evil);
        let wrong = finish_signin(&first, &state, &assertion).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        assert!(wrong.text().contains(NO_VERIFY), "{}", wrong.text());

        // Wrong relying-party id.
        let (mut options, state) = begin_signin(&first, &json!({})).await;
        options["rpId"] = json!("evil.test");
        let assertion = get(&mut key, &options, &ids, origin());
        let wrong = finish_signin(&first, &state, &assertion).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        assert!(wrong.text().contains(NO_VERIFY), "{}", wrong.text());

        // An unknown state.
        let unknown = finish_signin(&first, "not-a-state", &assertion).await;
        assert_eq!(
            unknown.status,
            StatusCode::BAD_REQUEST,
            "{}",
            unknown.text()
        );
        assert!(unknown.text().contains(API_ERROR), "{}", unknown.text());
        assert_eq!(first.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_secondary_key_is_the_second_factor_until_it_is_deleted,
    WITH_TWO_FACTOR,
    async |app: TestApp| {
        let client = app.logged_in("cy@example.com").await;
        let mut key = SoftPasskey::new(false);
        register(&client, &mut key, "yubikey", "secondary").await;
        client.logout().await;

        let browser = app.client();
        let login = browser.login("cy@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], true, "{}", login.text());
        assert_eq!(login.response()["tf_method"], "webauthn");
        let (options, state) = begin_signin(&browser, &json!({})).await;
        let ids = key_ids(&app, "cy@example.com").await;
        assert_eq!(
            options["allowCredentials"].as_array().map(Vec::len),
            Some(1)
        );
        let assertion = get(&mut key, &options, &ids, origin());
        let done = finish_signin(&browser, &state, &assertion).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);

        // A secondary key does not sign in alone.
        let alone = app.client();
        let (options, state) = begin_signin(&alone, &json!({})).await;
        let assertion = get(&mut key, &options, &ids, origin());
        let refused = finish_signin(&alone, &state, &assertion).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{}",
            refused.text()
        );
        assert!(
            refused.text().contains("not registered for this use"),
            "{}",
            refused.text()
        );

        // Deleting the last secondary key ends two-factor sign-in.
        let deleted = browser
            .post("/wan-delete")
            .json(&json!({"name": "yubikey"}))
            .csrf()
            .send()
            .await;
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
        let unknown = browser
            .post("/wan-delete")
            .json(&json!({"name": "yubikey"}))
            .csrf()
            .send()
            .await;
        assert_eq!(
            unknown.status,
            StatusCode::BAD_REQUEST,
            "{}",
            unknown.text()
        );
        browser.logout().await;
        let plain = app.client();
        let login = plain.login("cy@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], false, "{}", login.text());
    }
);

backend_test!(
    a_key_re_authenticates_the_signed_in_user,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("dee@example.com").await;
        let mut key = SoftPasskey::new(false);
        register(&client, &mut key, "laptop", "first").await;
        let begun = client
            .post("/wan-verify")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
        let response = begun.response();
        let state = response["wan_state"]
            .as_str()
            .expect("wan_state")
            .to_owned();
        let ids = key_ids(&app, "dee@example.com").await;
        let assertion = get(&mut key, &response["credential_options"], &ids, origin());
        let done = client
            .post(&format!("/wan-verify/{state}"))
            .json(&json!({ "credential": assertion }))
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["user"]["email"], "dee@example.com");

        // The pages, and their script (a file: the CSP admits no inline script).
        let page = client.get("/wan-register").send().await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html().contains("laptop"), "{}", page.html());
        assert!(page.html().contains("/wan-signin.js"));
        let script = app.client().get("/wan-signin.js").send().await;
        assert_eq!(script.status, StatusCode::OK);
        assert!(
            script
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/javascript"))
        );
        assert!(script.text().contains("navigator.credentials.create"));
        let signin = app.client().get("/wan-signin").send().await;
        assert_eq!(signin.status, StatusCode::OK);
        assert!(signin.html().contains("Sign in with a passkey"));
    }
);

/// Sets the stored counter of every key of `email` (as if the authenticator had signed more).
async fn set_sign_count(app: &TestApp, email: &str, count: i64) {
    let user = app.user(email).await;
    let sql = "UPDATE \"webauthn\" SET \"sign_count\" = $1 WHERE \"user_id\" = $2";
    match app.datastore().pool() {
        rampart::DbPool::Sqlite(pool) => sqlx::query(sql)
            .bind(count)
            .bind(user.id)
            .execute(pool)
            .await
            .map(|_| ())
            .expect("update"),
        rampart::DbPool::Postgres(pool) => sqlx::query(sql)
            .bind(count)
            .bind(user.id)
            .execute(pool)
            .await
            .map(|_| ())
            .expect("update"),
    }
}

backend_test!(
    tampered_cloned_and_other_users_assertions_are_refused,
    ON,
    async |app: TestApp| {
        let ann = app.logged_in("ann@example.com").await;
        let mut ann_key = SoftPasskey::new(false);
        register(&ann, &mut ann_key, "ann-key", "first").await;
        let bob = app.logged_in("bob@example.com").await;
        let mut bob_key = SoftPasskey::new(false);
        register(&bob, &mut bob_key, "bob-key", "first").await;
        let ann_ids = key_ids(&app, "ann@example.com").await;

        // A tampered signature.
        let browser = app.client();
        let (options, state) = begin_signin(&browser, &json!({})).await;
        let assertion = get(&mut ann_key, &options, &ann_ids, origin());
        let mut tampered: Value = serde_json::from_str(&assertion).expect("JSON");
        let signature = tampered["response"]["signature"]
            .as_str()
            .expect("signature")
            .to_owned();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        tampered["response"]["signature"] = json!(format!("{flipped}{}", &signature[1..]));
        let refused = finish_signin(&browser, &state, &tampered.to_string()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{}",
            refused.text()
        );
        assert!(refused.text().contains(NO_VERIFY), "{}", refused.text());

        // A malformed credential.
        let (_, state) = begin_signin(&browser, &json!({})).await;
        let malformed = finish_signin(&browser, &state, "{\"id\": 1}").await;
        assert_eq!(
            malformed.status,
            StatusCode::BAD_REQUEST,
            "{}",
            malformed.text()
        );
        assert!(malformed.text().contains(API_ERROR), "{}", malformed.text());

        // A counter that goes back (a cloned authenticator).
        set_sign_count(&app, "ann@example.com", 1000).await;
        let (options, state) = begin_signin(&browser, &json!({})).await;
        let assertion = get(&mut ann_key, &options, &ann_ids, origin());
        let cloned = finish_signin(&browser, &state, &assertion).await;
        assert_eq!(cloned.status, StatusCode::BAD_REQUEST, "{}", cloned.text());
        assert!(cloned.text().contains(NO_VERIFY), "{}", cloned.text());
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);
        set_sign_count(&app, "ann@example.com", 0).await;

        // Bob re-authenticating with Ann's key.
        let begun = bob.post("/wan-verify").json(&json!({})).csrf().send().await;
        assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
        let response = begun.response();
        let state = response["wan_state"]
            .as_str()
            .expect("wan_state")
            .to_owned();
        let assertion = get(
            &mut ann_key,
            &json!({
                "challenge": response["credential_options"]["challenge"],
                "rpId": response["credential_options"]["rpId"],
                "allowCredentials": [],
                "userVerification": "discouraged",
            }),
            &ann_ids,
            origin(),
        );
        let wrong_user = bob
            .post(&format!("/wan-verify/{state}"))
            .json(&json!({ "credential": assertion }))
            .csrf()
            .send()
            .await;
        assert_eq!(
            wrong_user.status,
            StatusCode::BAD_REQUEST,
            "{}",
            wrong_user.text()
        );
        assert!(
            wrong_user
                .text()
                .contains("Credential user handle didn't match"),
            "{}",
            wrong_user.text()
        );
    }
);

backend_test!(
    a_stale_session_is_made_fresh_by_a_key,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("eve@example.com").await;
        let mut key = SoftPasskey::new(false);
        register(&client, &mut key, "laptop", "secondary").await;
        app.advance(std::time::Duration::from_secs(25 * 3600));
        let stale = client.get("/wan-register").accept_json().send().await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
        assert_eq!(stale.response()["reauth_required"], true);

        let begun = client
            .post("/wan-verify")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
        let response = begun.response();
        let state = response["wan_state"]
            .as_str()
            .expect("wan_state")
            .to_owned();
        let ids = key_ids(&app, "eve@example.com").await;
        let assertion = get(&mut key, &response["credential_options"], &ids, origin());
        let done = client
            .post(&format!("/wan-verify/{state}"))
            .json(&json!({ "credential": assertion }))
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        let fresh = client.get("/wan-register").accept_json().send().await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());

        // A state lives SECURITY_WAN_SIGNIN_WITHIN (1 minute).
        let begun = client
            .post("/wan-verify")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        let response = begun.response();
        let state = response["wan_state"]
            .as_str()
            .expect("wan_state")
            .to_owned();
        let assertion = get(&mut key, &response["credential_options"], &ids, origin());
        app.advance(std::time::Duration::from_secs(120));
        let late = client
            .post(&format!("/wan-verify/{state}"))
            .json(&json!({ "credential": assertion }))
            .csrf()
            .send()
            .await;
        assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text());
        assert!(
            late.text()
                .contains("Passkey operations must be completed within"),
            "{}",
            late.text()
        );
    }
);

backend_test!(
    a_secondary_key_stands_in_for_the_authenticator_code,
    WITH_TWO_FACTOR,
    async |app: TestApp| {
        let (client, _) = crate::two_factor::with_authenticator(&app, "fay@example.com").await;
        let mut key = SoftPasskey::new(false);
        register(&client, &mut key, "backup key", "secondary").await;
        client.logout().await;

        let browser = app.client();
        let login = browser.login("fay@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], true, "{}", login.text());
        assert_eq!(login.response()["tf_method"], "authenticator");
        let page = browser.get("/tf-validate").send().await;
        assert!(page.html().contains("tf-use-passkey"), "{}", page.html());
        let (options, state) = begin_signin(&browser, &json!({})).await;
        let ids = key_ids(&app, "fay@example.com").await;
        let assertion = get(&mut key, &options, &ids, origin());
        let done = finish_signin(&browser, &state, &assertion).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);
