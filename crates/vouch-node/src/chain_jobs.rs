//! On-chain calls as a job source: every call the watcher recorded as pending is run, signed through the guard,
//! added to the [`QuorumTracker`] and sent to the service's other operators. Only exact jobs: a call of a tolerant
//! or checked job is logged and left unsigned (those are orchestrated by a gateway over the HTTP API). A call stays pending in the store
//! until the submitter sees it settled or refunded, so a node that restarts runs it again — the guard then returns
//! the signature it already gave, and the share is sent again.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use vouch_crypto::Signature;
use vouch_primitives::{CallId, wire::Verification};

use crate::{
    engine::{Engine, ExecError},
    peers::Peers,
    quorum::QuorumTracker,
    watcher::{CallStatus, ChainCall, StateStore},
};

/// How often pending calls are re-read from the store (calls that failed transiently are retried).
pub const RESCAN: Duration = Duration::from_secs(5);

/// Runs on-chain calls.
#[derive(Debug)]
pub struct ChainJobs {
    engine: Arc<Engine>,
    store: StateStore,
    tracker: Arc<QuorumTracker>,
    peers: Peers,
    in_flight: Mutex<HashSet<CallId>>,
}

impl ChainJobs {
    /// A runner for this node.
    pub fn new(engine: Arc<Engine>, store: StateStore, tracker: Arc<QuorumTracker>, peers: Peers) -> Self {
        Self { engine, store, tracker, peers, in_flight: Mutex::default() }
    }

    /// Starts every pending call not already running.
    pub fn run_pending(self: &Arc<Self>) {
        match self.store.pending_calls() {
            Ok(calls) => {
                for call in calls {
                    self.start(call);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read pending calls"),
        }
    }

    /// Starts `call` on its own task unless it is running.
    pub fn start(self: &Arc<Self>, call: ChainCall) {
        if call.status != CallStatus::Pending {
            return;
        }
        if let Ok(mut set) = self.in_flight.lock()
            && !set.insert(call.call_id)
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let id = call.call_id;
            let keep = this.process(call).await;
            if !keep && let Ok(mut set) = this.in_flight.lock() {
                set.remove(&id);
            }
        });
    }

    /// Forgets calls that a reorg removed.
    pub fn vanished(&self, calls: &[CallId]) {
        for call in calls {
            self.tracker.forget(*call);
            self.engine.metrics().vanished_calls.inc();
            if let Ok(mut set) = self.in_flight.lock() {
                set.remove(call);
            }
        }
    }

    /// Runs one call; returns whether it is done with (true) or should be retried at the next rescan (false).
    async fn process(&self, call: ChainCall) -> bool {
        let Some(inputs) = call.inputs.clone() else { return true };
        let engine = &self.engine;
        let metrics = engine.metrics();
        let (service, slot) = match engine.admit(call.service_id, call.job_index).await {
            Ok(ok) => ok,
            Err(ExecError::Node(e)) => {
                tracing::warn!(call = %call.call_id, error = %e, "chain unavailable; will retry");
                return false;
            }
            Err(e) => {
                // Not ours (another service, a blueprint this node does not run) or not runnable.
                tracing::debug!(call = %call.call_id, reason = %e, "skipping on-chain call");
                self.set_status(call.call_id, CallStatus::Done);
                return true;
            }
        };
        let label = |o: &'static str| vec![("source", "chain"), ("outcome", o)];
        // Tolerant and checked jobs need an aggregator to propose the output each operator endorses; for calls
        // opened on chain there is none yet (docs/node-api.md), and signing this node's own output directly would
        // make its guard refuse the endorsement later. So such calls are not signed from the chain.
        match engine.verification(&service, call.job_index) {
            Ok(Verification::Exact) => {}
            Ok(verification) => {
                metrics.jobs.get_or_create(&label("refused")).inc();
                tracing::warn!(call = %call.call_id, service = %service.id, job = call.job_index, ?verification,
                    "not signing an on-chain call of a tolerant or checked job: on-chain calls are supported for \
                     exact jobs only (use a gateway: POST /v1/commitments and /v1/endorsements)");
                self.set_status(call.call_id, CallStatus::Failed);
                return true;
            }
            Err(e) => {
                tracing::debug!(call = %call.call_id, reason = %e, "skipping on-chain call");
                self.set_status(call.call_id, CallStatus::Done);
                return true;
            }
        }
        match engine.run_and_sign(&service, call.call_id, call.job_index, call.payer, inputs).await {
            Ok(signed) => {
                metrics.jobs.get_or_create(&label("signed")).inc();
                let Ok(signature) = Signature::from_compressed(&signed.signature) else { return true };
                self.tracker.add(slot, engine.operator(), signed.result, signature);
                self.peers.broadcast(&service, &signed);
                tracing::info!(call = %call.call_id, service = %service.id, result = %signed.result.result_hash, "signed on-chain call");
                true
            }
            Err(ExecError::Job(e)) => {
                metrics.jobs.get_or_create(&label("job_error")).inc();
                tracing::warn!(call = %call.call_id, error = %e, "job failed; not signing");
                self.set_status(call.call_id, CallStatus::Failed);
                true
            }
            Err(ExecError::Guard(e)) if e.not_safe().is_some() => {
                metrics.jobs.get_or_create(&label("refused")).inc();
                tracing::error!(call = %call.call_id, error = %e, "the signing guard refused: not signing");
                self.set_status(call.call_id, CallStatus::Failed);
                true
            }
            Err(e) => {
                tracing::warn!(call = %call.call_id, error = %e, "cannot sign now; will retry");
                false
            }
        }
    }

    fn set_status(&self, call: CallId, status: CallStatus) {
        if let Err(e) = self.store.set_status(call, status) {
            tracing::error!(%call, error = %e, "cannot record call status");
        }
    }
}
