//! Delegation in token exchange (RFC 8693 §4.1, §4.4): the actor chain a new token carries,
//! and whether a subject token's `may_act` lets an actor act for its subject.

use serde_json::Value;

use super::access_token::Actor;

/// The most actors one token names, the current one included: every exchange adds one, and
/// a chain without end would grow the token without end.
pub const MAX_ACTORS: usize = 8;

/// The `act` of a token exchanged by `actor` from a subject token carrying `prior`: the
/// actor outermost, the subject's chain nested inside it (RFC 8693 §4.1: "the least recent
/// actor is the most deeply nested"). `None` when the chain would pass `MAX_ACTORS`.
pub fn delegate(actor: &str, prior: Option<&Actor>) -> Option<Actor> {
    let act = Actor { sub: actor.to_owned(), act: prior.cloned().map(Box::new) };
    (act.depth() <= MAX_ACTORS).then_some(act)
}

impl Actor {
    /// How many actors the chain names, the current one included.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |prior| prior.depth())
    }
}

/// Whether `may_act` (RFC 8693 §4.4) lets the party `actor` of this `issuer` act for the
/// subject. Every member must identify the actor: `sub` is required and must equal it, `iss`
/// (when present) must be ours; a member Castellan cannot check (an email, say) or a value
/// that is not an object refuses, never passes.
pub fn may_act(may_act: &Value, actor: &str, issuer: &str) -> bool {
    let Some(members) = may_act.as_object() else { return false };
    if members.get("sub").and_then(Value::as_str) != Some(actor) {
        return false;
    }
    members.iter().all(|(name, value)| match name.as_str() {
        "sub" => true,
        "iss" => value.as_str() == Some(issuer),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://issuer.example.com";

    #[test]
    fn a_second_hop_nests_the_first_actor_as_in_rfc_8693_figure_6() {
        // RFC 8693 §4.1, Figure 6: service77 exchanged first, service16 after it.
        let first = delegate("https://service77.example.com", None).expect("one actor");
        let second = delegate("https://service16.example.com", Some(&first)).expect("two");

        let expected = json!({
            "sub": "https://service16.example.com",
            "act": {"sub": "https://service77.example.com"}
        });
        assert_eq!(serde_json::to_value(&second).expect("JSON"), expected);
        assert_eq!(second.depth(), 2);
    }

    #[test]
    fn a_chain_never_grows_past_its_limit() {
        let mut chain = delegate("a0", None).expect("first");
        for i in 1..MAX_ACTORS {
            chain = delegate(&format!("a{i}"), Some(&chain)).expect("within the limit");
        }
        assert_eq!(chain.depth(), MAX_ACTORS);
        assert!(delegate("one-too-many", Some(&chain)).is_none());
    }

    #[test]
    fn may_act_admits_the_party_it_names_as_in_rfc_8693_section_4_4() {
        // The §4.4 example: admin@example.com may act for user@example.com.
        let may_act = json!({"sub": "admin@example.com"});
        assert!(may_act_allows(&may_act, "admin@example.com"));
        assert!(!may_act_allows(&may_act, "someone@example.com"));
    }

    #[test]
    fn may_act_with_an_issuer_admits_only_our_own_party() {
        let ours = json!({"sub": "admin@example.com", "iss": ISSUER});
        let theirs = json!({"sub": "admin@example.com", "iss": "https://other.example"});
        assert!(may_act_allows(&ours, "admin@example.com"));
        assert!(!may_act_allows(&theirs, "admin@example.com"));
    }

    #[test]
    fn may_act_that_cannot_be_checked_refuses() {
        for unusable in [
            json!({"sub": "admin@example.com", "email": "admin@example.com"}),
            json!({"iss": ISSUER}),
            json!({"sub": 7}),
            json!("admin@example.com"),
            json!(null),
        ] {
            assert!(!may_act_allows(&unusable, "admin@example.com"), "{unusable}");
        }
    }

    fn may_act_allows(value: &Value, actor: &str) -> bool {
        may_act(value, actor, ISSUER)
    }
}
