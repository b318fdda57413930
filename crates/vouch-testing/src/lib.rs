//! The blueprint test harness: a real local network — anvil with the Vouch contracts, staked operators with BLS
//! keys, your blueprint registered, an active service — and one in-process `vouch-node` per operator running your
//! router. Calls go through the chain exactly as in production; what comes back is the settled certificate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vouch_testing::HarnessError> {
//! use vouch_sdk::{Json, Router};
//!
//! async fn double(Json(n): Json<u64>) -> Json<u64> {
//!     Json(n * 2)
//! }
//!
//! let net = vouch_testing::TestNetwork::builder(Router::new().route(0, double)).operators(3).start().await?;
//! let outcome = net.call(0, &21u64).await?;
//! assert_eq!(outcome.output_json::<u64>()?, 42);
//! assert_eq!(outcome.certificate.signer_bitmap.count_ones(), 3);
//! # Ok(()) }
//! ```
//!
//! This crate depends on the node and the devnet so that `vouch-sdk` never has to.

mod harness;
pub mod money;

pub use harness::{CallOutcome, HarnessError, TestNetwork, TestNetworkBuilder};
pub use vouch_devnet::{self as devnet, JobConfig};
