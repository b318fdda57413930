//! Glue between the request log and the [`SettlementBatcher`]: answered requests are what the batcher settles.

use std::{sync::Arc, time::Duration};

use alloy::providers::DynProvider;
use alloy_primitives::{B256, U256, keccak256};
use tokio::task::JoinHandle;
use vouch_contracts::AddressBook;
use vouch_primitives::CallId;

use crate::{
    gateway::GatewayConfig,
    settlement::{BatcherConfig, PendingSettlement, SettlementBatcher, SettlementError, SettlementStore},
    store::{RequestStatus, RequestStore},
};

#[allow(clippy::needless_pass_by_value)] // used as `map_err(store_error)`
fn store_error(e: crate::store::StoreError) -> SettlementError {
    SettlementError::Store(e.to_string())
}

impl SettlementStore for RequestStore {
    fn unsettled(&self, limit: usize) -> Result<Vec<PendingSettlement>, SettlementError> {
        let answered = self.committed_with_status(RequestStatus::Answered, limit).map_err(store_error)?;
        Ok(answered
            .into_iter()
            .filter_map(|s| {
                let certificate = s.certificate?;
                let r = s.request;
                Some(PendingSettlement {
                    call_id: r.call_id,
                    service_id: r.service_id,
                    job_index: r.job_index,
                    inputs_hash: keccak256(&r.inputs),
                    result_hash: certificate.result_hash,
                    authorization: r.authorization,
                    payment_signature: r.payment_signature,
                    signers: s.signers,
                })
            })
            .collect())
    }

    fn mark_settled(&self, calls: &[CallId], tx: B256, batch_id: U256) -> Result<(), SettlementError> {
        self.settled_in_batch(calls, tx, batch_id).map_err(store_error)
    }

    fn mark_unpayable(&self, call: CallId, reason: &str) -> Result<(), SettlementError> {
        self.set_status(call, RequestStatus::Unpayable, Some(reason)).map_err(store_error)
    }
}

/// Starts the settlement loop.
pub(crate) fn spawn(
    read: DynProvider,
    wallet: DynProvider,
    book: AddressBook,
    store: RequestStore,
    config: &GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let batcher = SettlementBatcher::new(
        read,
        wallet,
        book,
        Arc::new(store),
        BatcherConfig {
            max_batch: config.max_batch.max(1),
            max_delay: Duration::from_millis(config.max_batch_delay_ms),
            poll: Duration::from_millis(200),
        },
    );
    tokio::spawn(batcher.run(shutdown))
}
