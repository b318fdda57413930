//! [`FanOut`]: sends a paid request to every operator of the service at once, verifies each signed reply against
//! the operator's registered BLS key, groups replies by result, and returns as soon as one group reaches the
//! service's quorum — with the aggregate certificate. Replies that disagree with the quorum are kept as evidence.

use std::time::Duration;

use alloy_primitives::{Address, Bytes, U256, keccak256};
use futures_util::{StreamExt, stream::FuturesUnordered};
use vouch_contracts::view::{ChainView, ServiceInfo};
use vouch_crypto::{Signature, aggregate_signatures, fast_aggregate_verify};
use vouch_primitives::{
    CERTIFICATE_VERSION, Certificate, ResultRef, result_digest,
    wire::{ErrorBody, JobRequest, SignedResult},
};

/// One operator's verified reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its slot in the service.
    pub slot: usize,
    /// The signed result.
    pub signed: SignedResult,
}

/// Replies that arrive after the quorum: the dissenting ones, once every operator has answered or timed out.
#[derive(Debug)]
pub struct LateReplies(Option<tokio::task::JoinHandle<Vec<Reply>>>);

impl LateReplies {
    /// The verified late replies that signed another result than the certificate's.
    pub async fn dissent(self) -> Vec<Reply> {
        match self.0 {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// What the operators answered.
#[derive(Debug)]
pub enum FanOutOutcome {
    /// A quorum signed one result.
    Quorum {
        /// The output (its hash is the certified result).
        output: Bytes,
        /// The certificate.
        certificate: Box<Certificate>,
        /// The signers' addresses, in slot order.
        signers: Vec<Address>,
        /// Verified replies with another result: evidence for a deviation report once the certificate settles.
        dissent: Vec<Reply>,
        /// Replies still on the way when the quorum formed.
        late: LateReplies,
    },
    /// No result reached the quorum.
    NoQuorum {
        /// Verified replies, by result.
        replies: Vec<Reply>,
        /// Operators that failed, with why.
        errors: Vec<(Address, String)>,
    },
}

/// Fans requests out to operators.
#[derive(Debug, Clone)]
pub struct FanOut {
    client: reqwest::Client,
    chain: ChainView,
}

impl FanOut {
    /// A fan-out that gives each operator `timeout` to answer.
    pub fn new(chain: ChainView, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self { client, chain }
    }

    async fn ask(&self, operator: Address, req: &JobRequest) -> Result<SignedResult, String> {
        let endpoint = self.chain.endpoint_of(operator).await.map_err(|e| e.to_string())?;
        let url = format!("{}/v1/jobs", endpoint.trim_end_matches('/'));
        let r = match self.client.post(&url).json(req).send().await {
            Ok(r) => r,
            Err(e) => {
                self.chain.forget_endpoint(operator);
                return Err(format!("unreachable: {e}"));
            }
        };
        let status = r.status();
        let body = r.bytes().await.map_err(|e| format!("unreadable answer: {e}"))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| format!("{} ({})", b.error.message, b.error.code))
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(format!("{status}: {detail}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("malformed answer: {e}"))
    }

    /// Checks `signed` is `slot`'s valid signature over a result of exactly `req`, with an output that hashes to it.
    fn check(
        &self,
        service: &ServiceInfo,
        slot: usize,
        req: &JobRequest,
        signed: &SignedResult,
    ) -> Result<Signature, String> {
        let signature = self.precheck(service, slot, req, signed)?;
        self.verify_one(service, slot, signed, &signature)?;
        Ok(signature)
    }

    /// Everything [`Self::check`] does except the pairing: the cheap checks, and the signature parsed.
    fn precheck(
        &self,
        service: &ServiceInfo,
        slot: usize,
        req: &JobRequest,
        signed: &SignedResult,
    ) -> Result<Signature, String> {
        let r = &signed.result;
        if signed.operator != service.operators[slot] {
            return Err(format!("answered as {}", signed.operator));
        }
        if r.service_id != req.service_id || r.call_id != req.call_id || r.inputs_hash != keccak256(&req.inputs) {
            return Err("signed another call or other inputs".into());
        }
        let output = signed.output.as_ref().ok_or("no output")?;
        if keccak256(output) != r.result_hash {
            return Err("the output does not hash to the signed result".into());
        }
        if service.keys.get(slot).copied().flatten().is_none() {
            return Err("no registered BLS key".into());
        }
        Signature::from_compressed(&signed.signature).map_err(|e| format!("bad signature: {e}"))
    }

    /// The pairing check of one reply's signature against its operator's registered key.
    fn verify_one(
        &self,
        service: &ServiceInfo,
        slot: usize,
        signed: &SignedResult,
        signature: &Signature,
    ) -> Result<(), String> {
        let key = service.keys.get(slot).copied().flatten().ok_or("no registered BLS key")?;
        signature
            .verify(&key, &result_digest(&self.chain.binding(), &signed.result))
            .map_err(|e| format!("signature does not verify: {e}"))
    }

    /// Whether the group's aggregate signature verifies against the aggregate of its signers' keys.
    fn group_verifies(&self, service: &ServiceInfo, group: &[&(Reply, Signature)]) -> bool {
        let Some(first) = group.first() else { return false };
        let keys: Option<Vec<_>> = group.iter().map(|(r, _)| service.keys.get(r.slot).copied().flatten()).collect();
        let Some(keys) = keys else { return false };
        let signatures: Vec<Signature> = group.iter().map(|(_, s)| *s).collect();
        let Ok(aggregate) = aggregate_signatures(&signatures) else { return false };
        fast_aggregate_verify(&keys, &result_digest(&self.chain.binding(), &first.0.signed.result), &aggregate).is_ok()
    }

    /// Sends `req` to every operator of `service`; returns at the first quorum or when all have answered.
    pub async fn run(&self, service: &ServiceInfo, req: &JobRequest) -> FanOutOutcome {
        let mut pending: FuturesUnordered<_> = service
            .operators
            .iter()
            .enumerate()
            .map(|(slot, op)| {
                let (this, req, op) = (self.clone(), req.clone(), *op);
                async move { (slot, op, this.ask(op, &req).await) }
            })
            .collect();
        let mut replies: Vec<(Reply, Signature)> = Vec::new();
        let mut errors = Vec::new();
        while let Some((slot, operator, answer)) = pending.next().await {
            let signed = match answer.and_then(|s| self.precheck(service, slot, req, &s).map(|sig| (s, sig))) {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::debug!(%operator, call = %req.call_id, error = %e, "operator reply refused");
                    errors.push((operator, e));
                    continue;
                }
            };
            let result_hash = signed.0.result.result_hash;
            replies.push((Reply { slot, signed: signed.0 }, signed.1));
            let group: Vec<&(Reply, Signature)> =
                replies.iter().filter(|(r, _)| r.signed.result.result_hash == result_hash).collect();
            let bitmap = group.iter().fold(U256::ZERO, |b, (r, _)| b | (U256::from(1) << r.slot));
            if !service.quorum_by_snapshot(bitmap) {
                continue;
            }
            // One pairing check for the whole group (the aggregate over the aggregate key); only if it fails are
            // the replies checked one by one, and the bad ones dropped.
            if !self.group_verifies(service, &group) {
                let bad: Vec<usize> = group
                    .iter()
                    .filter(|(r, sig)| self.verify_one(service, r.slot, &r.signed, sig).is_err())
                    .map(|(r, _)| r.slot)
                    .collect();
                replies.retain(|(r, _)| {
                    let keep = !bad.contains(&r.slot);
                    if !keep {
                        errors.push((r.signed.operator, "signature does not verify".into()));
                    }
                    keep
                });
                continue;
            }
            let group: Vec<&(Reply, Signature)> =
                replies.iter().filter(|(r, _)| r.signed.result.result_hash == result_hash).collect();
            let mut sorted = group.clone();
            sorted.sort_by_key(|(r, _)| r.slot);
            let signatures: Vec<Signature> = sorted.iter().map(|(_, s)| *s).collect();
            let Ok(aggregate) = aggregate_signatures(&signatures) else { continue };
            let result: ResultRef = sorted[0].0.signed.result;
            let binding = self.chain.binding();
            let stake = sorted.iter().map(|(r, _)| service.stakes.get(r.slot).copied().unwrap_or_default()).sum();
            let certificate = Certificate {
                version: CERTIFICATE_VERSION,
                chain_id: binding.chain_id,
                protocol: binding.contract,
                service_id: result.service_id.0,
                call_id: result.call_id.0,
                inputs_hash: result.inputs_hash,
                result_hash: result.result_hash,
                signer_bitmap: bitmap,
                signature: Bytes::from(aggregate.to_eip2537().to_vec()),
                batch: None,
                key_set: None,
                stake_at_risk: Some(stake),
            };
            let output = sorted[0].0.signed.output.clone().unwrap_or_default();
            let signers = sorted.iter().map(|(r, _)| r.signed.operator).collect();
            let dissent = replies
                .iter()
                .filter(|(r, _)| r.signed.result.result_hash != result_hash)
                .filter(|(r, sig)| self.verify_one(service, r.slot, &r.signed, sig).is_ok())
                .map(|(r, _)| r.clone())
                .collect();
            // The answer does not wait for the others; their replies are still checked, and any that signed
            // another result is evidence too.
            let late = if pending.is_empty() {
                None
            } else {
                let (this, service, req) = (self.clone(), service.clone(), req.clone());
                Some(tokio::spawn(async move {
                    let mut late = Vec::new();
                    while let Some((slot, _, answer)) = pending.next().await {
                        if let Ok(signed) = answer
                            && this.check(&service, slot, &req, &signed).is_ok()
                            && signed.result.result_hash != result_hash
                        {
                            late.push(Reply { slot, signed });
                        }
                    }
                    late
                }))
            };
            return FanOutOutcome::Quorum {
                output,
                certificate: Box::new(certificate),
                signers,
                dissent,
                late: LateReplies(late),
            };
        }
        FanOutOutcome::NoQuorum { replies: replies.into_iter().map(|(r, _)| r).collect(), errors }
    }
}
