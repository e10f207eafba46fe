//! Scope values (RFC 6749 §3.3): parsing the space-delimited list and checking allowances.

use std::fmt;

/// An ordered set of scope tokens, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

/// A scope string that breaks the RFC 6749 §3.3 grammar.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed scope")]
pub struct MalformedScope;

impl Scopes {
    /// Parses `scope = scope-token *( SP scope-token )` with
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
    pub fn parse(value: &str) -> Result<Self, MalformedScope> {
        if value.is_empty() {
            return Ok(Self::default());
        }
        let mut scopes = Vec::new();
        for token in value.split(' ') {
            if !is_scope_token(token) {
                return Err(MalformedScope);
            }
            if !scopes.iter().any(|s| s == token) {
                scopes.push(token.to_owned());
            }
        }
        Ok(Self(scopes))
    }

    pub fn from_names(names: impl IntoIterator<Item = String>) -> Self {
        let mut scopes = Vec::new();
        for name in names {
            if !scopes.contains(&name) {
                scopes.push(name);
            }
        }
        Self(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether every scope here is also in `allowed`.
    pub fn is_subset_of(&self, allowed: &Scopes) -> bool {
        self.0.iter().all(|s| allowed.contains(s))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Whether `token` is a single RFC 6749 §3.3 scope-token.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_delimited_scopes_and_drops_repeats() {
        let scopes = Scopes::parse("openid email openid").expect("valid");
        assert_eq!(scopes.to_string(), "openid email");
    }

    #[test]
    fn refuses_characters_outside_the_grammar() {
        for bad in ["a  b", " a", "a\"b", "a\\b", "caf\u{e9}", "a\tb"] {
            assert_eq!(Scopes::parse(bad), Err(MalformedScope), "{bad:?}");
        }
    }

    #[test]
    fn subset_checks_every_scope() {
        let allowed = Scopes::parse("a b c").expect("valid");
        assert!(Scopes::parse("a c").expect("valid").is_subset_of(&allowed));
        assert!(!Scopes::parse("a d").expect("valid").is_subset_of(&allowed));
    }
}
