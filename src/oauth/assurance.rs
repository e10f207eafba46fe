//! How strong a sign-in must be before anything is approved for a client: the one place the
//! sign-in strength policy is decided (docs/REFERENCE.md §3.4). `/authorize` and `/device`
//! ask it with the session in hand; a weaker session is stepped up, never let through.

use super::client::ClientMetadata;
use super::session::Level;
use crate::store::users::UserRecord;

/// The weakest sign-in that may approve `client`'s request for `user`:
/// - a second factor or a passkey when the user must use one (`require_mfa`), when the
///   client requires one for every user (`require_mfa`), or when the user is an
///   administrator and the server demands it of administrators (`CASTELLAN_ADMIN_MFA`);
/// - at least what the request asked for with `acr_values`, when it named a known level.
pub fn required(
    user: &UserRecord,
    client: &ClientMetadata,
    asked: Option<Level>,
    admins_need_mfa: bool,
) -> Level {
    let policy = if user.require_mfa || client.require_mfa || (admins_need_mfa && user.admin) {
        Level::MultiFactor
    } else {
        Level::Password
    };
    asked.map_or(policy, |asked| asked.max(policy))
}

/// The sign-in methods a user has set up, as far as they matter to a step-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Methods {
    /// An authenticator app (TOTP).
    pub totp: bool,
    /// The strongest level one of the user's passkeys reaches, if they have any.
    pub passkey: Option<Level>,
}

impl Methods {
    /// `totp`, and passkeys by whether each may be synced between devices (backup eligible).
    pub fn new(totp: bool, passkeys_backup_eligible: impl IntoIterator<Item = bool>) -> Self {
        let passkey =
            passkeys_backup_eligible
                .into_iter()
                .map(|synced| {
                    if synced { Level::PhishingResistant } else { Level::PhishingResistantHardware }
                })
                .max();
        Self { totp, passkey }
    }

    /// Whether the TOTP step after the password reaches `needed`.
    pub fn otp_reaches(self, needed: Level) -> bool {
        self.totp && needed <= Level::MultiFactor
    }

    /// Whether a sign-in with one of the user's passkeys reaches `needed`.
    pub fn passkey_reaches(self, needed: Level) -> bool {
        self.passkey.is_some_and(|level| level >= needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::registry;

    fn user(require_mfa: bool, admin: bool) -> UserRecord {
        let now = chrono::Utc::now();
        UserRecord {
            id: "u".into(),
            username: "u".into(),
            password_hash: String::new(),
            email: None,
            email_verified: false,
            name: None,
            disabled: false,
            admin,
            require_mfa,
            tokens_not_before: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn client(require_mfa: bool) -> ClientMetadata {
        ClientMetadata { require_mfa, ..registry::admin_metadata("c") }
    }

    #[test]
    fn each_rule_alone_asks_for_a_second_factor_and_none_asks_for_a_password() {
        use Level::*;
        assert_eq!(required(&user(false, false), &client(false), None, false), Password);
        assert_eq!(required(&user(true, false), &client(false), None, false), MultiFactor);
        assert_eq!(required(&user(false, false), &client(true), None, false), MultiFactor);
        assert_eq!(required(&user(false, true), &client(false), None, true), MultiFactor);
        // The admin setting is about administrators only.
        assert_eq!(required(&user(false, false), &client(false), None, true), Password);
        assert_eq!(required(&user(false, true), &client(false), None, false), Password);
    }

    #[test]
    fn acr_values_raise_the_policy_and_never_lower_it() {
        use Level::*;
        let asked = |level| required(&user(false, false), &client(true), Some(level), false);
        assert_eq!(asked(Password), MultiFactor);
        assert_eq!(asked(PhishingResistant), PhishingResistant);
        assert_eq!(asked(PhishingResistantHardware), PhishingResistantHardware);
    }

    #[test]
    fn the_app_code_reaches_a_second_factor_but_not_a_passkeys_level() {
        let with = Methods::new(true, []);
        assert!(with.otp_reaches(Level::MultiFactor));
        assert!(!with.otp_reaches(Level::PhishingResistant));
        assert!(!Methods::default().otp_reaches(Level::MultiFactor));
    }

    #[test]
    fn a_passkey_reaches_its_own_level_and_the_strongest_one_counts() {
        let synced = Methods::new(false, [true]);
        assert!(synced.passkey_reaches(Level::MultiFactor));
        assert!(synced.passkey_reaches(Level::PhishingResistant));
        assert!(!synced.passkey_reaches(Level::PhishingResistantHardware));
        let both = Methods::new(false, [true, false]);
        assert!(both.passkey_reaches(Level::PhishingResistantHardware));
        assert!(!Methods::new(true, []).passkey_reaches(Level::MultiFactor));
    }
}
