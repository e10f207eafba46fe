//! An orders API that accepts Castellan tokens: what an API team writes with
//! `castellan-guard`. Everyone's orders live in memory; each user sees their own.

use std::sync::Mutex;

use actix_web::{HttpResponse, web};
use castellan_guard::{Authenticated, Guard, Introspected, RequireScope};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize)]
pub struct Order {
    pub id: u64,
    pub owner: String,
    pub item: String,
}

#[derive(Deserialize)]
pub struct NewOrder {
    pub item: String,
}

/// The orders of everyone, in memory.
#[derive(Default)]
pub struct Orders(Mutex<Vec<Order>>);

/// The routes, for `App::configure`: the guard in `app_data`, its RFC 9728 metadata, and a
/// scope per route. `/orders/confirmed` must see a revoked token at once, so it introspects.
pub fn routes(guard: Guard, orders: web::Data<Orders>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(guard.clone())
            .app_data(orders)
            .service(guard.protected_resource_metadata())
            .service(
                web::resource("/orders")
                    .route(web::get().to(list).wrap(RequireScope::new("orders:read")))
                    .route(web::post().to(create).wrap(RequireScope::new("orders:write"))),
            )
            .service(
                web::resource("/orders/confirmed")
                    .wrap(RequireScope::new("orders:read").introspected())
                    .get(confirmed),
            )
            .route("/me", web::get().to(me));
    }
}

async fn list(token: Authenticated, orders: web::Data<Orders>) -> HttpResponse {
    let all = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    let mine: Vec<&Order> = all.iter().filter(|o| o.owner == token.sub).collect();
    HttpResponse::Ok().json(mine)
}

async fn create(
    token: Authenticated,
    orders: web::Data<Orders>,
    body: web::Json<NewOrder>,
) -> HttpResponse {
    let mut all = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    let order =
        Order { id: all.len() as u64 + 1, owner: token.sub.clone(), item: body.into_inner().item };
    all.push(order.clone());
    HttpResponse::Created().json(order)
}

/// Like `list`, for a caller whose token the authorization server confirmed just now.
async fn confirmed(token: Introspected, orders: web::Data<Orders>) -> HttpResponse {
    let all = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    let mine: Vec<&Order> = all.iter().filter(|o| o.owner == token.sub).collect();
    HttpResponse::Ok().json(mine)
}

/// Who is calling: any valid token, no scope needed.
async fn me(token: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "sub": token.sub,
        "client_id": token.client_id,
        "scope": token.scope,
        "bound": token.cnf.is_some(),
    }))
}
