//! Redirect URIs (docs/REFERENCE.md §5.4, RFC 9700 §4.1.3, RFC 8252 §7): absolute, no
//! fragment, https except loopback IP literals and native apps' private-use schemes, exact
//! string match (any port for loopback), no wildcards.

use serde::{Deserialize, Serialize};

const MAX_LEN: usize = 2000;

/// The three kinds of redirect URI (RFC 8252 §7): what a registration policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `https://…`: a web app, or a native app's claimed URL (RFC 8252 §7.2).
    Https,
    /// `http://127.0.0.1:…` or `http://[::1]:…`: a native app's loopback listener (§7.3).
    Loopback,
    /// `com.example.app:/callback`: a native app's private-use scheme (§7.1).
    PrivateUse,
}

/// The kind of a URI that `validate` accepted.
pub fn kind(uri: &str) -> Option<Kind> {
    let url = url::Url::parse(uri).ok()?;
    match url.scheme() {
        "https" => Some(Kind::Https),
        "http" if is_loopback(&url) => Some(Kind::Loopback),
        scheme if is_private_use(scheme) => Some(Kind::PrivateUse),
        _ => None,
    }
}

/// RFC 8252 §7.1: a private-use scheme is a reverse domain name the app's publisher controls
/// (`com.example.app`), so it has at least two labels; schemes that browsers treat specially
/// have none.
fn is_private_use(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Why a URI cannot be registered as a redirect URI.
pub fn validate(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_LEN {
        return Err("a redirect URI must be at most 2000 characters");
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment");
    }
    if uri.contains('*') {
        return Err("a redirect URI must not contain wildcards");
    }
    if has_forbidden_characters(uri) {
        return Err("a redirect URI must not contain spaces, backslashes or control characters");
    }
    let url = url::Url::parse(uri).map_err(|_| "a redirect URI must be an absolute URI")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not contain user information");
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        scheme if is_private_use(scheme) => Ok(()),
        _ => Err(
            "a redirect URI must use https, http on 127.0.0.1 or [::1], or a private-use scheme such as com.example.app",
        ),
    }
}

/// Whether `presented` matches `registered`: exact string comparison, except that a
/// loopback URI matches on any port (RFC 8252 §7.3). For loopback both are parsed and the
/// presented URI must be exactly the registered one with only its port changed: every other
/// component (scheme, host, path, query) equal, no user information or fragment (RFC 9700
/// §4.1.3). Backslashes, spaces and control characters never match.
pub fn matches(registered: &str, presented: &str) -> bool {
    if has_forbidden_characters(presented) || presented.contains('#') {
        return false;
    }
    if registered == presented {
        return true;
    }
    let (Ok(mut expected), Ok(presented_url)) =
        (url::Url::parse(registered), url::Url::parse(presented))
    else {
        return false;
    };
    if expected.scheme() != "http" || !is_loopback(&expected) || !is_loopback(&presented_url) {
        return false;
    }
    // The registered URI with the presented port, serialized, must be the presented string
    // byte for byte: a changed path (even one that normalizes the same), user information or
    // fragment makes them differ.
    expected.set_port(presented_url.port()).is_ok() && expected.as_str() == presented
}

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]"))
}

fn has_forbidden_characters(uri: &str) -> bool {
    uri.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_and_loopback_http() {
        for good in ["https://app.example.com/cb", "http://127.0.0.1:8000/cb", "http://[::1]/cb"] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn refuses_what_spec_section_5_forbids() {
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "http://app.example.com/cb",
            "http://localhost/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://user:pw@app.example.com/cb",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn native_apps_may_use_private_use_schemes() {
        assert_eq!(validate("com.example.app:/oauth2redirect"), Ok(()));
        assert_eq!(kind("com.example.app:/cb"), Some(Kind::PrivateUse));
        assert_eq!(kind("http://127.0.0.1:9/cb"), Some(Kind::Loopback));
        assert_eq!(kind("https://a.example/cb"), Some(Kind::Https));
        for bad in ["myapp:/cb", "com..example:/cb", "com.example_app:/cb"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        assert!(matches("https://a.example/cb", "https://a.example/cb"));
        assert!(!matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!matches("https://a.example/cb", "https://a.example/CB"));
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:53122/cb"));
        assert!(matches("http://[::1]:80/cb", "http://[::1]:4000/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5000/other"));
        assert!(!matches("https://a.example:443/cb", "https://a.example:8443/cb"));
    }

    #[test]
    fn a_loopback_uri_changes_nothing_but_its_port() {
        let registered = "http://127.0.0.1/cb";
        for evil in [
            "http://127.0.0.1:5555\\evil\\path/cb",
            "http://127.0.0.1:80#/cb",
            "http://127.0.0.1:x@127.0.0.1/cb",
            "http://127.0.0.1:5555/a/../cb",
            "http://127.0.0.1:5555/cb#frag",
            "http://127.0.0.1:5555/cb?x=1",
            "http://127.0.0.1:5555/cb\n",
            "http://[::1]:5555/cb",
            "https://127.0.0.1:5555/cb",
        ] {
            assert!(!matches(registered, evil), "{evil:?}");
        }
        assert!(matches(registered, "http://127.0.0.1:5555/cb"));
        assert!(matches("http://127.0.0.1:8080/cb?x=1", "http://127.0.0.1:1234/cb?x=1"));
        assert!(matches("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"));
        assert!(validate("https://a.example/c\\b").is_err());
    }
}
