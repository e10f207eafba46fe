//! `GET /static/castellan.css`: the pages' one stylesheet, compiled into the binary.

use actix_web::HttpResponse;
use actix_web::http::header;

const STYLESHEET: &str = include_str!("../../static/castellan.css");

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(STYLESHEET)
}
