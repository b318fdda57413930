//! [`SigningGuard`]: the only way the node signs results.

use super::{
    error::{GuardError, InterchangeError},
    interchange::{INTERCHANGE_VERSION, Interchange, InterchangeRecord},
    schema::{self, SELECT_RECORD, call_key, u64_from_sql},
    writer::{self, ImportJob, Job, Reply, SignJob},
};
use rusqlite::{Connection, OptionalExtension};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread::JoinHandle,
};
use vouch_crypto::{PublicKey, SecretKey, Signature};
use vouch_primitives::{CallId, ChainBinding, ResultRef, ServiceId, result_digest};

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

/// What an import did.
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
        Ok(Interchange {
            version: INTERCHANGE_VERSION,
            chain_id: self.inner.binding.chain_id,
            protocol: self.inner.binding.contract,
            public_key: self.inner.public_key.to_compressed().into(),
            records,
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
        let records = self.validate(data)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Import(ImportJob { records, reply: Reply::Blocking(reply) }))?;
        answer.recv().map_err(|_| self.writer_unavailable())?
    }

    fn validate(&self, data: &Interchange) -> Result<Vec<Record>, InterchangeError> {
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
        data.records
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
            .collect()
    }

    /// Checks that `secret` is the guarded key, then signs every entry (on the calling thread).
    fn compute_signatures(
        &self,
        secret: &SecretKey,
        entries: &[ResultRef],
    ) -> Result<Vec<(ResultRef, Signature)>, GuardError> {
        let offered = secret.public_key();
        if offered != self.inner.public_key {
            return Err(GuardError::ForeignSecretKey {
                path: self.inner.path.clone(),
                guarded: self.inner.public_key.to_compressed().into(),
                offered: offered.to_compressed().into(),
            });
        }
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
