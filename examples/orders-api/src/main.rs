//! `orders-api`: `CASTELLAN_ISSUER` (required), `ORDERS_AUDIENCE` (default
//! `http://127.0.0.1:8000`), `ORDERS_BIND` (default `127.0.0.1:8000`), and for the introspected
//! route `ORDERS_CLIENT_ID` / `ORDERS_CLIENT_SECRET` (a client of Castellan whose
//! `served_resources` names the audience).

use actix_web::{App, HttpServer, web};
use castellan_guard::Guard;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var = |name: &str| std::env::var(name).ok();
    let issuer = var("CASTELLAN_ISSUER").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let bind = var("ORDERS_BIND").unwrap_or_else(|| "127.0.0.1:8000".into());
    let audience = var("ORDERS_AUDIENCE").unwrap_or_else(|| format!("http://{bind}"));
    let mut builder = Guard::builder(&issuer, &audience)
        .scopes(["orders:read", "orders:write"])
        .resource_name("Orders API");
    if let (Some(id), Some(secret)) = (var("ORDERS_CLIENT_ID"), var("ORDERS_CLIENT_SECRET")) {
        builder = builder.introspection(&id, &secret);
    }
    let guard = builder.build().await.map_err(std::io::Error::other)?;
    let orders = web::Data::new(orders_api::Orders::default());
    eprintln!("orders-api on http://{bind}, tokens of {issuer} for {audience}");
    HttpServer::new(move || App::new().configure(orders_api::routes(guard.clone(), orders.clone())))
        .bind(bind)?
        .run()
        .await
}
