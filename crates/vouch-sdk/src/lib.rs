//! Write a Vouch blueprint: job handlers as plain `async fn`s whose arguments are extractors,
//! routed by job index like axum routes paths, wrapped in tower layers, with per-job result
//! verifiers or checkers and lifecycle hooks.
//!
//! A handler's arguments implement [`FromJobCall`] ([`Json`], [`Caller`], [`Inputs`], [`Context`],
//! [`JobIndex`], [`ServiceId`], [`CallId`], or your own), its return value implements
//! [`IntoJobOutput`]. A checker's are the same plus [`Claimed`], and it returns an [`Agreement`]
//! ([`IntoAgreement`]). Every failure (unknown job, rejected input, handler error, panic, timeout,
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
//! # How operators agree: [`Verification`]
//!
//! By default a job is [`Verification::Exact`]: every operator runs it and signs its own output, and a
//! certificate needs equal bytes. Two other modes serve jobs whose honest outputs differ between
//! machines (`docs/design/tolerant-verification.md`):
//!
//! - **Tolerant** — set a [`Verifier`] with [`Router::verifier`] (e.g. [`JsonTolerance`]): each operator
//!   commits to its own output, and signs the output proposed for certification only if the verifier
//!   says it agrees with its own.
//! - **Checked** — set a checker with [`Router::checker`]: one operator runs the job, the others run
//!   the (cheaper) checker on its [`Claimed`] output and sign it only on [`Agreement::Agree`].
//!
//! ```
//! use vouch_sdk::{Agreement, Claimed, Json, JsonTolerance, Router, Verification};
//!
//! async fn square(Json(x): Json<f64>) -> Json<f64> {
//!     Json(x * x)
//! }
//!
//! async fn sort(Json(mut v): Json<Vec<i64>>) -> Json<Vec<i64>> {
//!     v.sort_unstable();
//!     Json(v)
//! }
//!
//! /// Checking a sort is cheaper than sorting: the claim must be ordered and a permutation of the input.
//! async fn check_sort(Json(mut input): Json<Vec<i64>>, claimed: Claimed) -> Agreement {
//!     let claim: Vec<i64> = match claimed.json() {
//!         Ok(claim) => claim,
//!         Err(disagreement) => return disagreement,
//!     };
//!     if !claim.is_sorted() {
//!         return Agreement::disagree("the claimed output is not sorted");
//!     }
//!     input.sort_unstable();
//!     if input == claim { Agreement::Agree } else { Agreement::disagree("not a permutation of the input") }
//! }
//!
//! let router: Router = Router::new()
//!     .route(0, square)
//!     .verifier(0, JsonTolerance { absolute: 1e-9, relative: 1e-12 })
//!     .route(1, sort)
//!     .checker(1, check_sort);
//! assert_eq!(router.verification_for(0), Verification::Tolerant);
//! assert_eq!(router.verification_for(1), Verification::Checked);
//! ```
//!
//! # What this crate must never depend on
//!
//! Node internals or anything that does I/O on the node's behalf: no `vouch-node`, no
//! `vouch-contracts` or alloy providers, no SQLite, no axum or HTTP stack, no keystores. A blueprint
//! depends on this crate only, and must stay buildable and testable without a chain. (tokio reaches
//! us only through tower's timeout and limit layers; handlers may use any async code.)

mod blueprint;
mod check;
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
pub use check::{Checker, Claimed, IntoAgreement};
pub use error::JobError;
pub use extract::{Caller, Context, FromJobCall, Inputs, JobIndex};
pub use handler::Handler;
pub use job::{JobCall, JobOutput};
pub use json::Json;
pub use output::{IntoJobOutput, Reject};
pub use router::{BoxCheckService, BoxJobService, CheckFuture, JobFuture, Router};
pub use verifier::{Agreement, Exact, JsonTolerance, Verifier};

pub use alloy_primitives::{Address, B256};
pub use bytes::Bytes;
pub use futures_util::future::BoxFuture;
pub use vouch_primitives::{CallId, ServiceId, wire::Verification};
