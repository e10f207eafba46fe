//! What a client signs (assertions, request objects) and a server that publishes its keys at a
//! `jwks_uri`, counting every connection made to it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::dpop::DpopKey;
use crate::helpers::TestApp;

/// A `private_key_jwt` assertion (RFC 7523 §3) by `client_id` for `aud`, signed with `alg`
/// by `key` under `kid`.
pub fn assertion(key: &DpopKey, kid: &str, alg: &str, client_id: &str, aud: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    key.sign(
        &json!({"alg": alg, "kid": kid, "typ": "JWT"}),
        &json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
            "jti": uuid::Uuid::new_v4().to_string()}),
    )
}

/// The form members that authenticate with `assertion`.
pub fn assertion_form(assertion: &str) -> [(&'static str, String); 2] {
    [
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
        ("client_assertion", assertion.to_owned()),
    ]
}

/// `POST path` with `form` and an assertion for the issuer: (status, JSON body).
pub async fn post_with_assertion(
    app: &TestApp,
    path: &str,
    form: &[(&str, String)],
    assertion: &str,
    dpop: Option<String>,
) -> (u16, Value) {
    let mut body: Vec<(&str, String)> = form.to_vec();
    body.extend(assertion_form(assertion));
    let mut request = app.http.post(app.url(path)).form(&body);
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A request object (RFC 9101): `params` as claims, for `app`, by `client_id`, valid for a
/// minute; `extra` claims override.
pub fn request_object(
    app: &TestApp,
    key: &DpopKey,
    kid: &str,
    client_id: &str,
    params: &[(&str, String)],
    extra: Value,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"iss": client_id, "aud": app.issuer, "client_id": client_id,
        "iat": now, "nbf": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string()});
    for (name, value) in params {
        claims[*name] = json!(value);
    }
    let mut header = json!({"alg": key.alg(), "kid": kid, "typ": "oauth-authz-req+jwt"});
    if let Some(extra) = extra.as_object() {
        for (name, value) in extra {
            match name.strip_prefix("header.") {
                Some(member) => header[member] = value.clone(),
                None if value.is_null() => {
                    claims.as_object_mut().expect("claims").remove(name);
                }
                None => claims[name] = value.clone(),
            }
        }
    }
    key.sign(&header, &claims)
}

/// A plain HTTP server answering every request with one JSON document (a JWK Set) and a
/// `Cache-Control`, closing each connection; it counts the connections it accepted.
pub struct JwksServer {
    pub url: String,
    connections: Arc<AtomicUsize>,
    document: Arc<Mutex<(String, String)>>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(jwks: Value, cache_control: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks.json", listener.local_addr().expect("address"));
        let connections = Arc::new(AtomicUsize::new(0));
        let document = Arc::new(Mutex::new((jwks.to_string(), cache_control.to_owned())));
        let (count, served) = (connections.clone(), document.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (body, cache_control) = served.lock().expect("document").clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         cache-control: {cache_control}\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, connections, document, task }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        url::Url::parse(&self.url).expect("url").port().expect("port")
    }

    /// Publishes `jwks` from now on.
    pub fn publish(&self, jwks: Value) {
        self.document.lock().expect("document").0 = jwks.to_string();
    }

    /// Publishes `body` as is (for a document too large or not JSON).
    pub fn publish_raw(&self, body: String) {
        self.document.lock().expect("document").0 = body;
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Stops listening: later fetches fail to connect.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
