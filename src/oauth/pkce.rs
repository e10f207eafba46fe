//! PKCE (RFC 7636): only S256, with the challenge and verifier grammar of §4.1–§4.2.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `code-verifier = 43*128unreserved` (RFC 7636 §4.1); a challenge has the same form (§4.2).
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge` (RFC 7636 §4.6), compared in
/// constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !is_well_formed(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes()).is_ok()
}

/// The S256 challenge of `verifier` (RFC 7636 §4.2), for a relying party of our own.
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B, from the verifier's side.
    #[test]
    fn the_challenge_of_the_appendix_b_verifier_is_its_challenge() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_appendix_b_pair_verifies() {
        assert!(verify_s256(VERIFIER, CHALLENGE));
        assert!(!verify_s256(CHALLENGE, VERIFIER));
    }

    #[test]
    fn the_grammar_is_enforced() {
        assert!(is_well_formed(VERIFIER));
        assert!(!is_well_formed(&VERIFIER[..42]), "too short");
        assert!(!is_well_formed(&"a".repeat(129)), "too long");
        assert!(!is_well_formed(&format!("{}+", &VERIFIER[..42])), "outside unreserved");
        assert!(!verify_s256(&format!("{VERIFIER}="), CHALLENGE));
    }
}
