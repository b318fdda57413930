//! The Vouch gateway (`vouch gateway run`): the front door for customers and AI agents.
//!
//! - [`x402`]: x402 v2 (`exact` scheme on the protocol's EIP-3009 token): `PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE`,
//!   `PAYMENT-RESPONSE`, the requirements a job's price gives, and the facilitator endpoints.
//! - [`api`]: `GET /v1/services` ([`catalogue`]) and `POST /v1/services/{id}/jobs/{job}`: 402, verify, record
//!   ([`store`]) before anything else, fan out ([`fanout`]) to the operators, answer with the certificate at quorum.
//!   Jobs declared tolerant or checked in their blueprint's metadata are orchestrated in rounds ([`rounds`]:
//!   commit then endorse, or execute then check); the certificate is the same.
//! - [`calls`]: `Prefer: respond-async` answers `202` with a result URL, `GET /v1/calls/{callId}` polls it; the
//!   work of a paid call outlives its client's connection.
//! - [`events`]: the deployment's events (`eth_getLogs`, every `events_poll_ms`) drop what they changed from the
//!   cached services, endpoints and blueprint metadata; a 60 s TTL is only a backstop.
//! - [`settlement`]: paid, answered calls go on chain in batches (`VouchProtocol.settlePaidBatch`): payment and
//!   certificate in one transaction.
//! - [`reporter`]: an operator's signature on a result other than the certified one is kept as evidence and, once
//!   the call is settled, reported to `VouchSlasher` (prove, propose, execute after the dispute window).
//!
//! The gateway is an untrusted relay (DESIGN.md §2): it cannot forge certificates (the contract re-checks every
//! signature) and cannot take payments (they go from the payer to the protocol). It must never depend on the node's
//! internals or on ML crates.

pub mod api;
pub mod calls;
pub mod catalogue;
pub mod events;
pub mod fanout;
mod gateway;
pub mod openai;
pub mod reporter;
pub mod rounds;
mod settle;
pub mod settlement;
pub mod store;
pub mod x402;

pub use gateway::{Gateway, GatewayConfig, GatewayStartError, RunningGateway};
