//! Branding without a rebuild (docs/REFERENCE.md §3.13): a product name, logo and colours by
//! settings, and templates replaced from a folder, with the pages' CSP unchanged.

use castellan::config::Colour;

use crate::browser::{Browser, PASSWORD, input, location, log_in, user};
use crate::helpers::{TestApp, castellan, spawn_app, spawn_app_with};

const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The sign-in page also runs its passkey script, which fetches its options (same origin).
const LOGIN_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A logo that would run a script if it were ever opened as a document without the sandbox.
const LOGO: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><script>alert(1)</script><rect width="10" height="10"/></svg>"#;

/// The sign-in page replaced: it keeps the form's fields (the server still checks them all),
/// inherits the built-in layout and uses the brand.
const LOGIN: &str = r#"{% extends "base.html" %}
{% block title %}Welcome to {{ brand.name }}{% endblock %}
{% block content %}
<h1 id="acme">Sign in with your Acme badge</h1>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<form method="post" action="{{ base }}/login">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <input type="hidden" name="return_to" value="{{ return_to }}">
  <input name="username" value="{{ username }}"><input name="password" type="password">
  <button type="submit">Go</button>
</form>
{% endblock %}
"#;

async fn branded() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let theme = dir.path().join("theme");
    std::fs::create_dir_all(&theme).expect("theme folder");
    std::fs::write(theme.join("login.html"), LOGIN).expect("template");
    std::fs::write(dir.path().join("logo.svg"), LOGO).expect("logo");
    let (logo, theme_dir) = (dir.path().join("logo.svg"), theme);
    let app = spawn_app_with(move |s| {
        s.brand.name = "Acme ID".into();
        s.brand.logo = Some(logo);
        s.brand.accent = Some(Colour::parse("#FF6600").expect("colour"));
        s.brand.background = Some(Colour::parse("#fafafa").expect("colour"));
        s.brand.theme_dir = Some(theme_dir);
    })
    .await;
    (app, dir)
}

#[tokio::test]
async fn a_deployment_brands_the_pages_and_replaces_a_template_by_settings() {
    let (app, _dir) = branded().await;
    user(&app, "alice").await;
    let browser = Browser::new();

    let login = browser.follow(&app, browser.get(&app.url("/account")).await).await;
    let csp = login.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    let page = login.text().await.expect("login page");
    let error = browser.get(&app.url("/consent?request=nonsense")).await;
    let error_csp = error.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    let error_page = error.text().await.expect("error page");
    let css = app.get("/static/castellan.css").await.text().await.expect("stylesheet");
    let logo = app.get("/static/logo").await;
    let logo_headers = logo.headers().clone();
    let logo_body = logo.text().await.expect("logo");

    // The folder's template is the sign-in page, inside the built-in layout with the brand.
    assert!(page.contains(r#"<h1 id="acme">Sign in with your Acme badge</h1>"#), "{page}");
    assert!(page.contains("<title>Welcome to Acme ID</title>"), "{page}");
    assert!(page.contains(r#"<img class="logo" src="/static/logo" alt="Acme ID">"#), "{page}");
    assert_eq!(csp, LOGIN_CSP);
    assert_eq!(error_csp, CSP);
    // Pages the folder leaves alone keep the built-in template, with the brand's name.
    assert!(error_page.contains("<title>Error · Acme ID</title>"), "{error_page}");
    assert!(!error_page.contains("Castellan"), "{error_page}");
    // The colours reach the pages through the stylesheet, the only style the CSP allows.
    assert!(css.ends_with(":root { --accent: #ff6600; }\nbody { background: #fafafa; }\n"));
    assert_eq!(logo_headers["content-type"], "image/svg+xml");
    let logo_csp = logo_headers["content-security-policy"].to_str().expect("csp");
    assert!(logo_csp.contains("sandbox") && logo_csp.starts_with("default-src 'none'"));
    assert_eq!(logo_body, LOGO);

    // The replaced page still signs in: its form reaches the same checks.
    let signed_in = log_in(&browser, &app, &page, "alice", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let account = browser.follow(&app, signed_in).await.text().await.expect("account");
    assert!(account.contains("Signed in as <strong>alice</strong>"), "{account}");
    // ...and a wrong password is answered on the replaced page.
    let stranger = Browser::new();
    let form = stranger.follow(&app, stranger.get(&app.url("/account")).await).await;
    let form = form.text().await.expect("login page");
    let refused = log_in(&stranger, &app, &form, "alice", "not the password").await;
    assert!(location(&refused).is_none());
    let refused = refused.text().await.expect("refused page");
    assert!(refused.contains(r#"id="acme""#) && refused.contains(r#"<p class="error">"#));
}

#[tokio::test]
async fn without_branding_the_pages_are_castellans_and_there_is_no_logo() {
    let app = spawn_app().await;
    let browser = Browser::new();

    let page = browser.follow(&app, browser.get(&app.url("/account")).await).await;
    let page = page.text().await.expect("login page");
    let css = app.get("/static/castellan.css").await.text().await.expect("stylesheet");

    assert!(page.contains("<title>Sign in · Castellan</title>"), "{page}");
    assert!(input(&page, "csrf_token").is_some());
    assert!(!page.contains("/static/logo"));
    assert_eq!(app.get("/static/logo").await.status(), 404);
    assert!(css.contains("--accent: #2456c4") && !css.contains("--accent: #ff6600"));
}

#[tokio::test]
async fn a_broken_theme_stops_start_up_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let theme = dir.path().join("theme");
    std::fs::create_dir_all(theme.join("console")).expect("theme folder");
    std::fs::write(theme.join("console").join("nav.html"), "{% if %}broken").expect("template");

    let output = castellan(dir.path())
        .env("CASTELLAN_THEME_DIR", &theme)
        .env("CASTELLAN_BIND", "127.0.0.1:0")
        .output()
        .expect("run castellan");
    let bad_logo = castellan(dir.path())
        .env("CASTELLAN_BRAND_LOGO", dir.path().join("logo.exe"))
        .env("CASTELLAN_BIND", "127.0.0.1:0")
        .output()
        .expect("run castellan");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr.contains("console/nav.html"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("castellan.db").exists(), "stopped before the database");
    let stderr = String::from_utf8_lossy(&bad_logo.stderr);
    assert_ne!(bad_logo.status.code(), Some(0));
    assert!(stderr.contains("CASTELLAN_BRAND_LOGO"), "{stderr}");
}
