//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document;
//! docs/REFERENCE.md §5.11): a `client_id` that is an https URL names a JSON document, served
//! there, that describes the client. When such a client asks for authorization its document
//! is fetched through the outbound client (SSRF-guarded, size-capped), checked — its
//! `client_id` is its own URL, its metadata passes what the admin API and the open ceiling
//! ask — and kept as a client row (`registration: document`), so codes, grants, refresh
//! families and revocations work as for any client. The row is refreshed from the document
//! once its cache time has passed, at the next authorization request; the token endpoint uses
//! the stored copy.

use std::time::Instant;

use serde_json::Value;

use super::client::{ClientMetadata, Registration};
use super::client_metadata::{self, FieldError};
use super::registration::{self, Admission, Policy};
use super::registry::{Registry, RegistryError};
use super::revocation::Revocations;
use crate::config::Settings;
use crate::outbound::{FetchError, Outbound, PerUrl, UrlEntry, literal_address};
use crate::store::{Db, StoreError};

/// The longest client id: a URL longer than this is no client of ours.
pub const MAX_URL_LEN: usize = 255;

/// Whether `value` can be a metadata document's URL, and so a client id: `https` (plain
/// `http` only for a loopback host, which the outbound client still refuses unless private
/// networks are allowed), a host and a path beyond `/`, no user information, query or
/// fragment, at most 255 characters, and already in the form a URL parser writes it (so no
/// `.`/`..` segments or odd escapes: the id compared is the URL fetched).
pub fn is_document_url(value: &str) -> bool {
    if value.len() > MAX_URL_LEN || !(value.starts_with("https://") || value.starts_with("http://"))
    {
        return false;
    }
    let Ok(url) = url::Url::parse(value) else { return false };
    let Some(host) = url.host() else { return false };
    let loopback = host == url::Host::Domain("localhost")
        || literal_address(&url).is_some_and(|ip| ip.is_loopback());
    url.as_str() == value
        && (url.scheme() == "https" || loopback)
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.path().len() > 1
}

/// Why a document client could not be used. Each surface names it in its own words.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("metadata documents are not accepted here")]
    Disabled,
    #[error("the metadata document could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    #[error("the metadata document failed again within the refetch interval")]
    RecentlyFailed,
    #[error("the metadata document is not acceptable: {0}")]
    Invalid(#[from] FieldError),
    #[error("a client that is no document client holds this id")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<RegistryError> for DocumentError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Metadata(m) => Self::Invalid(m),
            RegistryError::Store(s) => Self::Store(s),
            RegistryError::Internal(i) => Self::Internal(i),
        }
    }
}

#[derive(Default)]
struct State {
    fresh_until: Option<Instant>,
    attempted_at: Option<Instant>,
}

pub struct ClientDocuments {
    outbound: Outbound,
    /// Whether documents are on, the refetch interval, the open ceiling's fallback.
    settings: Settings,
    entries: PerUrl<State>,
}

impl ClientDocuments {
    pub fn new(outbound: Outbound, settings: &Settings) -> Self {
        Self { outbound, settings: settings.clone(), entries: PerUrl::new() }
    }

    /// Makes the client `url` current: nothing while its document is fresh; else fetches,
    /// checks and stores it (a new client, or its changed metadata through the revocation
    /// log, so every replica forgets its cached copy).
    pub async fn ensure(
        &self,
        db: &Db,
        registry: &Registry,
        revocations: &Revocations,
        url: &str,
    ) -> Result<(), DocumentError> {
        if !self.settings.client_id_metadata_documents {
            return Err(DocumentError::Disabled);
        }
        let interval = self.settings.client_jwks_refetch_interval;
        let entry = self.entries.entry(url);
        if fresh(&entry) {
            return Ok(());
        }
        let _one_fetch = entry.fetch.lock().await;
        if fresh(&entry) {
            return Ok(());
        }
        let now = Instant::now();
        {
            let mut state = entry.state();
            if state.attempted_at.is_some_and(|at| now.duration_since(at) < interval) {
                return Err(DocumentError::RecentlyFailed);
            }
            state.attempted_at = Some(now);
        }
        let fetched = self.outbound.get_json(url).await?;
        let metadata = self.check(db, url, &fetched.body).await?;
        match registry.load(db, url).await? {
            None => {
                if let Err(e) = registry.register_document(db, url, metadata).await {
                    // Another replica stored it first: fine if it is a document client.
                    let raced = registry.load(db, url).await?;
                    if !raced.is_some_and(|c| c.registration == Registration::Document) {
                        return Err(e.into());
                    }
                }
                tracing::info!(client_id = %url, "a client came by its metadata document");
            }
            Some(client) if client.registration != Registration::Document => {
                return Err(DocumentError::Taken);
            }
            Some(client) if client.metadata != metadata => {
                let actor = crate::oauth::audit::Actor::system("client_metadata_document");
                registry.replace(db, revocations, url, metadata, None, actor).await?;
                tracing::info!(client_id = %url, "a client's metadata document changed");
            }
            Some(_) => {}
        }
        entry.state().fresh_until = Some(now + fetched.ttl(interval));
        Ok(())
    }

    /// The document's metadata, held to the open ceiling (the policy in force, or the
    /// settings' ceiling when registration is off): its `client_id` must be its own URL
    /// (exactly), and it is a public client, since a document can hold no secret.
    async fn check(
        &self,
        db: &Db,
        url: &str,
        body: &Value,
    ) -> Result<ClientMetadata, DocumentError> {
        let invalid = |description, field: &str| FieldError {
            error: "invalid_client_metadata",
            description,
            field: field.to_owned(),
        };
        let mut map = body
            .as_object()
            .cloned()
            .ok_or_else(|| invalid("the document must be a JSON object", "body"))?;
        if map.remove("client_id").as_ref().and_then(Value::as_str) != Some(url) {
            return Err(invalid("the document's client_id must be its own URL", "client_id").into());
        }
        for member in ["client_secret", "client_secret_expires_at"] {
            if map.contains_key(member) {
                return Err(invalid("a metadata document holds no secret", member).into());
            }
        }
        let body = client_metadata::known_members_only(&Value::Object(map));
        let mut metadata = client_metadata::parse(&body, self.settings.max_token_lifetime)?;
        let policy = match Policy::load(db, &self.settings).await? {
            Some(policy) => policy,
            None => Policy::ceiling(),
        };
        registration::admit(&mut metadata, &Admission::Open(&policy))?;
        Ok(metadata)
    }
}

/// Whether the document last fetched is still within its cache time.
fn fresh(entry: &UrlEntry<State>) -> bool {
    entry.state().fresh_until.is_some_and(|until| Instant::now() < until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_url_is_a_plain_https_url_with_a_path() {
        assert!(is_document_url("https://agent.example/client.json"));
        assert!(is_document_url("http://127.0.0.1:8080/client.json"));
        for bad in [
            "https://agent.example",
            "https://agent.example/",
            "https://agent.example/a/../client.json",
            "https://agent.example/client.json?v=1",
            "https://agent.example/client.json#x",
            "https://user@agent.example/client.json",
            "http://agent.example/client.json",
            "HTTPS://agent.example/client.json",
            "https://agent.example/cli ent.json",
            "ftp://agent.example/client.json",
        ] {
            assert!(!is_document_url(bad), "{bad}");
        }
        let long = format!("https://agent.example/{}", "a".repeat(250));
        assert!(!is_document_url(&long));
    }
}
