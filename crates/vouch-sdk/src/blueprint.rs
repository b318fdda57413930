//! [`Blueprint`]: a blueprint's router, metadata, lifecycle hooks and background services.

use std::fmt;

use futures_util::future::{self, BoxFuture};
use vouch_primitives::ServiceId;

use crate::{JobError, Router};

/// What the node needs from a blueprint: its jobs (as a [`Router`]) and its hooks.
///
/// A blueprint is a library; the node links it and calls these methods. Only [`Blueprint::name`] and
/// [`Blueprint::router`] are required.
pub trait Blueprint: Send + Sync + 'static {
    /// The blueprint's name, as in its on-chain metadata (e.g. `"echo"`).
    fn name(&self) -> &str;

    /// The jobs, routed by job index. Called once when the node starts.
    fn router(&self) -> Router;

    /// Human-facing description of each job (name, suggested price and deadline), for
    /// `vouch blueprint deploy` and docs. Default: none.
    fn jobs(&self) -> Vec<JobSpec> {
        Vec::new()
    }

    /// What an operator submits when registering for this blueprint (default: nothing, `null`).
    fn registration_inputs(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// A service that names this operator became active: prepare for it (load a model, warm a
    /// cache). An error is logged by the node and the operator does not serve the service.
    fn on_service_activated(&self, service_id: ServiceId) -> BoxFuture<'static, Result<(), JobError>> {
        let _ = service_id;
        Box::pin(future::ready(Ok(())))
    }

    /// Long-running tasks the node runs beside the jobs and supervises by name (a task that ends,
    /// with `Ok` or `Err`, is logged). Default: none.
    fn background_services(&self) -> Vec<BackgroundService> {
        Vec::new()
    }
}

/// One job of a blueprint, described for people and deploy tooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// The job index the router routes.
    pub index: u8,
    /// A short name, `snake_case`.
    pub name: &'static str,
    /// One sentence on what the job does.
    pub description: &'static str,
    /// Suggested price per call, in the smallest unit of the payment token (e.g. 1000 = 0.001 of a
    /// 6-decimals stablecoin).
    pub suggested_price: u128,
    /// Suggested deadline: seconds from the call's opening until it must be settled.
    pub suggested_deadline_secs: u64,
}

/// A named long-running task of a blueprint, supervised by the node.
pub struct BackgroundService {
    /// A name for logs and health reports.
    pub name: String,
    /// The task; it should run until the node shuts down. `Err` carries a readable reason.
    pub task: BoxFuture<'static, Result<(), String>>,
}

impl BackgroundService {
    /// A background service named `name` running `task`.
    pub fn new(name: impl Into<String>, task: impl Future<Output = Result<(), String>> + Send + 'static) -> Self {
        Self { name: name.into(), task: Box::pin(task) }
    }
}

impl fmt::Debug for BackgroundService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundService").field("name", &self.name).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Minimal;

    impl Blueprint for Minimal {
        fn name(&self) -> &str {
            "minimal"
        }
        fn router(&self) -> Router {
            Router::new().route(0, || async { "ok" })
        }
    }

    #[tokio::test]
    async fn defaults_do_nothing() {
        let blueprint: Box<dyn Blueprint> = Box::new(Minimal);
        assert_eq!(blueprint.name(), "minimal");
        assert_eq!(blueprint.router().jobs(), vec![0]);
        assert!(blueprint.jobs().is_empty());
        assert_eq!(blueprint.registration_inputs(), serde_json::Value::Null);
        assert_eq!(blueprint.on_service_activated(ServiceId(1)).await, Ok(()));
        assert!(blueprint.background_services().is_empty());
    }

    #[tokio::test]
    async fn background_services_run() {
        let service = BackgroundService::new("ticker", async { Err("stopped".to_owned()) });
        assert_eq!(service.name, "ticker");
        assert!(format!("{service:?}").contains("ticker"));
        assert_eq!(service.task.await, Err("stopped".to_owned()));
    }
}
