//! `upstream_providers`: OpenID providers users may sign in through (docs/REFERENCE.md
//! §3.14). The client secret is sealed under the master key, bound to the provider's id.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "upstream_providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub issuer: String,
    #[sea_orm(column_type = "Text")]
    pub client_id: String,
    /// Sealed (base64url of nonce ‖ ciphertext ‖ tag), never the secret itself.
    #[sea_orm(column_type = "Text")]
    pub client_secret: String,
    /// Space-separated scopes asked of the provider.
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    /// JSON: which upstream claim fills which profile field.
    #[sea_orm(column_type = "Text")]
    pub claim_mapping: String,
    /// Whether a first sign-in with no linked account creates one.
    pub create_users: bool,
    /// Whether the provider's `amr` saying `mfa` counts as a second factor here.
    pub trust_mfa: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Names only: the sealed secret stays out of `Debug` output too.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("upstream_provider::Model")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
