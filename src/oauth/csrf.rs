//! CSRF tokens for the HTML forms: an HMAC of what binds the form to this browser (the
//! session id once logged in, else a pre-session cookie), so a page elsewhere cannot forge one.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The token for a form bound to `binding`.
pub fn token(key: &hmac::Key, binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, format!("csrf\n{binding}").as_bytes()))
}

/// Whether `presented` is the token for `binding` (constant-time).
pub fn verify(key: &hmac::Key, binding: &str, presented: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else { return false };
    hmac::verify(key, format!("csrf\n{binding}").as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_binding() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[3; 32]);
        let t = token(&key, "session-a");
        assert!(verify(&key, "session-a", &t));
        assert!(!verify(&key, "session-b", &t));
        assert!(!verify(&key, "session-a", "forged"));
    }
}
