//! [`FanOut`]: sends a paid request to every operator of the service at once, verifies each signed reply against
//! the operator's registered BLS key, groups replies by result, and returns as soon as one group reaches the
//! service's quorum — with the aggregate certificate. Replies that disagree with the quorum are kept as evidence.
//!
//! That is the orchestration of [`Verification::Exact`] jobs ([`FanOut::run`]); [`FanOut::run_as`] picks the one of
//! the job's mode: [`crate::rounds`] orchestrates tolerant jobs (commit, then endorse a candidate) and checked jobs
//! (one executor, the others check). Every mode ends in the same [`FanOutOutcome`] and the same certificate.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy_primitives::{Address, Bytes, U256, keccak256};
use futures_util::{StreamExt, stream::FuturesUnordered};
use serde::{Serialize, de::DeserializeOwned};
use vouch_contracts::view::{ChainView, ServiceInfo};
use vouch_crypto::{Signature, aggregate_signatures, fast_aggregate_verify};
use vouch_primitives::{
    CERTIFICATE_VERSION, Certificate, ResultRef, result_digest,
    wire::{ErrorBody, JobRequest, SignedResult, Verification},
};

use crate::rounds::CommitmentSuspect;

/// How long an operator whose endpoint failed (unknown, or refusing connections) is taken for down: a checked job
/// does not pick it as executor before the others meanwhile.
const DOWN_FOR: Duration = Duration::from_secs(30);
/// First pause before asking an overloaded operator again (then doubling up to [`OVERLOADED_MAX_PAUSE`]).
const OVERLOADED_FIRST_PAUSE: Duration = Duration::from_millis(25);
/// Longest pause between two tries of an overloaded operator.
const OVERLOADED_MAX_PAUSE: Duration = Duration::from_millis(800);

/// One operator's verified reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its slot in the service.
    pub slot: usize,
    /// The signed result.
    pub signed: SignedResult,
}

/// Evidence found after the answer, from the replies still on the way when the quorum formed.
#[derive(Debug, Default)]
pub struct Late {
    /// Verified late replies that signed another result than the certificate's.
    pub dissent: Vec<Reply>,
    /// Late commitments of a tolerant job that contradict the certified output.
    pub suspects: Vec<CommitmentSuspect>,
}

/// Replies that arrive after the quorum, once every operator has answered or timed out.
#[derive(Debug)]
pub struct LateReplies(Option<tokio::task::JoinHandle<Late>>);

impl LateReplies {
    /// Nothing is on the way.
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// Evidence that `task` finds.
    pub(crate) fn spawn(task: impl Future<Output = Late> + Send + 'static) -> Self {
        Self(Some(tokio::spawn(task)))
    }

    /// The evidence in the late replies (waits until every operator has answered or timed out).
    pub async fn wait(self) -> Late {
        match self.0 {
            Some(task) => task.await.unwrap_or_default(),
            None => Late::default(),
        }
    }

    /// Whether replies are still on the way (there is evidence to wait for).
    pub fn is_pending(&self) -> bool {
        self.0.is_some()
    }

    /// The verified late replies that signed another result than the certificate's.
    pub async fn dissent(self) -> Vec<Reply> {
        self.wait().await.dissent
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
        /// Commitments of a tolerant job that contradict the certified output: evidence for a commitment-deviation
        /// report.
        suspects: Vec<CommitmentSuspect>,
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

/// Why an operator's answer cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// Its endpoint is unknown (not announced, or the chain cannot be read).
    #[error("{0}")]
    NoEndpoint(String),
    /// The request did not reach it, or its answer did not come back in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// It answered an error.
    #[error("{status}: {message}{}", if code.is_empty() { String::new() } else { format!(" ({code})") })]
    Refused {
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The node API's error code (`disagree`, `conflict`, `wrong_verification`, …; empty if the body was not
        /// the node API's JSON error).
        code: String,
        /// Its message (or the body).
        message: String,
    },
    /// Its answer is not what the node API specifies.
    #[error("{0}")]
    Malformed(String),
}

impl NodeError {
    /// The node API error code, for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Fans requests out to operators.
#[derive(Debug, Clone)]
pub struct FanOut {
    client: reqwest::Client,
    chain: ChainView,
    timeout: Duration,
    /// Operators whose endpoint failed, until when they are taken for down.
    down: Arc<Mutex<HashMap<Address, Instant>>>,
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
        Self { client, chain, timeout, down: Arc::default() }
    }

    /// How long each operator has to answer one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The chain reads (and the binding of the digests operators sign).
    pub(crate) fn chain(&self) -> &ChainView {
        &self.chain
    }

    /// Whether `operator`'s endpoint failed within the last [`DOWN_FOR`].
    pub(crate) fn is_down(&self, operator: Address) -> bool {
        let down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        down.get(&operator).is_some_and(|until| *until > Instant::now())
    }

    fn mark_down(&self, operator: Address) {
        self.down.lock().unwrap_or_else(PoisonError::into_inner).insert(operator, Instant::now() + DOWN_FOR);
    }

    fn mark_up(&self, operator: Address) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if !down.is_empty() {
            down.remove(&operator);
        }
    }

    /// `POST {operator's endpoint}{path}` with `body`; the answer parsed as `T`. `deadline` shortens the operator's
    /// timeout when it is nearer.
    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        operator: Address,
        path: &str,
        body: &B,
        deadline: Option<Instant>,
    ) -> Result<T, NodeError> {
        let body = json_body(body).map_err(NodeError::Malformed)?;
        self.post_json(operator, path, body, deadline).await
    }

    /// [`Self::post`] of a body already serialized (JSON): one request sent to several operators is serialized once.
    /// An operator that sheds the request (`503 overloaded`: it refused before running anything, e.g. a model's
    /// concurrency limit) is asked again after a pause, doubling from [`OVERLOADED_FIRST_PAUSE`], until `deadline`
    /// (or the operator timeout) leaves no room for another try.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        operator: Address,
        path: &str,
        body: bytes::Bytes,
        deadline: Option<Instant>,
    ) -> Result<T, NodeError> {
        let give_up = deadline.unwrap_or_else(|| Instant::now() + self.timeout);
        let mut pause = OVERLOADED_FIRST_PAUSE;
        loop {
            match self.post_once(operator, path, body.clone(), deadline).await {
                Err(NodeError::Refused { status, code, .. })
                    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                        && code == "overloaded"
                        && Instant::now() + pause < give_up =>
                {
                    tracing::debug!(%operator, path, ?pause, "operator overloaded; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(OVERLOADED_MAX_PAUSE);
                }
                answer => return answer,
            }
        }
    }

    /// One try of [`Self::post_json`].
    async fn post_once<T: DeserializeOwned>(
        &self,
        operator: Address,
        path: &str,
        body: bytes::Bytes,
        deadline: Option<Instant>,
    ) -> Result<T, NodeError> {
        let endpoint = self.chain.endpoint_of(operator).await.map_err(|e| {
            self.mark_down(operator);
            NodeError::NoEndpoint(e.to_string())
        })?;
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let mut request = self.client.post(&url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::Unreachable("the request's deadline passed".into()));
            }
            if left < self.timeout {
                request = request.timeout(left);
            }
        }
        let r = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.chain.forget_endpoint(operator);
                if e.is_connect() {
                    self.mark_down(operator);
                }
                return Err(NodeError::Unreachable(e.to_string()));
            }
        };
        self.mark_up(operator);
        let status = r.status();
        let body = r.bytes().await.map_err(|e| NodeError::Malformed(format!("unreadable answer: {e}")))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(b) => NodeError::Refused { status, code: b.error.code, message: b.error.message },
                Err(_) => NodeError::Refused {
                    status,
                    code: String::new(),
                    message: String::from_utf8_lossy(&body).into_owned(),
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| NodeError::Malformed(format!("malformed answer: {e}")))
    }

    async fn ask(&self, operator: Address, body: bytes::Bytes) -> Result<SignedResult, String> {
        self.post_json(operator, "/v1/jobs", body, None).await.map_err(|e| e.to_string())
    }

    /// Checks `signed` is `slot`'s valid signature over a result of exactly `req`, with an output that hashes to it.
    pub(crate) fn check(
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
    pub(crate) fn precheck(
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
    pub(crate) fn verify_one(
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

    /// The group's aggregate signature, if it verifies against the aggregate of its signers' keys (one pairing
    /// check); `None` if it does not (or does not aggregate).
    pub(crate) fn group_verifies(&self, service: &ServiceInfo, group: &[&(Reply, Signature)]) -> Option<Signature> {
        let first = group.first()?;
        let keys: Vec<_> =
            group.iter().map(|(r, _)| service.keys.get(r.slot).copied().flatten()).collect::<Option<_>>()?;
        let signatures: Vec<Signature> = group.iter().map(|(_, s)| *s).collect();
        let aggregate = aggregate_signatures(&signatures).ok()?;
        let digest = result_digest(&self.chain.binding(), &first.0.signed.result);
        fast_aggregate_verify(&keys, &digest, &aggregate).is_ok().then_some(aggregate)
    }

    /// The certificate of `group` — verified replies over one result whose signers reach the quorum — with
    /// `aggregate`, the sum of the group's signatures that [`Self::group_verifies`] verified, and its signers in slot
    /// order. `None` only for an empty group.
    pub(crate) fn certify(
        &self,
        service: &ServiceInfo,
        group: &[&(Reply, Signature)],
        aggregate: &Signature,
    ) -> Option<(Certificate, Vec<Address>)> {
        let mut sorted = group.to_vec();
        sorted.sort_by_key(|(r, _)| r.slot);
        let result: ResultRef = sorted.first()?.0.signed.result;
        let binding = self.chain.binding();
        let bitmap = sorted.iter().fold(U256::ZERO, |b, (r, _)| b | (U256::from(1) << r.slot));
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
        Some((certificate, sorted.iter().map(|(r, _)| r.signed.operator).collect()))
    }

    /// Orchestrates `req` as its job's verification `mode` asks: [`Self::run`] for exact jobs,
    /// [`Self::run_tolerant`] and [`Self::run_checked`] ([`crate::rounds`]) for the others.
    pub async fn run_as(&self, service: &ServiceInfo, req: &JobRequest, mode: Verification) -> FanOutOutcome {
        match mode {
            Verification::Exact => self.run(service, req).await,
            Verification::Tolerant => self.run_tolerant(service, req).await,
            Verification::Checked => self.run_checked(service, req).await,
        }
    }

    /// Sends `req` to every operator of `service`; returns at the first quorum or when all have answered.
    pub async fn run(&self, service: &ServiceInfo, req: &JobRequest) -> FanOutOutcome {
        // One body for every operator.
        let body = match json_body(req) {
            Ok(body) => body,
            Err(e) => return FanOutOutcome::NoQuorum { replies: Vec::new(), errors: vec![(Address::ZERO, e)] },
        };
        let mut pending: FuturesUnordered<_> = service
            .operators
            .iter()
            .enumerate()
            .map(|(slot, op)| {
                let (this, body, op) = (self.clone(), body.clone(), *op);
                async move { (slot, op, this.ask(op, body).await) }
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
            let Some(aggregate) = self.group_verifies(service, &group) else {
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
            };
            let Some((certificate, signers)) = self.certify(service, &group, &aggregate) else { continue };
            let output = group.iter().find_map(|(r, _)| r.signed.output.clone()).unwrap_or_default();
            let dissent = replies
                .iter()
                .filter(|(r, _)| r.signed.result.result_hash != result_hash)
                .filter(|(r, sig)| self.verify_one(service, r.slot, &r.signed, sig).is_ok())
                .map(|(r, _)| r.clone())
                .collect();
            // The answer does not wait for the others; their replies are still checked, and any that signed
            // another result is evidence too.
            let late = if pending.is_empty() {
                LateReplies::none()
            } else {
                let (this, service, req) = (self.clone(), service.clone(), req.clone());
                LateReplies::spawn(async move {
                    let mut late = Vec::new();
                    while let Some((slot, _, answer)) = pending.next().await {
                        if let Ok(signed) = answer
                            && this.check(&service, slot, &req, &signed).is_ok()
                            && signed.result.result_hash != result_hash
                        {
                            late.push(Reply { slot, signed });
                        }
                    }
                    Late { dissent: late, suspects: Vec::new() }
                })
            };
            return FanOutOutcome::Quorum {
                output,
                certificate: Box::new(certificate),
                signers,
                dissent,
                suspects: Vec::new(),
                late,
            };
        }
        FanOutOutcome::NoQuorum { replies: replies.into_iter().map(|(r, _)| r).collect(), errors }
    }
}

/// `body` as a JSON request body.
fn json_body<B: Serialize + ?Sized>(body: &B) -> Result<bytes::Bytes, String> {
    serde_json::to_vec(body).map(bytes::Bytes::from).map_err(|e| format!("cannot serialize the request: {e}"))
}
