//! Ready-made tower layers for [`Router::layer`](crate::Router::layer).
//!
//! Any tower layer whose service accepts a [`JobCall`] works; these cover what every blueprint
//! wants. Their errors come back as [`JobError::Timeout`](crate::JobError::Timeout) and
//! [`JobError::Overloaded`](crate::JobError::Overloaded). A layer wraps the routes added before it;
//! the last one added is the outermost, so
//!
//! ```
//! # use std::time::Duration;
//! # use vouch_sdk::{Router, layers};
//! # async fn job() -> &'static str { "ok" }
//! let router: Router = Router::new()
//!     .route(0, job)
//!     .layer(layers::timeout(Duration::from_secs(30))) // each call gets 30 s …
//!     .layer(layers::concurrency_limit(4))             // … and at most 4 run at once
//!     .layer(layers::trace());                         // every call, refused ones included, is logged
//! ```

use std::{
    fmt::Display,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::future::BoxFuture;
use tower::{
    Layer, Service, layer::util::Stack, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer,
    timeout::TimeoutLayer,
};
use tracing::Instrument;

use crate::{Agreement, JobCall, JobOutput};

/// Fails a call with [`JobError::Timeout`](crate::JobError::Timeout) when it runs longer than
/// `limit`. The handler's future is dropped at its next `.await`; CPU-bound work that never yields
/// must run on a blocking pool to be cancellable. Needs a tokio runtime with the time driver (the
/// node has one).
pub fn timeout(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::new(limit)
}

/// The layer [`concurrency_limit`] returns: a shared semaphore, shed when full.
pub type SheddingConcurrencyLimit = Stack<GlobalConcurrencyLimitLayer, LoadShedLayer>;

/// Lets at most `max` calls run at once across every route the layer wraps (one limit shared by
/// all of them, and by every clone of the router); a call beyond that is refused at once with
/// [`JobError::Overloaded`](crate::JobError::Overloaded) instead of queueing, so the caller can go
/// to another operator before its deadline.
pub fn concurrency_limit(max: usize) -> SheddingConcurrencyLimit {
    Stack::new(GlobalConcurrencyLimitLayer::new(max), LoadShedLayer::new())
}

/// Runs each call (and each check) in a `job` tracing span (fields `service`, `call`, `job`, `check`) and logs
/// its outcome.
pub fn trace() -> TraceLayer {
    TraceLayer
}

/// The layer [`trace`] returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

/// The service [`TraceLayer`] wraps around a route.
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
}

/// What a traced service answers: how [`Trace`] logs a successful call.
pub trait Traced {
    /// Logs the outcome of a call that took `elapsed_ms`, inside its `job` span.
    fn log_done(&self, elapsed_ms: u64);
}

impl Traced for JobOutput {
    fn log_done(&self, elapsed_ms: u64) {
        tracing::debug!(elapsed_ms, output_bytes = self.bytes.len(), "job done");
    }
}

impl Traced for Agreement {
    fn log_done(&self, elapsed_ms: u64) {
        match self {
            Agreement::Agree => tracing::debug!(elapsed_ms, "check done: agree"),
            Agreement::Disagree { reason } => tracing::info!(elapsed_ms, %reason, "check done: disagree"),
        }
    }
}

impl<S> Service<JobCall> for Trace<S>
where
    S: Service<JobCall>,
    S::Response: Traced + Send + 'static,
    S::Error: Display + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: JobCall) -> Self::Future {
        let span = tracing::info_span!(
            "job",
            service = call.service_id.0,
            call = %format_args!("{:#x}", call.call_id.0),
            job = call.job_index,
            check = call.claimed.is_some(),
        );
        let future = span.in_scope(|| self.inner.call(call));
        Box::pin(
            async move {
                let started = Instant::now();
                let outcome = future.await;
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                match &outcome {
                    Ok(response) => response.log_done(elapsed_ms),
                    Err(error) => tracing::info!(elapsed_ms, %error, "job failed"),
                }
                outcome
            }
            .instrument(span),
        )
    }
}
