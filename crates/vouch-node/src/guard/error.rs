//! Typed errors and refusals of the signing guard.

use alloy_primitives::{B256, FixedBytes};
use std::{path::PathBuf, sync::Arc};
use vouch_crypto::CryptoError;
use vouch_primitives::{CallId, ChainBinding, ServiceId};

/// Why signing a result or a commitment (or importing a record) would be unsafe: the guard already holds a record of
/// the same kind for the same call that differs. Signing anyway could get the operator slashed for equivocation, so the guard refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotSafe {
    /// A different result is recorded for this call.
    #[error("{service_id} {call_id}: result {recorded_result} is already signed, refusing {attempted_result}")]
    ConflictingResult {
        /// The service of the call.
        service_id: ServiceId,
        /// The call.
        call_id: CallId,
        /// Result hash recorded (and signed) earlier.
        recorded_result: B256,
        /// Result hash of the refused attempt.
        attempted_result: B256,
    },
    /// The same result is recorded for this call, but with different inputs.
    #[error("{service_id} {call_id}: inputs {recorded_inputs} are already signed, refusing inputs {attempted_inputs}")]
    ConflictingInputs {
        /// The service of the call.
        service_id: ServiceId,
        /// The call.
        call_id: CallId,
        /// Inputs hash recorded (and signed) earlier.
        recorded_inputs: B256,
        /// Inputs hash of the refused attempt.
        attempted_inputs: B256,
    },
    /// A commitment to another output is recorded for this call: a node commits once per call.
    #[error(
        "{service_id} {call_id}: a commitment to output {recorded_output} is already signed, refusing output \
         {attempted_output}"
    )]
    ConflictingCommitment {
        /// The service of the call.
        service_id: ServiceId,
        /// The call.
        call_id: CallId,
        /// Output hash of the recorded commitment.
        recorded_output: B256,
        /// Output hash of the refused attempt.
        attempted_output: B256,
    },
    /// A commitment with other inputs is recorded for this call.
    #[error(
        "{service_id} {call_id}: a commitment with inputs {recorded_inputs} is already signed, refusing inputs \
         {attempted_inputs}"
    )]
    ConflictingCommitmentInputs {
        /// The service of the call.
        service_id: ServiceId,
        /// The call.
        call_id: CallId,
        /// Inputs hash of the recorded commitment.
        recorded_inputs: B256,
        /// Inputs hash of the refused attempt.
        attempted_inputs: B256,
    },
}

impl NotSafe {
    /// Whether the refusal is about an output commitment rather than a signed result.
    pub fn is_commitment(&self) -> bool {
        matches!(self, Self::ConflictingCommitment { .. } | Self::ConflictingCommitmentInputs { .. })
    }
}

/// Why an interchange document cannot be imported (or parsed).
#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    /// The document is not JSON of the interchange schema (unknown fields are rejected).
    #[error("not a signing-guard interchange document: {0}")]
    Json(#[from] serde_json::Error),
    /// The document has a version this node does not read.
    #[error("interchange version {found} is not supported (this node reads version {supported})")]
    UnsupportedVersion {
        /// Version in the document.
        found: u32,
        /// The version this node reads and writes.
        supported: u32,
    },
    /// The document was exported for another chain or protocol contract.
    #[error(
        "the records are for chain {} / protocol {}, but this signing database is for chain {} / protocol {}",
        file.chain_id, file.contract, guard.chain_id, guard.contract
    )]
    WrongBinding {
        /// Binding named by the document.
        file: ChainBinding,
        /// Binding of the signing database.
        guard: ChainBinding,
    },
    /// The document was exported for another BLS key.
    #[error("the records are for BLS key {file}, but this signing database is for key {guard}")]
    WrongKey {
        /// Public key named by the document (compressed).
        file: FixedBytes<48>,
        /// Public key of the signing database (compressed).
        guard: FixedBytes<48>,
    },
    /// A record carries bytes that are not a valid compressed signature.
    #[error("record for {service_id} {call_id}: invalid signature: {source}")]
    InvalidSignature {
        /// The service of the record.
        service_id: ServiceId,
        /// The call of the record.
        call_id: CallId,
        /// Why the bytes are not a signature.
        source: CryptoError,
    },
    /// A commitment's output does not hash to its output hash.
    #[error("commitment for {service_id} {call_id}: the output hashes to {actual}, not to its output hash {claimed}")]
    CommitmentOutputMismatch {
        /// The service of the commitment.
        service_id: ServiceId,
        /// The call of the commitment.
        call_id: CallId,
        /// The output hash in the document.
        claimed: B256,
        /// `keccak256` of the output in the document.
        actual: B256,
    },
}

/// Errors of the signing guard. Every error means that no signature was released.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// No signing database exists and the node was not told to initialise one (the guard fails closed).
    #[error(
        "no signing database at {}: the signing guard fails closed and signs nothing without one. If this operator \
         key has never signed on this chain, initialise one with `vouch node init` (or `--init-guard`); if it has, \
         initialise one and import the records you exported from the previous node (`vouch node guard import <file>`)",
        path.display()
    )]
    Missing {
        /// Where the database was expected.
        path: PathBuf,
    },
    /// The file exists but was never initialised as a signing database.
    #[error(
        "{} is not an initialised signing database (no `meta` table); refusing to use it. Move it away, or \
         initialise it explicitly (`--init-guard`)",
        path.display()
    )]
    NotInitialised {
        /// The file.
        path: PathBuf,
    },
    /// The database was written by a version of the node with another schema.
    #[error("signing database {}: schema version {found} is not supported (this node uses {supported})", path.display())]
    UnsupportedSchema {
        /// The database.
        path: PathBuf,
        /// Version recorded in the database.
        found: i64,
        /// Version this node reads and writes.
        supported: i64,
    },
    /// The database guards signatures for another chain or protocol contract.
    #[error(
        "signing database {} is for chain {} / protocol {}, but the node is configured for chain {} / protocol {}; \
         a guard for another deployment is never used (point the node at the right database)",
        path.display(), recorded.chain_id, recorded.contract, expected.chain_id, expected.contract
    )]
    WrongBinding {
        /// The database.
        path: PathBuf,
        /// Binding recorded at initialisation.
        recorded: ChainBinding,
        /// Binding the node is configured with.
        expected: ChainBinding,
    },
    /// The database guards signatures of another BLS key.
    #[error(
        "signing database {} guards BLS key {recorded}, but the node's key is {expected}; a guard for another key \
         is never used (point the node at the right database or key)",
        path.display()
    )]
    WrongKey {
        /// The database.
        path: PathBuf,
        /// Public key recorded at initialisation (compressed).
        recorded: FixedBytes<48>,
        /// Public key the node is configured with (compressed).
        expected: FixedBytes<48>,
    },
    /// `sign` was called with a secret key that is not the key this guard protects.
    #[error("signing database {} guards BLS key {guarded}, refusing to sign with key {offered}", path.display())]
    ForeignSecretKey {
        /// The database.
        path: PathBuf,
        /// Public key the guard protects (compressed).
        guarded: FixedBytes<48>,
        /// Public key of the secret offered (compressed).
        offered: FixedBytes<48>,
    },
    /// Signing would be unsafe (slashable): nothing of the request was recorded or released.
    #[error("refused to sign, nothing of this request was signed: {0}")]
    Refused(NotSafe),
    /// An import conflicts with a record already in the database: nothing was imported.
    #[error("import refused, nothing was imported: {0}")]
    ImportConflict(NotSafe),
    /// The database holds a value it could not have written (a damaged or tampered file).
    #[error("signing database {} is damaged: {what}", path.display())]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// What is wrong, and where.
        what: String,
    },
    /// SQLite failed.
    #[error("signing database {}: {action}: {source}", path.display())]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What the guard was doing.
        action: &'static str,
        /// The SQLite error (shared when one failed transaction answers several requests).
        source: Arc<rusqlite::Error>,
    },
    /// A filesystem operation failed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the guard was doing.
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An interchange document could not be imported.
    #[error("signing-guard interchange: {0}")]
    Interchange(Box<InterchangeError>),
    /// An interchange file could not be read.
    #[error("{}: {source}", path.display())]
    InterchangeFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<InterchangeError>,
    },
    /// The guard's writer thread is gone (stopped or crashed), so nothing can be recorded: the guard fails closed.
    #[error("signing database {}: the guard's writer is not running; refusing to sign", path.display())]
    WriterUnavailable {
        /// The database.
        path: PathBuf,
    },
    /// The blocking task that computes the signatures failed (panicked or was cancelled).
    #[error("signing database {}: the signing task failed before anything was recorded: {reason}", path.display())]
    SigningTask {
        /// The database.
        path: PathBuf,
        /// The join error.
        reason: String,
    },
}

impl From<InterchangeError> for GuardError {
    fn from(error: InterchangeError) -> Self {
        Self::Interchange(Box::new(error))
    }
}

impl GuardError {
    pub(crate) fn sqlite(path: &std::path::Path, action: &'static str, source: rusqlite::Error) -> Self {
        Self::Sqlite { path: path.to_path_buf(), action, source: Arc::new(source) }
    }

    /// The refusal, if this error is a refusal to sign a conflicting result (the fail-closed outcome).
    pub fn not_safe(&self) -> Option<&NotSafe> {
        match self {
            Self::Refused(not_safe) | Self::ImportConflict(not_safe) => Some(not_safe),
            _ => None,
        }
    }
}
