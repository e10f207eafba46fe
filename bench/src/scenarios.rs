//! The scenarios: what each one asks of the server, and the fixtures it needs, made through
//! the admin API before any clock starts.

use std::sync::Arc;

use anyhow::bail;
use serde_json::json;

use crate::flow::{self, Login, REDIRECT_URI};
use crate::http::{self, Connection, Target};
use crate::load::Workload;
use crate::setup::{self, Admin, ClientCredentials};

/// Every scenario, in the order they run.
pub const ALL: [&str; 13] = [
    "client_credentials_rs256",
    "client_credentials_es256",
    "client_credentials_eddsa",
    "client_credentials_es256_dpop",
    "introspection",
    "introspection_distinct",
    "jwks",
    "discovery",
    "refresh",
    "authorization_code",
    "authorization_code_par",
    "device_poll",
    "token_exchange",
];

/// The access-token algorithm each client_credentials scenario selects.
pub const CLIENT_CREDENTIALS: [(&str, &str); 3] = [
    ("client_credentials_rs256", "RS256"),
    ("client_credentials_es256", "ES256"),
    ("client_credentials_eddsa", "EdDSA"),
];

const SCOPE: &str = "bench";
const PASSWORD: &str = "a long benchmark passphrase";

/// How many virtual users, and how to sign in.
#[derive(Debug, Clone, Copy)]
pub struct Users {
    pub connections: usize,
    pub flow_connections: usize,
    pub prompt_consent: bool,
    /// Tokens in the pool of `introspection_distinct`.
    pub distinct_tokens: usize,
}

/// A scenario ready to run, or why it cannot.
pub enum Prepared {
    Run(Vec<Workload>),
    /// The server does not support it (yet): reported, not an error.
    Skipped(String),
    /// Its fixtures failed in a way that is the server's fault: an error.
    Failed(String),
}

/// Checks a `--scenarios` selection against the catalogue.
pub fn select(requested: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if requested.is_empty() {
        return Ok(ALL.to_vec());
    }
    for name in requested {
        if !ALL.contains(&name.as_str()) {
            bail!("unknown scenario {name}; the scenarios are {}", ALL.join(", "));
        }
    }
    Ok(ALL.iter().copied().filter(|s| requested.iter().any(|r| r == s)).collect())
}

/// Makes every fixture the selected scenarios need and returns them ready to run.
pub async fn prepare(
    target: &Target,
    admin: (&str, &str),
    selected: &[&'static str],
    users: Users,
) -> anyhow::Result<Vec<(&'static str, Prepared)>> {
    let wants = |name: &str| selected.contains(&name);
    let mut admin = Admin::sign_in(target, admin.0, admin.1).await?;
    admin.ensure_scope(SCOPE, "Benchmark load").await?;

    let mut prepared = Vec::new();
    let mut rs256 = None;
    for (name, alg) in CLIENT_CREDENTIALS {
        let introspector =
            alg == "RS256" && (wants("introspection") || wants("introspection_distinct"));
        if !wants(name) && !introspector {
            continue;
        }
        let (client, outcome) =
            client_credentials(&mut admin, target, alg, introspector, users.connections).await?;
        if alg == "RS256" {
            rs256 = client;
        }
        if wants(name) {
            prepared.push((name, outcome));
        }
    }

    let needs_web = ["introspection", "refresh", "authorization_code", "authorization_code_par"]
        .iter()
        .any(|s| wants(s));
    let web = if needs_web { Some(web_client(&mut admin).await?) } else { None };
    let login = |web: &ClientCredentials, username: String, scope| Login {
        client_id: web.client_id.clone(),
        basic: web.basic.clone(),
        username,
        password: PASSWORD.to_owned(),
        prompt_consent: users.prompt_consent,
        scope,
        pushed: false,
    };

    if wants(DPOP) {
        prepared
            .push((DPOP, dpop_client_credentials(&mut admin, target, users.connections).await?));
    }
    if wants("introspection") {
        let outcome = match (&rs256, &web) {
            (Some(caller), Some(web)) => {
                admin.create_user("bench-introspect", PASSWORD).await?;
                introspection(
                    target,
                    caller,
                    &login(web, "bench-introspect".into(), flow::SCOPE),
                    users,
                )
                .await
            }
            _ => Prepared::Skipped("no RS256 client_credentials client to introspect with".into()),
        };
        prepared.push(("introspection", outcome));
    }
    if wants("introspection_distinct") {
        let outcome = match &rs256 {
            Some(caller) => introspection_distinct(target, caller, users).await,
            None => {
                Prepared::Skipped("no RS256 client_credentials client to introspect with".into())
            }
        };
        prepared.push(("introspection_distinct", outcome));
    }
    for (name, path) in [("jwks", "/jwks"), ("discovery", "/.well-known/openid-configuration")] {
        if wants(name) {
            let request = http::request("GET", target, path, &[], None);
            prepared.push((name, fixed(request, None, users.connections)));
        }
    }
    if let (true, Some(web)) = (wants("refresh"), &web) {
        let names = signed_up(&mut admin, "bench-refresh", users.connections).await?;
        let chains = names
            .into_iter()
            .map(|name| Workload::Refresh {
                login: login(web, name, flow::REFRESH_SCOPE),
                refresh_token: None,
            })
            .collect();
        prepared.push(("refresh", Prepared::Run(chains)));
    }
    if let (true, Some(web)) = (wants("authorization_code"), &web) {
        let names = signed_up(&mut admin, "bench-flow", users.flow_connections).await?;
        let flows =
            names.into_iter().map(|name| Workload::Flow { login: login(web, name, flow::SCOPE) });
        prepared.push(("authorization_code", Prepared::Run(flows.collect())));
    }
    if let (true, Some(web)) = (wants("authorization_code_par"), &web) {
        let names = signed_up(&mut admin, "bench-par", users.flow_connections).await?;
        let flows = names.into_iter().map(|name| Workload::Flow {
            login: Login { pushed: true, ..login(web, name, flow::SCOPE) },
        });
        prepared.push(("authorization_code_par", Prepared::Run(flows.collect())));
    }
    if wants("token_exchange") {
        admin.create_user("bench-exchange", PASSWORD).await?;
        let outcome = token_exchange(&mut admin, target, users).await?;
        prepared.push(("token_exchange", outcome));
    }
    if wants("device_poll") {
        prepared.push(("device_poll", device_poll(&mut admin, target, users.connections).await?));
    }
    prepared.sort_by_key(|(name, _)| ALL.iter().position(|s| s == name));
    Ok(prepared)
}

/// The confidential web client of the browser flow, allowed `openid offline_access`.
async fn web_client(admin: &mut Admin<'_>) -> anyhow::Result<ClientCredentials> {
    let metadata = json!({
        "client_name": "bench web app",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": flow::SCOPE,
        "token_endpoint_auth_method": "client_secret_basic",
        // Long enough for the introspected token to outlive any run.
        "access_token_lifetime": 3600,
    });
    match admin.register_client(&metadata).await? {
        Ok(web) => Ok(web),
        Err(reason) => bail!("cannot register the web client: {reason}"),
    }
}

/// `count` new users named `<prefix>-<i>`, one per virtual user.
async fn signed_up(
    admin: &mut Admin<'_>,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        admin.create_user(&name, PASSWORD).await?;
        names.push(name);
    }
    Ok(names)
}

/// A client_credentials client whose access tokens are signed with `alg`, checked with one
/// token: (the client, the scenario). An `introspector` also serves the issuer's audience, which
/// entitles it to introspect the users' tokens (docs/REFERENCE.md §9.5).
async fn client_credentials(
    admin: &mut Admin<'_>,
    target: &Target,
    alg: &str,
    introspector: bool,
    connections: usize,
) -> anyhow::Result<(Option<ClientCredentials>, Prepared)> {
    let mut metadata = json!({
        "client_name": format!("bench {alg}"),
        "grant_types": ["client_credentials"],
        "scope": SCOPE,
    });
    if introspector {
        metadata["served_resources"] = json!([format!("http://{}", target.host)]);
    }
    // RS256 is the default: its client does not depend on the new member.
    if alg != "RS256" {
        metadata["access_token_signed_response_alg"] = alg.into();
    }
    let client = match admin.register_client(&metadata).await? {
        Ok(client) => client,
        Err(reason) => {
            let reason = format!("access_token_signed_response_alg={alg} unsupported: {reason}");
            return Ok((None, Prepared::Skipped(reason)));
        }
    };
    let prepared = match setup::client_token(target, &client).await {
        Err(reason) => Prepared::Failed(format!("probe token: {reason}")),
        Ok(token) => match setup::jws_alg(&token) {
            Some(signed) if signed == alg => {
                fixed(setup::client_credentials_request(target, &client), None, connections)
            }
            other => Prepared::Failed(format!(
                "the client asked for {alg} access tokens but got alg {}",
                other.unwrap_or_else(|| "(unreadable)".into())
            )),
        },
    };
    Ok((Some(client), prepared))
}

/// client_credentials with a fresh ES256 DPoP proof per request (RFC 9449), ES256 tokens.
pub const DPOP: &str = "client_credentials_es256_dpop";

/// A client_credentials client with ES256 access tokens that must send DPoP proofs, checked
/// with one bound token; each virtual user holds its own key and signs a proof per request.
async fn dpop_client_credentials(
    admin: &mut Admin<'_>,
    target: &Target,
    connections: usize,
) -> anyhow::Result<Prepared> {
    let metadata = json!({
        "client_name": "bench ES256 DPoP",
        "grant_types": ["client_credentials"],
        "scope": SCOPE,
        "access_token_signed_response_alg": "ES256",
        "dpop_bound_access_tokens": true,
    });
    let client = match admin.register_client(&metadata).await? {
        Ok(client) => client,
        Err(reason) => return Ok(Prepared::Skipped(format!("DPoP unsupported: {reason}"))),
    };
    let key = crate::dpop::ProofKey::generate()?;
    let probe = key.client_credentials_request(target, &client.basic);
    let prepared = match setup::access_token(target, &probe).await {
        Err(reason) => Prepared::Failed(format!("probe token: {reason}")),
        Ok(_) => {
            let mut users = Vec::with_capacity(connections);
            for _ in 0..connections {
                users.push(Workload::Dpop {
                    key: crate::dpop::ProofKey::generate()?,
                    basic: client.basic.clone(),
                });
            }
            Prepared::Run(users)
        }
    };
    Ok(prepared)
}

/// Token exchange (RFC 8693): an API's client exchanges one user's access token, meant for
/// the API it serves, for an ES256 token meant for the API it calls, again and again (the
/// subject token's checks, the gate's liveness in memory, one signature).
async fn token_exchange(
    admin: &mut Admin<'_>,
    target: &Target,
    users: Users,
) -> anyhow::Result<Prepared> {
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const SERVED: &str = "https://orders.bench.example";
    const CALLED: &str = "https://stock.bench.example";
    let web = json!({
        "client_name": "bench web app for the orders API",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "scope": flow::SCOPE,
        "audience": [SERVED],
        "access_token_lifetime": 3600,
    });
    let exchanger = json!({
        "client_name": "bench orders API",
        "grant_types": [GRANT],
        "scope": flow::SCOPE,
        "served_resources": [SERVED],
        "audience": [CALLED],
        "access_token_signed_response_alg": "ES256",
    });
    let (web, exchanger) =
        match (admin.register_client(&web).await?, admin.register_client(&exchanger).await?) {
            (Ok(web), Ok(exchanger)) => (web, exchanger),
            (Err(reason), _) | (_, Err(reason)) => {
                return Ok(Prepared::Skipped(format!("token exchange unsupported: {reason}")));
            }
        };
    let login = Login {
        client_id: web.client_id.clone(),
        basic: web.basic.clone(),
        username: "bench-exchange".into(),
        password: PASSWORD.to_owned(),
        prompt_consent: false,
        scope: flow::SCOPE,
        pushed: false,
    };
    let mut connection = Connection::open(target.addr).await?;
    let subject = match flow::run(&mut connection, target, &login).await {
        Ok(completed) => completed.access_token,
        Err(failure) => return Ok(Prepared::Failed(format!("the user's access token: {failure}"))),
    };
    let form = [
        ("grant_type", GRANT),
        ("subject_token", subject.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("audience", CALLED),
    ];
    let request = http::post_form(target, "/token", &[("Authorization", &exchanger.basic)], &form);
    let probe = match connection.send(&request).await {
        Ok(response) => response,
        Err(e) => return Ok(Prepared::Failed(format!("probe exchange: {e}"))),
    };
    if probe.status != 200 || !probe.contains(b"issued_token_type") {
        return Ok(Prepared::Failed(format!(
            "probe exchange: HTTP {}: {}",
            probe.status,
            probe.text()
        )));
    }
    Ok(fixed(request, Some(b"issued_token_type"), users.connections))
}

/// Devices waiting for their users (RFC 8628): each virtual user starts its own device
/// authorization and polls it as fast as it can, as many waiting devices would together.
async fn device_poll(
    admin: &mut Admin<'_>,
    target: &Target,
    connections: usize,
) -> anyhow::Result<Prepared> {
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
    let metadata = json!({
        "client_name": "bench device",
        "grant_types": [GRANT],
        "scope": SCOPE,
    });
    let client = match admin.register_client(&metadata).await? {
        Ok(client) => client,
        Err(reason) => return Ok(Prepared::Skipped(format!("device grant unsupported: {reason}"))),
    };
    let auth = [("Authorization", client.basic.as_str())];
    let mut users = Vec::with_capacity(connections);
    let mut connection = Connection::open(target.addr).await?;
    for _ in 0..connections {
        let start = http::post_form(target, "/device_authorization", &auth, &[("scope", SCOPE)]);
        let response = connection.send(&start).await?;
        let started = match response.json() {
            Ok(json) if response.status == 200 => json,
            _ => {
                return Ok(Prepared::Failed(format!(
                    "POST /device_authorization: HTTP {}: {}",
                    response.status,
                    response.text()
                )));
            }
        };
        let Some(device_code) = started["device_code"].as_str() else {
            return Ok(Prepared::Failed("no device_code in the answer".into()));
        };
        let form = [("grant_type", GRANT), ("device_code", device_code)];
        users.push(Workload::Pending {
            request: http::post_form(target, "/token", &auth, &form).into(),
        });
    }
    Ok(Prepared::Run(users))
}

/// `count` virtual users, each repeating `request`.
pub fn fixed(request: Vec<u8>, must_contain: Option<&'static [u8]>, count: usize) -> Prepared {
    let request: Arc<[u8]> = request.into();
    let users =
        (0..count).map(|_| Workload::Fixed { request: request.clone(), must_contain }).collect();
    Prepared::Run(users)
}

/// `POST /introspect` of many distinct access tokens (the RS256 client's own, so it may see
/// them): see [`distinct_introspection`].
async fn introspection_distinct(
    target: &Target,
    caller: &ClientCredentials,
    users: Users,
) -> Prepared {
    let mint = setup::client_credentials_request(target, caller);
    let introspect = |token: &str| {
        let form = [("token", token)];
        http::post_form(target, "/introspect", &[("Authorization", &caller.basic)], &form)
    };
    distinct_introspection(target, mint, introspect, users).await
}

/// Introspection of `users.distinct_tokens` distinct tokens, each user cycling through the
/// pool from its own offset: every request is a token this server may not have seen recently,
/// so no per-token cache helps. The tokens come from `mint` (a whole token request), sent over
/// `users.connections` connections at once before the clock starts; `introspect` makes the
/// request for one token. Generic over the server, so that the rival runs the same scenario.
pub async fn distinct_introspection(
    target: &Target,
    mint: Vec<u8>,
    introspect: impl Fn(&str) -> Vec<u8>,
    users: Users,
) -> Prepared {
    let wanted = users.distinct_tokens.max(1);
    let tokens = match mint_tokens(target, mint.into(), wanted, users.connections).await {
        Ok(tokens) => tokens,
        Err(reason) => return Prepared::Failed(format!("the token pool: {reason}")),
    };
    let pool: Arc<[Arc<[u8]>]> =
        tokens.iter().map(|token| Arc::<[u8]>::from(introspect(token))).collect();
    let step = pool.len() / users.connections.max(1);
    let workloads = (0..users.connections)
        .map(|user| Workload::Cycle {
            pool: pool.clone(),
            next: user * step,
            must_contain: br#""active":true"#,
        })
        .collect();
    Prepared::Run(workloads)
}

/// `wanted` access tokens from `request`, over up to `connections` connections at once.
async fn mint_tokens(
    target: &Target,
    request: Arc<[u8]>,
    wanted: usize,
    connections: usize,
) -> Result<Vec<String>, String> {
    let lanes = connections.clamp(1, wanted);
    let mut running = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let count = wanted / lanes + usize::from(lane < wanted % lanes);
        running.push(tokio::spawn(mint_lane(target.clone(), request.clone(), count)));
    }
    let mut tokens = Vec::with_capacity(wanted);
    for lane in running {
        tokens.extend(lane.await.map_err(|e| e.to_string())??);
    }
    Ok(tokens)
}

/// `count` access tokens from `request` on one keep-alive connection.
async fn mint_lane(
    target: Target,
    request: Arc<[u8]>,
    count: usize,
) -> Result<Vec<String>, String> {
    let mut connection = Connection::open(target.addr).await.map_err(|e| e.to_string())?;
    let mut tokens = Vec::with_capacity(count);
    while tokens.len() < count {
        // A keep-alive connection the server closed between two requests is re-made.
        let response = match connection.send(&request).await {
            Ok(response) => response,
            Err(_) => {
                connection = Connection::open(target.addr).await.map_err(|e| e.to_string())?;
                connection.send(&request).await.map_err(|e| e.to_string())?
            }
        };
        let token =
            response.json().ok().and_then(|json| json["access_token"].as_str().map(str::to_owned));
        match token {
            Some(token) if response.status == 200 => tokens.push(token),
            _ => {
                return Err(format!("POST /token: HTTP {}: {}", response.status, response.text()));
            }
        }
        if response.close {
            connection = Connection::open(target.addr).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(tokens)
}

/// `POST /introspect` of a user's access token by a confidential client; the answer must
/// say `"active":true`.
async fn introspection(
    target: &Target,
    caller: &ClientCredentials,
    login: &Login,
    users: Users,
) -> Prepared {
    let completed = match Connection::open(target.addr).await {
        Ok(mut connection) => flow::run(&mut connection, target, login).await,
        Err(e) => Err(e.into()),
    };
    let token = match completed {
        Ok(completed) => completed.access_token,
        Err(failure) => return Prepared::Failed(format!("the user's access token: {failure}")),
    };
    let form = [("token", token.as_str())];
    let request =
        http::post_form(target, "/introspect", &[("Authorization", &caller.basic)], &form);
    fixed(request, Some(br#""active":true"#), users.connections)
}
