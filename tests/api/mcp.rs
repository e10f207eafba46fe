//! An MCP client with no registration by anyone: the Model Context Protocol's TypeScript SDK
//! (`@modelcontextprotocol/sdk`, from tests/interop/package-lock.json) meets a tiny MCP server
//! protected by castellan-guard, finds Castellan through the server's RFC 9728 metadata,
//! registers itself under the open policy, runs the code flow with PKCE for the server's
//! resource and calls a tool with the token it got.

use actix_web::{App, HttpResponse, HttpServer, web};
use castellan::config::RegistrationMode;
use castellan_guard::{Authenticated, Guard, RequireScope};
use serde_json::{Value, json};

use crate::helpers::{TestApp, jwt_claims, spawn_app_with};
use crate::oidc::openid_client_installed;

/// A JSON-RPC answer of the MCP server (Streamable HTTP transport, answered as plain JSON).
fn answer(id: &Value, result: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// The MCP endpoint: `initialize`, `tools/list` and one tool, `whoami`, which says who the
/// token was issued to; notifications are accepted without an answer.
async fn mcp(token: Authenticated, body: web::Json<Value>) -> HttpResponse {
    let Some(id) = body.get("id") else { return HttpResponse::Accepted().finish() };
    match body["method"].as_str() {
        Some("initialize") => answer(
            id,
            json!({
                "protocolVersion": body["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "castellan-test-mcp", "version": "0.0.0"},
            }),
        ),
        Some("tools/list") => answer(
            id,
            json!({"tools": [{"name": "whoami", "description": "Who the token is for",
                              "inputSchema": {"type": "object", "properties": {}}}]}),
        ),
        Some("tools/call") if body["params"]["name"] == "whoami" => answer(
            id,
            json!({"content": [{"type": "text",
                                "text": format!("{} via {}", token.sub, token.client_id)}]}),
        ),
        _ => HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": "method not found"}})),
    }
}

/// Starts the MCP server for `app`'s Castellan on a free port; its endpoint's URL.
async fn mcp_server(app: &TestApp) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let guard = Guard::builder(&app.issuer, &url)
        .scopes(["mcp:tools"])
        .resource_name("Castellan test MCP server")
        .build()
        .await
        .expect("guard");
    let server = HttpServer::new(move || {
        App::new().app_data(guard.clone()).service(guard.protected_resource_metadata()).service(
            web::resource("/mcp")
                .route(web::post().to(mcp).wrap(RequireScope::new("mcp:tools")))
                // No server-to-client stream here: the transport then works by POST alone.
                .route(web::get().to(HttpResponse::MethodNotAllowed)),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen");
    tokio::spawn(server.run());
    url
}

#[tokio::test]
async fn the_mcp_sdk_registers_itself_and_calls_a_tool_with_a_token_for_the_server() {
    if !openid_client_installed() {
        return;
    }
    let app = spawn_app_with(|s| s.registration = RegistrationMode::Open).await;
    let scope = json!({"name": "mcp:tools", "description": "Use the tools of the MCP server"});
    assert_eq!(app.admin(reqwest::Method::POST, "/admin/scopes", Some(scope)).await.status(), 201);
    let url = mcp_server(&app).await;
    let policy = json!({"mode": "open", "scope": "openid offline_access mcp:tools",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uri_kinds": ["loopback"], "resources": [url]});
    let response =
        app.admin(reqwest::Method::PUT, "/admin/registration-policy", Some(policy)).await;
    assert_eq!(response.status(), 200);
    let user_id = crate::browser::user(&app, "mia").await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/mcp_client.mjs");
    let args =
        vec![script.to_owned(), url.clone(), "mia".to_owned(), crate::browser::PASSWORD.to_owned()];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").args(&args).output().expect("node")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "node: {}", String::from_utf8_lossy(&output.stderr));
    let run: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");

    let client_id = run["client_id"].as_str().expect("a registered client");
    assert_eq!(run["resource"], url.as_str(), "RFC 8707: the token is asked for the server");
    assert_eq!(run["code_challenge_method"], "S256");
    assert_eq!(run["tools"], json!(["whoami"]));
    assert_eq!(run["answer"], format!("{user_id} via {client_id}"), "the tool saw the user");
    let claims = jwt_claims(run["access_token"].as_str().expect("token"));
    assert!(claims["aud"].to_string().contains(&url), "{claims}");
    assert!(claims["scope"].as_str().expect("scope").contains("mcp:tools"));

    // The client is Castellan's now, self-registered and visible to administrators.
    let path = format!("/admin/clients/{client_id}");
    let registered: Value =
        app.admin(reqwest::Method::GET, &path, None).await.json().await.expect("JSON");
    assert_eq!(registered["registration"], "open");
    assert_eq!(registered["token_endpoint_auth_method"], "none");
}
