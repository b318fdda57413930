//! [`StateStore`]: the node's SQLite record of the chain it has read — the checkpoint, the hashes of recent blocks
//! and every call found, with its status.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::primitives::{Address, B256, Bytes, U256};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use vouch_primitives::{CallId, ServiceId};

use super::WatcherError;

/// Newest schema (`PRAGMA user_version`) this node writes.
const SCHEMA_VERSION: i64 = 1;

/// How many recent block hashes are kept to find the fork point of a reorganization.
pub(crate) const KEPT_BLOCKS: u64 = 128;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoint (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    number INTEGER NOT NULL,
    hash   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    call_id      BLOB PRIMARY KEY,
    service_id   INTEGER NOT NULL,
    job_index    INTEGER NOT NULL,
    payer        BLOB NOT NULL,
    payment      BLOB NOT NULL,
    deadline     INTEGER NOT NULL,
    inputs_hash  BLOB NOT NULL,
    inputs       BLOB,
    block_number INTEGER NOT NULL,
    block_hash   BLOB NOT NULL,
    tx_hash      BLOB NOT NULL,
    log_index    INTEGER NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('pending', 'done', 'failed', 'vanished', 'inputs_off_chain')),
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_status ON calls (status, block_number, log_index);
CREATE INDEX IF NOT EXISTS calls_by_block ON calls (block_number);
";

const CALL_COLUMNS: &str = "call_id, service_id, job_index, payer, payment, deadline, inputs_hash, inputs, \
                            block_number, block_hash, status";

/// Where a call stands for this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Found on the chain with its inputs, confirmed, not handled yet.
    Pending,
    /// Handled: executed, signed and passed on.
    Done,
    /// Handled without a result (the handler failed for good).
    Failed,
    /// Its block was reorged away. If the chain includes it again, the watcher reports it again as new.
    Vanished,
    /// Opened by an x402 payment (`CallOpened` without `CallInputs` in its transaction): the inputs reach the node
    /// over HTTP with the payment, so the call is not executed from the chain.
    InputsOffChain,
}

impl CallStatus {
    /// The value stored in the `status` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Vanished => "vanished",
            Self::InputsOffChain => "inputs_off_chain",
        }
    }

    fn parse(text: &str) -> Result<Self, WatcherError> {
        Ok(match text {
            "pending" => Self::Pending,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "vanished" => Self::Vanished,
            "inputs_off_chain" => Self::InputsOffChain,
            other => return Err(WatcherError::Corrupt { column: "calls.status", detail: format!("{other:?}") }),
        })
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call opened on-chain (`CallOpened`), with its inputs when the same transaction carried them (`CallInputs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCall {
    /// The call.
    pub call_id: CallId,
    /// Its service.
    pub service_id: ServiceId,
    /// Its job in the service's blueprint.
    pub job_index: u8,
    /// Who paid (and is refunded after the deadline).
    pub payer: Address,
    /// The escrowed payment (the job price).
    pub payment: U256,
    /// Latest settlement time, unix seconds.
    pub deadline: u64,
    /// keccak256 of the inputs.
    pub inputs_hash: B256,
    /// The inputs from `CallInputs`; `None` for an x402 call ([`CallStatus::InputsOffChain`]).
    pub inputs: Option<Bytes>,
    /// The block that opened it.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// Where it stands.
    pub status: CallStatus,
}

/// A call as the watcher found it in a log: the [`ChainCall`] plus where in the block it was, for ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundCall {
    pub(crate) call: ChainCall,
    pub(crate) tx_hash: B256,
    pub(crate) log_index: u64,
}

/// One block range read by the watcher, recorded in one transaction.
#[derive(Debug)]
pub(crate) struct ScannedRange {
    /// The calls opened in the range.
    pub(crate) calls: Vec<FoundCall>,
    /// Canonical hashes seen while reading the range (the last block, and every block with a call).
    pub(crate) blocks: Vec<(u64, B256)>,
    /// The last block of the range: the new checkpoint.
    pub(crate) checkpoint: (u64, B256),
}

/// The node's durable record of what it read from the chain: a SQLite file (WAL, `synchronous = FULL`).
///
/// New calls and the checkpoint move forward in one transaction, so a crash neither loses a call nor skips a block.
/// This is not the signing guard: losing the file costs a re-scan from the configured start block, never a double
/// signature. Cloning shares the connection.
#[derive(Clone)]
pub struct StateStore {
    connection: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens the state database at `path`, creating it (and its directory) if missing.
    pub fn open(path: &Path) -> Result<Self, WatcherError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| WatcherError::CreateDir { path: dir.to_owned(), source })?;
        }
        let open_error = |source| WatcherError::Open { path: path.to_owned(), source };
        let connection = Connection::open(path).map_err(open_error)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(open_error)?;
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(open_error)?;
        if version > SCHEMA_VERSION {
            return Err(WatcherError::UnsupportedSchema {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        connection
            .execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
            .map_err(open_error)?;
        Ok(Self { connection: Arc::new(Mutex::new(connection)), path: Arc::new(path.to_owned()) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls waiting to be handled ([`CallStatus::Pending`]), oldest first (block, then position in the block).
    pub fn pending_calls(&self) -> Result<Vec<ChainCall>, WatcherError> {
        self.calls_with_status(CallStatus::Pending)
    }

    /// Calls with `status`, oldest first.
    pub fn calls_with_status(&self, status: CallStatus) -> Result<Vec<ChainCall>, WatcherError> {
        let connection = self.lock();
        let operation = || format!("listing {status} calls");
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE status = ?1 ORDER BY block_number, log_index"
            ))
            .map_err(WatcherError::store(operation()))?;
        let rows = statement
            .query_map([status.as_str()], RawCall::read)
            .map_err(WatcherError::store(operation()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(WatcherError::store(operation()))?;
        rows.into_iter().map(RawCall::decode).collect()
    }

    /// Records how the node handled `call_id`. A vanished call keeps [`CallStatus::Vanished`]
    /// ([`WatcherError::CallVanished`]) unless the status set is `Vanished` itself: only the watcher revives it, when
    /// it finds the call on the canonical chain again.
    pub fn set_status(&self, call_id: CallId, status: CallStatus) -> Result<(), WatcherError> {
        let connection = self.lock();
        let operation = || format!("setting {call_id} to {status}");
        let current: Option<String> = connection
            .query_row("SELECT status FROM calls WHERE call_id = ?1", [call_id_key(call_id)], |row| row.get(0))
            .optional()
            .map_err(WatcherError::store(operation()))?;
        match current.as_deref().map(CallStatus::parse).transpose()? {
            None => Err(WatcherError::UnknownCall { call_id }),
            Some(CallStatus::Vanished) if status != CallStatus::Vanished => Err(WatcherError::CallVanished { call_id }),
            Some(_) => {
                connection
                    .execute(
                        "UPDATE calls SET status = ?2, updated_at = ?3 WHERE call_id = ?1",
                        params![call_id_key(call_id), status.as_str(), now()],
                    )
                    .map_err(WatcherError::store(operation()))?;
                Ok(())
            }
        }
    }

    /// The call `call_id`, whatever its status.
    pub fn call(&self, call_id: CallId) -> Result<Option<ChainCall>, WatcherError> {
        let connection = self.lock();
        let raw = connection
            .query_row(
                &format!("SELECT {CALL_COLUMNS} FROM calls WHERE call_id = ?1"),
                [call_id_key(call_id)],
                RawCall::read,
            )
            .optional()
            .map_err(WatcherError::store(format!("reading {call_id}")))?;
        raw.map(RawCall::decode).transpose()
    }

    /// The last block read, and its hash; `None` before the first block range is recorded.
    pub fn checkpoint(&self) -> Result<Option<(u64, B256)>, WatcherError> {
        let connection = self.lock();
        let row: Option<(u64, Vec<u8>)> = connection
            .query_row("SELECT number, hash FROM checkpoint WHERE id = 0", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(WatcherError::store("reading the checkpoint"))?;
        row.map(|(number, hash)| Ok((number, b256("checkpoint.hash", &hash)?))).transpose()
    }

    /// Stored block hashes, highest first (the checkpoint's block comes first).
    pub(crate) fn recent_blocks(&self) -> Result<Vec<(u64, B256)>, WatcherError> {
        let connection = self.lock();
        let operation = "reading recent block hashes";
        let mut statement = connection
            .prepare_cached("SELECT number, hash FROM blocks ORDER BY number DESC")
            .map_err(WatcherError::store(operation))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, u64>(0)?, row.get::<_, Vec<u8>>(1)?)))
            .map_err(WatcherError::store(operation))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(WatcherError::store(operation))?;
        rows.into_iter().map(|(number, hash)| Ok((number, b256("blocks.hash", &hash)?))).collect()
    }

    /// Records a block range in one transaction: its calls, its block hashes, the new checkpoint; prunes old block
    /// hashes. Returns the calls that are new to the store — inserted, or revived after they had vanished. A call
    /// already known (and not vanished) is left as it is.
    pub(crate) fn record_range(&self, range: &ScannedRange) -> Result<Vec<ChainCall>, WatcherError> {
        let mut connection = self.lock();
        let (checkpoint, checkpoint_hash) = range.checkpoint;
        let operation = || format!("recording the calls of the blocks up to {checkpoint}");
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(WatcherError::store(operation()))?;
        let mut new_calls = Vec::new();
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO calls (call_id, service_id, job_index, payer, payment, deadline, inputs_hash, inputs,
                                        block_number, block_hash, tx_hash, log_index, status, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT (call_id) DO UPDATE SET
                         service_id = excluded.service_id, job_index = excluded.job_index, payer = excluded.payer,
                         payment = excluded.payment, deadline = excluded.deadline,
                         inputs_hash = excluded.inputs_hash, inputs = excluded.inputs,
                         block_number = excluded.block_number, block_hash = excluded.block_hash,
                         tx_hash = excluded.tx_hash, log_index = excluded.log_index, status = excluded.status,
                         updated_at = excluded.updated_at
                     WHERE calls.status = 'vanished'",
                )
                .map_err(WatcherError::store(operation()))?;
            let updated_at = now();
            for found in &range.calls {
                let c = &found.call;
                let changed = upsert
                    .execute(params![
                        call_id_key(c.call_id),
                        c.service_id.0,
                        c.job_index,
                        c.payer.as_slice(),
                        c.payment.to_be_bytes::<32>().as_slice(),
                        c.deadline,
                        c.inputs_hash.as_slice(),
                        c.inputs.as_ref().map(|inputs| inputs.as_ref()),
                        c.block_number,
                        c.block_hash.as_slice(),
                        found.tx_hash.as_slice(),
                        found.log_index,
                        c.status.as_str(),
                        updated_at,
                    ])
                    .map_err(WatcherError::store(format!("recording {}", c.call_id)))?;
                if changed == 1 {
                    new_calls.push(c.clone());
                } else {
                    tracing::debug!(call = %c.call_id, block = c.block_number, "call already recorded");
                }
            }
            let mut block = tx
                .prepare_cached("INSERT OR REPLACE INTO blocks (number, hash) VALUES (?1, ?2)")
                .map_err(WatcherError::store(operation()))?;
            for (number, hash) in range.blocks.iter().chain([&range.checkpoint]) {
                block.execute(params![number, hash.as_slice()]).map_err(WatcherError::store(operation()))?;
            }
        }
        tx.execute(
            "INSERT INTO checkpoint (id, number, hash) VALUES (0, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET number = excluded.number, hash = excluded.hash",
            params![checkpoint, checkpoint_hash.as_slice()],
        )
        .map_err(WatcherError::store(operation()))?;
        tx.execute(
            "DELETE FROM blocks WHERE number NOT IN (SELECT number FROM blocks ORDER BY number DESC LIMIT ?1)",
            [KEPT_BLOCKS],
        )
        .map_err(WatcherError::store(operation()))?;
        tx.commit().map_err(WatcherError::store(operation()))?;
        Ok(new_calls)
    }

    /// Undoes a reorganization in one transaction: every call above the fork point that had not vanished is marked
    /// [`CallStatus::Vanished`] (and returned), the block hashes above it are dropped and the checkpoint moves back to
    /// it. `fork = None` (no stored block is canonical any more) drops the checkpoint: everything is read again.
    pub(crate) fn rewind(&self, fork: Option<(u64, B256)>) -> Result<Vec<CallId>, WatcherError> {
        let mut connection = self.lock();
        let operation = || match fork {
            Some((number, _)) => format!("rewinding to block {number} after a reorganization"),
            None => "rewinding to the start block after a reorganization".to_owned(),
        };
        // Heights are stored as SQLite integers (≤ i64::MAX), so -1 is below all of them.
        let above = fork.map_or(-1, |(number, _)| i64::try_from(number).unwrap_or(i64::MAX));
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(WatcherError::store(operation()))?;
        let keys: Vec<Vec<u8>> = {
            let mut statement = tx
                .prepare_cached(
                    "SELECT call_id FROM calls WHERE block_number > ?1 AND status != 'vanished'
                     ORDER BY block_number, log_index",
                )
                .map_err(WatcherError::store(operation()))?;
            statement
                .query_map([above], |row| row.get(0))
                .map_err(WatcherError::store(operation()))?
                .collect::<Result<_, _>>()
                .map_err(WatcherError::store(operation()))?
        };
        tx.execute(
            "UPDATE calls SET status = 'vanished', updated_at = ?2 WHERE block_number > ?1 AND status != 'vanished'",
            params![above, now()],
        )
        .map_err(WatcherError::store(operation()))?;
        tx.execute("DELETE FROM blocks WHERE number > ?1", [above]).map_err(WatcherError::store(operation()))?;
        match fork {
            Some((number, hash)) => tx.execute(
                "INSERT INTO checkpoint (id, number, hash) VALUES (0, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET number = excluded.number, hash = excluded.hash",
                params![number, hash.as_slice()],
            ),
            None => tx.execute("DELETE FROM checkpoint", []),
        }
        .map_err(WatcherError::store(operation()))?;
        tx.commit().map_err(WatcherError::store(operation()))?;
        keys.iter().map(|key| Ok(CallId(U256::from_be_slice(&fixed::<32>("calls.call_id", key)?)))).collect()
    }

    /// The connection. A panic while it was held cannot leave a half-written state (every write is one SQLite
    /// transaction, rolled back on drop), so a poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `calls` row as stored, decoded outside the SQLite callback so that errors keep their type.
struct RawCall {
    call_id: Vec<u8>,
    service_id: u64,
    job_index: u8,
    payer: Vec<u8>,
    payment: Vec<u8>,
    deadline: u64,
    inputs_hash: Vec<u8>,
    inputs: Option<Vec<u8>>,
    block_number: u64,
    block_hash: Vec<u8>,
    status: String,
}

impl RawCall {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            call_id: row.get(0)?,
            service_id: row.get(1)?,
            job_index: row.get(2)?,
            payer: row.get(3)?,
            payment: row.get(4)?,
            deadline: row.get(5)?,
            inputs_hash: row.get(6)?,
            inputs: row.get(7)?,
            block_number: row.get(8)?,
            block_hash: row.get(9)?,
            status: row.get(10)?,
        })
    }

    fn decode(self) -> Result<ChainCall, WatcherError> {
        Ok(ChainCall {
            call_id: CallId(U256::from_be_bytes(fixed::<32>("calls.call_id", &self.call_id)?)),
            service_id: ServiceId(self.service_id),
            job_index: self.job_index,
            payer: Address::from(fixed::<20>("calls.payer", &self.payer)?),
            payment: U256::from_be_bytes(fixed::<32>("calls.payment", &self.payment)?),
            deadline: self.deadline,
            inputs_hash: b256("calls.inputs_hash", &self.inputs_hash)?,
            inputs: self.inputs.map(Bytes::from),
            block_number: self.block_number,
            block_hash: b256("calls.block_hash", &self.block_hash)?,
            status: CallStatus::parse(&self.status)?,
        })
    }
}

fn call_id_key(call_id: CallId) -> [u8; 32] {
    call_id.0.to_be_bytes()
}

fn fixed<const N: usize>(column: &'static str, bytes: &[u8]) -> Result<[u8; N], WatcherError> {
    bytes
        .try_into()
        .map_err(|_| WatcherError::Corrupt { column, detail: format!("{} bytes, expected {N}", bytes.len()) })
}

fn b256(column: &'static str, bytes: &[u8]) -> Result<B256, WatcherError> {
    fixed::<32>(column, bytes).map(B256::from)
}

/// Unix seconds, for `updated_at` (0 if the clock is before 1970).
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, block_number: u64, status: CallStatus) -> FoundCall {
        FoundCall {
            call: ChainCall {
                call_id: CallId::from(id),
                service_id: ServiceId(1),
                job_index: 0,
                payer: Address::repeat_byte(0xaa),
                payment: U256::from(10_000),
                deadline: 1_700_000_000,
                inputs_hash: B256::repeat_byte(id as u8),
                inputs: (status == CallStatus::Pending).then(|| Bytes::from(vec![id as u8])),
                block_number,
                block_hash: B256::with_last_byte(block_number as u8),
                status,
            },
            tx_hash: B256::repeat_byte(0x77),
            log_index: id,
        }
    }

    fn range(calls: Vec<FoundCall>, to: u64) -> ScannedRange {
        let blocks = calls.iter().map(|c| (c.call.block_number, c.call.block_hash)).collect();
        ScannedRange { calls, blocks, checkpoint: (to, B256::with_last_byte(to as u8)) }
    }

    #[test]
    fn records_calls_and_checkpoint_together_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/node.sqlite");
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.checkpoint().unwrap(), None);
        let new = store.record_range(&range(vec![call(2, 5, CallStatus::Pending), call(1, 4, CallStatus::Pending)], 9));
        assert_eq!(new.unwrap().len(), 2);
        drop(store);

        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.checkpoint().unwrap(), Some((9, B256::with_last_byte(9))));
        let pending: Vec<_> = store.pending_calls().unwrap().into_iter().map(|c| c.call_id).collect();
        assert_eq!(pending, [CallId::from(1), CallId::from(2)], "oldest first");
        assert_eq!(store.call(CallId::from(2)).unwrap(), Some(call(2, 5, CallStatus::Pending).call));
        assert_eq!(
            store.recent_blocks().unwrap(),
            [(9, B256::with_last_byte(9)), (5, B256::with_last_byte(5)), (4, B256::with_last_byte(4))]
        );
    }

    #[test]
    fn a_known_call_is_not_reported_twice_but_a_vanished_one_is_revived() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("node.sqlite")).unwrap();
        assert_eq!(store.record_range(&range(vec![call(1, 4, CallStatus::Pending)], 4)).unwrap().len(), 1);
        assert!(store.record_range(&range(vec![call(1, 4, CallStatus::Pending)], 5)).unwrap().is_empty());

        assert_eq!(store.rewind(Some((3, B256::with_last_byte(3)))).unwrap(), [CallId::from(1)]);
        assert_eq!(store.checkpoint().unwrap(), Some((3, B256::with_last_byte(3))));
        assert_eq!(store.call(CallId::from(1)).unwrap().unwrap().status, CallStatus::Vanished);
        assert!(store.rewind(Some((3, B256::with_last_byte(3)))).unwrap().is_empty(), "reported once");
        assert!(matches!(store.set_status(CallId::from(1), CallStatus::Done), Err(WatcherError::CallVanished { .. })));

        let mut again = call(1, 6, CallStatus::Pending);
        again.call.inputs = Some(Bytes::from_static(b"other"));
        assert_eq!(store.record_range(&range(vec![again.clone()], 6)).unwrap(), [again.call.clone()]);
        assert_eq!(store.call(CallId::from(1)).unwrap(), Some(again.call));
    }

    #[test]
    fn set_status_moves_a_call_out_of_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("node.sqlite")).unwrap();
        store
            .record_range(&range(vec![call(1, 4, CallStatus::Pending), call(2, 4, CallStatus::InputsOffChain)], 4))
            .unwrap();
        assert_eq!(store.pending_calls().unwrap().len(), 1, "x402 calls are not pending");
        store.set_status(CallId::from(1), CallStatus::Done).unwrap();
        assert!(store.pending_calls().unwrap().is_empty());
        assert_eq!(store.calls_with_status(CallStatus::Done).unwrap()[0].call_id, CallId::from(1));
        assert!(matches!(store.set_status(CallId::from(9), CallStatus::Done), Err(WatcherError::UnknownCall { .. })));
    }

    #[test]
    fn keeps_only_recent_block_hashes_and_rewinds_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("node.sqlite")).unwrap();
        for to in 1..=200 {
            store.record_range(&range(Vec::new(), to)).unwrap();
        }
        let blocks = store.recent_blocks().unwrap();
        assert_eq!(blocks.len() as u64, KEPT_BLOCKS);
        assert_eq!(blocks[0].0, 200);
        store.record_range(&range(vec![call(1, 201, CallStatus::Pending)], 201)).unwrap();
        assert_eq!(store.rewind(None).unwrap(), [CallId::from(1)]);
        assert_eq!(store.checkpoint().unwrap(), None);
        assert!(store.recent_blocks().unwrap().is_empty());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(matches!(StateStore::open(&path), Err(WatcherError::UnsupportedSchema { found: 99, .. })));
    }
}
