//! Known devices (docs/REFERENCE.md §9.6): after a successful sign-in the browser gets a
//! cookie naming a random device id, MACed together with the username and when it was
//! issued. A browser presenting one for the account it signs in to is counted on its own and
//! never locked out by other people's guesses at that account (OWASP's device cookies).

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::secret;

/// How long a device stays known after its last successful sign-in.
pub const LIFETIME_SECS: i64 = 90 * 24 * 3600;

/// A new cookie value for `username`, issued at `now` (unix seconds).
pub fn issue(key: &hmac::Key, username: &str, now: i64) -> anyhow::Result<String> {
    let id = secret::random_token(16)?;
    Ok(format!("{id}.{now}.{}", mac(key, &id, now, username)))
}

/// The device id of `cookie` if it was issued here for `username` and has not expired.
pub fn recognise(key: &hmac::Key, cookie: &str, username: &str, now: i64) -> Option<String> {
    let mut parts = cookie.splitn(3, '.');
    let (id, issued, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let issued: i64 = issued.parse().ok()?;
    if id.len() != 22 || !(now - LIFETIME_SECS..=now + 60).contains(&issued) {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    hmac::verify(key, &message(id, issued, username), &tag).ok()?;
    Some(id.to_owned())
}

fn mac(key: &hmac::Key, id: &str, issued: i64, username: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, &message(id, issued, username)))
}

fn message(id: &str, issued: i64, username: &str) -> Vec<u8> {
    format!("device\n{id}\n{issued}\n{username}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_is_known_only_for_its_account_and_lifetime() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let cookie = issue(&key, "alice", 1_000_000).expect("cookie");
        assert!(recognise(&key, &cookie, "alice", 1_000_100).is_some());
        assert!(recognise(&key, &cookie, "bob", 1_000_100).is_none(), "another account");
        assert!(recognise(&key, &cookie, "alice", 1_000_000 + LIFETIME_SECS + 1).is_none());
        let other = hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]);
        assert!(recognise(&other, &cookie, "alice", 1_000_100).is_none(), "another server");
        let forged = cookie.replacen('.', "x.", 1);
        assert!(recognise(&key, &forged, "alice", 1_000_100).is_none());
    }
}
