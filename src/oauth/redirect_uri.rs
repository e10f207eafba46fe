//! Redirect URIs (SPEC §5, RFC 9700 §4.1.3, RFC 8252 §7.3): absolute, no fragment, https
//! except loopback IP literals, exact string match (any port for loopback), no wildcards.

const MAX_LEN: usize = 2000;

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
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("a redirect URI must not contain spaces or control characters");
    }
    let url = url::Url::parse(uri).map_err(|_| "a redirect URI must be an absolute URI")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not contain user information");
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err("a redirect URI must use https (http only for 127.0.0.1 or [::1])"),
    }
}

/// Whether `presented` matches `registered`: exact string comparison, except that a
/// loopback URI matches on any port (RFC 8252 §7.3).
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    match (url::Url::parse(registered), url::Url::parse(presented)) {
        (Ok(r), Ok(p)) if r.scheme() == "http" && is_loopback(&r) && is_loopback(&p) => {
            without_port(registered) == without_port(presented)
        }
        _ => false,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]"))
}

/// The URI string with the port removed from its authority, compared byte for byte.
fn without_port(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("http://") else { return uri.to_owned() };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    format!("http://{host}{path}")
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
    fn matching_is_exact_except_the_loopback_port() {
        assert!(matches("https://a.example/cb", "https://a.example/cb"));
        assert!(!matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!matches("https://a.example/cb", "https://a.example/CB"));
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:53122/cb"));
        assert!(matches("http://[::1]:80/cb", "http://[::1]:4000/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5000/other"));
        assert!(!matches("https://a.example:443/cb", "https://a.example:8443/cb"));
    }
}
