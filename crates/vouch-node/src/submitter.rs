//! [`Submitter`]: turns a quorum of signed results of an on-chain call into a certificate and settles it.
//!
//! Rotation: for call `c` of a service with `n` operators, slot `c mod n` submits first; the operator at rotation
//! position `p` (slot `(c + p) mod n`) takes over once `p` turns (`submitter.turn_secs`) have passed since the node
//! first saw the call, so a dead or slow submitter delays settlement by one turn at most per failure. Submission is
//! idempotent: a call found settled (by anyone) counts as success, a call the chain no longer has (a reorg) is never
//! submitted, and failures are retried with exponential backoff; the node never stops on a revert.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::providers::DynProvider;
use alloy_primitives::{Bytes, U256};
use vouch_contracts::{Contract, VouchProtocol, decode_revert_for};
use vouch_crypto::aggregate_signatures;
use vouch_primitives::{CERTIFICATE_VERSION, CallId, Certificate, ServiceId};

use crate::{
    chain::{CALL_OPEN, CALL_SETTLED},
    config::SubmitterConfig,
    engine::Engine,
    metrics::outcome,
    quorum::QuorumTracker,
    watcher::{CallStatus, StateStore},
};

/// How often tracked calls are looked at.
const TICK: Duration = Duration::from_millis(200);
/// A call with no quorum is forgotten after this long (its deadline has passed by then on any sane blueprint).
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy)]
struct Attempt {
    next: Instant,
    backoff: Duration,
}

/// Settles on-chain calls whose signatures reached a quorum.
#[derive(Debug)]
pub struct Submitter {
    engine: Arc<Engine>,
    tracker: Arc<QuorumTracker>,
    wallet: DynProvider,
    store: StateStore,
    config: SubmitterConfig,
    certificates: Arc<Mutex<HashMap<CallId, Certificate>>>,
    attempts: Mutex<HashMap<CallId, Attempt>>,
}

impl Submitter {
    /// A submitter sending transactions through `wallet` (this operator's transaction key).
    pub fn new(
        engine: Arc<Engine>,
        tracker: Arc<QuorumTracker>,
        wallet: DynProvider,
        store: StateStore,
        config: SubmitterConfig,
        certificates: Arc<Mutex<HashMap<CallId, Certificate>>>,
    ) -> Self {
        Self { engine, tracker, wallet, store, config, certificates, attempts: Mutex::default() }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
            }
            for (call, service) in self.tracker.calls() {
                if let Err(e) = self.tick(call, service).await {
                    tracing::debug!(%call, error = %e, "submission attempt failed; will retry");
                }
            }
        }
    }

    fn done(&self, call: CallId, status: CallStatus) {
        self.tracker.forget(call);
        if let Ok(mut a) = self.attempts.lock() {
            a.remove(&call);
        }
        if let Err(e) = self.store.set_status(call, status) {
            tracing::debug!(%call, error = %e, "call not in the local store");
        }
    }

    fn backoff(&self, call: CallId) {
        if let Ok(mut a) = self.attempts.lock() {
            let base = Duration::from_millis(self.config.backoff_ms.max(1));
            let max = Duration::from_millis(self.config.max_backoff_ms.max(self.config.backoff_ms));
            let e = a.entry(call).or_insert(Attempt { next: Instant::now(), backoff: base });
            e.next = Instant::now() + e.backoff;
            e.backoff = (e.backoff * 2).min(max);
        }
    }

    async fn tick(&self, call: CallId, service_id: ServiceId) -> Result<(), crate::NodeError> {
        let chain = self.engine.chain();
        let Some(service) = chain.service(service_id).await? else {
            self.tracker.forget(call);
            return Ok(());
        };
        let Some(my_slot) = service.slot_of(self.engine.operator()) else {
            self.tracker.forget(call);
            return Ok(());
        };
        let first_seen = self.tracker.first_seen(call).unwrap_or_else(Instant::now);
        if first_seen.elapsed() > GIVE_UP_AFTER {
            self.tracker.forget(call);
            return Ok(());
        }
        let Some(group) = self.tracker.groups(call).into_iter().find(|g| service.quorum_by_snapshot(g.bitmap)) else {
            return Ok(());
        };
        let aggregate = match aggregate_signatures(&group.signatures) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%call, error = %e, "cannot aggregate verified signatures");
                return Ok(());
            }
        };
        let signature = Bytes::from(aggregate.to_eip2537().to_vec());
        let binding = chain.binding();
        let certificate = Certificate {
            version: CERTIFICATE_VERSION,
            chain_id: binding.chain_id,
            protocol: binding.contract,
            service_id: service_id.0,
            call_id: call.0,
            inputs_hash: group.result.inputs_hash,
            result_hash: group.result.result_hash,
            signer_bitmap: group.bitmap,
            signature: signature.clone(),
            batch: None,
            key_set: None,
            stake_at_risk: Some(
                service.stakes.iter().enumerate().filter(|(s, _)| group.bitmap.bit(*s)).map(|(_, v)| *v).sum::<U256>(),
            ),
        };
        if let Ok(mut certs) = self.certificates.lock() {
            certs.insert(call, certificate);
        }
        let n = service.operators.len().max(1);
        let designated = usize::try_from(call.0 % U256::from(n)).unwrap_or(0);
        let position = (my_slot + n - designated) % n;
        let turn = self.config.turn() * u32::try_from(position).unwrap_or(u32::MAX);
        if first_seen.elapsed() < turn {
            return Ok(());
        }
        if let Some(a) = self.attempts.lock().ok().and_then(|a| a.get(&call).copied())
            && a.next > Instant::now()
        {
            return Ok(());
        }
        let metrics = self.engine.metrics();
        let on_chain = chain.call(call).await?;
        match on_chain.status {
            0 => {
                tracing::warn!(%call, "the call is not on chain (reorganised away?): not submitting");
                metrics.certificates.get_or_create(&outcome("vanished")).inc();
                self.done(call, CallStatus::Vanished);
                return Ok(());
            }
            CALL_OPEN => {}
            status => {
                if status == CALL_SETTLED {
                    metrics.certificates.get_or_create(&outcome("already_settled")).inc();
                }
                self.done(call, CallStatus::Done);
                return Ok(());
            }
        }
        if on_chain.inputs_hash != group.result.inputs_hash || on_chain.service_id != service_id {
            tracing::warn!(%call, "the signed inputs differ from the call's on chain: not submitting");
            self.backoff(call);
            return Ok(());
        }
        if !chain.quorum_reached(service_id, group.bitmap).await? {
            self.backoff(call);
            return Ok(());
        }
        let protocol = VouchProtocol::new(chain.book().contracts.protocol, &self.wallet);
        let tx = protocol.settle(call.0, group.result.result_hash, group.bitmap, signature);
        let sent = match tx.send().await {
            Ok(pending) => pending.get_receipt().await.map_err(|e| e.to_string()),
            Err(e) => match decode_revert_for(Contract::Protocol, e) {
                Ok(err) => Err(format!("reverted: {err}")),
                Err(e) => Err(e.to_string()),
            },
        };
        match sent {
            Ok(receipt) if receipt.status() => {
                tracing::info!(%call, tx = %receipt.transaction_hash, signers = %group.bitmap, "certificate settled");
                metrics.certificates.get_or_create(&outcome("settled")).inc();
                self.done(call, CallStatus::Done);
            }
            Ok(receipt) => {
                tracing::warn!(%call, tx = %receipt.transaction_hash, "settlement reverted on chain; will re-check");
                metrics.certificates.get_or_create(&outcome("failed")).inc();
                self.backoff(call);
            }
            Err(reason) => {
                // Usually someone else settled first (CallNotOpen): the next tick reads the status and stops.
                tracing::info!(%call, %reason, "settlement not sent; will re-check");
                metrics.certificates.get_or_create(&outcome("failed")).inc();
                self.backoff(call);
            }
        }
        Ok(())
    }
}
