//! Write a Vouch blueprint: job handlers as plain `async fn`s whose arguments are extractors,
//! routed by job index like axum routes paths, wrapped in tower layers, with per-job result
//! verifiers and lifecycle hooks.
//!
//! A handler's arguments implement [`FromJobCall`] ([`Json`], [`Caller`], [`Inputs`], [`Context`],
//! [`JobIndex`], [`ServiceId`], [`CallId`], or your own), its return value implements
//! [`IntoJobOutput`]. Every failure (unknown job, rejected input, handler error, panic, timeout,
//! overload) is a [`JobError`] value, never a crash of the node.
//!
//! ```
//! use std::time::Duration;
//!
//! use serde::{Deserialize, Serialize};
//! use vouch_sdk::{Caller, CallId, JobCall, JobError, Json, Router, ServiceId, layers};
//!
//! #[derive(Deserialize)]
//! struct Add {
//!     a: u64,
//!     b: u64,
//! }
//!
//! #[derive(Serialize)]
//! struct Sum {
//!     sum: u64,
//! }
//!
//! /// Job 0: adds two numbers; an overflow is a handler error.
//! async fn add(Json(input): Json<Add>) -> Result<Json<Sum>, String> {
//!     let sum = input.a.checked_add(input.b).ok_or("the sum overflows a u64")?;
//!     Ok(Json(Sum { sum }))
//! }
//!
//! /// Job 1: says who pays.
//! async fn payer(Caller(caller): Caller) -> String {
//!     caller.to_string()
//! }
//!
//! let router: Router = Router::new()
//!     .route(0, add)
//!     .route(1, payer)
//!     .layer(layers::timeout(Duration::from_secs(10)));
//! assert_eq!(router.jobs(), vec![0, 1]);
//!
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let call = |job, inputs: &'static str| JobCall::new(ServiceId(1), CallId::from(1), job, Default::default(), inputs);
//! let output = router.call(call(0, r#"{"a": 2, "b": 3}"#)).await?;
//! assert_eq!(&output.bytes[..], br#"{"sum":5}"#);
//!
//! let error = router.call(call(0, r#"{"a": 2}"#)).await.err();
//! assert!(matches!(error, Some(JobError::BadInput(message)) if message.contains("missing field `b`")));
//! assert_eq!(router.call(call(7, "")).await.err(), Some(JobError::UnknownJob { job_index: 7 }));
//! # Ok::<(), JobError>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The node runs a [`Router<()>`](Router) as a tower [`Service<JobCall>`](tower::Service); a blueprint
//! exposes it through [`Blueprint`], along with its hooks and background services.
//!
//! # What this crate must never depend on
//!
//! Node internals or anything that does I/O on the node's behalf: no `vouch-node`, no
//! `vouch-contracts` or alloy providers, no SQLite, no axum or HTTP stack, no keystores. A blueprint
//! depends on this crate only, and must stay buildable and testable without a chain. (tokio reaches
//! us only through tower's timeout and limit layers; handlers may use any async code.)

mod blueprint;
mod error;
mod extract;
mod handler;
mod job;
mod json;
pub mod layers;
mod output;
mod router;
mod verifier;

pub use blueprint::{BackgroundService, Blueprint, JobSpec};
pub use error::JobError;
pub use extract::{Caller, Context, FromJobCall, Inputs, JobIndex};
pub use handler::Handler;
pub use job::{JobCall, JobOutput};
pub use json::Json;
pub use output::{IntoJobOutput, Reject};
pub use router::{BoxJobService, JobFuture, Router};
pub use verifier::{Agreement, Exact, JsonTolerance, Verifier};

pub use alloy_primitives::{Address, B256};
pub use bytes::Bytes;
pub use futures_util::future::BoxFuture;
pub use vouch_primitives::{CallId, ServiceId, wire::Verification};
