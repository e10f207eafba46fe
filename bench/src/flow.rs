//! The authorization code flow as a browser walks it: authorize → login page → login →
//! (consent page → allow) → code → token, with PKCE S256 and a cookie jar of its own.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::html::hidden_input;
use crate::http::{self, Connection, Failure, Response, Target};

/// The redirect URI of the bench's web client (nothing listens there: the flow stops at the
/// redirect and reads the code from its `Location`).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
/// What the browser flow asks for: an ID token and a refresh token.
pub const SCOPE: &str = "openid offline_access";
/// What a refresh chain asks for: a refresh token alone, so each refresh is one RS256
/// signature (an `openid` chain would sign an ID token too).
pub const REFRESH_SCOPE: &str = "offline_access";
/// Pages and redirects one flow may pass through before it counts as lost.
const MAX_STEPS: usize = 10;

/// A confidential web client and the user a virtual user signs in as.
#[derive(Debug, Clone)]
pub struct Login {
    pub client_id: String,
    /// `Authorization: Basic …` of the web client.
    pub basic: String,
    pub username: String,
    pub password: String,
    /// Ask for consent every time (`prompt=consent`).
    pub prompt_consent: bool,
    /// `SCOPE` or `REFRESH_SCOPE`.
    pub scope: &'static str,
    /// Push the request to `/par` first (RFC 9126) and send the browser with its
    /// `request_uri` only.
    pub pushed: bool,
}

/// What one completed flow yields.
#[derive(Debug)]
pub struct Completed {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// The consent page was shown (and allowed) in this flow.
    pub consented: bool,
}

/// A PKCE pair (RFC 7636 §4.1–4.2): a 44-character verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let mut verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode_string(uuid::Uuid::new_v4().as_bytes(), &mut verifier);
    let challenge = challenge(&verifier);
    (verifier, challenge)
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// The cookies of one browser: name → value, the latest value winning.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn keep(&mut self, response: &Response) {
        for set in &response.set_cookies {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
                self.0.retain(|(n, _)| *n != name);
                self.0.push((name, value));
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }
}

/// A browser on one connection: each request carries the jar and keeps what comes back.
struct Browser<'a> {
    connection: &'a mut Connection,
    target: &'a Target,
    jar: Jar,
}

impl Browser<'_> {
    async fn get(&mut self, path: &str) -> Result<Response, Failure> {
        let cookies = self.jar.header();
        let headers: &[(&str, &str)] =
            if cookies.is_empty() { &[] } else { &[("Cookie", &cookies)] };
        let response =
            self.connection.send(&http::request("GET", self.target, path, headers, None)).await?;
        self.jar.keep(&response);
        Ok(response)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Response, Failure> {
        let cookies = self.jar.header();
        let headers: &[(&str, &str)] =
            if cookies.is_empty() { &[] } else { &[("Cookie", &cookies)] };
        let request = http::post_form(self.target, path, headers, form);
        let response = self.connection.send(&request).await?;
        self.jar.keep(&response);
        Ok(response)
    }
}

/// Runs the whole flow once, with a fresh cookie jar (so it always signs in).
pub async fn run(
    connection: &mut Connection,
    target: &Target,
    login: &Login,
) -> Result<Completed, Failure> {
    let (verifier, challenge) = pkce();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", login.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", login.scope),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if login.prompt_consent {
        params.push(("prompt", "consent"));
    }
    let request_uri;
    if login.pushed {
        request_uri = push(connection, target, login, &params).await?;
        params = vec![("client_id", login.client_id.as_str()), ("request_uri", &request_uri)];
    }
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let authorize = format!("/authorize?{query}");
    let mut browser = Browser { connection, target, jar: Jar::default() };
    let mut response = browser.get(&authorize).await?;
    let mut consented = false;
    for _ in 0..MAX_STEPS {
        match response.status {
            303 | 302 => {
                let location = response.location.clone().unwrap_or_default();
                if let Some(query) = location.strip_prefix(&format!("{REDIRECT_URI}?")) {
                    let code = code_from(query, &state)
                        .ok_or_else(|| Failure::unexpected("redirect to the client", &response))?;
                    let mut tokens =
                        redeem(browser.connection, target, login, &code, &verifier).await?;
                    tokens.consented = consented;
                    return Ok(tokens);
                }
                let own = format!("http://{}", target.host);
                let path = location.strip_prefix(&own).unwrap_or(&location).to_owned();
                if !path.starts_with('/') {
                    return Err(Failure::unexpected("redirect", &response));
                }
                response = browser.get(&path).await?;
            }
            200 => {
                let page = response.text();
                if let Some(request) = hidden_input(&page, "request") {
                    let csrf = hidden_input(&page, "csrf_token")
                        .ok_or_else(|| Failure::unexpected("consent page", &response))?;
                    let form = [
                        ("csrf_token", csrf.as_str()),
                        ("request", request.as_str()),
                        ("decision", "allow"),
                    ];
                    response = browser.post("/consent", &form).await?;
                    consented = true;
                } else if let Some(csrf) = hidden_input(&page, "csrf_token") {
                    let return_to = hidden_input(&page, "return_to").unwrap_or_default();
                    let form = [
                        ("csrf_token", csrf.as_str()),
                        ("return_to", return_to.as_str()),
                        ("username", login.username.as_str()),
                        ("password", login.password.as_str()),
                    ];
                    response = browser.post("/login", &form).await?;
                } else {
                    return Err(Failure::unexpected("page without a form", &response));
                }
            }
            _ => return Err(Failure::unexpected("authorization flow", &response)),
        }
    }
    Err(Failure::unexpected("too many redirects", &response))
}

/// The `code` of the redirect's query, if its `state` is ours and there is no `error`.
fn code_from(query: &str, state: &str) -> Option<String> {
    let mut code = None;
    let mut state_ok = false;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state_ok = value == state,
            "error" => return None,
            _ => {}
        }
    }
    code.filter(|_| state_ok)
}

/// `POST /par` (RFC 9126) of the authorization request: its `request_uri`.
async fn push(
    connection: &mut Connection,
    target: &Target,
    login: &Login,
    params: &[(&str, &str)],
) -> Result<String, Failure> {
    let request = http::post_form(target, "/par", &[("Authorization", &login.basic)], params);
    let response = connection.send(&request).await?;
    let json = response.json().ok().filter(|_| response.status == 201);
    match json.as_ref().and_then(|j| j["request_uri"].as_str()) {
        Some(uri) => Ok(uri.to_owned()),
        None => Err(Failure::unexpected("pushed authorization request", &response)),
    }
}

/// `POST /token` with `grant_type=authorization_code` and the PKCE verifier.
async fn redeem(
    connection: &mut Connection,
    target: &Target,
    login: &Login,
    code: &str,
    verifier: &str,
) -> Result<Completed, Failure> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ];
    let request = http::post_form(target, "/token", &[("Authorization", &login.basic)], &form);
    let response = connection.send(&request).await?;
    let json = response.json().ok().filter(|_| response.status == 200);
    let access_token = json.as_ref().and_then(|j| j["access_token"].as_str());
    let Some(access_token) = access_token else {
        return Err(Failure::unexpected("code exchange", &response));
    };
    let refresh_token = json.as_ref().and_then(|j| j["refresh_token"].as_str()).map(str::to_owned);
    Ok(Completed { access_token: access_token.to_owned(), refresh_token, consented: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the verifier and its S256 challenge.
    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (verifier, _) = pkce();
        assert!((43..=128).contains(&verifier.len()));
    }

    #[test]
    fn the_code_needs_our_state_and_no_error() {
        assert_eq!(code_from("code=c1&state=s&iss=x", "s").as_deref(), Some("c1"));
        assert_eq!(code_from("code=c1&state=other", "s"), None);
        assert_eq!(code_from("error=access_denied&state=s", "s"), None);
    }

    #[test]
    fn the_jar_keeps_the_latest_value_of_each_cookie() {
        let mut jar = Jar::default();
        let set = |v: &[&str]| Response {
            set_cookies: v.iter().map(|s| (*s).to_owned()).collect(),
            ..Response::default()
        };
        jar.keep(&set(&["castellan_csrf=a; Path=/; HttpOnly", "castellan_session=s1"]));
        jar.keep(&set(&["castellan_session=s2; Path=/"]));
        assert_eq!(jar.header(), "castellan_csrf=a; castellan_session=s2");
    }
}
