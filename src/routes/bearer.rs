//! Access tokens on requests (RFC 6750, RFC 9449 §7): the one extractor every protected route
//! takes. It reads the token from the Authorization header only (scheme `Bearer` or `DPoP`,
//! with its proof), passes it through the gate (`oauth::gate`) and checks what the route
//! requires; a route cannot forget a check.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::error::BearerError;
use crate::oauth::dpop::ProofError;
use crate::oauth::gate::{ADMIN_SCOPE, Admitted, Audiences, Presented, Refused, Scheme};
use crate::startup::AppState;

/// What a route requires of a bearer token.
pub trait Requirement {
    /// Which audiences the route takes.
    const AUDIENCES: Audiences;
    /// The scope the token must carry (as it stands now).
    const SCOPE: &'static str;
    /// Whether only a user's token will do (not one a client got for itself).
    const USERS_ONLY: bool;
}

/// The admin API: `admin`, for tokens meant for it alone (docs/REFERENCE.md §6).
pub struct AdminApi;

impl Requirement for AdminApi {
    const AUDIENCES: Audiences = Audiences::SoleIssuer;
    const SCOPE: &'static str = ADMIN_SCOPE;
    const USERS_ONLY: bool = false;
}

/// UserInfo (OIDC Core §5.3): a user's token with `openid`, the issuer among its audiences.
pub struct UserInfo;

impl Requirement for UserInfo {
    const AUDIENCES: Audiences = Audiences::Issuer;
    const SCOPE: &'static str = "openid";
    const USERS_ONLY: bool = true;
}

/// A bearer token admitted for the route's requirement `R`.
pub struct Bearer<R> {
    pub token: Admitted,
    /// How it was presented, for the challenge of a later refusal.
    pub scheme: Scheme,
    requirement: PhantomData<R>,
}

impl<R> Bearer<R> {
    /// Who acts, for the logs: the client, and the user for a user's token.
    pub fn actor(&self) -> String {
        match &self.token.claims.gid {
            Some(_) => format!("{} (user {})", self.token.claims.client_id, self.token.claims.sub),
            None => self.token.claims.client_id.clone(),
        }
    }
}

impl<R: Requirement + 'static> FromRequest for Bearer<R> {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let presented = presented(req);
        let (method, path) = (req.method().as_str().to_owned(), req.path().to_owned());
        Box::pin(async move {
            let state = state
                .ok_or(BearerError::InvalidToken(Scheme::Bearer, "the server is misconfigured"))?;
            let (scheme, token, proof) = presented?;
            let presented = Presented {
                token: &token,
                scheme,
                proof: proof.as_deref(),
                method: &method,
                path: &path,
            };
            let admitted =
                state.gate().admit(&presented, R::AUDIENCES).await.map_err(|r| match r {
                    Refused::Invalid(reason) => BearerError::InvalidToken(scheme, reason),
                    Refused::Revoked => {
                        BearerError::InvalidToken(scheme, "the token has been revoked")
                    }
                    Refused::Proof(ProofError::Invalid(reason)) => {
                        BearerError::InvalidProof(reason)
                    }
                    Refused::Proof(ProofError::UseNonce(nonce)) => BearerError::UseNonce(nonce),
                    Refused::Proof(ProofError::Store(e)) | Refused::Store(e) => {
                        BearerError::Store(e)
                    }
                })?;
            if (R::USERS_ONLY && !admitted.is_users()) || !admitted.scope.contains(R::SCOPE) {
                return Err(BearerError::InsufficientScope(scheme, R::SCOPE));
            }
            Ok(Bearer { token: admitted, scheme, requirement: PhantomData })
        })
    }
}

/// The scheme and token of an `Authorization: Bearer` or `DPoP` header (RFC 6750 §2.1, RFC 9449
/// §7.1) and the request's one `DPoP` proof; any other scheme is treated as no credentials. A
/// token in the query (§2.3) leaks into logs and histories: refused.
/// The scheme and token of the Authorization header (the token trimmed), if it has both: the
/// one reading of that header for every route that takes a token.
pub(crate) fn authorization(req: &HttpRequest) -> Option<(&str, &str)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    Some((scheme, token.trim()))
}

fn presented(req: &HttpRequest) -> Result<(Scheme, String, Option<String>), BearerError> {
    if url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, _)| k == "access_token")
    {
        return Err(BearerError::InvalidRequest(
            "send the access token in the Authorization header",
        ));
    }
    let (scheme, token) = authorization(req).ok_or(BearerError::Missing)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(BearerError::Missing);
    };
    if token.is_empty() {
        return Err(BearerError::InvalidToken(scheme, "the token is malformed"));
    }
    let mut proofs = req.headers().get_all("dpop");
    let proof = proofs.next().map(|p| p.to_str().map(str::to_owned));
    // RFC 9449 §4.3 item 1: exactly one proof.
    if proofs.next().is_some() {
        return Err(BearerError::InvalidProof("send exactly one DPoP header"));
    }
    let proof =
        proof.transpose().map_err(|_| BearerError::InvalidProof("the proof is malformed"))?;
    Ok((scheme, token.to_owned(), proof))
}
