//! Scope values (RFC 6749 §3.3): parsing the space-delimited list and checking allowances.

use std::collections::HashSet;
use std::fmt;

/// At most this many scope tokens in one value: more is refused before any of them is looked
/// at twice (docs/REFERENCE.md §9), so a huge `scope` costs no more than a normal one per byte.
pub const MAX_SCOPES: usize = 64;

/// An ordered set of scope tokens, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

/// A scope string that breaks the RFC 6749 §3.3 grammar, or names more than `MAX_SCOPES`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed scope")]
pub struct MalformedScope;

impl Scopes {
    /// Parses `scope = scope-token *( SP scope-token )` with
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
    /// Linear in the length of `value`: repeats are dropped through a hash set, and parsing
    /// stops at the first token past `MAX_SCOPES`.
    pub fn parse(value: &str) -> Result<Self, MalformedScope> {
        if value.is_empty() {
            return Ok(Self::default());
        }
        let mut scopes = Vec::new();
        let mut seen = HashSet::new();
        for (index, token) in value.split(' ').enumerate() {
            if index >= MAX_SCOPES || !is_scope_token(token) {
                return Err(MalformedScope);
            }
            if seen.insert(token) {
                scopes.push(token.to_owned());
            }
        }
        Ok(Self(scopes))
    }

    pub fn from_names(names: impl IntoIterator<Item = String>) -> Self {
        let mut seen = HashSet::new();
        Self(names.into_iter().filter(|name| seen.insert(name.clone())).collect())
    }

    /// The scopes here that are also in `other`, in this order.
    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Self(self.0.iter().filter(|s| other.contains(s)).cloned().collect())
    }

    /// These scopes without `scope`.
    pub fn without(&self, scope: &str) -> Scopes {
        Self(self.0.iter().filter(|s| *s != scope).cloned().collect())
    }

    /// These scopes and then those of `other` not already here.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Self::from_names(self.0.iter().chain(other.0.iter()).cloned())
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
    fn at_most_max_scopes_tokens_are_parsed() {
        let at_limit: Vec<String> = (0..MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert!(Scopes::parse(&at_limit.join(" ")).is_ok());
        let over: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(Scopes::parse(&over.join(" ")), Err(MalformedScope));
        // Repeats count too: the cap is on what is sent, not on what is distinct.
        assert_eq!(Scopes::parse(&["a"; MAX_SCOPES + 1].join(" ")), Err(MalformedScope));
    }

    #[test]
    fn intersection_keeps_this_order_and_union_adds_the_rest() {
        let held = Scopes::parse("openid profile email").expect("valid");
        let allowed = Scopes::parse("email openid").expect("valid");
        assert_eq!(held.intersection(&allowed).to_string(), "openid email");
        assert_eq!(held.without("profile").to_string(), "openid email");
        assert_eq!(allowed.union(&held).to_string(), "email openid profile");
    }

    #[test]
    fn subset_checks_every_scope() {
        let allowed = Scopes::parse("a b c").expect("valid");
        assert!(Scopes::parse("a c").expect("valid").is_subset_of(&allowed));
        assert!(!Scopes::parse("a d").expect("valid").is_subset_of(&allowed));
    }
}
