//! [`SigningGuard`]: the only way the node signs results and output commitments.

use super::{
    error::{GuardError, InterchangeError},
    interchange::{INTERCHANGE_VERSION, Interchange, InterchangeCommitment, InterchangeRecord},
    schema::{self, SELECT_COMMITMENT, SELECT_RECORD, call_key, u64_from_sql},
    writer::{self, CommitJob, ImportJob, Job, Reply, SignJob},
};
use alloy_primitives::{B256, Bytes, keccak256};
use rusqlite::{Connection, OptionalExtension};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread::JoinHandle,
};
use vouch_crypto::{PublicKey, SecretKey, Signature};
use vouch_primitives::{CallId, ChainBinding, CommitmentRef, ResultRef, ServiceId, commitment_digest, result_digest};

/// What to do when the signing database does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing, initialised database; a missing one is [`GuardError::Missing`] (fail closed). This is how
    /// the node always starts.
    Existing,
    /// Create and initialise the database if it is missing, or open it if it exists (its binding and key are
    /// still checked). Only on the operator's explicit request (`vouch node init`, `--init-guard`): a fresh
    /// database forgets everything signed before.
    Initialise,
}

/// One result the guard let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signed {
    /// What was signed.
    pub entry: ResultRef,
    /// The signature over `result_digest(binding, entry)`.
    pub signature: Signature,
    /// `true` if recorded by this request, `false` if the same result was recorded earlier and its signature is
    /// returned again.
    pub fresh: bool,
}

/// A record of the signing database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The signed result.
    pub entry: ResultRef,
    /// The signature released for it.
    pub signature: Signature,
    /// When it was recorded (Unix seconds).
    pub signed_at: u64,
}

/// One output commitment the guard let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// What was committed to (`output_hash = keccak256(output)`).
    pub entry: CommitmentRef,
    /// The committed output.
    pub output: Bytes,
    /// The signature over `commitment_digest(binding, entry)`.
    pub signature: Signature,
    /// `true` if recorded by this request, `false` if the same commitment was recorded earlier and its signature is
    /// returned again.
    pub fresh: bool,
}

/// An output commitment recorded in the signing database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentRecord {
    /// What was committed to.
    pub entry: CommitmentRef,
    /// The committed output (`keccak256(output) = entry.output_hash`).
    pub output: Bytes,
    /// The signature released for it.
    pub signature: Signature,
    /// When it was recorded (Unix seconds).
    pub signed_at: u64,
}

/// What an import did (results and commitments counted together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records added.
    pub imported: usize,
    /// Records already present with the same inputs and result (skipped).
    pub identical: usize,
}

/// The signing guard: records `(service, call) → result` durably before any signature leaves the process, returns
/// the same signature for the same result, and refuses a different one.
///
/// Cheap to clone (one `Arc`); every clone shares one writer thread, which closes the database when the last clone
/// is dropped.
#[derive(Clone)]
pub struct SigningGuard {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    binding: ChainBinding,
    public_key: PublicKey,
    /// Queue of the writer thread; `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    /// Connection for reads (`get`, `export`); WAL lets it read while the writer writes.
    reader: Mutex<Connection>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            // The writer answers what is queued, then sees the closed queue and stops.
            if writer.join().is_err() {
                tracing::error!(db = %self.path.display(), "signing guard writer thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for SigningGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningGuard")
            .field("path", &self.inner.path)
            .field("binding", &self.inner.binding)
            .field("public_key", &self.inner.public_key)
            .finish_non_exhaustive()
    }
}

impl SigningGuard {
    /// Opens the signing database at `path` for the results `key` signs on `binding`.
    ///
    /// With [`OpenMode::Existing`] a missing file is [`GuardError::Missing`]; with [`OpenMode::Initialise`] it is
    /// created (mode 0600) and bound to `binding` and `key`. A database bound to another chain, contract or key is
    /// refused ([`GuardError::WrongBinding`], [`GuardError::WrongKey`]), in either mode.
    pub fn open(path: &Path, mode: OpenMode, binding: ChainBinding, key: &PublicKey) -> Result<Self, GuardError> {
        let writer_conn = schema::open(path, mode, binding, key)?;
        let reader = schema::connect(path)?;
        let (jobs, writer) = writer::spawn(writer_conn, path.to_path_buf())?;
        tracing::info!(db = %path.display(), chain_id = binding.chain_id, protocol = %binding.contract, key = %key,
            "signing guard open");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                binding,
                public_key: *key,
                jobs: Some(jobs),
                writer: Some(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The chain and protocol contract the guarded signatures are bound to.
    pub fn binding(&self) -> ChainBinding {
        self.inner.binding
    }

    /// The BLS public key whose signatures this guard protects.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key
    }

    /// Signs results of one or more calls, all or nothing, blocking the calling thread (BLS signing, ≈1 ms per
    /// entry, runs on it; then the writer's group commit).
    ///
    /// Each entry is signed over [`result_digest`]`(binding, entry)`. Then, in one exclusive transaction: an entry
    /// recorded with the same inputs and result gets its recorded signature back (`fresh: false`); one recorded
    /// with a different result or inputs refuses the whole request ([`GuardError::Refused`], nothing recorded);
    /// a new one is recorded. Signatures are returned only after the commit is durable. Two entries for one call
    /// in one request must agree. Do not call this from async code: use [`Self::sign_async`].
    pub fn sign(&self, secret: &SecretKey, entries: &[ResultRef]) -> Result<Vec<Signed>, GuardError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let entries = self.compute_signatures(secret, entries)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Sign(SignJob { entries, reply: Reply::Blocking(reply) }))?;
        answer.recv().map_err(|_| self.writer_unavailable())?
    }

    /// [`Self::sign`] for async code: the signatures are computed on tokio's blocking pool (so they use every
    /// core), then recorded by the writer thread together with whatever else is pending (one fsync for all).
    ///
    /// Dropping the future after the request was queued is safe: the records may be committed, but the signatures
    /// are not released, and a retry gets the same ones back.
    pub async fn sign_async(&self, secret: Arc<SecretKey>, entries: Vec<ResultRef>) -> Result<Vec<Signed>, GuardError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let guard = self.clone();
        let entries = tokio::task::spawn_blocking(move || guard.compute_signatures(&secret, &entries))
            .await
            .map_err(|e| GuardError::SigningTask { path: self.inner.path.clone(), reason: e.to_string() })??;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Sign(SignJob { entries, reply: Reply::Async(reply) }))?;
        answer.await.map_err(|_| self.writer_unavailable())?
    }

    /// Commits to `output` as this operator's own output for a call of a tolerant job, blocking the calling thread
    /// (the signing runs on it; then the writer's group commit).
    ///
    /// Signs [`commitment_digest`]`(binding, (service_id, call_id, inputs_hash, keccak256(output)))`, then, in the
    /// writer's exclusive transaction: a call with no commitment records this one with its output (`fresh: true`);
    /// the same commitment again (same inputs and output hash) returns the recorded signature (`fresh: false`); a
    /// different one is refused ([`GuardError::Refused`] with [`NotSafe::ConflictingCommitment`](super::NotSafe) or
    /// `ConflictingCommitmentInputs`, nothing recorded). The signature is released only after the commit is durable. Commitments are kept apart
    /// from results: a call may have one of each, with different hashes. Do not call this from async code: use
    /// [`Self::commit_async`].
    pub fn commit(
        &self,
        secret: &SecretKey,
        service_id: ServiceId,
        call_id: CallId,
        inputs_hash: B256,
        output: Bytes,
    ) -> Result<Committed, GuardError> {
        let (entry, output, signature) = self.prepare_commitment(secret, service_id, call_id, inputs_hash, output)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Commit(Box::new(CommitJob { entry, output, signature, reply: Reply::Blocking(reply) })))?;
        answer.recv().map_err(|_| self.writer_unavailable())?
    }

    /// [`Self::commit`] for async code: hashing and signing run on tokio's blocking pool, then the writer records
    /// the commitment with whatever else is pending. Dropping the future is safe, as for [`Self::sign_async`].
    pub async fn commit_async(
        &self,
        secret: Arc<SecretKey>,
        service_id: ServiceId,
        call_id: CallId,
        inputs_hash: B256,
        output: Bytes,
    ) -> Result<Committed, GuardError> {
        let guard = self.clone();
        let (entry, output, signature) = tokio::task::spawn_blocking(move || {
            guard.prepare_commitment(&secret, service_id, call_id, inputs_hash, output)
        })
        .await
        .map_err(|e| GuardError::SigningTask { path: self.inner.path.clone(), reason: e.to_string() })??;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Commit(Box::new(CommitJob { entry, output, signature, reply: Reply::Async(reply) })))?;
        answer.await.map_err(|_| self.writer_unavailable())?
    }

    /// Checks the key, hashes the output and signs the commitment.
    fn prepare_commitment(
        &self,
        secret: &SecretKey,
        service_id: ServiceId,
        call_id: CallId,
        inputs_hash: B256,
        output: Bytes,
    ) -> Result<(CommitmentRef, Bytes, Signature), GuardError> {
        self.check_secret(secret)?;
        let entry = CommitmentRef { service_id, call_id, inputs_hash, output_hash: keccak256(&output) };
        let signature = secret.sign(&commitment_digest(&self.inner.binding, &entry));
        Ok((entry, output, signature))
    }

    /// The output commitment of a call, if any.
    pub fn get_commitment(
        &self,
        service_id: ServiceId,
        call_id: CallId,
    ) -> Result<Option<CommitmentRecord>, GuardError> {
        let path = &self.inner.path;
        let reader = self.inner.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut select =
            reader.prepare_cached(SELECT_COMMITMENT).map_err(|e| GuardError::sqlite(path, "reading", e))?;
        let row = select
            .query_row(call_key(service_id, call_id), |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| GuardError::sqlite(path, "reading a commitment", e))?;
        let Some((inputs, output_hash, output, signature, signed_at)) = row else { return Ok(None) };
        commitment_from_row(path, service_id, call_id, (inputs, output_hash, output, signature, signed_at)).map(Some)
    }

    /// The record of a call, if any.
    pub fn get(&self, service_id: ServiceId, call_id: CallId) -> Result<Option<Record>, GuardError> {
        let path = &self.inner.path;
        let reader = self.inner.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut select = reader.prepare_cached(SELECT_RECORD).map_err(|e| GuardError::sqlite(path, "reading", e))?;
        let row = select
            .query_row(call_key(service_id, call_id), |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
            })
            .optional()
            .map_err(|e| GuardError::sqlite(path, "reading a record", e))?;
        let Some((inputs, result, signature, signed_at)) = row else { return Ok(None) };
        let signature = Signature::from_compressed(&signature).map_err(|e| {
            schema::corrupt(path, format!("{service_id} {call_id}: the recorded signature is invalid: {e}"))
        })?;
        Ok(Some(Record {
            entry: ResultRef {
                service_id,
                call_id,
                inputs_hash: schema::b256_from_sql(&inputs, path, "an inputs hash")?,
                result_hash: schema::b256_from_sql(&result, path, "a result hash")?,
            },
            signature,
            signed_at: u64_from_sql(signed_at),
        }))
    }

    /// Every record, in `(service, call)` order, as an interchange document (a consistent snapshot).
    pub fn export(&self) -> Result<Interchange, GuardError> {
        let path = &self.inner.path;
        let sql = |action: &'static str| move |e| GuardError::sqlite(path, action, e);
        let reader = self.inner.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut select = reader
            .prepare("SELECT service_id, call_id, inputs_hash, result_hash, signature, signed_at FROM signed_results")
            .map_err(sql("preparing the export"))?;
        let rows = select
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(sql("exporting"))?;
        let mut records = Vec::new();
        for row in rows {
            let (service_id, call_id, inputs, result, signature, signed_at) = row.map_err(sql("exporting"))?;
            records.push(InterchangeRecord {
                service_id: ServiceId(u64_from_sql(service_id)),
                call_id: schema::call_id_from_sql(&call_id, path)?,
                inputs_hash: schema::b256_from_sql(&inputs, path, "an inputs hash")?,
                result_hash: schema::b256_from_sql(&result, path, "a result hash")?,
                signature: alloy_primitives::FixedBytes::try_from(signature.as_slice())
                    .map_err(|_| schema::corrupt(path, format!("a signature of {} bytes", signature.len())))?,
                signed_at: u64_from_sql(signed_at),
            });
        }
        // Sorted here, not in SQL: ids ≥ 2^63 are stored as negative i64s.
        records.sort_by_key(|r| (r.service_id, r.call_id));
        let mut select = reader
            .prepare(
                "SELECT service_id, call_id, inputs_hash, output_hash, output, signature, signed_at \
                 FROM signed_commitments",
            )
            .map_err(sql("preparing the export"))?;
        let rows = select
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    (
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                        r.get::<_, i64>(6)?,
                    ),
                ))
            })
            .map_err(sql("exporting"))?;
        let mut commitments = Vec::new();
        for row in rows {
            let (service_id, call_id, columns) = row.map_err(sql("exporting"))?;
            let service_id = ServiceId(u64_from_sql(service_id));
            let call_id = schema::call_id_from_sql(&call_id, path)?;
            let record = commitment_from_row(path, service_id, call_id, columns)?;
            commitments.push(InterchangeCommitment {
                service_id,
                call_id,
                inputs_hash: record.entry.inputs_hash,
                output_hash: record.entry.output_hash,
                output: record.output,
                signature: record.signature.to_compressed().into(),
                signed_at: record.signed_at,
            });
        }
        commitments.sort_by_key(|c| (c.service_id, c.call_id));
        Ok(Interchange {
            version: INTERCHANGE_VERSION,
            chain_id: self.inner.binding.chain_id,
            protocol: self.inner.binding.contract,
            public_key: self.inner.public_key.to_compressed().into(),
            records,
            commitments,
        })
    }

    /// Imports an interchange document: all or nothing, in one exclusive transaction (blocking: from async code,
    /// call it on `spawn_blocking`).
    ///
    /// The document must have this guard's version, chain, protocol and key. Records new to the database are
    /// added, identical ones (same inputs and result) skipped; if any record conflicts with one already recorded
    /// (or with another of the document), nothing is imported ([`GuardError::ImportConflict`]). Signatures are
    /// checked to be valid points, not verified against the digest (a wrong one would be useless, never slashable).
    pub fn import(&self, data: &Interchange) -> Result<ImportSummary, GuardError> {
        let (records, commitments) = self.validate(data)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Import(ImportJob { records, commitments, reply: Reply::Blocking(reply) }))?;
        answer.recv().map_err(|_| self.writer_unavailable())?
    }

    #[allow(clippy::type_complexity)]
    fn validate(&self, data: &Interchange) -> Result<(Vec<Record>, Vec<CommitmentRecord>), InterchangeError> {
        if data.version != INTERCHANGE_VERSION {
            return Err(InterchangeError::UnsupportedVersion { found: data.version, supported: INTERCHANGE_VERSION });
        }
        let file = ChainBinding::new(data.chain_id, data.protocol);
        if file != self.inner.binding {
            return Err(InterchangeError::WrongBinding { file, guard: self.inner.binding });
        }
        if data.public_key.as_slice() != self.inner.public_key.to_compressed().as_slice() {
            return Err(InterchangeError::WrongKey {
                file: data.public_key,
                guard: self.inner.public_key.to_compressed().into(),
            });
        }
        let records = data
            .records
            .iter()
            .map(|r| {
                let signature = Signature::from_compressed(r.signature.as_slice()).map_err(|source| {
                    InterchangeError::InvalidSignature { service_id: r.service_id, call_id: r.call_id, source }
                })?;
                Ok(Record {
                    entry: ResultRef {
                        service_id: r.service_id,
                        call_id: r.call_id,
                        inputs_hash: r.inputs_hash,
                        result_hash: r.result_hash,
                    },
                    signature,
                    signed_at: r.signed_at,
                })
            })
            .collect::<Result<_, InterchangeError>>()?;
        let commitments = data
            .commitments
            .iter()
            .map(|c| {
                let signature = Signature::from_compressed(c.signature.as_slice()).map_err(|source| {
                    InterchangeError::InvalidSignature { service_id: c.service_id, call_id: c.call_id, source }
                })?;
                let actual = keccak256(&c.output);
                if actual != c.output_hash {
                    return Err(InterchangeError::CommitmentOutputMismatch {
                        service_id: c.service_id,
                        call_id: c.call_id,
                        claimed: c.output_hash,
                        actual,
                    });
                }
                Ok(CommitmentRecord {
                    entry: CommitmentRef {
                        service_id: c.service_id,
                        call_id: c.call_id,
                        inputs_hash: c.inputs_hash,
                        output_hash: c.output_hash,
                    },
                    output: c.output.clone(),
                    signature,
                    signed_at: c.signed_at,
                })
            })
            .collect::<Result<_, InterchangeError>>()?;
        Ok((records, commitments))
    }

    /// Refuses a secret key other than the guarded one.
    fn check_secret(&self, secret: &SecretKey) -> Result<(), GuardError> {
        let offered = secret.public_key();
        if offered != self.inner.public_key {
            return Err(GuardError::ForeignSecretKey {
                path: self.inner.path.clone(),
                guarded: self.inner.public_key.to_compressed().into(),
                offered: offered.to_compressed().into(),
            });
        }
        Ok(())
    }

    /// Checks that `secret` is the guarded key, then signs every entry (on the calling thread).
    fn compute_signatures(
        &self,
        secret: &SecretKey,
        entries: &[ResultRef],
    ) -> Result<Vec<(ResultRef, Signature)>, GuardError> {
        self.check_secret(secret)?;
        let binding = self.inner.binding;
        Ok(entries.iter().map(|entry| (*entry, secret.sign(&result_digest(&binding, entry)))).collect())
    }

    fn submit(&self, job: Job) -> Result<(), GuardError> {
        self.inner
            .jobs
            .as_ref()
            .ok_or_else(|| self.writer_unavailable())?
            .send(job)
            .map_err(|_| self.writer_unavailable())
    }

    fn writer_unavailable(&self) -> GuardError {
        GuardError::WriterUnavailable { path: self.inner.path.clone() }
    }
}

/// A commitment from its columns `(inputs_hash, output_hash, output, signature, signed_at)`, checked.
fn commitment_from_row(
    path: &Path,
    service_id: ServiceId,
    call_id: CallId,
    (inputs, output_hash, output, signature, signed_at): (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64),
) -> Result<CommitmentRecord, GuardError> {
    let signature = Signature::from_compressed(&signature).map_err(|e| {
        schema::corrupt(path, format!("{service_id} {call_id}: the recorded commitment signature is invalid: {e}"))
    })?;
    let output_hash = schema::b256_from_sql(&output_hash, path, "an output hash")?;
    if keccak256(&output) != output_hash {
        return Err(schema::corrupt(
            path,
            format!("{service_id} {call_id}: the committed output does not hash to its output hash"),
        ));
    }
    Ok(CommitmentRecord {
        entry: CommitmentRef {
            service_id,
            call_id,
            inputs_hash: schema::b256_from_sql(&inputs, path, "an inputs hash")?,
            output_hash,
        },
        output: Bytes::from(output),
        signature,
        signed_at: u64_from_sql(signed_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::NotSafe;
    use alloy_primitives::{Address, B256, U256, address};

    const BINDING: ChainBinding = ChainBinding::new(31337, address!("0x00000000000000000000000000000000000c0de5"));

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_ikm(&[seed; 32]).unwrap()
    }

    fn entry(call: u64, result: u8) -> ResultRef {
        ResultRef {
            service_id: ServiceId(1),
            call_id: CallId::from(call),
            inputs_hash: B256::with_last_byte(0xaa),
            result_hash: B256::with_last_byte(result),
        }
    }

    fn fresh_guard() -> (tempfile::TempDir, SigningGuard, SecretKey) {
        let dir = tempfile::tempdir().unwrap();
        let sk = secret(1);
        let guard =
            SigningGuard::open(&dir.path().join("guard.sqlite"), OpenMode::Initialise, BINDING, &sk.public_key())
                .unwrap();
        (dir, guard, sk)
    }

    #[test]
    fn same_result_same_signature_different_result_refused() {
        let (_dir, guard, sk) = fresh_guard();
        let first = guard.sign(&sk, &[entry(7, 1)]).unwrap();
        assert!(first[0].fresh);
        first[0].signature.verify(&sk.public_key(), &result_digest(&BINDING, &entry(7, 1))).unwrap();

        let again = guard.sign(&sk, &[entry(7, 1)]).unwrap();
        assert_eq!(again[0].signature, first[0].signature);
        assert!(!again[0].fresh);

        let err = guard.sign(&sk, &[entry(7, 2)]).unwrap_err();
        assert!(
            matches!(err, GuardError::Refused(NotSafe::ConflictingResult { recorded_result, attempted_result, .. })
                if recorded_result == B256::with_last_byte(1) && attempted_result == B256::with_last_byte(2)),
            "{err}"
        );
        let mut other_inputs = entry(7, 1);
        other_inputs.inputs_hash = B256::ZERO;
        let err = guard.sign(&sk, &[other_inputs]).unwrap_err();
        assert!(matches!(err, GuardError::Refused(NotSafe::ConflictingInputs { .. })), "{err}");
        assert_eq!(guard.get(ServiceId(1), CallId::from(7)).unwrap().unwrap().entry, entry(7, 1));
    }

    #[test]
    fn a_request_is_all_or_nothing() {
        let (_dir, guard, sk) = fresh_guard();
        guard.sign(&sk, &[entry(1, 1)]).unwrap();
        let err = guard.sign(&sk, &[entry(2, 1), entry(1, 9), entry(3, 1)]).unwrap_err();
        assert!(err.not_safe().is_some(), "{err}");
        assert_eq!(guard.get(ServiceId(1), CallId::from(2)).unwrap(), None);
        assert_eq!(guard.get(ServiceId(1), CallId::from(3)).unwrap(), None);

        // Two entries for one call in one request: they must agree.
        assert!(guard.sign(&sk, &[entry(4, 1), entry(4, 2)]).unwrap_err().not_safe().is_some());
        assert_eq!(guard.get(ServiceId(1), CallId::from(4)).unwrap(), None);
        let twice = guard.sign(&sk, &[entry(4, 1), entry(4, 1)]).unwrap();
        assert_eq!((twice[0].fresh, twice[1].fresh), (true, false));

        // The writer keeps serving after refusals.
        assert!(guard.sign(&sk, &[entry(5, 1)]).unwrap()[0].fresh);
    }

    #[test]
    fn refuses_a_secret_key_it_does_not_guard() {
        let (_dir, guard, _sk) = fresh_guard();
        let err = guard.sign(&secret(2), &[entry(1, 1)]).unwrap_err();
        assert!(matches!(err, GuardError::ForeignSecretKey { .. }), "{err}");
        assert_eq!(guard.get(ServiceId(1), CallId::from(1)).unwrap(), None);
    }

    #[test]
    fn fails_closed_without_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.sqlite");
        let err = SigningGuard::open(&path, OpenMode::Existing, BINDING, &secret(1).public_key()).unwrap_err();
        assert!(matches!(&err, GuardError::Missing { path: p } if *p == path), "{err}");
        assert!(err.to_string().contains("vouch node init"), "{err}");
        assert!(!path.exists(), "a missing database is never created implicitly");

        std::fs::write(&path, b"").unwrap();
        let err = SigningGuard::open(&path, OpenMode::Existing, BINDING, &secret(1).public_key()).unwrap_err();
        assert!(matches!(err, GuardError::NotInitialised { .. }), "{err}");
    }

    #[test]
    fn refuses_another_binding_or_key_and_reopens_its_own() {
        let (dir, guard, sk) = fresh_guard();
        let path = guard.path().to_path_buf();
        let signed = guard.sign(&sk, &[entry(1, 1)]).unwrap();
        drop(guard);

        let other_chain = ChainBinding::new(1, BINDING.contract);
        let err = SigningGuard::open(&path, OpenMode::Initialise, other_chain, &sk.public_key()).unwrap_err();
        assert!(matches!(err, GuardError::WrongBinding { recorded, .. } if recorded == BINDING), "{err}");
        let other_contract = ChainBinding::new(BINDING.chain_id, Address::ZERO);
        let err = SigningGuard::open(&path, OpenMode::Existing, other_contract, &sk.public_key()).unwrap_err();
        assert!(matches!(err, GuardError::WrongBinding { .. }), "{err}");
        let err = SigningGuard::open(&path, OpenMode::Existing, BINDING, &secret(2).public_key()).unwrap_err();
        assert!(matches!(err, GuardError::WrongKey { .. }), "{err}");

        for mode in [OpenMode::Existing, OpenMode::Initialise] {
            let guard = SigningGuard::open(&path, mode, BINDING, &sk.public_key()).unwrap();
            assert_eq!(guard.sign(&sk, &[entry(1, 1)]).unwrap()[0].signature, signed[0].signature);
            assert!(guard.sign(&sk, &[entry(1, 2)]).is_err());
        }
        drop(dir);
    }

    #[cfg(unix)]
    #[test]
    fn new_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, guard, _sk) = fresh_guard();
        let mode = std::fs::metadata(guard.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn ids_above_i64_round_trip() {
        let (_dir, guard, sk) = fresh_guard();
        let big = ResultRef {
            service_id: ServiceId(u64::MAX),
            call_id: CallId(U256::MAX),
            inputs_hash: B256::repeat_byte(1),
            result_hash: B256::repeat_byte(2),
        };
        let small = ResultRef { service_id: ServiceId(3), ..big };
        guard.sign(&sk, &[big, small]).unwrap();
        assert_eq!(guard.get(big.service_id, big.call_id).unwrap().unwrap().entry, big);
        let export = guard.export().unwrap();
        let services: Vec<u64> = export.records.iter().map(|r| r.service_id.0).collect();
        assert_eq!(services, [3, u64::MAX]);
        assert_eq!(export.records[1].call_id, big.call_id);
    }

    #[test]
    fn interchange_json_is_strict_and_versioned() {
        let (_dir, guard, sk) = fresh_guard();
        guard.sign(&sk, &[entry(7, 1)]).unwrap();
        let export = guard.export().unwrap();
        let json = export.to_json_pretty().unwrap();
        assert!(json.contains("\"callId\": \"0x7\""), "{json}");
        assert!(json.contains("\"publicKey\""), "{json}");
        assert_eq!(Interchange::from_json(json.as_bytes()).unwrap(), export);

        let decimal = json.replace("\"callId\": \"0x7\"", "\"callId\": \"7\"");
        assert_eq!(Interchange::from_json(decimal.as_bytes()).unwrap(), export);

        let unknown = json.replace("\"signedAt\"", "\"extra\": 1, \"signedAt\"");
        assert!(matches!(Interchange::from_json(unknown.as_bytes()), Err(InterchangeError::Json(_))));
        let v2 = unknown.replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            Interchange::from_json(v2.as_bytes()),
            Err(InterchangeError::UnsupportedVersion { found: 2, supported: 1 })
        ));

        let mut future = export.clone();
        future.version = 2;
        let err = guard.import(&future).unwrap_err();
        assert!(
            matches!(&err, GuardError::Interchange(e) if matches!(**e, InterchangeError::UnsupportedVersion { .. })),
            "{err}"
        );
        let mut other_key = export.clone();
        other_key.public_key = secret(2).public_key().to_compressed().into();
        let err = guard.import(&other_key).unwrap_err();
        assert!(
            matches!(&err, GuardError::Interchange(e) if matches!(**e, InterchangeError::WrongKey { .. })),
            "{err}"
        );
        let mut bad_signature = export;
        bad_signature.records[0].signature = Default::default();
        let err = guard.import(&bad_signature).unwrap_err();
        assert!(
            matches!(&err, GuardError::Interchange(e) if matches!(**e, InterchangeError::InvalidSignature { .. })),
            "{err}"
        );
    }

    #[test]
    fn import_skips_identical_and_refuses_conflicts_within_the_file() {
        let (_dir, guard, sk) = fresh_guard();
        let signed = guard.sign(&sk, &[entry(1, 1), entry(2, 1)]).unwrap();
        let mut data = guard.export().unwrap();
        let mut extra = data.records[0];
        extra.call_id = CallId::from(3);
        data.records.push(extra);
        let summary = guard.import(&data).unwrap();
        assert_eq!(summary, ImportSummary { imported: 1, identical: 2 });
        assert_eq!(guard.get(ServiceId(1), CallId::from(3)).unwrap().unwrap().signature, signed[0].signature);

        let mut conflicting = extra;
        conflicting.call_id = CallId::from(4);
        let mut twin = conflicting;
        twin.result_hash = B256::repeat_byte(9);
        data.records = vec![conflicting, twin];
        let err = guard.import(&data).unwrap_err();
        assert!(matches!(err, GuardError::ImportConflict(NotSafe::ConflictingResult { .. })), "{err}");
        assert_eq!(guard.get(ServiceId(1), CallId::from(4)).unwrap(), None);
    }

    fn commit(guard: &SigningGuard, sk: &SecretKey, call: u64, output: &'static [u8]) -> Result<Committed, GuardError> {
        guard.commit(sk, ServiceId(1), CallId::from(call), B256::with_last_byte(0xaa), Bytes::from_static(output))
    }

    #[test]
    fn one_commitment_per_call_same_again_is_idempotent_different_is_refused() {
        let (_dir, guard, sk) = fresh_guard();
        let first = commit(&guard, &sk, 7, b"[0.25]").unwrap();
        assert!(first.fresh);
        assert_eq!(first.entry.output_hash, keccak256(b"[0.25]"));
        first.signature.verify(&sk.public_key(), &commitment_digest(&BINDING, &first.entry)).unwrap();
        assert_ne!(
            commitment_digest(&BINDING, &first.entry),
            result_digest(
                &BINDING,
                &ResultRef {
                    service_id: first.entry.service_id,
                    call_id: first.entry.call_id,
                    inputs_hash: first.entry.inputs_hash,
                    result_hash: first.entry.output_hash,
                }
            ),
            "a commitment is never a result statement"
        );

        let again = commit(&guard, &sk, 7, b"[0.25]").unwrap();
        assert_eq!((again.signature, again.fresh), (first.signature, false));

        let err = commit(&guard, &sk, 7, b"[0.26]").unwrap_err();
        assert!(
            matches!(err, GuardError::Refused(NotSafe::ConflictingCommitment { recorded_output, attempted_output, .. })
                if recorded_output == keccak256(b"[0.25]") && attempted_output == keccak256(b"[0.26]")),
            "{err}"
        );
        assert!(err.not_safe().is_some_and(NotSafe::is_commitment));
        let other_inputs =
            guard.commit(&sk, ServiceId(1), CallId::from(7), B256::ZERO, Bytes::from_static(b"[0.25]")).unwrap_err();
        assert!(
            matches!(other_inputs, GuardError::Refused(NotSafe::ConflictingCommitmentInputs { .. })),
            "{other_inputs}"
        );
        assert!(other_inputs.not_safe().is_some_and(NotSafe::is_commitment));
        let err = guard.commit(&secret(2), ServiceId(1), CallId::from(8), B256::ZERO, Bytes::new()).unwrap_err();
        assert!(matches!(err, GuardError::ForeignSecretKey { .. }), "{err}");

        let record = guard.get_commitment(ServiceId(1), CallId::from(7)).unwrap().unwrap();
        assert_eq!(
            (record.entry, &record.output[..], record.signature),
            (first.entry, &b"[0.25]"[..], first.signature)
        );
        assert_eq!(guard.get_commitment(ServiceId(1), CallId::from(8)).unwrap(), None);
    }

    #[test]
    fn a_call_has_one_commitment_and_one_result_apart() {
        let (_dir, guard, sk) = fresh_guard();
        commit(&guard, &sk, 3, b"mine").unwrap();
        assert_eq!(guard.get(ServiceId(1), CallId::from(3)).unwrap(), None, "a commitment is not a result");
        // The endorsed result may differ from the commitment; once signed, it is the only result of the call.
        let endorsed = ResultRef { result_hash: keccak256(b"theirs"), ..entry(3, 0) };
        assert!(guard.sign(&sk, &[endorsed]).unwrap()[0].fresh);
        assert!(guard.sign(&sk, &[ResultRef { result_hash: keccak256(b"mine"), ..endorsed }]).is_err());
        assert!(!commit(&guard, &sk, 3, b"mine").unwrap().fresh);
        assert!(commit(&guard, &sk, 3, b"theirs").is_err());
    }

    #[test]
    fn a_commitment_is_durable_across_reopen_and_travels_in_the_interchange() {
        let (dir, guard, sk) = fresh_guard();
        let path = guard.path().to_path_buf();
        let committed = commit(&guard, &sk, 9, b"[1,2,3]").unwrap();
        guard.sign(&sk, &[entry(9, 1)]).unwrap();
        drop(guard);

        let reopened = SigningGuard::open(&path, OpenMode::Existing, BINDING, &sk.public_key()).unwrap();
        let record = reopened.get_commitment(ServiceId(1), CallId::from(9)).unwrap().unwrap();
        assert_eq!((&record.output[..], record.signature), (&b"[1,2,3]"[..], committed.signature));
        assert!(!commit(&reopened, &sk, 9, b"[1,2,3]").unwrap().fresh);
        assert!(commit(&reopened, &sk, 9, b"[1,2,4]").is_err());

        let export = reopened.export().unwrap();
        assert_eq!(export.commitments.len(), 1);
        let json = export.to_json_pretty().unwrap();
        assert!(json.contains("\"outputHash\"") && json.contains("\"output\": \"0x5b312c322c335d\""), "{json}");
        assert_eq!(Interchange::from_json(json.as_bytes()).unwrap(), export);

        let other =
            SigningGuard::open(&dir.path().join("other.sqlite"), OpenMode::Initialise, BINDING, &sk.public_key())
                .unwrap();
        assert_eq!(other.import(&export).unwrap(), ImportSummary { imported: 2, identical: 0 });
        assert_eq!(other.import(&export).unwrap(), ImportSummary { imported: 0, identical: 2 });
        assert!(commit(&other, &sk, 9, b"[1,2,4]").is_err(), "the imported commitment binds the new node");

        let mut tampered = export.clone();
        tampered.commitments[0].output = Bytes::from_static(b"[9]");
        let err = other.import(&tampered).unwrap_err();
        assert!(
            matches!(&err, GuardError::Interchange(e) if matches!(**e, InterchangeError::CommitmentOutputMismatch { .. })),
            "{err}"
        );
        let mut conflicting = export;
        conflicting.records.clear();
        conflicting.commitments[0].output = Bytes::from_static(b"[9]");
        conflicting.commitments[0].output_hash = keccak256(b"[9]");
        let err = other.import(&conflicting).unwrap_err();
        assert!(matches!(err, GuardError::ImportConflict(NotSafe::ConflictingCommitment { .. })), "{err}");
    }

    #[test]
    fn a_version_1_database_is_migrated_in_place() {
        let (_dir, guard, sk) = fresh_guard();
        let path = guard.path().to_path_buf();
        let signed = guard.sign(&sk, &[entry(1, 1)]).unwrap();
        drop(guard);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("DROP TABLE signed_commitments; UPDATE meta SET schema_version = 1;").unwrap();
        }
        let guard = SigningGuard::open(&path, OpenMode::Existing, BINDING, &sk.public_key()).unwrap();
        assert_eq!(guard.get(ServiceId(1), CallId::from(1)).unwrap().unwrap().signature, signed[0].signature);
        assert!(commit(&guard, &sk, 1, b"out").unwrap().fresh);
        let version: i64 =
            guard.inner.reader.lock().unwrap().query_row("SELECT schema_version FROM meta", [], |r| r.get(0)).unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn commit_async_shares_the_records() {
        let (_dir, guard, sk) = fresh_guard();
        let sk = Arc::new(sk);
        let out = Bytes::from_static(b"async");
        let first =
            guard.commit_async(sk.clone(), ServiceId(1), CallId::from(1), B256::ZERO, out.clone()).await.unwrap();
        assert!(first.fresh);
        assert_eq!(
            guard.commit(&sk, ServiceId(1), CallId::from(1), B256::ZERO, out).unwrap().signature,
            first.signature
        );
        let err = guard.commit_async(sk, ServiceId(1), CallId::from(1), B256::ZERO, Bytes::new()).await.unwrap_err();
        assert!(matches!(err, GuardError::Refused(_)), "{err}");
    }

    #[tokio::test]
    async fn sign_async_shares_the_records() {
        let (_dir, guard, sk) = fresh_guard();
        let sk = Arc::new(sk);
        let first = guard.sign_async(sk.clone(), vec![entry(1, 1)]).await.unwrap();
        assert!(first[0].fresh);
        let again = guard.sign(&sk, &[entry(1, 1)]).unwrap();
        assert_eq!(again[0].signature, first[0].signature);
        let err = guard.sign_async(sk, vec![entry(1, 2)]).await.unwrap_err();
        assert!(matches!(err, GuardError::Refused(_)), "{err}");
    }
}
