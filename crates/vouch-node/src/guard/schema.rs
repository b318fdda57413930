//! The SQLite schema of the signing database: opening, initialisation and the binding check, and conversions
//! between protocol types and columns.

use super::{error::GuardError, signing_guard::OpenMode};
use alloy_primitives::{Address, B256, FixedBytes, U256};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::{path::Path, time::Duration};
use vouch_crypto::PublicKey;
use vouch_primitives::{CallId, ChainBinding, ServiceId};

/// Version of the schema below, recorded in `meta.schema_version`. Version 1 had no `signed_commitments`; a
/// version-1 database is migrated in place when opened (the table is added, nothing else changes).
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// How long a connection waits for another one (another process, or an export) to release the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `u64` columns (chain id, service id) hold the `i64` with the same 64 bits; ids at or above 2^63 read back
/// unchanged, they only look negative to a human using the `sqlite3` shell.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    chain_id       INTEGER NOT NULL,
    contract       BLOB    NOT NULL CHECK (length(contract) = 20),
    public_key     BLOB    NOT NULL CHECK (length(public_key) = 48),
    created_at     INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS signed_results (
    service_id  INTEGER NOT NULL,
    call_id     BLOB    NOT NULL CHECK (length(call_id) = 32),
    inputs_hash BLOB    NOT NULL CHECK (length(inputs_hash) = 32),
    result_hash BLOB    NOT NULL CHECK (length(result_hash) = 32),
    signature   BLOB    NOT NULL CHECK (length(signature) = 96),
    signed_at   INTEGER NOT NULL,
    PRIMARY KEY (service_id, call_id)
) STRICT, WITHOUT ROWID;
";

/// Added by schema version 2: output commitments of tolerant jobs, one per call, with the committed output (an
/// endorsement compares against it). A rowid table: outputs may be kilobytes, too large for `WITHOUT ROWID` rows.
const COMMITMENTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS signed_commitments (
    service_id  INTEGER NOT NULL,
    call_id     BLOB    NOT NULL CHECK (length(call_id) = 32),
    inputs_hash BLOB    NOT NULL CHECK (length(inputs_hash) = 32),
    output_hash BLOB    NOT NULL CHECK (length(output_hash) = 32),
    output      BLOB    NOT NULL,
    signature   BLOB    NOT NULL CHECK (length(signature) = 96),
    signed_at   INTEGER NOT NULL,
    PRIMARY KEY (service_id, call_id)
) STRICT;
";

/// Selects one commitment by `(service_id, call_id)`.
pub(crate) const SELECT_COMMITMENT: &str = "SELECT inputs_hash, output_hash, output, signature, signed_at \
     FROM signed_commitments WHERE service_id = ?1 AND call_id = ?2";

/// Inserts one commitment.
pub(crate) const INSERT_COMMITMENT: &str = "INSERT INTO signed_commitments \
     (service_id, call_id, inputs_hash, output_hash, output, signature, signed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Selects one record by `(service_id, call_id)`.
pub(crate) const SELECT_RECORD: &str =
    "SELECT inputs_hash, result_hash, signature, signed_at FROM signed_results WHERE service_id = ?1 AND call_id = ?2";

/// Inserts one record.
pub(crate) const INSERT_RECORD: &str = "INSERT INTO signed_results \
     (service_id, call_id, inputs_hash, result_hash, signature, signed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// A `u64` as the `i64` column value with the same bits.
pub(crate) const fn u64_to_sql(value: u64) -> i64 {
    i64::from_be_bytes(value.to_be_bytes())
}

/// The `u64` stored by [`u64_to_sql`].
pub(crate) const fn u64_from_sql(value: i64) -> u64 {
    u64::from_be_bytes(value.to_be_bytes())
}

/// The primary key columns of a call.
pub(crate) fn call_key(service_id: ServiceId, call_id: CallId) -> (i64, [u8; 32]) {
    (u64_to_sql(service_id.0), call_id.0.to_be_bytes::<32>())
}

/// Reads a call id column.
pub(crate) fn call_id_from_sql(bytes: &[u8], path: &Path) -> Result<CallId, GuardError> {
    U256::try_from_be_slice(bytes)
        .filter(|_| bytes.len() == 32)
        .map(CallId)
        .ok_or_else(|| corrupt(path, format!("a call id of {} bytes", bytes.len())))
}

/// Reads a 32-byte hash column.
pub(crate) fn b256_from_sql(bytes: &[u8], path: &Path, what: &str) -> Result<B256, GuardError> {
    B256::try_from(bytes).map_err(|_| corrupt(path, format!("{what} of {} bytes", bytes.len())))
}

/// A [`GuardError::Corrupt`].
pub(crate) fn corrupt(path: &Path, what: String) -> GuardError {
    GuardError::Corrupt { path: path.to_path_buf(), what }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Opens a connection to an existing database file (never creates one) in WAL mode with `synchronous = FULL`.
pub(crate) fn connect(path: &Path) -> Result<Connection, GuardError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        if matches!(path.try_exists(), Ok(false)) {
            GuardError::Missing { path: path.to_path_buf() }
        } else {
            GuardError::sqlite(path, "opening", e)
        }
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| GuardError::sqlite(path, "setting the busy timeout", e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| GuardError::sqlite(path, "enabling WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(path, format!("journal mode is {mode}, WAL could not be enabled")));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| GuardError::sqlite(path, "setting synchronous", e))?;
    Ok(conn)
}

/// Opens (and with [`OpenMode::Initialise`], creates and initialises) the database, and checks that it guards
/// `binding` and `key`.
pub(crate) fn open(
    path: &Path,
    mode: OpenMode,
    binding: ChainBinding,
    key: &PublicKey,
) -> Result<Connection, GuardError> {
    let exists = path.try_exists().map_err(|source| GuardError::Io {
        path: path.to_path_buf(),
        action: "checking for the signing database",
        source,
    })?;
    match (mode, exists) {
        (OpenMode::Existing, false) => return Err(GuardError::Missing { path: path.to_path_buf() }),
        (OpenMode::Initialise, false) => create_file(path)?,
        (_, true) => {}
    }
    let mut conn = connect(path)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(|e| GuardError::sqlite(path, "starting the initialisation transaction", e))?;
    let initialised: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')", [], |r| {
            r.get(0)
        })
        .map_err(|e| GuardError::sqlite(path, "reading the schema", e))?;
    if !initialised {
        if mode == OpenMode::Existing {
            return Err(GuardError::NotInitialised { path: path.to_path_buf() });
        }
        tx.execute_batch(SCHEMA).map_err(|e| GuardError::sqlite(path, "creating the schema", e))?;
        tx.execute_batch(COMMITMENTS_SCHEMA).map_err(|e| GuardError::sqlite(path, "creating the schema", e))?;
    }
    let meta = tx
        .query_row("SELECT schema_version, chain_id, contract, public_key FROM meta WHERE id = 1", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, Vec<u8>>(3)?))
        })
        .optional()
        .map_err(|e| GuardError::sqlite(path, "reading the binding", e))?;
    match meta {
        None if mode == OpenMode::Existing => return Err(GuardError::NotInitialised { path: path.to_path_buf() }),
        None => {
            tx.execute(
                "INSERT INTO meta (id, schema_version, chain_id, contract, public_key, created_at) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                (
                    SCHEMA_VERSION,
                    u64_to_sql(binding.chain_id),
                    binding.contract.as_slice(),
                    key.to_compressed().as_slice(),
                    u64_to_sql(unix_now()),
                ),
            )
            .map_err(|e| GuardError::sqlite(path, "recording the binding", e))?;
        }
        Some((version, chain_id, contract, public_key)) => {
            if version == 1 {
                // Additive migration: commitments get their table; results are untouched.
                tx.execute_batch(COMMITMENTS_SCHEMA)
                    .and_then(|()| tx.execute("UPDATE meta SET schema_version = ?1 WHERE id = 1", [SCHEMA_VERSION]))
                    .map_err(|e| GuardError::sqlite(path, "migrating the schema to version 2", e))?;
                tracing::info!(db = %path.display(), "signing database migrated to schema version 2 (commitments)");
            } else if version != SCHEMA_VERSION {
                return Err(GuardError::UnsupportedSchema {
                    path: path.to_path_buf(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            let contract = Address::try_from(contract.as_slice())
                .map_err(|_| corrupt(path, format!("a protocol address of {} bytes", contract.len())))?;
            let recorded = ChainBinding::new(u64_from_sql(chain_id), contract);
            if recorded != binding {
                return Err(GuardError::WrongBinding { path: path.to_path_buf(), recorded, expected: binding });
            }
            if public_key.as_slice() != key.to_compressed().as_slice() {
                let recorded = FixedBytes::try_from(public_key.as_slice())
                    .map_err(|_| corrupt(path, format!("a public key of {} bytes", public_key.len())))?;
                return Err(GuardError::WrongKey {
                    path: path.to_path_buf(),
                    recorded,
                    expected: key.to_compressed().into(),
                });
            }
        }
    }
    tx.commit().map_err(|e| GuardError::sqlite(path, "committing the initialisation", e))?;
    Ok(conn)
}

/// Creates an empty database file readable by its owner only, and makes its directory entry durable.
fn create_file(path: &Path) -> Result<(), GuardError> {
    let io = |action: &'static str| move |source| GuardError::Io { path: path.to_path_buf(), action, source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => file.sync_all().map_err(io("syncing the new signing database"))?,
        // Created concurrently by someone else: open it like an existing one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io("creating the signing database")(e)),
    }
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|source| GuardError::Io {
            path: dir.to_path_buf(),
            action: "syncing the directory of the new signing database",
            source,
        })?;
    }
    Ok(())
}
