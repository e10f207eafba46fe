//! Fixtures through the admin API (docs/REFERENCE.md §6), as an admin would make them: an admin token from
//! client_credentials, then scopes, clients and users.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::http::{self, Connection, Response, Target};

/// A registered confidential client: its id and its `Authorization: Basic …` value.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub basic: String,
}

/// An admin session on one connection.
pub struct Admin<'a> {
    connection: Connection,
    /// When the connection last carried a request: one idle past the server's keep-alive
    /// (5 s) is made afresh rather than found closed.
    used_at: std::time::Instant,
    target: &'a Target,
    bearer: String,
}

impl<'a> Admin<'a> {
    /// Signs in with the admin client's credentials (client_credentials, scope `admin`).
    pub async fn sign_in(
        target: &'a Target,
        client_id: &str,
        secret: &str,
    ) -> anyhow::Result<Self> {
        let mut connection = Connection::open(target.addr).await?;
        let basic = http::basic(client_id, secret);
        let form = [("grant_type", "client_credentials"), ("scope", "admin")];
        let request = http::post_form(target, "/token", &[("Authorization", &basic)], &form);
        let response = connection.send(&request).await?;
        let token = json_of(&response, 200, "admin token")?["access_token"]
            .as_str()
            .context("no access_token in the admin token response")?
            .to_owned();
        let used_at = std::time::Instant::now();
        Ok(Self { connection, used_at, target, bearer: format!("Bearer {token}") })
    }

    async fn post(&mut self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let body = serde_json::to_vec(body)?;
        let request = http::request(
            "POST",
            self.target,
            path,
            &[("Authorization", &self.bearer)],
            Some(("application/json", &body)),
        );
        if self.used_at.elapsed() > std::time::Duration::from_secs(2) {
            self.connection = Connection::open(self.target.addr).await?;
        }
        let response = self.connection.send(&request).await?;
        self.used_at = std::time::Instant::now();
        Ok(response)
    }

    /// Registers a scope; one that exists already is fine.
    pub async fn ensure_scope(&mut self, name: &str, description: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "name": name, "description": description });
        let response = self.post("/admin/scopes", &body).await?;
        if response.status != 201 && response.status != 409 {
            bail!("POST /admin/scopes: HTTP {}: {}", response.status, response.text());
        }
        Ok(())
    }

    /// Registers a client. A 400 (metadata the server refuses) is `Ok(Err(reason))`, so a
    /// scenario the server cannot support yet is skipped rather than failing the run.
    pub async fn register_client(
        &mut self,
        metadata: &Value,
    ) -> anyhow::Result<Result<ClientCredentials, String>> {
        let response = self.post("/admin/clients", metadata).await?;
        if response.status == 400 {
            return Ok(Err(format!("POST /admin/clients refused it: {}", response.text())));
        }
        let json = json_of(&response, 201, "POST /admin/clients")?;
        let client_id = json["client_id"].as_str().context("no client_id")?;
        let secret = json["client_secret"].as_str().context("no client_secret")?;
        Ok(Ok(ClientCredentials {
            client_id: client_id.to_owned(),
            basic: http::basic(client_id, secret),
        }))
    }

    /// Creates a user who signs in with `password`.
    pub async fn create_user(&mut self, username: &str, password: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "username": username, "password": password });
        let response = self.post("/admin/users", &body).await?;
        json_of(&response, 201, "POST /admin/users").map(|_| ())
    }
}

/// The JSON body of a response that must have `status`.
fn json_of(response: &Response, status: u16, what: &str) -> anyhow::Result<Value> {
    if response.status != status {
        bail!("{what}: HTTP {}: {}", response.status, response.text());
    }
    response.json().with_context(|| format!("{what}: the body is not JSON"))
}

/// A client_credentials token for `client`, or why there is none.
pub async fn client_token(target: &Target, client: &ClientCredentials) -> Result<String, String> {
    access_token(target, &client_credentials_request(target, client)).await
}

/// The `access_token` of one token request on a new connection, or why there is none.
pub async fn access_token(target: &Target, request: &[u8]) -> Result<String, String> {
    let mut connection = Connection::open(target.addr).await.map_err(|e| e.to_string())?;
    let response = connection.send(request).await.map_err(|e| e.to_string())?;
    match response.json() {
        Ok(json) if response.status == 200 => json["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no access_token in the token response".to_owned()),
        _ => Err(format!("POST /token: HTTP {}: {}", response.status, response.text())),
    }
}

/// `POST /token` with `grant_type=client_credentials`, authenticated with HTTP Basic.
pub fn client_credentials_request(target: &Target, client: &ClientCredentials) -> Vec<u8> {
    let form = [("grant_type", "client_credentials")];
    http::post_form(target, "/token", &[("Authorization", &client.basic)], &form)
}

/// The `alg` of a compact JWS's protected header.
pub fn jws_alg(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    header["alg"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alg_comes_from_the_protected_header() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"at+jwt","kid":"k"}"#);
        assert_eq!(jws_alg(&format!("{header}.e30.sig")).as_deref(), Some("ES256"));
        assert_eq!(jws_alg("not a jwt"), None);
    }
}
