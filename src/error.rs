//! Client-facing errors: fixed JSON bodies in the RFC's words; causes stay in the log.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The JSON error body shared by every non-HTML surface (RFC 6749 §5.2 shape).
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub error_description: &'static str,
}

/// Errors of the plain JSON endpoints (metadata, health, unknown routes, bad bodies).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("not_found")]
    NotFound,
    #[error("method_not_allowed")]
    MethodNotAllowed,
    #[error("temporarily_unavailable: {0}")]
    Unavailable(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::InvalidRequest(description) => ErrorBody {
                error: "invalid_request",
                error_description: description,
            },
            Self::NotFound => ErrorBody {
                error: "not_found",
                error_description: "no such endpoint",
            },
            Self::MethodNotAllowed => ErrorBody {
                error: "method_not_allowed",
                error_description: "this endpoint does not answer that method",
            },
            Self::Unavailable(_) => ErrorBody {
                error: "temporarily_unavailable",
                error_description: "the service is temporarily unavailable",
            },
        };
        HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body)
    }
}
