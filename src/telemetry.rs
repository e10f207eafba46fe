//! Logs, request ids and Prometheus metrics: the one place that observes every request.

use std::cell::Cell;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tracing::Instrument;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber: human lines or JSON lines, on stderr (stdout is for
/// command output). A second call is ignored.
///
/// Lines are written by a thread of their own, buffered while more are queued and flushed
/// as soon as the queue is empty: a busy server makes one write per batch instead of one
/// per line, and a quiet one still logs at once. Nothing is dropped (a full queue makes
/// the logging thread wait). Keep the guard until exit: dropping it flushes.
pub fn init(settings: &Settings) -> WorkerGuard {
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("castellan-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
    guard
}

/// Checks a `CASTELLAN_LOG` filter without installing it.
pub fn validate_filter(filter: &str) -> Result<(), String> {
    EnvFilter::try_new(filter).map(|_| ()).map_err(|e| e.to_string())
}

/// Request counters and a latency histogram, labelled by route pattern (never raw paths,
/// which would let clients mint label values).
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    revocations: IntGauge,
    statements: IntCounterVec,
    purged: IntCounterVec,
}

tokio::task_local! {
    /// Database statements run so far for the request this task serves.
    static STATEMENTS: Cell<u64>;
    /// The label of a background task whose statements are counted apart.
    static WORK: &'static str;
}

/// Runs `work` (a background task) with its statements counted under `label` instead of
/// `background`, so that they can be asserted like a route's.
pub async fn statements_as<F: std::future::Future>(label: &'static str, work: F) -> F::Output {
    WORK.scope(label, work).await
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("castellan_http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("castellan_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            &["route"],
        )?;
        let revocations = IntGauge::new(
            "castellan_revocations_held",
            "Revoked ids, families, grants, clients and user cut-offs this replica holds in memory",
        )?;
        let statements = IntCounterVec::new(
            Opts::new(
                "castellan_db_statements_total",
                "Database statements by the route they served (`background` for sync and housekeeping)",
            ),
            &["route"],
        )?;
        let purged = IntCounterVec::new(
            Opts::new("castellan_rows_purged_total", "Expired rows this replica's purge deleted"),
            &["table"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(statements.clone()))?;
        registry.register(Box::new(purged.clone()))?;
        Ok(Self { registry, requests, latency, revocations, statements, purged })
    }

    /// Counts every statement `db` runs: for the request being served (see `observe`), or as
    /// background work. Deterministic per operation, so tests can assert them.
    pub fn count_statements(&self, db: &mut sea_orm::DatabaseConnection) {
        let background = self.statements.with_label_values(&["background"]);
        let statements = self.statements.clone();
        db.set_metric_callback(move |info| {
            // The SQL text only: values (hashes, ids) stay out of the logs.
            tracing::trace!(target: "castellan::sql", sql = %info.statement.sql);
            if STATEMENTS.try_with(|n| n.set(n.get() + 1)).is_ok() {
                return;
            }
            match WORK.try_with(|label| *label) {
                Ok(label) => statements.with_label_values(&[label]).inc(),
                Err(_) => background.inc(),
            }
        });
    }

    /// Adds a purge round's deletions, per table.
    pub fn count_purged(&self, deleted: &[(crate::store::purge::Expired, u64)]) {
        for (kind, rows) in deleted {
            self.purged.with_label_values(&[kind.table()]).inc_by(*rows);
        }
    }

    fn record(
        &self,
        route: &str,
        method: &'static str,
        status: u16,
        seconds: f64,
        statements: u64,
    ) {
        let mut buffer = itoa::Buffer::new();
        self.requests.with_label_values(&[route, method, buffer.format(status)]).inc();
        self.latency.with_label_values(&[route]).observe(seconds);
        if statements > 0 {
            self.statements.with_label_values(&[route]).inc_by(statements);
        }
    }

    /// The Prometheus text exposition of every metric, with `revocations_held` read now.
    pub fn render(&self, revocations_held: usize) -> anyhow::Result<Vec<u8>> {
        self.revocations.set(i64::try_from(revocations_held).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// The id `observe` gave a request, in its extensions (the audit trail records it).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: gives each request an id (a sane incoming `X-Request-Id`, else a new one),
/// runs it inside a span carrying that id, echoes the id, logs and counts the outcome.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let counted = STATEMENTS.scope(Cell::new(0), async {
        let response = next.call(req).instrument(span.clone()).await;
        (response, STATEMENTS.with(Cell::get))
    });
    let (response, statements) = counted.await;
    let mut response = response?;

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(metrics) = metrics {
        metrics.record(&route, method, status, elapsed.as_secs_f64(), statements);
    }
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, latency_ms, "request failed");
        } else {
            tracing::info!(status, latency_ms, "request");
        }
    });
    Ok(response)
}

/// The method as a label from a fixed set: clients can send any method name, and must not
/// mint label values or log text with it.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// An incoming request id is kept only if short and made of safe characters, so it cannot
/// forge log lines or bloat them.
fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let sane = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    sane.then(|| value.to_owned())
}
