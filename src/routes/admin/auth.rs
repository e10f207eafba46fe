//! The admin API's guard: a bearer token through the one gate, meant for this API alone and
//! carrying `admin` as it stands now (docs/REFERENCE.md §6).

use crate::routes::bearer::{AdminApi, Bearer};

/// An authenticated administrator: an admin client's own token, or an administrator user's
/// token from a client allowed `admin`.
pub type Admin = Bearer<AdminApi>;
