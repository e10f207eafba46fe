//! Server-made secrets: 256 random bits, shown once, stored as a SHA-256 hash and compared
//! in constant time (docs/REFERENCE.md §5). A hash suits high-entropy secrets; passwords use Argon2id.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// `len` random bytes from the OS, base64url-encoded.
pub fn random_token(len: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A new client secret: 256 bits of OS randomness.
pub fn generate() -> anyhow::Result<SecretString> {
    Ok(SecretString::from(random_token(32)?))
}

/// The stored form of a secret.
pub fn hash(secret: &SecretString) -> Vec<u8> {
    digest(&SHA256, secret.expose_secret().as_bytes()).as_ref().to_vec()
}

/// Whether `presented` hashes to one of `hashes`; every hash is compared in constant time.
pub fn matches_any<'a>(
    presented: &SecretString,
    hashes: impl IntoIterator<Item = &'a [u8]>,
) -> bool {
    let presented = hash(presented);
    hashes
        .into_iter()
        .fold(false, |found, stored| verify_slices_are_equal(&presented, stored).is_ok() | found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_own_hash_only() {
        let secret = generate().expect("secret");
        let other = generate().expect("secret");
        let stored = hash(&secret);
        assert!(matches_any(&secret, [stored.as_slice()]));
        assert!(!matches_any(&other, [stored.as_slice()]));
        assert_eq!(secret.expose_secret().len(), 43, "256 bits in base64url");
    }
}
