//! The signing guard: no signature leaves the node unless `(service, call) → result` is durably recorded first.
//!
//! An operator that signs two different results for one call is slashed for equivocation (DESIGN.md §4.3). The
//! guard makes that impossible from this node, after crashes and restarts included, in the manner of lighthouse's
//! slashing protection:
//!
//! - [`SigningGuard::sign`] / [`SigningGuard::sign_async`] sign each [`ResultRef`](vouch_primitives::ResultRef)
//!   over [`result_digest`](vouch_primitives::result_digest), then record it in one `EXCLUSIVE` SQLite
//!   transaction and release the signatures only after `COMMIT`. The same result (and inputs) for a recorded call
//!   returns the recorded signature; a different one is refused with [`GuardError::Refused`]`(`[`NotSafe`]`)`, and
//!   nothing of that request is recorded. Concurrent requests go through one writer thread that commits everything
//!   pending at once (group commit: one fsync for many calls), each request under its own savepoint.
//! - [`SigningGuard::commit`] / [`SigningGuard::commit_async`] do the same for output *commitments* of tolerant
//!   jobs (`docs/design/tolerant-verification.md`): `(service, call) → (inputs hash, output hash, output)` over
//!   [`commitment_digest`](vouch_primitives::commitment_digest), one per call, the same one again answered with its
//!   recorded signature, a different one refused ([`NotSafe::ConflictingCommitment`],
//!   [`NotSafe::ConflictingCommitmentInputs`]). Commitments are kept apart from results: a call may have one
//!   commitment and one result, with different hashes (the result is the canonical output the node endorsed). The
//!   output bytes are kept so that an endorsement can compare against them.
//! - The database is bound at initialisation to one [`ChainBinding`](vouch_primitives::ChainBinding) and one BLS
//!   public key; opening it for another is an error, never a silent fresh start.
//! - It fails closed: [`OpenMode::Existing`] refuses a missing database ([`GuardError::Missing`] says how to fix
//!   it); only [`OpenMode::Initialise`], on the operator's explicit request, creates one.
//!
//! # Database
//!
//! SQLite in WAL mode with `synchronous = FULL` and a busy timeout. Tables: `meta` (one row: schema version 2,
//! chain id, protocol contract, 48-byte compressed public key, creation time), `signed_results`
//! (`service_id INTEGER`, `call_id BLOB(32)`, `inputs_hash BLOB(32)`, `result_hash BLOB(32)`,
//! `signature BLOB(96)` compressed, `signed_at INTEGER` Unix seconds; primary key `(service_id, call_id)`) and
//! `signed_commitments` (`service_id`, `call_id`, `inputs_hash`, `output_hash BLOB(32)`, `output BLOB`,
//! `signature BLOB(96)` over the commitment digest, `signed_at`; primary key `(service_id, call_id)`). A version-1
//! database (no `signed_commitments`) is migrated in place when opened. New files are created with mode 0600.
//!
//! # Interchange format, version 1
//!
//! [`SigningGuard::export`] and [`SigningGuard::import`] move records between databases (a new machine, a
//! restore) as JSON; unknown fields are rejected at every level:
//!
//! ```json
//! {
//!   "version": 1,
//!   "chainId": 31337,
//!   "protocol": "0x…20 bytes",
//!   "publicKey": "0x…48 bytes, compressed G1",
//!   "records": [
//!     {
//!       "serviceId": 1,
//!       "callId": "0x7",
//!       "inputsHash": "0x…32 bytes",
//!       "resultHash": "0x…32 bytes",
//!       "signature": "0x…96 bytes, compressed G2",
//!       "signedAt": 1767225600
//!     }
//!   ],
//!   "commitments": [
//!     {
//!       "serviceId": 1,
//!       "callId": "0x8",
//!       "inputsHash": "0x…32 bytes",
//!       "outputHash": "0x…32 bytes, keccak256(output)",
//!       "output": "0x…the committed output",
//!       "signature": "0x…96 bytes, compressed G2",
//!       "signedAt": 1767225600
//!     }
//!   ]
//! }
//! ```
//!
//! `commitments` is omitted when empty (so such a document is exactly what earlier nodes write and read); an
//! earlier node refuses a document that has it (unknown field) rather than dropping the commitments.
//!
//! `callId` is a `uint256`, written as `0x` hex; a decimal string is accepted on import. `serviceId`, `chainId`
//! and `signedAt` are JSON integers (u64). An import must match the database's chain, protocol and key, checks that
//! each commitment's output hashes to its output hash, adds new records and commitments, skips identical ones, and
//! imports nothing if any conflicts. See `docs/design/signing-guard.md`.

mod error;
mod interchange;
mod schema;
mod signing_guard;
mod writer;

pub use error::{GuardError, InterchangeError, NotSafe};
pub use interchange::{INTERCHANGE_VERSION, Interchange, InterchangeCommitment, InterchangeRecord};
pub use signing_guard::{CommitmentRecord, Committed, ImportSummary, OpenMode, Record, Signed, SigningGuard};
