//! [`RequestStore`]: every paid request, recorded durably (SQLite, WAL, `synchronous = FULL`) before the gateway
//! does anything else with it, and moved through `received → answered → settled` (or `failed` / `unpayable`,
//! never charged). A gateway killed at any point finds its requests here on restart: received ones are fanned out
//! again (the operators' guards return the signatures they already gave), answered ones are settled.
//!
//! It also keeps the evidence against operators, for the reporter ([`crate::reporter`]): signatures on a result other
//! than the certified one ([`Evidence`], table `evidence`) and, for tolerant jobs, signed commitments to an output the
//! certificate contradicts ([`CommitmentEvidence`], table `commitment_evidence`).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use alloy_primitives::{Address, B256, Bytes, U256};
use rusqlite::{Connection, OptionalExtension, params};
use vouch_primitives::{
    CallId, Certificate, ServiceId,
    wire::{SignedCommitment, SignedResult, TransferAuthorization},
};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// Paid (authorization verified) and recorded; not yet answered.
    Received,
    /// A quorum certified the result; the answer was (or will be) sent; the payment is to be collected.
    Answered,
    /// Collected on chain with its certificate.
    Settled,
    /// No quorum, or refused: never charged.
    Failed,
    /// Answered, but the authorization could not be collected (expired, used elsewhere): never charged.
    Unpayable,
}

impl RequestStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Answered => "answered",
            Self::Settled => "settled",
            Self::Failed => "failed",
            Self::Unpayable => "unpayable",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => Self::Received,
            "answered" => Self::Answered,
            "settled" => Self::Settled,
            "failed" => Self::Failed,
            "unpayable" => Self::Unpayable,
            _ => return None,
        })
    }
}

/// A paid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidRequest {
    /// `paid_call_id(service, job, payer, nonce)`.
    pub call_id: CallId,
    /// The service.
    pub service_id: ServiceId,
    /// The job.
    pub job_index: u8,
    /// The request body (the job's inputs).
    pub inputs: Bytes,
    /// The payment.
    pub authorization: TransferAuthorization,
    /// Its signature.
    pub payment_signature: Bytes,
    /// The client's `payment-identifier`, if any.
    pub payment_id: Option<String>,
    /// Hash of the whole `PAYMENT-SIGNATURE` payload (same id + different payload = conflict).
    pub payload_hash: B256,
}

/// A request with its state.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    /// The request.
    pub request: PaidRequest,
    /// Where it stands.
    pub status: RequestStatus,
    /// The answer sent (JSON), once answered.
    pub response: Option<String>,
    /// The certificate, once answered.
    pub certificate: Option<Certificate>,
    /// Signers of the certificate.
    pub signers: Vec<Address>,
    /// Why it failed.
    pub error: Option<String>,
    /// Settlement transaction.
    pub settle_tx: Option<B256>,
}

/// What recording a request found.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// Recorded now.
    New,
    /// This call (same authorization) was recorded before.
    Existing(Box<StoredRequest>),
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("request store {path}: {action}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: rusqlite::Error,
    },
    /// A stored row does not parse.
    #[error("request store {path}: corrupt row for {call}: {what}")]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// The call.
        call: String,
        /// What is wrong.
        what: String,
    },
    /// The payment identifier was used with another payment.
    #[error("payment identifier {0:?} was already used with a different payment")]
    PaymentIdConflict(String),
}

/// The gateway's durable request log.
///
/// Two connections: every write goes through one (`synchronous = FULL`: a write has reached the disk when it
/// returns), and so do the lookups and listings, which wait for a write in progress; the settlement batcher's listing
/// ([`Self::committed_with_status`]) and the paid-call path's first lookup ([`Self::lookup_authorization`]) go through
/// the other. In WAL mode a reader sees every committed write and never waits for a writer, so the paid calls do not
/// queue behind that listing, nor a new payment's lookup behind another call's commit.
#[derive(Debug, Clone)]
pub struct RequestStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    /// Answers sent whose write is not committed yet ([`Self::answering`]), by call id (big-endian). Taken out by
    /// [`Self::answered`] and read by the lookups under the writing connection's lock, so that a lookup sees either
    /// the row still `received` and the answer here, or the row answered.
    in_flight: Arc<Mutex<HashMap<[u8; 32], InFlightAnswer>>>,
}

/// An answer sent, until [`RequestStore::answered`] has committed it.
#[derive(Debug, Clone)]
struct InFlightAnswer {
    response: String,
    certificate: Certificate,
    signers: Vec<Address>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
    call_id BLOB PRIMARY KEY,
    service_id INTEGER NOT NULL,
    job_index INTEGER NOT NULL,
    inputs BLOB NOT NULL,
    authorization TEXT NOT NULL,
    payment_signature BLOB NOT NULL,
    payment_id TEXT UNIQUE,
    auth_key BLOB NOT NULL UNIQUE,
    payload_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    response TEXT,
    certificate TEXT,
    signers TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    settle_tx BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_status ON requests(status, created_at);
CREATE TABLE IF NOT EXISTS evidence (
    call_id BLOB NOT NULL,
    operator BLOB NOT NULL,
    slot INTEGER NOT NULL,
    service_id INTEGER NOT NULL,
    inputs_hash BLOB NOT NULL,
    result_hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    status TEXT NOT NULL,
    tx BLOB,
    executable_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (call_id, operator)
);
CREATE INDEX IF NOT EXISTS evidence_status ON evidence(status, created_at);
CREATE TABLE IF NOT EXISTS commitment_evidence (
    call_id BLOB NOT NULL,
    operator BLOB NOT NULL,
    slot INTEGER NOT NULL,
    service_id INTEGER NOT NULL,
    inputs_hash BLOB NOT NULL,
    output_hash BLOB NOT NULL,
    output BLOB NOT NULL,
    signature BLOB NOT NULL,
    certified_hash BLOB NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    tx BLOB,
    executable_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (call_id, operator)
);
CREATE INDEX IF NOT EXISTS commitment_evidence_status ON commitment_evidence(status, created_at);
";

/// Columns added after the first release of a table: `(table, column, type)`, added by [`RequestStore::open`] when
/// missing (`CREATE TABLE IF NOT EXISTS` leaves an older table as it is).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[("requests", "batch_id", "BLOB")];

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl RequestStore {
    /// Opens (creating if missing) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |action| move |source| StoreError::Sqlite { path: path.to_owned(), action, source };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(err("open"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err("WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err("synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err("busy timeout"))?;
        conn.execute_batch(SCHEMA).map_err(err("schema"))?;
        for (table, column, kind) in ADDED_COLUMNS {
            let present: bool = conn
                .query_row(
                    &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
                    params![column],
                    |r| r.get(0),
                )
                .map_err(err("migrate"))?;
            if !present {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                    .map_err(err("migrate"))?;
            }
        }
        let reader = Connection::open(path).map_err(err("open"))?;
        reader.busy_timeout(std::time::Duration::from_secs(5)).map_err(err("busy timeout"))?;
        reader.pragma_update(None, "query_only", true).map_err(err("query only"))?;
        Ok(Self {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            reader: Arc::new(Mutex::new(reader)),
            in_flight: Arc::default(),
        })
    }

    fn with<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn).map_err(|source| StoreError::Sqlite { path: self.path.clone(), action, source })
    }

    /// Runs a read (a lookup or a listing) on the reading connection.
    fn read<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&conn).map_err(|source| StoreError::Sqlite { path: self.path.clone(), action, source })
    }

    /// Records a paid request before anything is done with it; finds an earlier record of the same call (the same
    /// authorization) or of the same payment identifier.
    ///
    /// One statement when the request is new (the common case): the insert, which the unique call id, authorization
    /// key and payment identifier turn into a no-op if any of them was recorded before; only then is the earlier
    /// record looked up, the payment identifier's first (the same identifier with another payment is a conflict).
    pub fn record(&self, r: &PaidRequest) -> Result<Recorded, StoreError> {
        let auth = serde_json::to_string(&r.authorization).unwrap_or_default();
        let inserted = self.with("record", |c| {
            c.prepare_cached(
                "INSERT INTO requests (call_id, service_id, job_index, inputs, authorization, payment_signature,
                 payment_id, payload_hash, status, created_at, updated_at, auth_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'received', ?9, ?9, ?10) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                r.call_id.0.to_be_bytes::<32>().to_vec(),
                r.service_id.0.cast_signed(),
                r.job_index,
                r.inputs.to_vec(),
                auth,
                r.payment_signature.to_vec(),
                r.payment_id,
                r.payload_hash.to_vec(),
                now(),
                auth_key(&r.authorization).to_vec()
            ])
        })?;
        if inserted == 1 {
            return Ok(Recorded::New);
        }
        if let Some(id) = &r.payment_id
            && let Some(existing) = self.by_payment_id(id)?
        {
            if existing.request.payload_hash != r.payload_hash {
                return Err(StoreError::PaymentIdConflict(id.clone()));
            }
            return Ok(Recorded::Existing(Box::new(existing)));
        }
        match self.by_authorization(&r.authorization)?.or(self.get(r.call_id)?) {
            Some(existing) => Ok(Recorded::Existing(Box::new(existing))),
            None => Err(StoreError::Sqlite {
                path: self.path.clone(),
                action: "record",
                source: rusqlite::Error::QueryReturnedNoRows,
            }),
        }
    }

    /// Makes the answer of `call` visible to lookups at once, before [`Self::answered`] (run next, on a blocking
    /// thread, while the answer is sent) has committed it: until then a lookup that finds the call `received` finds
    /// it answered with this answer, so a client retrying at once gets it, never `request_in_progress`. Memory only:
    /// if the gateway dies before the write commits, the request is still `received` and a restart answers it again.
    pub fn answering(&self, call: CallId, response: &str, certificate: &Certificate, signers: &[Address]) {
        let answer = InFlightAnswer {
            response: response.to_owned(),
            certificate: certificate.clone(),
            signers: signers.to_vec(),
        };
        self.in_flight().insert(call.0.to_be_bytes::<32>(), answer);
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], InFlightAnswer>> {
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer being written for the request in `row`, if it is still `received`.
    fn in_flight_for(&self, row: Option<&Row>) -> Option<InFlightAnswer> {
        let row = row.filter(|r| r.status == RequestStatus::Received.as_str())?;
        self.in_flight().get(row.call_id.as_slice()).cloned()
    }

    /// `found` as lookups see it: answered with `answer` if that is being written.
    fn with_answer(mut found: StoredRequest, answer: Option<InFlightAnswer>) -> StoredRequest {
        if let Some(answer) = answer
            && found.status == RequestStatus::Received
        {
            found.status = RequestStatus::Answered;
            found.response = Some(answer.response);
            found.certificate = Some(answer.certificate);
            found.signers = answer.signers;
        }
        found
    }

    /// Records the answer: the response body, the certificate and its signers.
    pub fn answered(
        &self,
        call: CallId,
        response: &str,
        certificate: &Certificate,
        signers: &[Address],
    ) -> Result<(), StoreError> {
        let cert = serde_json::to_string(certificate).unwrap_or_default();
        let signers = serde_json::to_string(signers).unwrap_or_default();
        self.with("answered", |c| {
            let written = c
                .prepare_cached(
                    "UPDATE requests SET status = 'answered', response = ?2, certificate = ?3, signers = ?4,
                     updated_at = ?5 WHERE call_id = ?1 AND status = 'received'",
                )
                .and_then(|mut st| {
                    st.execute(params![call.0.to_be_bytes::<32>().to_vec(), response, cert, signers, now()])
                });
            // Committed (or failed: then a restart answers it again); lookups read the row from now on.
            self.in_flight().remove(&call.0.to_be_bytes::<32>());
            written.map(drop)
        })
    }

    /// Sets the status (and an error) of `call`.
    pub fn set_status(&self, call: CallId, status: RequestStatus, error: Option<&str>) -> Result<(), StoreError> {
        self.with("set status", |c| {
            c.prepare_cached(
                "UPDATE requests SET status = ?2, error = COALESCE(?3, error), updated_at = ?4 WHERE call_id = ?1",
            )?
            .execute(params![call.0.to_be_bytes::<32>().to_vec(), status.as_str(), error, now()])
            .map(drop)
        })
    }

    /// Marks calls settled by `tx`.
    pub fn settled(&self, calls: &[CallId], tx: B256) -> Result<(), StoreError> {
        self.with("settled", |c| {
            let t = c.transaction()?;
            for call in calls {
                t.execute(
                    "UPDATE requests SET status = 'settled', settle_tx = ?2, updated_at = ?3 WHERE call_id = ?1",
                    params![call.0.to_be_bytes::<32>().to_vec(), tx.to_vec(), now()],
                )?;
            }
            t.commit()
        })
    }

    /// The request of `call`.
    pub fn get(&self, call: CallId) -> Result<Option<StoredRequest>, StoreError> {
        self.query_one("WHERE call_id = ?1", call.0.to_be_bytes::<32>().to_vec())
    }

    /// The request paid by this authorization (`from`, `nonce`), whatever call it was for.
    pub fn by_authorization(&self, auth: &TransferAuthorization) -> Result<Option<StoredRequest>, StoreError> {
        self.query_one("WHERE auth_key = ?1", auth_key(auth).to_vec())
    }

    /// [`Self::by_authorization`] for the paid-call path: read on the reading connection, so that a new payment's
    /// lookup does not wait for another call's commit in progress (its `fsync`: the answer just sent to the previous
    /// client, say). A request found still `received` is read again on the writing connection, which waits for a
    /// write in progress: the call a client retries at once is found `answered`, as [`Self::by_authorization`] finds
    /// it.
    pub fn lookup_authorization(&self, auth: &TransferAuthorization) -> Result<Option<StoredRequest>, StoreError> {
        let key = auth_key(auth).to_vec();
        let row = self.read("get", |c| {
            c.prepare_cached(&format!("{COLUMNS} WHERE auth_key = ?1"))?.query_row(params![key], Row::read).optional()
        })?;
        match row.map(|r| r.parse(&self.path)).transpose()? {
            // Committed since, or its answer is being written: the writing connection's lookup tells.
            Some(found) if found.status == RequestStatus::Received => self.by_authorization(auth),
            found => Ok(found),
        }
    }

    /// The request with payment identifier `id`.
    pub fn by_payment_id(&self, id: &str) -> Result<Option<StoredRequest>, StoreError> {
        self.query_one("WHERE payment_id = ?1", id.to_owned())
    }

    /// Requests with `status`, oldest first, at most `limit` (waits for a write in progress, as every lookup).
    pub fn with_status(&self, status: RequestStatus, limit: usize) -> Result<Vec<StoredRequest>, StoreError> {
        self.list_with_status(status, limit, false)
    }

    /// [`Self::with_status`] on the reading connection: the committed requests, without waiting for a write in
    /// progress. For the settlement batcher's listing every 200 ms (up to 4 × `max_batch` rows): it no longer holds
    /// the paid calls' writes and lookups up; a call whose answer is being committed is in its next listing.
    pub(crate) fn committed_with_status(
        &self,
        status: RequestStatus,
        limit: usize,
    ) -> Result<Vec<StoredRequest>, StoreError> {
        self.list_with_status(status, limit, true)
    }

    fn list_with_status(
        &self,
        status: RequestStatus,
        limit: usize,
        reader: bool,
    ) -> Result<Vec<StoredRequest>, StoreError> {
        let list = |c: &Connection| {
            let mut st =
                c.prepare_cached(&format!("{COLUMNS} WHERE status = ?1 ORDER BY created_at, rowid LIMIT ?2"))?;
            st.query_map(params![status.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)], Row::read)?
                .collect::<Result<Vec<_>, _>>()
        };
        let rows = if reader { self.read("list", list)? } else { self.with("list", |c| list(c))? };
        rows.into_iter().map(|r| r.parse(&self.path)).collect()
    }

    fn query_one<P: rusqlite::ToSql>(&self, filter: &str, param: P) -> Result<Option<StoredRequest>, StoreError> {
        // On the writing connection: a lookup waits for a commit in progress (the answer of the call a client
        // retries at once is found `answered`, not `received`).
        let (row, answer) = self.with("get", |c| {
            let row =
                c.prepare_cached(&format!("{COLUMNS} {filter}"))?.query_row(params![param], Row::read).optional()?;
            let answer = self.in_flight_for(row.as_ref());
            Ok((row, answer))
        })?;
        Ok(row.map(|r| r.parse(&self.path)).transpose()?.map(|found| Self::with_answer(found, answer)))
    }
}

/// `keccak256(from ‖ nonce)`: one authorization pays for at most one request.
fn auth_key(auth: &TransferAuthorization) -> B256 {
    let mut buf = [0u8; 52];
    buf[..20].copy_from_slice(auth.from.as_slice());
    buf[20..].copy_from_slice(auth.nonce.as_slice());
    alloy_primitives::keccak256(buf)
}

const COLUMNS: &str = "SELECT call_id, service_id, job_index, inputs, authorization, payment_signature, payment_id,
    payload_hash, status, response, certificate, signers, error, settle_tx FROM requests";

struct Row {
    call_id: Vec<u8>,
    service_id: i64,
    job_index: u8,
    inputs: Vec<u8>,
    authorization: String,
    payment_signature: Vec<u8>,
    payment_id: Option<String>,
    payload_hash: Vec<u8>,
    status: String,
    response: Option<String>,
    certificate: Option<String>,
    signers: String,
    error: Option<String>,
    settle_tx: Option<Vec<u8>>,
}

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            call_id: r.get(0)?,
            service_id: r.get(1)?,
            job_index: r.get(2)?,
            inputs: r.get(3)?,
            authorization: r.get(4)?,
            payment_signature: r.get(5)?,
            payment_id: r.get(6)?,
            payload_hash: r.get(7)?,
            status: r.get(8)?,
            response: r.get(9)?,
            certificate: r.get(10)?,
            signers: r.get(11)?,
            error: r.get(12)?,
            settle_tx: r.get(13)?,
        })
    }

    fn parse(self, path: &Path) -> Result<StoredRequest, StoreError> {
        let call = alloy_primitives::hex::encode_prefixed(&self.call_id);
        let corrupt = |what: &str| StoreError::Corrupt { path: path.to_owned(), call: call.clone(), what: what.into() };
        let word = |b: &[u8]| <[u8; 32]>::try_from(b).ok();
        let call_id = CallId(U256::from_be_bytes(word(&self.call_id).ok_or_else(|| corrupt("call id"))?));
        let authorization =
            serde_json::from_str(&self.authorization).map_err(|e| corrupt(&format!("authorization: {e}")))?;
        let certificate = match &self.certificate {
            Some(c) => Some(serde_json::from_str(c).map_err(|e| corrupt(&format!("certificate: {e}")))?),
            None => None,
        };
        Ok(StoredRequest {
            request: PaidRequest {
                call_id,
                service_id: ServiceId(self.service_id.cast_unsigned()),
                job_index: self.job_index,
                inputs: Bytes::from(self.inputs),
                authorization,
                payment_signature: Bytes::from(self.payment_signature),
                payment_id: self.payment_id,
                payload_hash: B256::from(word(&self.payload_hash).ok_or_else(|| corrupt("payload hash"))?),
            },
            status: RequestStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            response: self.response,
            certificate,
            signers: serde_json::from_str(&self.signers).map_err(|e| corrupt(&format!("signers: {e}")))?,
            error: self.error,
            settle_tx: self.settle_tx.as_deref().and_then(word).map(B256::from),
        })
    }
}

/// Where a piece of deviation evidence stands (see [`crate::reporter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceStatus {
    /// Kept; to be reported once the call is settled.
    Pending,
    /// `VouchSlasher.proposeDeviation` done; executable after the blueprint's dispute window.
    Proposed,
    /// `VouchSlasher.executeDeviation` done: the operator was slashed.
    Executed,
    /// Can never be reported (the call was never settled, the arbiter vetoed, the chain refused it for good).
    Failed,
}

impl EvidenceStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Proposed => "proposed",
            Self::Executed => "executed",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "proposed" => Self::Proposed,
            "executed" => Self::Executed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One operator's verified signature on a result other than the one its call's quorum certified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The call.
    pub call_id: CallId,
    /// Its service.
    pub service_id: ServiceId,
    /// The operator that signed the other result.
    pub operator: Address,
    /// Its slot in the service (when it answered).
    pub slot: usize,
    /// The inputs hash it signed.
    pub inputs_hash: B256,
    /// The result hash it signed.
    pub result_hash: B256,
    /// Its 96-byte compressed BLS signature over `result_digest` of that statement.
    pub signature: Bytes,
    /// Where the report stands.
    pub status: EvidenceStatus,
    /// The last report transaction (the proposal, then the execution).
    pub tx: Option<B256>,
    /// When the proposal becomes executable (chain time, unix seconds), once proposed.
    pub executable_at: Option<u64>,
    /// The last error (why it failed, or the last transient failure).
    pub error: Option<String>,
    /// Last change (unix seconds, local clock).
    pub updated_at: i64,
}

/// How a settled call was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementRecord {
    /// The `settlePaidBatch` transaction (zero: a resubmission that found the batch settled, `NothingToCollect`).
    pub tx: B256,
    /// The paid batch id (0 = unknown).
    pub batch_id: U256,
}

const EVIDENCE_COLUMNS: &str =
    "SELECT call_id, service_id, operator, slot, inputs_hash, result_hash, signature, status,
    tx, executable_at, error, updated_at FROM evidence";

impl RequestStore {
    /// Marks calls settled by `tx` in paid batch `batch_id` (0 = unknown).
    pub fn settled_in_batch(&self, calls: &[CallId], tx: B256, batch_id: U256) -> Result<(), StoreError> {
        self.with("settled", |c| {
            let t = c.transaction()?;
            for call in calls {
                t.execute(
                    "UPDATE requests SET status = 'settled', settle_tx = ?2, batch_id = ?3, updated_at = ?4
                     WHERE call_id = ?1",
                    params![
                        call.0.to_be_bytes::<32>().to_vec(),
                        tx.to_vec(),
                        batch_id.to_be_bytes::<32>().to_vec(),
                        now()
                    ],
                )?;
            }
            t.commit()
        })
    }

    /// The settlement transaction and paid batch of `call`, once settled.
    pub fn settlement_of(&self, call: CallId) -> Result<Option<SettlementRecord>, StoreError> {
        type Raw = Option<Vec<u8>>;
        let row: Option<(Raw, Raw)> = self.with("settlement", |c| {
            c.query_row(
                "SELECT settle_tx, batch_id FROM requests WHERE call_id = ?1 AND status = 'settled'",
                params![call.0.to_be_bytes::<32>().to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        let word = |b: Option<Vec<u8>>| b.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        Ok(row.and_then(|(tx, batch)| {
            Some(SettlementRecord {
                tx: B256::from(word(tx)?),
                batch_id: word(batch).map(U256::from_be_bytes).unwrap_or_default(),
            })
        }))
    }

    /// Keeps `signed`, the verified signature of the operator in `slot` on a result other than the certified one, as
    /// evidence against it (status pending). Idempotent: `false` if that operator's evidence on that call was kept
    /// before (the first signature is kept).
    pub fn add_evidence(&self, slot: usize, signed: &SignedResult) -> Result<bool, StoreError> {
        let r = &signed.result;
        let added = self.with("add evidence", |c| {
            c.execute(
                "INSERT OR IGNORE INTO evidence (call_id, operator, slot, service_id, inputs_hash, result_hash,
                 signature, status, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
                params![
                    r.call_id.0.to_be_bytes::<32>().to_vec(),
                    signed.operator.to_vec(),
                    i64::try_from(slot).unwrap_or(i64::MAX),
                    r.service_id.0.cast_signed(),
                    r.inputs_hash.to_vec(),
                    r.result_hash.to_vec(),
                    signed.signature.to_vec(),
                    now()
                ],
            )
        })?;
        Ok(added == 1)
    }

    /// The evidence kept about `call`, by operator.
    pub fn evidence(&self, call: CallId) -> Result<Vec<Evidence>, StoreError> {
        self.evidence_where("WHERE call_id = ?1 ORDER BY operator", params![call.0.to_be_bytes::<32>().to_vec()])
    }

    /// Evidence with `status`, oldest first, at most `limit`.
    pub fn evidence_with_status(&self, status: EvidenceStatus, limit: usize) -> Result<Vec<Evidence>, StoreError> {
        self.evidence_where(
            "WHERE status = ?1 ORDER BY created_at, rowid LIMIT ?2",
            params![status.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Moves the evidence of `operator` on `call` to `status`, with the transaction that did it (kept if `None`),
    /// the proposal's `executable_at` (kept if `None`) and `error` (replaced: `None` clears it).
    pub fn update_evidence(
        &self,
        call: CallId,
        operator: Address,
        status: EvidenceStatus,
        tx: Option<B256>,
        executable_at: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with("update evidence", |c| {
            c.execute(
                "UPDATE evidence SET status = ?3, tx = COALESCE(?4, tx), executable_at = COALESCE(?5, executable_at),
                 error = ?6, updated_at = ?7 WHERE call_id = ?1 AND operator = ?2",
                params![
                    call.0.to_be_bytes::<32>().to_vec(),
                    operator.to_vec(),
                    status.as_str(),
                    tx.map(|t| t.to_vec()),
                    executable_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                    error,
                    now()
                ],
            )
            .map(drop)
        })
    }

    /// Notes a transient failure on the evidence of `operator` on `call` (its status does not change).
    pub fn note_evidence_error(&self, call: CallId, operator: Address, error: &str) -> Result<(), StoreError> {
        self.with("note evidence error", |c| {
            c.execute(
                "UPDATE evidence SET error = ?3, updated_at = ?4 WHERE call_id = ?1 AND operator = ?2",
                params![call.0.to_be_bytes::<32>().to_vec(), operator.to_vec(), error, now()],
            )
            .map(drop)
        })
    }

    fn evidence_where(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<Evidence>, StoreError> {
        let rows = self.with("list evidence", |c| {
            let mut st = c.prepare_cached(&format!("{EVIDENCE_COLUMNS} {filter}"))?;
            st.query_map(params, EvidenceRow::read)?.collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(|r| r.parse(&self.path)).collect()
    }
}

struct EvidenceRow {
    call_id: Vec<u8>,
    service_id: i64,
    operator: Vec<u8>,
    slot: i64,
    inputs_hash: Vec<u8>,
    result_hash: Vec<u8>,
    signature: Vec<u8>,
    status: String,
    tx: Option<Vec<u8>>,
    executable_at: Option<i64>,
    error: Option<String>,
    updated_at: i64,
}

impl EvidenceRow {
    fn read(r: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            call_id: r.get(0)?,
            service_id: r.get(1)?,
            operator: r.get(2)?,
            slot: r.get(3)?,
            inputs_hash: r.get(4)?,
            result_hash: r.get(5)?,
            signature: r.get(6)?,
            status: r.get(7)?,
            tx: r.get(8)?,
            executable_at: r.get(9)?,
            error: r.get(10)?,
            updated_at: r.get(11)?,
        })
    }

    fn parse(self, path: &Path) -> Result<Evidence, StoreError> {
        let call = alloy_primitives::hex::encode_prefixed(&self.call_id);
        let corrupt = |what: &str| StoreError::Corrupt {
            path: path.to_owned(),
            call: call.clone(),
            what: format!("evidence: {what}"),
        };
        let word = |b: &[u8]| <[u8; 32]>::try_from(b).ok();
        Ok(Evidence {
            call_id: CallId(U256::from_be_bytes(word(&self.call_id).ok_or_else(|| corrupt("call id"))?)),
            service_id: ServiceId(self.service_id.cast_unsigned()),
            operator: Address::try_from(self.operator.as_slice()).map_err(|_| corrupt("operator"))?,
            slot: usize::try_from(self.slot).map_err(|_| corrupt("slot"))?,
            inputs_hash: B256::from(word(&self.inputs_hash).ok_or_else(|| corrupt("inputs hash"))?),
            result_hash: B256::from(word(&self.result_hash).ok_or_else(|| corrupt("result hash"))?),
            signature: Bytes::from(self.signature),
            status: EvidenceStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            tx: self.tx.as_deref().and_then(word).map(B256::from),
            executable_at: self.executable_at.and_then(|t| u64::try_from(t).ok()),
            error: self.error,
            updated_at: self.updated_at,
        })
    }
}

/// One operator's verified commitment, in a tolerant job, to an output that contradicts the output its call's quorum
/// certified (`crate::rounds`): the evidence of a commitment deviation
/// (`VouchSlasher.proposeCommitmentDeviation(callId, operator, slot, SignedCommitment, output)`). The committed
/// output is kept whole: the proposal publishes it, so that anyone can re-check the tolerance during the dispute
/// window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentEvidence {
    /// The call.
    pub call_id: CallId,
    /// Its service.
    pub service_id: ServiceId,
    /// The committing operator.
    pub operator: Address,
    /// Its slot in the service.
    pub slot: usize,
    /// The inputs hash it committed to.
    pub inputs_hash: B256,
    /// `keccak256` of its committed output.
    pub output_hash: B256,
    /// The committed output.
    pub output: Bytes,
    /// Its 96-byte compressed BLS signature over `commitment_digest` of that commitment.
    pub signature: Bytes,
    /// The certified result hash it contradicts.
    pub certified_hash: B256,
    /// Why the gateway holds it for a contradiction (which `disagree`, from whom).
    pub reason: String,
    /// Where the report stands.
    pub status: EvidenceStatus,
    /// The last report transaction.
    pub tx: Option<B256>,
    /// When the proposal becomes executable (chain time, unix seconds), once proposed.
    pub executable_at: Option<u64>,
    /// The last error.
    pub error: Option<String>,
    /// Last change (unix seconds, local clock).
    pub updated_at: i64,
}

const COMMITMENT_EVIDENCE_COLUMNS: &str =
    "SELECT call_id, service_id, operator, slot, inputs_hash, output_hash, output,
    signature, certified_hash, reason, status, tx, executable_at, error, updated_at FROM commitment_evidence";

impl RequestStore {
    /// Keeps `signed`, the verified commitment of the operator in `slot` that contradicts the certified result
    /// `certified` (for `reason`), as evidence against it (status pending). Idempotent: `false` if that operator's
    /// commitment on that call was kept before.
    pub fn add_commitment_evidence(
        &self,
        slot: usize,
        signed: &SignedCommitment,
        certified: B256,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let c = &signed.commitment;
        let added = self.with("add commitment evidence", |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO commitment_evidence (call_id, operator, slot, service_id, inputs_hash,
                 output_hash, output, signature, certified_hash, reason, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?11)",
                params![
                    c.call_id.0.to_be_bytes::<32>().to_vec(),
                    signed.operator.to_vec(),
                    i64::try_from(slot).unwrap_or(i64::MAX),
                    c.service_id.0.cast_signed(),
                    c.inputs_hash.to_vec(),
                    c.output_hash.to_vec(),
                    signed.output.to_vec(),
                    signed.signature.to_vec(),
                    certified.to_vec(),
                    reason,
                    now()
                ],
            )
        })?;
        Ok(added == 1)
    }

    /// The commitment evidence kept about `call`, by operator.
    pub fn commitment_evidence(&self, call: CallId) -> Result<Vec<CommitmentEvidence>, StoreError> {
        self.commitment_evidence_where(
            "WHERE call_id = ?1 ORDER BY operator",
            params![call.0.to_be_bytes::<32>().to_vec()],
        )
    }

    /// Commitment evidence with `status`, oldest first, at most `limit`.
    pub fn commitment_evidence_with_status(
        &self,
        status: EvidenceStatus,
        limit: usize,
    ) -> Result<Vec<CommitmentEvidence>, StoreError> {
        self.commitment_evidence_where(
            "WHERE status = ?1 ORDER BY created_at, rowid LIMIT ?2",
            params![status.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Moves the commitment evidence of `operator` on `call` to `status`, as [`Self::update_evidence`] does.
    pub fn update_commitment_evidence(
        &self,
        call: CallId,
        operator: Address,
        status: EvidenceStatus,
        tx: Option<B256>,
        executable_at: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with("update commitment evidence", |c| {
            c.execute(
                "UPDATE commitment_evidence SET status = ?3, tx = COALESCE(?4, tx),
                 executable_at = COALESCE(?5, executable_at), error = ?6, updated_at = ?7
                 WHERE call_id = ?1 AND operator = ?2",
                params![
                    call.0.to_be_bytes::<32>().to_vec(),
                    operator.to_vec(),
                    status.as_str(),
                    tx.map(|t| t.to_vec()),
                    executable_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                    error,
                    now()
                ],
            )
            .map(drop)
        })
    }

    /// Notes a transient failure on the commitment evidence of `operator` on `call` (its status does not change).
    pub fn note_commitment_evidence_error(
        &self,
        call: CallId,
        operator: Address,
        error: &str,
    ) -> Result<(), StoreError> {
        self.with("note commitment evidence error", |c| {
            c.execute(
                "UPDATE commitment_evidence SET error = ?3, updated_at = ?4 WHERE call_id = ?1 AND operator = ?2",
                params![call.0.to_be_bytes::<32>().to_vec(), operator.to_vec(), error, now()],
            )
            .map(drop)
        })
    }

    fn commitment_evidence_where(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<CommitmentEvidence>, StoreError> {
        let rows = self.with("list commitment evidence", |c| {
            let mut st = c.prepare_cached(&format!("{COMMITMENT_EVIDENCE_COLUMNS} {filter}"))?;
            st.query_map(params, CommitmentEvidenceRow::read)?.collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(|r| r.parse(&self.path)).collect()
    }
}

struct CommitmentEvidenceRow {
    call_id: Vec<u8>,
    service_id: i64,
    operator: Vec<u8>,
    slot: i64,
    inputs_hash: Vec<u8>,
    output_hash: Vec<u8>,
    output: Vec<u8>,
    signature: Vec<u8>,
    certified_hash: Vec<u8>,
    reason: String,
    status: String,
    tx: Option<Vec<u8>>,
    executable_at: Option<i64>,
    error: Option<String>,
    updated_at: i64,
}

impl CommitmentEvidenceRow {
    fn read(r: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            call_id: r.get(0)?,
            service_id: r.get(1)?,
            operator: r.get(2)?,
            slot: r.get(3)?,
            inputs_hash: r.get(4)?,
            output_hash: r.get(5)?,
            output: r.get(6)?,
            signature: r.get(7)?,
            certified_hash: r.get(8)?,
            reason: r.get(9)?,
            status: r.get(10)?,
            tx: r.get(11)?,
            executable_at: r.get(12)?,
            error: r.get(13)?,
            updated_at: r.get(14)?,
        })
    }

    fn parse(self, path: &Path) -> Result<CommitmentEvidence, StoreError> {
        let call = alloy_primitives::hex::encode_prefixed(&self.call_id);
        let corrupt = |what: &str| StoreError::Corrupt {
            path: path.to_owned(),
            call: call.clone(),
            what: format!("commitment evidence: {what}"),
        };
        let word = |b: &[u8]| <[u8; 32]>::try_from(b).ok();
        Ok(CommitmentEvidence {
            call_id: CallId(U256::from_be_bytes(word(&self.call_id).ok_or_else(|| corrupt("call id"))?)),
            service_id: ServiceId(self.service_id.cast_unsigned()),
            operator: Address::try_from(self.operator.as_slice()).map_err(|_| corrupt("operator"))?,
            slot: usize::try_from(self.slot).map_err(|_| corrupt("slot"))?,
            inputs_hash: B256::from(word(&self.inputs_hash).ok_or_else(|| corrupt("inputs hash"))?),
            output_hash: B256::from(word(&self.output_hash).ok_or_else(|| corrupt("output hash"))?),
            output: Bytes::from(self.output),
            signature: Bytes::from(self.signature),
            certified_hash: B256::from(word(&self.certified_hash).ok_or_else(|| corrupt("certified hash"))?),
            reason: self.reason,
            status: EvidenceStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            tx: self.tx.as_deref().and_then(word).map(B256::from),
            executable_at: self.executable_at.and_then(|t| u64::try_from(t).ok()),
            error: self.error,
            updated_at: self.updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u8) -> PaidRequest {
        PaidRequest {
            call_id: CallId(U256::from(n) << 200),
            service_id: ServiceId(1),
            job_index: 0,
            inputs: Bytes::from_static(b"{}"),
            authorization: TransferAuthorization {
                from: Address::repeat_byte(1),
                to: Address::repeat_byte(2),
                value: U256::from(10),
                valid_after: U256::ZERO,
                valid_before: U256::from(99),
                nonce: B256::repeat_byte(n),
            },
            payment_signature: Bytes::from_static(&[1; 65]),
            payment_id: Some(format!("payment-id-{n:016}")),
            payload_hash: B256::repeat_byte(n),
        }
    }

    #[test]
    fn records_once_and_survives_reopening() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gateway.sqlite");
        let store = RequestStore::open(&path)?;
        assert!(matches!(store.record(&request(1))?, Recorded::New));
        assert!(matches!(store.record(&request(1))?, Recorded::Existing(_)));
        let mut other = request(1);
        other.payload_hash = B256::repeat_byte(9);
        assert!(matches!(store.record(&other), Err(StoreError::PaymentIdConflict(_))));
        drop(store);
        let store = RequestStore::open(&path)?;
        let got = store.get(request(1).call_id)?.ok_or("stored")?;
        assert_eq!(got.request, request(1));
        assert_eq!(got.status, RequestStatus::Received);
        assert_eq!(store.with_status(RequestStatus::Received, 10)?.len(), 1);
        store.set_status(request(1).call_id, RequestStatus::Failed, Some("no quorum"))?;
        assert_eq!(store.get(request(1).call_id)?.ok_or("stored")?.error.as_deref(), Some("no quorum"));
        Ok(())
    }

    #[test]
    fn an_answer_being_written_is_found_answered() -> Result<(), Box<dyn std::error::Error>> {
        use vouch_primitives::CERTIFICATE_VERSION;
        let dir = tempfile::tempdir()?;
        let store = RequestStore::open(&dir.path().join("gateway.sqlite"))?;
        let r = request(1);
        store.record(&r)?;
        let certificate = Certificate {
            version: CERTIFICATE_VERSION,
            chain_id: 31337,
            protocol: Address::repeat_byte(5),
            service_id: 1,
            call_id: r.call_id.0,
            inputs_hash: B256::repeat_byte(3),
            result_hash: B256::repeat_byte(4),
            signer_bitmap: U256::from(7),
            signature: Bytes::from_static(&[9; 256]),
            batch: None,
            key_set: None,
            stake_at_risk: None,
        };
        let signers = [Address::repeat_byte(0xaa)];
        store.answering(r.call_id, r#"{"output":1}"#, &certificate, &signers);
        // Not committed yet: the row is `received`, every lookup but the listings finds it answered.
        assert_eq!(store.with_status(RequestStatus::Received, 10)?.len(), 1);
        for found in [
            store.get(r.call_id)?,
            store.by_authorization(&r.authorization)?,
            store.lookup_authorization(&r.authorization)?,
        ] {
            let found = found.ok_or("found")?;
            assert_eq!(found.status, RequestStatus::Answered);
            assert_eq!(found.response.as_deref(), Some(r#"{"output":1}"#));
            assert_eq!(found.certificate.as_ref(), Some(&certificate));
            assert_eq!(found.signers, signers);
        }
        store.answered(r.call_id, r#"{"output":1}"#, &certificate, &signers)?;
        assert!(store.in_flight().is_empty());
        assert_eq!(store.with_status(RequestStatus::Answered, 10)?.len(), 1);
        let found = store.lookup_authorization(&r.authorization)?.ok_or("found")?;
        assert_eq!((found.status, found.response.as_deref()), (RequestStatus::Answered, Some(r#"{"output":1}"#)));
        // Another call still in progress is found `received`.
        store.record(&request(2))?;
        assert_eq!(
            store.lookup_authorization(&request(2).authorization)?.ok_or("found")?.status,
            RequestStatus::Received
        );
        Ok(())
    }

    #[test]
    fn keeps_evidence_once_and_follows_its_report() -> Result<(), Box<dyn std::error::Error>> {
        use vouch_primitives::{ResultRef, wire::WIRE_VERSION};
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gateway.sqlite");
        let store = RequestStore::open(&path)?;
        let call = request(1).call_id;
        store.record(&request(1))?;
        let signed = SignedResult {
            version: WIRE_VERSION,
            operator: Address::repeat_byte(0xee),
            result: ResultRef {
                service_id: ServiceId(1),
                call_id: call,
                inputs_hash: B256::repeat_byte(3),
                result_hash: B256::repeat_byte(4),
            },
            output: Some(Bytes::from_static(b"{}")),
            signature: Bytes::from_static(&[7; 96]),
        };
        assert!(store.add_evidence(2, &signed)?);
        assert!(!store.add_evidence(2, &signed)?, "kept once");
        store.settled_in_batch(&[call], B256::repeat_byte(9), U256::from(5))?;
        drop(store);
        let store = RequestStore::open(&path)?;
        assert_eq!(
            store.settlement_of(call)?,
            Some(SettlementRecord { tx: B256::repeat_byte(9), batch_id: U256::from(5) })
        );
        let [e] = store.evidence(call)?.try_into().map_err(|v| format!("{v:?}"))?;
        assert_eq!((e.operator, e.slot, e.status), (signed.operator, 2, EvidenceStatus::Pending));
        assert_eq!(
            (e.inputs_hash, e.result_hash, e.signature.clone()),
            (B256::repeat_byte(3), B256::repeat_byte(4), signed.signature)
        );
        store.note_evidence_error(call, e.operator, "rpc down")?;
        store.update_evidence(
            call,
            e.operator,
            EvidenceStatus::Proposed,
            Some(B256::repeat_byte(1)),
            Some(99),
            None,
        )?;
        let [e] = store.evidence_with_status(EvidenceStatus::Proposed, 10)?.try_into().map_err(|v| format!("{v:?}"))?;
        assert_eq!((e.tx, e.executable_at, e.error), (Some(B256::repeat_byte(1)), Some(99), None));
        assert!(store.evidence_with_status(EvidenceStatus::Pending, 10)?.is_empty());
        Ok(())
    }

    #[test]
    fn keeps_commitment_evidence_once_across_reopening() -> Result<(), Box<dyn std::error::Error>> {
        use vouch_primitives::{CommitmentRef, wire::WIRE_VERSION};
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gateway.sqlite");
        let store = RequestStore::open(&path)?;
        let call = request(1).call_id;
        store.record(&request(1))?;
        let output = Bytes::from_static(b"[0.5,1.5]");
        let signed = SignedCommitment {
            version: WIRE_VERSION,
            operator: Address::repeat_byte(0xee),
            commitment: CommitmentRef {
                service_id: ServiceId(1),
                call_id: call,
                inputs_hash: B256::repeat_byte(3),
                output_hash: alloy_primitives::keccak256(&output),
            },
            output: output.clone(),
            signature: Bytes::from_static(&[7; 96]),
        };
        assert!(store.add_commitment_evidence(1, &signed, B256::repeat_byte(4), "answered disagree")?);
        assert!(!store.add_commitment_evidence(1, &signed, B256::repeat_byte(5), "again")?, "kept once");
        assert!(store.evidence(call)?.is_empty(), "not an ordinary deviation");
        drop(store);
        let store = RequestStore::open(&path)?;
        let [e] = store.commitment_evidence(call)?.try_into().map_err(|v| format!("{v:?}"))?;
        assert_eq!((e.operator, e.slot, e.status), (signed.operator, 1, EvidenceStatus::Pending));
        assert_eq!(
            (e.output, e.output_hash, e.inputs_hash),
            (output, signed.commitment.output_hash, B256::repeat_byte(3))
        );
        assert_eq!(
            (e.certified_hash, e.reason.as_str(), e.signature),
            (B256::repeat_byte(4), "answered disagree", signed.signature)
        );
        store.note_commitment_evidence_error(call, e.operator, "no binding yet")?;
        store.update_commitment_evidence(
            call,
            e.operator,
            EvidenceStatus::Proposed,
            Some(B256::repeat_byte(1)),
            Some(9),
            None,
        )?;
        let [e] = store
            .commitment_evidence_with_status(EvidenceStatus::Proposed, 10)?
            .try_into()
            .map_err(|v| format!("{v:?}"))?;
        assert_eq!((e.tx, e.executable_at, e.error), (Some(B256::repeat_byte(1)), Some(9), None));
        assert!(store.commitment_evidence_with_status(EvidenceStatus::Pending, 10)?.is_empty());
        Ok(())
    }

    #[test]
    fn adds_the_batch_column_to_an_older_store() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("gateway.sqlite");
        let old = SCHEMA.split("CREATE TABLE IF NOT EXISTS evidence").next().ok_or("schema")?;
        Connection::open(&path)?.execute_batch(old)?;
        let store = RequestStore::open(&path)?;
        store.record(&request(1))?;
        store.settled_in_batch(&[request(1).call_id], B256::repeat_byte(9), U256::from(5))?;
        assert_eq!(store.settlement_of(request(1).call_id)?.map(|s| s.batch_id), Some(U256::from(5)));
        Ok(())
    }
}
