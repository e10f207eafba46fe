//! A cookie-keeping HTTP client that walks the login, consent and code flow as a browser
//! would, following our own redirects by hand so the final one (to the client) is visible.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::TestApp;

pub const REDIRECT: &str = "https://app.example/cb";
pub const PASSWORD: &str = "a long passphrase";

pub struct Browser {
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { http }
    }

    pub async fn get(&self, url: &str) -> Response {
        self.http.get(url).send().await.expect("GET")
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Response {
        self.http.post(url).form(form).send().await.expect("POST")
    }

    /// POSTs as if from `address`, through a trusted proxy that says so in X-Forwarded-For.
    pub async fn post_from(&self, url: &str, form: &[(&str, &str)], address: &str) -> Response {
        let request = self.http.post(url).header("x-forwarded-for", address).form(form);
        request.send().await.expect("POST")
    }

    /// Follows redirects that stay on `app`; returns the first response that does not.
    pub async fn follow(&self, app: &TestApp, mut response: Response) -> Response {
        for _ in 0..10 {
            let Some(location) = location(&response) else { return response };
            let absolute =
                if location.starts_with('/') { app.url(&location) } else { location.clone() };
            if !absolute.starts_with(&app.address) {
                return response;
            }
            response = self.get(&absolute).await;
        }
        response
    }
}

pub fn location(response: &Response) -> Option<String> {
    response.headers().get("location").map(|v| v.to_str().expect("ascii").to_owned())
}

/// The value of the hidden (or any) input `name` in a page.
pub fn input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Undoes HTML escaping of an attribute value (named and numeric character references).
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") => {
                u32::from_str_radix(&entity[2..], 16).ok().and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        + &URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

/// A confidential web client for the code flow, allowed `scope`.
pub async fn web_client(app: &TestApp, name: &str, scope: &str) -> (String, String) {
    let client = app
        .create_client(json!({
            "client_name": name,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": scope,
        }))
        .await;
    (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    )
}

/// A user with `PASSWORD`; returns their id.
pub async fn user(app: &TestApp, username: &str) -> String {
    let response = app
        .admin(reqwest::Method::POST, "/admin/users", Some(json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com"), "name": username})))
        .await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("JSON")["id"].as_str().expect("id").to_owned()
}

pub fn authorize_url(
    app: &TestApp,
    client_id: &str,
    challenge: &str,
    scope: &str,
    state: &str,
) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    app.url(&format!("/authorize?{query}"))
}

/// Submits the login form on `page` (a login page response body).
pub async fn log_in(
    browser: &Browser,
    app: &TestApp,
    page: &str,
    username: &str,
    password: &str,
) -> Response {
    let csrf = input(page, "csrf_token").expect("csrf_token field");
    let return_to = input(page, "return_to").expect("return_to field");
    browser
        .post(
            &app.url("/login"),
            &[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await
}

/// Walks authorize → login → consent (allow) and returns the final redirect to the client.
pub async fn authorize_with_consent(
    browser: &Browser,
    app: &TestApp,
    url: &str,
    username: &str,
) -> Response {
    let login_page = browser.follow(app, browser.get(url).await).await;
    if location(&login_page).is_some() {
        return login_page;
    }
    let page = login_page.text().await.expect("login page");
    if input(&page, "request").is_some() {
        return consent(browser, app, &page).await;
    }
    let after_login =
        browser.follow(app, log_in(browser, app, &page, username, PASSWORD).await).await;
    if location(&after_login).is_some() {
        return after_login;
    }
    consent(browser, app, &after_login.text().await.expect("consent page")).await
}

/// Allows the request shown on a consent page.
pub async fn consent(browser: &Browser, app: &TestApp, page: &str) -> Response {
    let csrf = input(page, "csrf_token").expect("csrf_token");
    let request = input(page, "request").expect("request");
    browser
        .post(
            &app.url("/consent"),
            &[("csrf_token", &csrf), ("request", &request), ("decision", "allow")],
        )
        .await
}

/// The query parameters of a redirect to the client.
pub fn params(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).expect("absolute").query_pairs().into_owned().collect()
}

/// Redeems a code at the token endpoint.
pub async fn redeem(
    app: &TestApp,
    client: &(String, String),
    code: &str,
    verifier: &str,
) -> Response {
    app.token_basic(
        &client.0,
        &client.1,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The browser flow against any server address (a `ServerProcess` too): authorize, log in
/// if asked, consent if asked; returns the code sent to `REDIRECT`.
pub async fn code_at(
    browser: &Browser,
    base: &str,
    client_id: &str,
    username: &str,
    challenge: &str,
) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "st")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let mut response = browser.get(&format!("{base}/authorize?{query}")).await;
    for _ in 0..8 {
        if let Some(to) = location(&response) {
            if to.starts_with(REDIRECT) {
                return params(&to)["code"].clone();
            }
            let to = if to.starts_with('/') { format!("{base}{to}") } else { to };
            response = browser.get(&to).await;
            continue;
        }
        let page = response.text().await.expect("page");
        let csrf = input(&page, "csrf_token").expect("csrf_token");
        response = match input(&page, "request") {
            Some(request) => {
                let form =
                    [("csrf_token", csrf.as_str()), ("request", &request), ("decision", "allow")];
                browser.post(&format!("{base}/consent"), &form).await
            }
            None => {
                let return_to = input(&page, "return_to").expect("return_to");
                let form = [
                    ("username", username),
                    ("password", PASSWORD),
                    ("csrf_token", csrf.as_str()),
                    ("return_to", return_to.as_str()),
                ];
                browser.post(&format!("{base}/login"), &form).await
            }
        };
    }
    panic!("no code after 8 steps");
}

/// A web client allowed `scope` (and `extra` metadata), for the code flow.
pub async fn web_client_with(app: &TestApp, scope: &str, extra: Value) -> (String, String) {
    let mut metadata = json!({
        "client_name": "Web app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": scope,
    });
    if let (Some(base), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    let client = app.create_client(metadata).await;
    (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    )
}

/// The whole code flow for `username` in a fresh browser, asking `scope`: the token response.
pub async fn tokens_for(
    app: &TestApp,
    client: &(String, String),
    username: &str,
    scope: &str,
) -> Value {
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        app,
        &authorize_url(app, &client.0, &challenge, scope, "s"),
        username,
    )
    .await;
    let code = params(&location(&back).expect("a redirect to the client"))["code"].clone();
    let response = redeem(app, client, &code, &verifier).await;
    assert_eq!(response.status(), 200, "code exchange");
    response.json().await.expect("JSON")
}
