//! Opaque, tamper-proof pagination cursors (docs/REFERENCE.md §6): the last key seen, with a MAC.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Makes and checks cursors with a key every replica shares.
#[derive(Clone)]
pub struct Cursors {
    key: hmac::Key,
}

/// A cursor that was altered, forged or made for another list.
#[derive(Debug, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl Cursors {
    pub fn new(key: hmac::Key) -> Self {
        Self { key }
    }

    /// A cursor for list `list` resuming after `last`.
    pub fn make(&self, list: &str, last: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(last);
        let tag = hmac::sign(&self.key, format!("{list}\n{payload}").as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The key to resume after, if `cursor` was made by [`Cursors::make`] for `list`.
    pub fn open(&self, list: &str, cursor: &str) -> Result<String, InvalidCursor> {
        let (payload, tag) = cursor.split_once('.').ok_or(InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidCursor)?;
        hmac::verify(&self.key, format!("{list}\n{payload}").as_bytes(), &tag)
            .map_err(|_| InvalidCursor)?;
        let last = URL_SAFE_NO_PAD.decode(payload).map_err(|_| InvalidCursor)?;
        String::from_utf8(last).map_err(|_| InvalidCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursors(byte: u8) -> Cursors {
        Cursors::new(hmac::Key::new(hmac::HMAC_SHA256, &[byte; 32]))
    }

    #[test]
    fn a_cursor_opens_for_its_own_list_only() {
        let c = cursors(1);
        let cursor = c.make("clients", "abc");
        assert_eq!(c.open("clients", &cursor).expect("valid"), "abc");
        assert!(c.open("scopes", &cursor).is_err());
        assert!(cursors(2).open("clients", &cursor).is_err());
    }

    #[test]
    fn an_altered_cursor_is_refused() {
        let c = cursors(1);
        let cursor = c.make("clients", "abc");
        let altered = format!(
            "{}{}",
            URL_SAFE_NO_PAD.encode("abd"),
            &cursor[cursor.find('.').expect("dot")..]
        );
        assert!(c.open("clients", &altered).is_err());
        assert!(c.open("clients", "garbage").is_err());
    }
}
