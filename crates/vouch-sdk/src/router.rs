//! [`Router`]: job handlers by job index, with per-job verifiers or checkers and tower layers.

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
    Agreement, Exact, Handler, JobCall, JobError, JobOutput, Verifier,
    check::{Checker, CheckerService},
    handler::{HandlerService, catch_panics},
};

/// A routed job as a type-erased tower service; what [`Router::layer`] layers wrap.
pub type BoxJobService = BoxCloneSyncService<JobCall, JobOutput, JobError>;

/// A routed checker as a type-erased tower service; [`Router::layer`] layers wrap these too.
pub type BoxCheckService = BoxCloneSyncService<JobCall, Agreement, JobError>;

/// The future a [`Router`] returns for one call.
pub type JobFuture = BoxFuture<'static, Result<JobOutput, JobError>>;

/// The future [`Router::check`] returns for one check.
pub type CheckFuture = BoxFuture<'static, Result<Agreement, JobError>>;

/// A handler (or checker) answering `R` that still needs the router state `S`, with the layers added so far
/// composed in.
type MakeService<S, R> = Arc<dyn Fn(S) -> BoxCloneSyncService<JobCall, R, JobError> + Send + Sync>;

enum Endpoint<S, R> {
    /// Waiting for [`Router::with_state`].
    NeedsState(MakeService<S, R>),
    /// Ready to serve.
    Ready(BoxCloneSyncService<JobCall, R, JobError>),
}

impl<S, R> Clone for Endpoint<S, R> {
    fn clone(&self) -> Self {
        match self {
            Self::NeedsState(make) => Self::NeedsState(Arc::clone(make)),
            Self::Ready(service) => Self::Ready(service.clone()),
        }
    }
}

impl<S: Clone + Send + Sync + 'static, R: 'static> Endpoint<S, R> {
    /// A ready endpoint when the router has no state (`S = ()`), so that every clone of the router shares the same
    /// layered services (and their limits); one waiting for the state otherwise.
    fn new(make: MakeService<S, R>) -> Self {
        match (&() as &dyn Any).downcast_ref::<S>() {
            Some(unit) => Self::Ready(make(unit.clone())),
            None => Self::NeedsState(make),
        }
    }

    fn layered<L>(self, layer: &L) -> Self
    where
        L: Layer<BoxCloneSyncService<JobCall, R, JobError>> + Clone + Send + Sync + 'static,
        L::Service: Service<JobCall, Response = R> + Clone + Send + Sync + 'static,
        <L::Service as Service<JobCall>>::Error: Into<BoxError>,
        <L::Service as Service<JobCall>>::Future: Send + 'static,
    {
        match self {
            Self::Ready(service) => Self::Ready(apply_layer(layer, service)),
            Self::NeedsState(make) => {
                let layer = layer.clone();
                Self::NeedsState(Arc::new(move |state: S| apply_layer(&layer, make(state))))
            }
        }
    }

    fn with_state<S2>(self, state: &S) -> Endpoint<S2, R> {
        match self {
            Self::Ready(service) => Endpoint::Ready(service),
            Self::NeedsState(make) => Endpoint::Ready(make(state.clone())),
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
    routes: BTreeMap<u8, Endpoint<S, JobOutput>>,
    verifiers: BTreeMap<u8, Arc<dyn Verifier>>,
    checkers: BTreeMap<u8, Endpoint<S, Agreement>>,
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self { routes: self.routes.clone(), verifiers: self.verifiers.clone(), checkers: self.checkers.clone() }
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
            .field("checkers", &self.checkers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<S: Clone + Send + Sync + 'static> Router<S> {
    /// A router with no jobs.
    pub fn new() -> Self {
        Self { routes: BTreeMap::new(), verifiers: BTreeMap::new(), checkers: BTreeMap::new() }
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
        let make: MakeService<S, JobOutput> =
            Arc::new(move |state: S| BoxJobService::new(HandlerService::new(handler.clone(), state)));
        self.routes.insert(job_index, Endpoint::new(make));
        self
    }

    /// Compares outputs of job `job_index` with `verifier` instead of the default [`Exact`].
    ///
    /// A verifier other than [`Exact`] makes the job [`Verification::Tolerant`]: its operators commit to their own
    /// outputs (`POST /v1/commitments`), and sign a proposed output as their result only if `verifier` says it
    /// agrees with their own (`POST /v1/endorsements`). Keep it deterministic and cheap.
    ///
    /// # Panics
    ///
    /// If a non-exact verifier is set for a job that has a [checker](Router::checker): a job is either tolerant
    /// or checked.
    #[track_caller]
    pub fn verifier(mut self, job_index: u8, verifier: impl Verifier) -> Self {
        assert!(
            verifier.is_exact() || !self.checkers.contains_key(&job_index),
            "job {job_index} has a checker: it cannot also have a tolerant verifier"
        );
        self.verifiers.insert(job_index, Arc::new(verifier));
        self
    }

    /// Checks outputs of job `job_index` claimed by another operator with `checker`, which makes the job
    /// [`Verification::Checked`]: one operator (the executor) runs the job (`POST /v1/jobs`), and every other one
    /// runs `checker` on the claimed output (`POST /v1/endorsements`) and signs that output as its own result only
    /// on [`Agreement::Agree`].
    ///
    /// `checker` is an async fn with the usual extractors plus [`Claimed`](crate::Claimed), returning an
    /// [`Agreement`] (or `Result<Agreement, E>`, see [`IntoAgreement`](crate::IntoAgreement)). Layers added later
    /// with [`Router::layer`] wrap it as they wrap routes (so a timeout or a concurrency limit covers checks too),
    /// and [`Router::with_state`] gives it the state.
    ///
    /// # Panics
    ///
    /// If job `job_index` already has a checker, or a verifier other than [`Exact`].
    #[track_caller]
    pub fn checker<C, T>(mut self, job_index: u8, checker: C) -> Self
    where
        C: Checker<T, S>,
        T: 'static,
    {
        assert!(!self.checkers.contains_key(&job_index), "job {job_index} has two checkers");
        assert!(
            self.verifiers.get(&job_index).is_none_or(|v| v.is_exact()),
            "job {job_index} has a tolerant verifier: it cannot also have a checker"
        );
        let make: MakeService<S, Agreement> =
            Arc::new(move |state: S| BoxCheckService::new(CheckerService::new(checker.clone(), state)));
        self.checkers.insert(job_index, Endpoint::new(make));
        self
    }

    /// Wraps every route and checker added so far in `layer` (timeout, concurrency limit, tracing, …; see
    /// [`layers`](crate::layers)). The last layer added is the outermost. A layer with shared state (a
    /// concurrency limit) shares it across every route and checker it wraps.
    ///
    /// Errors of the layered service are mapped back with [`JobError::from_layer_error`], so tower's
    /// timeout and load-shed errors become [`JobError::Timeout`] and [`JobError::Overloaded`].
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<BoxJobService> + Layer<BoxCheckService> + Clone + Send + Sync + 'static,
        <L as Layer<BoxJobService>>::Service: Service<JobCall, Response = JobOutput> + Clone + Send + Sync + 'static,
        <<L as Layer<BoxJobService>>::Service as Service<JobCall>>::Error: Into<BoxError>,
        <<L as Layer<BoxJobService>>::Service as Service<JobCall>>::Future: Send + 'static,
        <L as Layer<BoxCheckService>>::Service: Service<JobCall, Response = Agreement> + Clone + Send + Sync + 'static,
        <<L as Layer<BoxCheckService>>::Service as Service<JobCall>>::Error: Into<BoxError>,
        <<L as Layer<BoxCheckService>>::Service as Service<JobCall>>::Future: Send + 'static,
    {
        let routes = self.routes.into_iter().map(|(job, endpoint)| (job, endpoint.layered(&layer))).collect();
        let checkers = self.checkers.into_iter().map(|(job, endpoint)| (job, endpoint.layered(&layer))).collect();
        Self { routes, verifiers: self.verifiers, checkers }
    }

    /// Supplies the state handlers (and checkers) extract with [`Context<S>`](crate::Context), axum-style. The
    /// result is usually a `Router<()>`, ready to run.
    pub fn with_state<S2>(self, state: S) -> Router<S2> {
        let routes = self.routes.into_iter().map(|(job, endpoint)| (job, endpoint.with_state(&state))).collect();
        let checkers = self.checkers.into_iter().map(|(job, endpoint)| (job, endpoint.with_state(&state))).collect();
        Router { routes, verifiers: self.verifiers, checkers }
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

    /// Whether job `job_index` has a checker ([`Router::checker`]).
    pub fn has_checker(&self, job_index: u8) -> bool {
        self.checkers.contains_key(&job_index)
    }

    /// How operators of job `job_index` come to sign one result, as the blueprint declares it in its metadata:
    /// [`Verification::Checked`] when a checker was set with [`Router::checker`], [`Verification::Tolerant`] when a
    /// verifier other than [`Exact`] was set with [`Router::verifier`], else [`Verification::Exact`].
    pub fn verification_for(&self, job_index: u8) -> Verification {
        if self.checkers.contains_key(&job_index) {
            Verification::Checked
        } else if self.verifiers.get(&job_index).is_some_and(|v| !v.is_exact()) {
            Verification::Tolerant
        } else {
            Verification::Exact
        }
    }
}

fn apply_layer<L, R>(
    layer: &L,
    service: BoxCloneSyncService<JobCall, R, JobError>,
) -> BoxCloneSyncService<JobCall, R, JobError>
where
    R: 'static,
    L: Layer<BoxCloneSyncService<JobCall, R, JobError>>,
    L::Service: Service<JobCall, Response = R> + Clone + Send + Sync + 'static,
    <L::Service as Service<JobCall>>::Error: Into<BoxError>,
    <L::Service as Service<JobCall>>::Future: Send + 'static,
{
    BoxCloneSyncService::new(layer.layer(service).map_err(|error| JobError::from_layer_error(error.into())))
}

impl Router<()> {
    /// Runs `call` on a clone of this router (tower's `oneshot`). The future does not borrow the
    /// router.
    pub fn call(&self, call: JobCall) -> JobFuture {
        Box::pin(self.clone().oneshot(call))
    }

    /// Runs the checker of job `call.job_index` on `call`, whose [`JobCall::claimed`] holds the claimed output
    /// (see [`JobCall::with_claimed`]); the checker extracts it with [`Claimed`](crate::Claimed). A job without a
    /// checker is [`JobError::UnknownJob`]. Like [`Router::call`], a panic is [`JobError::Panicked`] and the future
    /// does not borrow the router.
    pub fn check(&self, call: JobCall) -> CheckFuture {
        let service = match self.checkers.get(&call.job_index) {
            None => return Box::pin(future::ready(Err(JobError::UnknownJob { job_index: call.job_index }))),
            Some(Endpoint::Ready(service)) => service.clone(),
            // Unreachable in practice: a `Router<()>` gets ready services in `checker` and `with_state`.
            Some(Endpoint::NeedsState(make)) => make(()),
        };
        catch_panics(service.oneshot(call))
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
