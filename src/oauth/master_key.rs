//! The master key: loads or creates it, and seals private keys at rest with AES-256-GCM (docs/REFERENCE.md §7).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

const KEY_LEN: usize = 32;
const FILE_NAME: &str = "master.key";

/// The key that seals every private signing key stored in the database.
pub struct MasterKey {
    key: RandomizedNonceKey,
    mac: hmac::Key,
}

/// Sealed data that this master key cannot open: a wrong key, or altered data.
#[derive(Debug, thiserror::Error)]
#[error("the master key does not open this data")]
pub struct WrongMasterKey;

impl MasterKey {
    /// Uses `CASTELLAN_MASTER_KEY` when given, else `keys_dir/master.key`,
    /// creating the folder and a new random key (mode 0600) on first start.
    pub fn load_or_create(
        configured: Option<&SecretString>,
        keys_dir: &Path,
    ) -> anyhow::Result<Self> {
        match configured {
            Some(encoded) => Self::decode(encoded.expose_secret())
                .context("invalid CASTELLAN_MASTER_KEY: expected base64 of 32 bytes"),
            None => Self::from_file(keys_dir),
        }
    }

    fn from_file(keys_dir: &Path) -> anyhow::Result<Self> {
        if !keys_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(keys_dir)
                .with_context(|| format!("cannot create the keys folder {}", keys_dir.display()))?;
        }
        let path = keys_dir.join(FILE_NAME);
        match Self::create_file(&path) {
            Ok(key) => return Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
        let text = Zeroizing::new(
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        if let Ok(meta) = fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the master key file is readable by others; chmod 600 it");
        }
        Self::decode(text.trim()).with_context(|| {
            format!("invalid master key in {}: expected base64 of 32 bytes", path.display())
        })
    }

    /// Creates the file atomically: the key is written and synced under a temporary name,
    /// then hard-linked into place, which fails if another process got there first. So two
    /// processes starting at once agree on one key, and no one reads a half-written file.
    fn create_file(path: &Path) -> std::io::Result<Self> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| std::io::Error::other("the OS random source failed"))?;
        let encoded = Zeroizing::new(STANDARD.encode(bytes.as_ref()));
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = (|| {
            let mut file =
                fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
            file.write_all(encoded.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::hard_link(&temporary, path)
        })();
        let _ = fs::remove_file(&temporary);
        written?;
        tracing::info!(path = %path.display(), "created a new master key");
        Self::from_bytes(bytes.as_ref()).map_err(std::io::Error::other)
    }

    fn decode(encoded: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).context("not base64")?);
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != KEY_LEN {
            bail!("the key is {} bytes, not {KEY_LEN}", bytes.len());
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow::anyhow!("AES-256-GCM rejected the key"))?;
        // A separate key for MACs, derived so that sealing and MACs never share a key.
        let mac = hkdf::Salt::new(hkdf::HKDF_SHA256, b"castellan")
            .extract(bytes)
            .expand(&[b"mac v1"], hmac::HMAC_SHA256)
            .map_err(|_| anyhow::anyhow!("HKDF failed"))?
            .into();
        Ok(Self { key, mac })
    }

    /// Seals `plaintext`, bound to `context` (e.g. the kid), as nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context), &mut in_out)
            .map_err(|_| anyhow::anyhow!("AES-256-GCM sealing failed"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Seals `value` as JSON for a form field or a cookie (base64url), bound to `context`
    /// (its purpose and the browser or session it belongs to).
    pub fn seal_field<T: serde::Serialize>(&self, context: &str, value: &T) -> Option<String> {
        let json = Zeroizing::new(serde_json::to_vec(value).ok()?);
        let sealed = self.seal(context.as_bytes(), &json).ok()?;
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// What [`MasterKey::seal_field`] sealed for `context`, if `field` is at most `max_len`
    /// characters and opens.
    pub fn open_field<T: serde::de::DeserializeOwned>(
        &self,
        context: &str,
        field: &str,
        max_len: usize,
    ) -> Option<T> {
        if field.len() > max_len {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(field).ok()?;
        let json = self.open(context.as_bytes(), &sealed).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// An HMAC-SHA-256 key for one purpose (`label`), derived from the master key: the same
    /// on every replica that shares the master key, unrelated to any other purpose's key.
    pub fn mac_key(&self, label: &str) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.secret(label).as_ref())
    }

    /// 32 secret bytes for one purpose (`label`), derived from the master key.
    pub fn secret(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let tag = hmac::sign(&self.mac, label.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }

    /// Opens what [`MasterKey::seal`] made with the same `context`.
    pub fn open(
        &self,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, WrongMasterKey> {
        if sealed.len() < NONCE_LEN {
            return Err(WrongMasterKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| WrongMasterKey)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(context), in_out.as_mut_slice())
            .map_err(|_| WrongMasterKey)?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; KEY_LEN]).expect("32-byte key")
    }

    #[test]
    fn sealed_data_opens_with_the_same_key_and_context() {
        let sealed = key(1).seal(b"kid-1", b"secret").expect("seal");
        assert_eq!(key(1).open(b"kid-1", &sealed).expect("open").as_slice(), b"secret");
    }

    #[test]
    fn sealed_data_does_not_open_with_another_key_or_context() {
        let sealed = key(1).seal(b"kid-1", b"secret").expect("seal");
        assert!(key(2).open(b"kid-1", &sealed).is_err());
        assert!(key(1).open(b"kid-2", &sealed).is_err());
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(MasterKey::decode(&STANDARD.encode([0u8; 16])).is_err());
    }
}
