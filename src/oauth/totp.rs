//! TOTP (RFC 6238) as a second factor after the password (docs/REFERENCE.md §3.4, §3.6):
//! HOTP (RFC 4226) over HMAC-SHA-1 with 30-second steps and 6 digits, the values every
//! authenticator app uses; the otpauth URI and its QR code; recovery codes; and the sealed
//! states that carry a pending enrolment or a pending sign-in through a form.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};

use super::master_key::MasterKey;

/// Seconds per time step (RFC 6238 §5.2's default; what authenticator apps assume).
pub const PERIOD: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one, for clock skew (RFC 6238 §5.2).
pub const SKEW: i64 = 1;
/// Bytes of a new secret: 160 bits, RFC 4226 §4's recommendation.
pub const SECRET_LEN: usize = 20;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// How long a pending sign-in (password right, code not yet given) lasts.
pub const PENDING_LOGIN_SECS: i64 = 5 * 60;
/// How long an enrolment page's secret can be confirmed.
pub const PENDING_ENROLMENT_SECS: i64 = 30 * 60;

/// What a URI path segment may hold unescaped: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The time step of a Unix time (RFC 6238 §4.2, T0 = 0).
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(PERIOD)
}

/// The HOTP value of `secret` at `counter` (RFC 4226 §5.3), as a number below 10^digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let tag = tag.as_ref();
    let offset = usize::from(tag[tag.len() - 1] & 0x0f);
    let binary =
        u32::from_be_bytes([tag[offset], tag[offset + 1], tag[offset + 2], tag[offset + 3]])
            & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// The 6-digit code of `secret` at time step `step`, zero-padded.
pub fn code_at(secret: &[u8], step: i64) -> String {
    format!("{:06}", hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS))
}

/// Whether `presented` looks like a TOTP code (six digits, spaces allowed between).
pub fn normalise_code(presented: &str) -> Option<String> {
    let code: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The time step within `SKEW` of `now_step` whose code is `presented`, if any. Every step is
/// compared (in constant time), so the answer's timing does not say which matched.
pub fn matching_step(secret: &[u8], presented: &str, now_step: i64) -> Option<i64> {
    let presented = normalise_code(presented)?;
    let mut found = None;
    for step in now_step - SKEW..=now_step + SKEW {
        let expected = code_at(secret, step);
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            expected.as_bytes(),
            presented.as_bytes(),
        )
        .is_ok()
        {
            found = Some(step);
        }
    }
    found
}

/// A new random secret.
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, aws_lc_rs::error::Unspecified> {
    let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
    SystemRandom::new().fill(&mut bytes)?;
    Ok(bytes)
}

/// The provisioning URI authenticator apps read (the de facto `otpauth://` format): the
/// label is `issuer:username`, the issuer the host of our issuer identifier.
pub fn otpauth_uri(issuer_host: &str, username: &str, secret: &[u8]) -> String {
    // The colon between issuer and account stays a colon, as apps expect.
    let label = format!(
        "{}:{}",
        percent_encoding::utf8_percent_encode(issuer_host, SEGMENT),
        percent_encoding::utf8_percent_encode(username, SEGMENT)
    );
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("secret", &base32(secret))
        .append_pair("issuer", issuer_host)
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", "6")
        .append_pair("period", "30")
        .finish();
    format!("otpauth://totp/{label}?{query}")
}

/// `text` as a QR code in SVG markup for inlining in a page: no XML declaration, no style
/// attributes (the pages' CSP allows no inline style), black on white.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    let svg = svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code of the authenticator app's setup key\" ",
        1,
    );
    Some(svg)
}

/// Ten new recovery codes: 80 random bits each, as four groups of four base32 letters.
pub fn new_recovery_codes() -> Result<Vec<String>, aws_lc_rs::error::Unspecified> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = Zeroizing::new([0u8; 10]);
            SystemRandom::new().fill(bytes.as_mut())?;
            let text = base32(bytes.as_ref()).to_ascii_lowercase();
            Ok(text
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c))
                .collect::<Vec<_>>()
                .join("-"))
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of it without dashes or spaces, lower case
/// (codes are high-entropy random, so a fast hash is enough).
pub fn recovery_hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    digest(&SHA256, format!("recovery code v1\n{normal}").as_bytes()).as_ref().to_vec()
}

/// What the stored secret is sealed to: the user's id, so a row moved to another user does
/// not open.
pub fn secret_context(user_id: &str) -> Vec<u8> {
    format!("totp secret v1\n{user_id}").into_bytes()
}

/// A sign-in whose password was right, waiting for its code: who, where to after, until when.
#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    pub user_id: String,
    pub return_to: String,
    pub expires_at: i64,
    /// How the first step signed in (`session::Amr::as_stored`); absent: a password.
    #[serde(default)]
    pub first: Option<String>,
}

/// An enrolment shown but not yet confirmed: the new secret, for whom, until when.
#[derive(Serialize, Deserialize)]
struct PendingEnrolment {
    user_id: String,
    secret: String,
    expires_at: i64,
}

/// The longest sealed form field accepted back.
const FIELD_LEN: usize = 2048;

fn login_context(binding: &str) -> String {
    format!("totp pending login v1\n{binding}")
}

fn enrolment_context(session_id: &str) -> String {
    format!("totp pending enrolment v1\n{session_id}")
}

/// The form field of a pending sign-in, bound to this browser's pre-session CSRF binding.
pub fn seal_login(master: &MasterKey, binding: &str, pending: &PendingLogin) -> Option<String> {
    master.seal_field(&login_context(binding), pending)
}

/// The pending sign-in a form field holds, if it was sealed for this binding and is live.
pub fn open_login(
    master: &MasterKey,
    binding: &str,
    field: &str,
    now: i64,
) -> Option<PendingLogin> {
    master
        .open_field::<PendingLogin>(&login_context(binding), field, FIELD_LEN)
        .filter(|p| p.expires_at > now)
}

/// The form field of an enrolment of `user_id`'s new `secret`, bound to the session.
pub fn seal_enrolment(
    master: &MasterKey,
    session_id: &str,
    user_id: &str,
    secret: &[u8],
    now: i64,
) -> Option<String> {
    let pending = PendingEnrolment {
        user_id: user_id.to_owned(),
        secret: URL_SAFE_NO_PAD.encode(secret),
        expires_at: now + PENDING_ENROLMENT_SECS,
    };
    let sealed = master.seal_field(&enrolment_context(session_id), &pending);
    drop(Zeroizing::new(pending.secret));
    sealed
}

/// The secret of a pending enrolment of `user_id` sealed for this session, if it is live.
pub fn open_enrolment(
    master: &MasterKey,
    session_id: &str,
    user_id: &str,
    field: &str,
    now: i64,
) -> Option<Zeroizing<Vec<u8>>> {
    let pending: PendingEnrolment =
        master.open_field(&enrolment_context(session_id), field, FIELD_LEN)?;
    let encoded = Zeroizing::new(pending.secret);
    if pending.user_id != user_id || pending.expires_at <= now {
        return None;
    }
    URL_SAFE_NO_PAD.decode(encoded.as_bytes()).ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits; the seed is "12345678901234567890").
    #[test]
    fn rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59_i64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            let step = u64::try_from(step_at(time)).expect("positive");
            assert_eq!(hotp(seed, step, 8), expected, "T = {time}");
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0..9.
    #[test]
    fn rfc_4226_test_vectors() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *value);
        }
    }

    #[test]
    fn base32_follows_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn a_code_matches_within_one_step_either_side_only() {
        let secret = b"12345678901234567890";
        let now = 1_000_000;
        for offset in -1..=1 {
            assert_eq!(
                matching_step(secret, &code_at(secret, now + offset), now),
                Some(now + offset)
            );
        }
        assert_eq!(matching_step(secret, &code_at(secret, now + 2), now), None);
        assert_eq!(matching_step(secret, &code_at(secret, now - 2), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn the_qr_code_has_no_style_and_no_xml_declaration() {
        let svg = qr_svg("otpauth://totp/example.com:alice?secret=MZXW6YTBOI").expect("svg");
        assert!(svg.starts_with("<svg "));
        assert!(!svg.contains("style"));
        assert!(!svg.contains("<?xml"));
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri("id.example.com", "alice smith", b"foobar");
        assert_eq!(
            uri,
            "otpauth://totp/id.example.com:alice%20smith?secret=MZXW6YTBOI&issuer=id.example.com&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_without_dashes_or_case() {
        let codes = new_recovery_codes().expect("codes");
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19);
        assert_ne!(codes[0], codes[1]);
        assert_eq!(
            recovery_hash(&codes[0]),
            recovery_hash(&codes[0].to_uppercase().replace('-', ""))
        );
    }
}
