//! [`Router`]: job handlers by job index, with per-job verifiers and tower layers.

use std::{
    any::Any,
    collections::BTreeMap,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::future::{self, BoxFuture};
use tower::{BoxError, Layer, Service, ServiceExt, util::BoxCloneSyncService};
use vouch_primitives::wire::Verification;

use crate::{
    Exact, Handler, JobCall, JobError, JobOutput, Verifier,
    handler::{HandlerService, catch_panics},
};

/// A routed job as a type-erased tower service; what [`Router::layer`] layers wrap.
pub type BoxJobService = BoxCloneSyncService<JobCall, JobOutput, JobError>;

/// The future a [`Router`] returns for one call.
pub type JobFuture = BoxFuture<'static, Result<JobOutput, JobError>>;

/// A handler that still needs the router state `S`, with the layers added so far composed in.
type MakeService<S> = Arc<dyn Fn(S) -> BoxJobService + Send + Sync>;

enum Endpoint<S> {
    /// Waiting for [`Router::with_state`].
    NeedsState(MakeService<S>),
    /// Ready to serve.
    Ready(BoxJobService),
}

impl<S> Clone for Endpoint<S> {
    fn clone(&self) -> Self {
        match self {
            Self::NeedsState(make) => Self::NeedsState(Arc::clone(make)),
            Self::Ready(service) => Self::Ready(service.clone()),
        }
    }
}

/// Routes job calls to handlers by job index, axum-style.
///
/// `S` is the state handlers extract with [`Context<S>`](crate::Context); it is supplied once with
/// [`Router::with_state`], which yields the `Router<()>` the node runs. `Router<()>` is a tower
/// [`Service<JobCall>`] (always ready; each call runs on a clone of the routed service, so calls run
/// concurrently) and offers [`Router::call`].
///
/// A call never crashes the router: unknown jobs, rejected inputs, handler errors, panics and layer
/// refusals all come back as [`JobError`].
pub struct Router<S = ()> {
    routes: BTreeMap<u8, Endpoint<S>>,
    verifiers: BTreeMap<u8, Arc<dyn Verifier>>,
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self { routes: self.routes.clone(), verifiers: self.verifiers.clone() }
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verifiers: BTreeMap<u8, &str> = self.verifiers.iter().map(|(job, v)| (*job, v.name())).collect();
        f.debug_struct("Router")
            .field("jobs", &self.routes.keys().collect::<Vec<_>>())
            .field("verifiers", &verifiers)
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Router<S> {
    /// A router with no jobs.
    pub fn new() -> Self {
        Self { routes: BTreeMap::new(), verifiers: BTreeMap::new() }
    }

    /// Routes job `job_index` to `handler`.
    ///
    /// Layers added earlier with [`Router::layer`] do not wrap this route (as in axum): add routes
    /// first, then layers.
    ///
    /// # Panics
    ///
    /// If `job_index` is already routed. That is a programming error in the blueprint, caught the
    /// first time its router is built (in its unit tests).
    #[track_caller]
    pub fn route<H, T>(mut self, job_index: u8, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        assert!(!self.routes.contains_key(&job_index), "job {job_index} is routed twice");
        let make: MakeService<S> =
            Arc::new(move |state: S| BoxJobService::new(HandlerService::new(handler.clone(), state)));
        // A router without state (`Router<()>`, what most blueprints build) gets ready services right
        // away, so every clone of it shares the same layered services (and their limits).
        let endpoint = match (&() as &dyn Any).downcast_ref::<S>() {
            Some(unit) => Endpoint::Ready(make(unit.clone())),
            None => Endpoint::NeedsState(make),
        };
        self.routes.insert(job_index, endpoint);
        self
    }

    /// Compares results of job `job_index` with `verifier` instead of the default [`Exact`].
    pub fn verifier(mut self, job_index: u8, verifier: impl Verifier) -> Self {
        self.verifiers.insert(job_index, Arc::new(verifier));
        self
    }

    /// Wraps every route added so far in `layer` (timeout, concurrency limit, tracing, …; see
    /// [`layers`](crate::layers)). The last layer added is the outermost.
    ///
    /// Errors of the layered service are mapped back with [`JobError::from_layer_error`], so tower's
    /// timeout and load-shed errors become [`JobError::Timeout`] and [`JobError::Overloaded`].
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<BoxJobService> + Clone + Send + Sync + 'static,
        L::Service: Service<JobCall, Response = JobOutput> + Clone + Send + Sync + 'static,
        <L::Service as Service<JobCall>>::Error: Into<BoxError>,
        <L::Service as Service<JobCall>>::Future: Send + 'static,
    {
        let routes = self
            .routes
            .into_iter()
            .map(|(job_index, endpoint)| {
                let endpoint = match endpoint {
                    Endpoint::Ready(service) => Endpoint::Ready(apply_layer(&layer, service)),
                    Endpoint::NeedsState(make) => {
                        let layer = layer.clone();
                        Endpoint::NeedsState(Arc::new(move |state: S| apply_layer(&layer, make(state))))
                    }
                };
                (job_index, endpoint)
            })
            .collect();
        Self { routes, verifiers: self.verifiers }
    }

    /// Supplies the state handlers extract with [`Context<S>`](crate::Context), axum-style. The result
    /// is usually a `Router<()>`, ready to run.
    pub fn with_state<S2>(self, state: S) -> Router<S2> {
        let routes = self
            .routes
            .into_iter()
            .map(|(job_index, endpoint)| {
                let service = match endpoint {
                    Endpoint::Ready(service) => service,
                    Endpoint::NeedsState(make) => make(state.clone()),
                };
                (job_index, Endpoint::Ready(service))
            })
            .collect();
        Router { routes, verifiers: self.verifiers }
    }

    /// The routed job indexes, ascending.
    pub fn jobs(&self) -> Vec<u8> {
        self.routes.keys().copied().collect()
    }

    /// Whether job `job_index` is routed.
    pub fn has_job(&self, job_index: u8) -> bool {
        self.routes.contains_key(&job_index)
    }

    /// The verifier for job `job_index`: the one set with [`Router::verifier`], else [`Exact`].
    pub fn verifier_for(&self, job_index: u8) -> Arc<dyn Verifier> {
        self.verifiers.get(&job_index).cloned().unwrap_or_else(|| Arc::new(Exact))
    }

    /// How operators of job `job_index` come to sign one result, as the blueprint declares it in its metadata:
    /// [`Verification::Tolerant`] when a verifier was set with [`Router::verifier`], else
    /// [`Verification::Exact`].
    pub fn verification_for(&self, job_index: u8) -> Verification {
        if self.verifiers.contains_key(&job_index) { Verification::Tolerant } else { Verification::Exact }
    }
}

fn apply_layer<L>(layer: &L, service: BoxJobService) -> BoxJobService
where
    L: Layer<BoxJobService>,
    L::Service: Service<JobCall, Response = JobOutput> + Clone + Send + Sync + 'static,
    <L::Service as Service<JobCall>>::Error: Into<BoxError>,
    <L::Service as Service<JobCall>>::Future: Send + 'static,
{
    BoxJobService::new(layer.layer(service).map_err(|error| JobError::from_layer_error(error.into())))
}

impl Router<()> {
    /// Runs `call` on a clone of this router (tower's `oneshot`). The future does not borrow the
    /// router.
    pub fn call(&self, call: JobCall) -> JobFuture {
        Box::pin(self.clone().oneshot(call))
    }
}

impl Service<JobCall> for Router<()> {
    type Response = JobOutput;
    type Error = JobError;
    type Future = JobFuture;

    /// Always ready: readiness (and refusal) is decided per route, by the route's layers.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: JobCall) -> JobFuture {
        let service = match self.routes.get(&call.job_index) {
            None => return Box::pin(future::ready(Err(JobError::UnknownJob { job_index: call.job_index }))),
            Some(Endpoint::Ready(service)) => service.clone(),
            // Unreachable in practice: a `Router<()>` gets ready services in `route` and `with_state`.
            Some(Endpoint::NeedsState(make)) => make(()),
        };
        // Handlers catch their own panics; this catches a panicking layer.
        catch_panics(service.oneshot(call))
    }
}

#[cfg(test)]
mod tests;
