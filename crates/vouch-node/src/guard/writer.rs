//! The guard's single writer thread: group commit of sign and commit requests, and imports.
//!
//! The writer owns the only writing connection of this process. It blocks for one job, drains whatever else is
//! queued (up to [`MAX_BATCH`]), and applies a run of sign and commit requests in one `EXCLUSIVE` transaction, each
//! request under its own `SAVEPOINT` so that a refused request leaves no trace while the others of the batch commit. One
//! `COMMIT` (one WAL fsync with `synchronous = FULL`) then answers the whole batch; no answer is sent before it.
//! If the commit fails, every request of the batch gets the error. A failing request never stops the thread.

use super::{
    error::{GuardError, NotSafe},
    schema::{self, INSERT_COMMITMENT, INSERT_RECORD, SELECT_COMMITMENT, SELECT_RECORD, call_key, u64_to_sql},
    signing_guard::{CommitmentRecord, Committed, ImportSummary, Record, Signed},
};
use alloy_primitives::Bytes;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    sync::mpsc,
};
use vouch_crypto::Signature;
use vouch_primitives::{CommitmentRef, ResultRef};

/// Most jobs applied in one transaction.
const MAX_BATCH: usize = 4096;

/// Where the answer to a job goes: a blocking caller or an async one.
pub(crate) enum Reply<T> {
    /// A thread blocked in [`super::SigningGuard::sign`].
    Blocking(mpsc::SyncSender<Result<T, GuardError>>),
    /// A task awaiting in [`super::SigningGuard::sign_async`].
    Async(tokio::sync::oneshot::Sender<Result<T, GuardError>>),
}

impl<T> Reply<T> {
    fn send(self, answer: Result<T, GuardError>) {
        // A caller that went away (a cancelled future) needs no answer; its records are committed and safe.
        match self {
            Self::Blocking(tx) => drop(tx.send(answer)),
            Self::Async(tx) => drop(tx.send(answer)),
        }
    }
}

/// Results already signed by the caller, to record.
pub(crate) struct SignJob {
    /// Each result with the signature computed for it.
    pub(crate) entries: Vec<(ResultRef, Signature)>,
    /// Where to answer.
    pub(crate) reply: Reply<Vec<Signed>>,
}

/// An output commitment already signed by the caller, to record.
pub(crate) struct CommitJob {
    /// The commitment (its output hash is `keccak256(output)`).
    pub(crate) entry: CommitmentRef,
    /// The committed output.
    pub(crate) output: Bytes,
    /// The signature over its commitment digest.
    pub(crate) signature: Signature,
    /// Where to answer.
    pub(crate) reply: Reply<Committed>,
}

/// Validated records to import.
pub(crate) struct ImportJob {
    /// The records.
    pub(crate) records: Vec<Record>,
    /// The commitments.
    pub(crate) commitments: Vec<CommitmentRecord>,
    /// Where to answer.
    pub(crate) reply: Reply<ImportSummary>,
}

/// Work for the writer.
pub(crate) enum Job {
    /// Record result signatures.
    Sign(SignJob),
    /// Record a commitment (boxed: a signature is large).
    Commit(Box<CommitJob>),
    /// Import records.
    Import(ImportJob),
}

/// A request recorded by a group commit.
enum Write {
    Sign(SignJob),
    Commit(Box<CommitJob>),
}

/// The answer to a [`Write`], sent after the commit.
enum Answer {
    Sign(Result<Vec<Signed>, GuardError>),
    Commit(Result<Box<Committed>, GuardError>),
}

impl Answer {
    fn is_ok(&self) -> bool {
        match self {
            Self::Sign(answer) => answer.is_ok(),
            Self::Commit(answer) => answer.is_ok(),
        }
    }

    fn fresh(&self) -> usize {
        match self {
            Self::Sign(Ok(signed)) => signed.iter().filter(|s| s.fresh).count(),
            Self::Commit(Ok(committed)) => usize::from(committed.fresh),
            _ => 0,
        }
    }
}

impl Write {
    /// Sends `answer` (computed by [`commit_writes`] for this very request, so of the same kind).
    fn answer(self, answer: Answer, path: &Path) {
        let unavailable = || GuardError::WriterUnavailable { path: path.to_path_buf() };
        match (self, answer) {
            (Self::Sign(job), Answer::Sign(answer)) => job.reply.send(answer),
            (Self::Commit(job), Answer::Commit(answer)) => job.reply.send(answer.map(|committed| *committed)),
            (Self::Sign(job), Answer::Commit(_)) => job.reply.send(Err(unavailable())),
            (Self::Commit(job), Answer::Sign(_)) => job.reply.send(Err(unavailable())),
        }
    }

    fn fail(self, error: GuardError) {
        match self {
            Self::Sign(job) => job.reply.send(Err(error)),
            Self::Commit(job) => job.reply.send(Err(error)),
        }
    }
}

/// Starts the writer thread on `conn`.
pub(crate) fn spawn(
    conn: Connection,
    path: PathBuf,
) -> Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>), GuardError> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("signing-guard".into())
        .spawn(move || run(conn, &path, &rx))
        .map_err(|source| GuardError::Io {
            path: PathBuf::from("<thread>"),
            action: "starting the signing guard's writer thread",
            source,
        })?;
    Ok((tx, handle))
}

fn run(mut conn: Connection, path: &Path, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A bug must not take the guard down silently with requests in flight: the transaction of a panicking
        // batch rolls back (its callers see `WriterUnavailable`), and the next batch is served.
        let outcome = catch_unwind(AssertUnwindSafe(|| apply(&mut conn, path, jobs)));
        if outcome.is_err() {
            tracing::error!(db = %path.display(), "signing guard writer panicked; the batch was rolled back");
        }
    }
    tracing::debug!(db = %path.display(), "signing guard writer stopped");
}

/// Applies jobs in order: each run of consecutive sign and commit jobs as one group commit, each import alone.
fn apply(conn: &mut Connection, path: &Path, jobs: Vec<Job>) {
    let mut writes = Vec::new();
    for job in jobs {
        match job {
            Job::Sign(sign) => writes.push(Write::Sign(sign)),
            Job::Commit(commit) => writes.push(Write::Commit(commit)),
            Job::Import(import) => {
                commit_writes(conn, path, std::mem::take(&mut writes));
                let answer = import_records(conn, path, &import.records, &import.commitments);
                import.reply.send(answer);
            }
        }
    }
    commit_writes(conn, path, writes);
}

fn commit_writes(conn: &mut Connection, path: &Path, jobs: Vec<Write>) {
    if jobs.is_empty() {
        return;
    }
    let now = schema::unix_now();
    let outcome = (|| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(|e| ("beginning", e))?;
        let mut answers = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let sp = tx.savepoint().map_err(|e| ("opening a savepoint", e))?;
            let answer = match job {
                Write::Sign(job) => {
                    Answer::Sign(record_request(&sp, path, &job.entries, now).map_err(|e| ("recording", e))?)
                }
                Write::Commit(job) => {
                    Answer::Commit(record_commitment(&sp, path, job, now).map_err(|e| ("recording", e))?)
                }
            };
            if answer.is_ok() {
                sp.commit().map_err(|e| ("releasing a savepoint", e))?;
            } else {
                sp.finish().map_err(|e| ("rolling back a refused request", e))?;
            }
            answers.push(answer);
        }
        tx.commit().map_err(|e| ("committing", e))?;
        Ok::<_, (&'static str, rusqlite::Error)>(answers)
    })();
    match outcome {
        Ok(answers) => {
            let fresh: usize = answers.iter().map(Answer::fresh).sum();
            tracing::trace!(requests = jobs.len(), fresh, "signing guard batch committed");
            for (job, answer) in jobs.into_iter().zip(answers) {
                job.answer(answer, path);
            }
        }
        Err((step, e)) => {
            tracing::error!(db = %path.display(), step, error = %e, "signing guard batch failed; nothing recorded");
            let source = std::sync::Arc::new(e);
            for job in jobs {
                job.fail(GuardError::Sqlite {
                    path: path.to_path_buf(),
                    action: "recording signatures",
                    source: source.clone(),
                });
            }
        }
    }
}

/// Checks and records one commitment: the same commitment again gets the recorded signature, a different one for
/// the call is refused. The outer error aborts the batch; the inner one refuses this request only.
fn record_commitment(
    conn: &Connection,
    path: &Path,
    job: &CommitJob,
    now: u64,
) -> Result<Result<Box<Committed>, GuardError>, rusqlite::Error> {
    let entry = &job.entry;
    let key = call_key(entry.service_id, entry.call_id);
    let recorded = conn
        .prepare_cached(SELECT_COMMITMENT)?
        .query_row(key, |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(3)?)))
        .optional()?;
    let Some((inputs, output_hash, stored)) = recorded else {
        conn.prepare_cached(INSERT_COMMITMENT)?.execute((
            key.0,
            key.1.as_slice(),
            entry.inputs_hash.as_slice(),
            entry.output_hash.as_slice(),
            job.output.as_ref(),
            job.signature.to_compressed().as_slice(),
            u64_to_sql(now),
        ))?;
        let committed = Committed { entry: *entry, output: job.output.clone(), signature: job.signature, fresh: true };
        return Ok(Ok(Box::new(committed)));
    };
    if let Err(refusal) = compare_commitment(path, entry, &inputs, &output_hash) {
        return Ok(Err(refusal));
    }
    let signature = if stored.as_slice() == job.signature.to_compressed().as_slice() {
        job.signature
    } else {
        match Signature::from_compressed(&stored) {
            Ok(sig) => sig,
            Err(e) => {
                let what = format!(
                    "{} {}: the recorded commitment signature is invalid: {e}",
                    entry.service_id, entry.call_id
                );
                return Ok(Err(schema::corrupt(path, what)));
            }
        }
    };
    Ok(Ok(Box::new(Committed { entry: *entry, output: job.output.clone(), signature, fresh: false })))
}

/// `Ok` if the recorded commitment has the inputs and output hash of `entry`; the refusal otherwise.
fn compare_commitment(path: &Path, entry: &CommitmentRef, inputs: &[u8], output: &[u8]) -> Result<(), GuardError> {
    if output != entry.output_hash.as_slice() {
        return Err(GuardError::Refused(NotSafe::ConflictingCommitment {
            service_id: entry.service_id,
            call_id: entry.call_id,
            recorded_output: schema::b256_from_sql(output, path, "an output hash")?,
            attempted_output: entry.output_hash,
        }));
    }
    if inputs != entry.inputs_hash.as_slice() {
        return Err(GuardError::Refused(NotSafe::ConflictingCommitmentInputs {
            service_id: entry.service_id,
            call_id: entry.call_id,
            recorded_inputs: schema::b256_from_sql(inputs, path, "an inputs hash")?,
            attempted_inputs: entry.inputs_hash,
        }));
    }
    Ok(())
}

/// Checks and records the entries of one request. The outer error aborts the batch; the inner one refuses this
/// request only (its savepoint is rolled back).
fn record_request(
    conn: &Connection,
    path: &Path,
    entries: &[(ResultRef, Signature)],
    now: u64,
) -> Result<Result<Vec<Signed>, GuardError>, rusqlite::Error> {
    let mut select = conn.prepare_cached(SELECT_RECORD)?;
    let mut insert = conn.prepare_cached(INSERT_RECORD)?;
    let mut signed = Vec::with_capacity(entries.len());
    for (entry, signature) in entries {
        let key = call_key(entry.service_id, entry.call_id);
        let recorded = select
            .query_row(key, |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?)))
            .optional()?;
        let Some((inputs, result, stored)) = recorded else {
            let compressed = signature.to_compressed();
            insert.execute((
                key.0,
                key.1.as_slice(),
                entry.inputs_hash.as_slice(),
                entry.result_hash.as_slice(),
                compressed.as_slice(),
                u64_to_sql(now),
            ))?;
            signed.push(Signed { entry: *entry, signature: *signature, fresh: true });
            continue;
        };
        match compare(path, entry, &inputs, &result) {
            Ok(()) => {}
            Err(refusal) => return Ok(Err(refusal)),
        }
        // BLS signing is deterministic, so the stored signature is normally the one just computed.
        let signature = if stored.as_slice() == signature.to_compressed().as_slice() {
            *signature
        } else {
            match Signature::from_compressed(&stored) {
                Ok(sig) => sig,
                Err(e) => {
                    let what =
                        format!("{} {}: the recorded signature is invalid: {e}", entry.service_id, entry.call_id);
                    return Ok(Err(schema::corrupt(path, what)));
                }
            }
        };
        signed.push(Signed { entry: *entry, signature, fresh: false });
    }
    Ok(Ok(signed))
}

/// `Ok` if the recorded inputs and result are those of `entry`; the refusal otherwise.
fn compare(path: &Path, entry: &ResultRef, inputs: &[u8], result: &[u8]) -> Result<(), GuardError> {
    if result != entry.result_hash.as_slice() {
        let recorded_result = schema::b256_from_sql(result, path, "a result hash")?;
        return Err(GuardError::Refused(NotSafe::ConflictingResult {
            service_id: entry.service_id,
            call_id: entry.call_id,
            recorded_result,
            attempted_result: entry.result_hash,
        }));
    }
    if inputs != entry.inputs_hash.as_slice() {
        let recorded_inputs = schema::b256_from_sql(inputs, path, "an inputs hash")?;
        return Err(GuardError::Refused(NotSafe::ConflictingInputs {
            service_id: entry.service_id,
            call_id: entry.call_id,
            recorded_inputs,
            attempted_inputs: entry.inputs_hash,
        }));
    }
    Ok(())
}

/// Imports records and commitments in one exclusive transaction: new ones are inserted, identical ones skipped, and
/// any conflict aborts the whole import.
fn import_records(
    conn: &mut Connection,
    path: &Path,
    records: &[Record],
    commitments: &[CommitmentRecord],
) -> Result<ImportSummary, GuardError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(|e| GuardError::sqlite(path, "beginning the import", e))?;
    let mut summary = ImportSummary::default();
    let results = ImportKind {
        reading: "reading a record",
        importing: "importing a record",
        select: SELECT_RECORD,
        insert: INSERT_RECORD,
    };
    results.import(&tx, path, records, &mut summary, |record, key, insert| {
        let entry = &record.entry;
        let row = (key.0, key.1.as_slice(), entry.inputs_hash.as_slice(), entry.result_hash.as_slice());
        let signature = record.signature.to_compressed();
        insert.execute((row.0, row.1, row.2, row.3, signature.as_slice(), u64_to_sql(record.signed_at)))
    })?;
    let commitment_kind = ImportKind {
        reading: "reading a commitment",
        importing: "importing a commitment",
        select: SELECT_COMMITMENT,
        insert: INSERT_COMMITMENT,
    };
    commitment_kind.import(&tx, path, commitments, &mut summary, |commitment, key, insert| {
        let entry = &commitment.entry;
        insert.execute((
            key.0,
            key.1.as_slice(),
            entry.inputs_hash.as_slice(),
            entry.output_hash.as_slice(),
            commitment.output.as_ref(),
            commitment.signature.to_compressed().as_slice(),
            u64_to_sql(commitment.signed_at),
        ))
    })?;
    tx.commit().map_err(|e| GuardError::sqlite(path, "committing the import", e))?;
    Ok(summary)
}

/// A guarded row the import knows: results or commitments, one per `(service, call)`.
trait Imported {
    /// Its `(service, call)` key.
    fn key(&self) -> (i64, [u8; 32]);
    /// Whether the recorded row (inputs hash, result or output hash) is the same signing decision.
    fn compare(&self, path: &Path, inputs: &[u8], recorded: &[u8]) -> Result<(), GuardError>;
}

impl Imported for Record {
    fn key(&self) -> (i64, [u8; 32]) {
        call_key(self.entry.service_id, self.entry.call_id)
    }
    fn compare(&self, path: &Path, inputs: &[u8], recorded: &[u8]) -> Result<(), GuardError> {
        compare(path, &self.entry, inputs, recorded)
    }
}

impl Imported for CommitmentRecord {
    fn key(&self) -> (i64, [u8; 32]) {
        call_key(self.entry.service_id, self.entry.call_id)
    }
    fn compare(&self, path: &Path, inputs: &[u8], recorded: &[u8]) -> Result<(), GuardError> {
        compare_commitment(path, &self.entry, inputs, recorded)
    }
}

/// The statements of one kind of row: `select` takes the key and returns (inputs hash, result or output hash).
struct ImportKind {
    reading: &'static str,
    importing: &'static str,
    select: &'static str,
    insert: &'static str,
}

impl ImportKind {
    /// Inserts each of `rows` whose call has none, counts the identical ones, and fails on the first conflict.
    fn import<T: Imported>(
        &self,
        tx: &rusqlite::Transaction<'_>,
        path: &Path,
        rows: &[T],
        summary: &mut ImportSummary,
        insert_row: impl Fn(&T, (i64, [u8; 32]), &mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<usize>,
    ) -> Result<(), GuardError> {
        let sql = |action: &'static str| move |e| GuardError::sqlite(path, action, e);
        let mut select = tx.prepare_cached(self.select).map_err(sql("preparing the import"))?;
        let mut insert = tx.prepare_cached(self.insert).map_err(sql("preparing the import"))?;
        for row in rows {
            let key = row.key();
            let recorded = select
                .query_row(key, |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .optional()
                .map_err(sql(self.reading))?;
            match recorded {
                None => {
                    insert_row(row, key, &mut insert).map_err(sql(self.importing))?;
                    summary.imported += 1;
                }
                Some((inputs, hash)) => match row.compare(path, &inputs, &hash) {
                    Ok(()) => summary.identical += 1,
                    Err(GuardError::Refused(not_safe)) => return Err(GuardError::ImportConflict(not_safe)),
                    Err(other) => return Err(other),
                },
            }
        }
        Ok(())
    }
}
