//! Orchestration of the jobs whose operators do not simply compute and sign the same bytes
//! (`docs/design/tolerant-verification.md`, `docs/design/gateway.md` § *Verification modes*). Both end in the same
//! [`FanOutOutcome`] as an exact job: a normal certificate over one result hash, answered, stored and settled the same
//! way.
//!
//! **Tolerant** ([`FanOut::run_tolerant`]): commit, then endorse one candidate.
//! 1. `POST /v1/commitments` to every operator; each [`SignedCommitment`] is checked (this operator, this call and
//!    these inputs, the output hashing to the committed hash) and its signature verified against the operator's
//!    registered key over `commitment_digest`.
//! 2. Once the verified commitments cover the quorum (or every operator has answered or timed out), the first
//!    candidate is chosen among the committed outputs (see [`candidate_order`]): the output committed by the most
//!    operators (equal output hash), ties to the lowest slot.
//! 3. `POST /v1/endorsements` with the candidate to every operator that committed and has not signed another
//!    result for this call (a commitment arriving later is asked at once). Each agreeing operator answers a
//!    [`SignedResult`] over `keccak256(candidate)`; the group is aggregated and verified once when it reaches the
//!    quorum, and certifies.
//! 4. A candidate that can no longer reach the quorum (its endorsers plus the operators still to answer are short of
//!    it) is dropped and the next distinct committed output is tried, with the operators that have not signed yet (one
//!    that answered `conflict` — its guard holds another result, e.g. signed before this gateway restarted — is asked
//!    again: it may be the next candidate): at most one try per distinct committed output, all within the call's
//!    deadline ([`ROUND_BUDGET`]).
//! 5. Evidence ([`CommitmentSuspect`]), once certified: an operator outside the certificate whose verified
//!    commitment contradicts the certified output — it answered `disagree` to it (now, or later for the operators
//!    still on the way), or its own committed output was proposed and refused (`disagree`) by a signer of the
//!    certificate. `conflict`, errors and timeouts are never evidence, and neither is an endorsement of a candidate
//!    that did not certify (an operator endorses within its tolerance; its commitment is what is judged).
//!
//! **Checked** ([`FanOut::run_checked`]): one executor, the others check.
//! 1. The executor is chosen by rotation on the call id: slot `callId mod n` first, then the following slots,
//!    operators whose endpoint failed lately last ([`executor_order`]).
//! 2. `POST /v1/jobs` to the executor; its [`SignedResult`] is checked and verified.
//! 3. `POST /v1/endorsements` with its output to every other operator that has not signed another result for this
//!    call, all at once; the executor's and the endorsers' signatures are over the same result hash and are
//!    aggregated when they reach the quorum.
//! 4. No quorum (the checkers disagree, are down, or the executor failed): the next executor, at most once per
//!    operator and within the call's deadline.
//! 5. Evidence, once certified: every verified signature over another result (a failed executor's, and the
//!    checkers that endorsed it) is an ordinary deviation ([`FanOutOutcome::Quorum::dissent`]).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use futures_util::{FutureExt as _, StreamExt as _, future::BoxFuture, stream::FuturesUnordered};
use vouch_contracts::view::ServiceInfo;
use vouch_crypto::Signature;
use vouch_primitives::{
    commitment_digest,
    wire::{EndorseRequest, JobRequest, SignedCommitment, SignedResult},
};

use crate::fanout::{FanOut, FanOutOutcome, Late, LateReplies, NodeError, Reply};

/// A tolerant or checked call takes several rounds of requests; all of them together get at most this many
/// operator timeouts (and never more than the job's deadline).
pub const ROUND_BUDGET: u32 = 3;

/// The node API's answer when an operator does not agree with the output it is asked to endorse.
pub const DISAGREE: &str = "disagree";

/// An operator whose verified commitment contradicts the certified output of a tolerant job: the evidence of a
/// commitment deviation (`VouchSlasher.proposeCommitmentDeviation`).
#[derive(Debug, Clone)]
pub struct CommitmentSuspect {
    /// Its slot.
    pub slot: usize,
    /// Its verified commitment, with the committed output.
    pub signed: SignedCommitment,
    /// Why it contradicts the certificate.
    pub reason: String,
}

/// Whether `e` means the operator's signing guard already holds another result (or commitment) for this call.
fn is_conflict(e: &NodeError) -> bool {
    matches!(e.code(), Some("conflict" | "conflicting_result" | "conflicting_commitment"))
}

fn bit(slot: usize) -> U256 {
    U256::from(1) << slot
}

/// The distinct committed outputs in the order they are proposed: the output hash committed by the most operators
/// first, ties broken by the lowest slot that committed it. `commitments` are `(slot, output hash)`; the answer is
/// each distinct hash with the lowest slot that committed it.
pub fn candidate_order(commitments: &[(usize, B256)]) -> Vec<(B256, usize)> {
    let mut groups: Vec<(B256, usize, usize)> = Vec::new(); // (hash, count, lowest slot)
    for (slot, hash) in commitments {
        match groups.iter_mut().find(|(h, _, _)| h == hash) {
            Some(g) => {
                g.1 += 1;
                g.2 = g.2.min(*slot);
            }
            None => groups.push((*hash, 1, *slot)),
        }
    }
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    groups.into_iter().map(|(h, _, slot)| (h, slot)).collect()
}

/// The order in which the operators of a checked job are tried as executor: slot `call_id mod n` first, then the
/// following slots, wrapping; operators taken for down (`down(slot)`) keep that order but come after the others.
pub fn executor_order(call_id: U256, n: usize, down: impl Fn(usize) -> bool) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let start = usize::try_from(call_id % U256::from(n)).unwrap_or(0);
    let rotation: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
    let (mut up, down): (Vec<usize>, Vec<usize>) = rotation.into_iter().partition(|s| !down(*s));
    up.extend(down);
    up
}

/// Where one operator stands in a tolerant call.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// Its commitment request is on the way.
    committing: bool,
    /// Its verified commitment.
    commitment: Option<SignedCommitment>,
    /// The candidate it is being asked to endorse.
    asked: Option<B256>,
    /// The result it signed for this call (it can sign no other).
    signed: Option<B256>,
    /// Not asked again in this call (its commitment failed, it is unreachable, or it answered outside the node API).
    out: bool,
}

impl Slot {
    /// Could still sign a new candidate.
    fn free(&self) -> bool {
        !self.out && self.signed.is_none() && (self.committing || self.commitment.is_some())
    }
}

/// One endorsement answer: the slot, the candidate it was asked, the answer.
type Endorsed = (usize, B256, Result<SignedResult, NodeError>);

/// A candidate being endorsed.
#[derive(Debug, Clone)]
struct Candidate {
    hash: B256,
    output: Bytes,
    body: Arc<EndorseRequest>,
}

impl FanOut {
    /// When the rounds of a tolerant or checked call must be over: [`ROUND_BUDGET`] operator timeouts from now, or
    /// the job's deadline if nearer.
    fn round_deadline(&self, service: &ServiceInfo, req: &JobRequest) -> Instant {
        let budget = self.timeout().saturating_mul(ROUND_BUDGET);
        let job = service.jobs.get(usize::from(req.job_index)).map(|j| Duration::from_secs(u64::from(j.deadline)));
        Instant::now() + job.filter(|j| !j.is_zero()).map_or(budget, |j| j.min(budget))
    }

    /// Checks `signed` is `slot`'s commitment to an output of exactly `req`, and verifies its signature.
    pub(crate) fn check_commitment(
        &self,
        service: &ServiceInfo,
        slot: usize,
        req: &JobRequest,
        signed: &SignedCommitment,
    ) -> Result<(), String> {
        let c = &signed.commitment;
        if Some(&signed.operator) != service.operators.get(slot) {
            return Err(format!("committed as {}", signed.operator));
        }
        if c.service_id != req.service_id || c.call_id != req.call_id || c.inputs_hash != keccak256(&req.inputs) {
            return Err("committed to another call or other inputs".into());
        }
        if keccak256(&signed.output) != c.output_hash {
            return Err("the output does not hash to the commitment".into());
        }
        let key = service.keys.get(slot).copied().flatten().ok_or("no registered BLS key")?;
        let signature = Signature::from_compressed(&signed.signature).map_err(|e| format!("bad signature: {e}"))?;
        signature
            .verify(&key, &commitment_digest(&self.chain().binding(), c))
            .map_err(|e| format!("commitment signature does not verify: {e}"))
    }

    /// The cheap checks of an endorsement: `slot`'s signature over a result of exactly `req` with `result_hash`
    /// (the output, if sent back, hashing to it); the signature parsed, not yet verified.
    pub(crate) fn precheck_endorsement(
        &self,
        service: &ServiceInfo,
        slot: usize,
        req: &JobRequest,
        result_hash: B256,
        signed: &SignedResult,
    ) -> Result<Signature, String> {
        let r = &signed.result;
        if Some(&signed.operator) != service.operators.get(slot) {
            return Err(format!("answered as {}", signed.operator));
        }
        if r.service_id != req.service_id || r.call_id != req.call_id || r.inputs_hash != keccak256(&req.inputs) {
            return Err("signed another call or other inputs".into());
        }
        if r.result_hash != result_hash {
            return Err(format!("signed result {} instead of the proposed {result_hash}", r.result_hash));
        }
        if signed.output.as_ref().is_some_and(|o| keccak256(o) != result_hash) {
            return Err("the output does not hash to the signed result".into());
        }
        if service.keys.get(slot).copied().flatten().is_none() {
            return Err("no registered BLS key".into());
        }
        Signature::from_compressed(&signed.signature).map_err(|e| format!("bad signature: {e}"))
    }

    fn endorse(
        &self,
        slot: usize,
        operator: Address,
        candidate: &Candidate,
        deadline: Instant,
    ) -> BoxFuture<'static, Endorsed> {
        let (this, body, hash) = (self.clone(), candidate.body.clone(), candidate.hash);
        async move { (slot, hash, this.post(operator, "/v1/endorsements", &*body, Some(deadline)).await) }.boxed()
    }

    /// Why a call's rounds stopped: they ran out of time.
    fn out_of_time(&self) -> String {
        format!("the call's rounds ran out of time ({:?})", self.timeout().saturating_mul(ROUND_BUDGET))
    }

    /// If the verified replies over `hash` in `agreed` reach the quorum and their aggregate verifies, the certificate
    /// and its signers. Replies whose signature does not verify are dropped (into `errors`).
    fn certify_group(
        &self,
        service: &ServiceInfo,
        agreed: &mut Vec<(Reply, Signature)>,
        errors: &mut Vec<(Address, String)>,
        hash: B256,
    ) -> Option<(vouch_primitives::Certificate, Vec<Address>)> {
        let group: Vec<&(Reply, Signature)> =
            agreed.iter().filter(|(r, _)| r.signed.result.result_hash == hash).collect();
        let bitmap = group.iter().fold(U256::ZERO, |b, (r, _)| b | bit(r.slot));
        if !service.quorum_by_snapshot(bitmap) {
            return None;
        }
        let Some(aggregate) = self.group_verifies(service, &group) else {
            let bad: Vec<usize> = group
                .iter()
                .filter(|(r, sig)| self.verify_one(service, r.slot, &r.signed, sig).is_err())
                .map(|(r, _)| r.slot)
                .collect();
            agreed.retain(|(r, _)| {
                let keep = !(r.signed.result.result_hash == hash && bad.contains(&r.slot));
                if !keep {
                    errors.push((r.signed.operator, "signature does not verify".into()));
                }
                keep
            });
            return None;
        };
        self.certify(service, &group, &aggregate)
    }

    /// Orchestrates a [`Verification::Tolerant`](vouch_primitives::wire::Verification::Tolerant) job (see the module
    /// docs): commitments, then endorsements of one candidate at a time, until one certifies.
    pub async fn run_tolerant(&self, service: &ServiceInfo, req: &JobRequest) -> FanOutOutcome {
        let deadline = self.round_deadline(service, req);
        let commits: FuturesUnordered<_> = service
            .operators
            .iter()
            .enumerate()
            .map(|(slot, op)| {
                let (this, req, op) = (self.clone(), req.clone(), *op);
                async move { (slot, this.post(op, "/v1/commitments", &req, Some(deadline)).await) }.boxed()
            })
            .collect();
        let mut call = Tolerant {
            fanout: self,
            service,
            req,
            deadline,
            slots: vec![Slot { committing: true, ..Slot::default() }; service.operators.len()],
            commits,
            endorsements: FuturesUnordered::new(),
            errors: Vec::new(),
            agreed: Vec::new(),
            disagreed: HashMap::new(),
            conflicts: HashMap::new(),
            tried: Vec::new(),
            current: None,
            started: false,
        };
        loop {
            if !call.advance() {
                break;
            }
            tokio::select! {
                Some((slot, answer)) = call.commits.next(), if !call.commits.is_empty() => {
                    call.on_commitment(slot, answer);
                }
                Some((slot, hash, answer)) = call.endorsements.next(), if !call.endorsements.is_empty() => {
                    if let Some(outcome) = call.on_endorsement(slot, hash, answer) {
                        return outcome;
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    call.errors.push((Address::ZERO, call.fanout.out_of_time()));
                    break;
                }
            }
        }
        call.no_quorum()
    }

    /// After a tolerant call certified `hash`: the replies still on the way. A late commitment to another output is
    /// asked to endorse the certified one; a `disagree` (from it, or from an operator asked before) makes it a
    /// suspect.
    #[allow(clippy::too_many_arguments)]
    fn late_suspects(
        &self,
        service: &ServiceInfo,
        req: &JobRequest,
        slots: &[Slot],
        (hash, output): (B256, Bytes),
        mut commits: FuturesUnordered<BoxFuture<'static, Committed>>,
        mut endorsements: FuturesUnordered<BoxFuture<'static, Endorsed>>,
        deadline: Instant,
    ) -> LateReplies {
        if commits.is_empty() && endorsements.is_empty() {
            return LateReplies::none();
        }
        let (this, service, req) = (self.clone(), service.clone(), req.clone());
        let mut slots = slots.to_vec();
        LateReplies::spawn(async move {
            let candidate = Candidate {
                hash,
                output: output.clone(),
                body: Arc::new(EndorseRequest { request: req.clone(), output }),
            };
            let mut suspects = Vec::new();
            loop {
                tokio::select! {
                    Some((slot, answer)) = commits.next(), if !commits.is_empty() => {
                        let Ok(c) = answer else { continue };
                        if this.check_commitment(&service, slot, &req, &c).is_err() {
                            continue;
                        }
                        let differs = c.commitment.output_hash != hash;
                        slots[slot].commitment = Some(c);
                        if differs && slots[slot].signed.is_none() {
                            endorsements.push(this.endorse(slot, service.operators[slot], &candidate, deadline));
                        }
                    }
                    Some((slot, asked, answer)) = endorsements.next(), if !endorsements.is_empty() => {
                        let Err(NodeError::Refused { code, message, .. }) = answer else { continue };
                        if code != DISAGREE {
                            continue;
                        }
                        if asked != hash {
                            // It refused a candidate that did not certify: ask it about the certified one.
                            if slots[slot].signed.is_none()
                                && slots[slot].commitment.as_ref().is_some_and(|c| c.commitment.output_hash != hash)
                            {
                                endorsements.push(this.endorse(slot, service.operators[slot], &candidate, deadline));
                            }
                            continue;
                        }
                        if let Some(c) = slots[slot].commitment.clone() {
                            suspects.push(CommitmentSuspect {
                                slot,
                                signed: c,
                                reason: format!("answered disagree to the certified output {hash}: {message}"),
                            });
                        }
                    }
                    else => break,
                }
            }
            Late { dissent: Vec::new(), suspects }
        })
    }

    /// Orchestrates a [`Verification::Checked`](vouch_primitives::wire::Verification::Checked) job (see the module
    /// docs): one executor at a time, checked by the others, until one's output certifies.
    pub async fn run_checked(&self, service: &ServiceInfo, req: &JobRequest) -> FanOutOutcome {
        let deadline = self.round_deadline(service, req);
        let n = service.operators.len();
        let order = executor_order(req.call_id.0, n, |s| self.is_down(service.operators[s]));
        // The result each operator signed for this call (it can sign no other), and who is not asked again
        // (unreachable, or answers that are not the node API's).
        let mut signed_for: Vec<Option<B256>> = vec![None; n];
        let mut out = vec![false; n];
        let mut signed: Vec<(Reply, Signature)> = Vec::new();
        let mut errors: Vec<(Address, String)> = Vec::new();
        let unusable = |e: &NodeError| matches!(e, NodeError::Unreachable(_) | NodeError::NoEndpoint(_));
        for executor in order {
            if Instant::now() >= deadline {
                errors.push((Address::ZERO, self.out_of_time()));
                break;
            }
            if signed_for[executor].is_some() || out[executor] {
                continue;
            }
            let possible = (0..n)
                .filter(|s| *s == executor || (signed_for[*s].is_none() && !out[*s]))
                .fold(U256::ZERO, |b, s| b | bit(s));
            if !service.quorum_by_snapshot(possible) {
                break;
            }
            let operator = service.operators[executor];
            let answer = self.post::<_, SignedResult>(operator, "/v1/jobs", req, Some(deadline)).await;
            let checked = match answer {
                Ok(s) => {
                    let checked = self.check(service, executor, req, &s);
                    out[executor] |= checked.is_err();
                    checked.map(|sig| (s, sig))
                }
                Err(e) => {
                    out[executor] |= unusable(&e);
                    Err(e.to_string())
                }
            };
            let (result, signature) = match checked {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::debug!(%operator, call = %req.call_id, error = %e, "executor failed");
                    errors.push((operator, format!("executor: {e}")));
                    continue;
                }
            };
            let hash = result.result.result_hash;
            let output = result.output.clone().unwrap_or_default();
            signed_for[executor] = Some(hash);
            signed.push((Reply { slot: executor, signed: result }, signature));
            let candidate = Candidate {
                hash,
                output: output.clone(),
                body: Arc::new(EndorseRequest { request: req.clone(), output: output.clone() }),
            };
            let mut endorsements: FuturesUnordered<_> = (0..n)
                .filter(|s| *s != executor && signed_for[*s].is_none() && !out[*s])
                .map(|s| self.endorse(s, service.operators[s], &candidate, deadline))
                .collect();
            let checkers = endorsements.len();
            tracing::debug!(call = %req.call_id, executor, result = %hash, checkers, "checked round");
            loop {
                let next = tokio::select! {
                    next = endorsements.next() => next,
                    () = tokio::time::sleep_until(deadline.into()) => None,
                };
                let Some((slot, _, answer)) = next else { break };
                let operator = service.operators[slot];
                let endorsement = match answer {
                    Ok(s) => match self.precheck_endorsement(service, slot, req, hash, &s) {
                        Ok(sig) => (s, sig),
                        Err(e) => {
                            out[slot] = true;
                            errors.push((operator, format!("endorsement: {e}")));
                            continue;
                        }
                    },
                    // A disagreement, or a guard holding another result (it may still execute or endorse that
                    // one): asked again in the next round.
                    Err(e) => {
                        out[slot] |= unusable(&e);
                        errors.push((operator, format!("checking {hash}: {e}")));
                        continue;
                    }
                };
                signed_for[slot] = Some(hash);
                signed.push((Reply { slot, signed: endorsement.0 }, endorsement.1));
                let Some((certificate, signers)) = self.certify_group(service, &mut signed, &mut errors, hash) else {
                    continue;
                };
                // Every verified signature over another result (a failed executor's, its endorsers') contradicts
                // the certificate.
                let dissent = signed
                    .iter()
                    .filter(|(r, _)| r.signed.result.result_hash != hash)
                    .filter(|(r, sig)| self.verify_one(service, r.slot, &r.signed, sig).is_ok())
                    .map(|(r, _)| r.clone())
                    .collect();
                return FanOutOutcome::Quorum {
                    output,
                    certificate: Box::new(certificate),
                    signers,
                    dissent,
                    suspects: Vec::new(),
                    late: LateReplies::none(),
                };
            }
        }
        FanOutOutcome::NoQuorum { replies: signed.into_iter().map(|(r, _)| r).collect(), errors }
    }
}

/// Commitment answers: the slot and its answer.
type Committed = (usize, Result<SignedCommitment, NodeError>);

/// The state of one tolerant call.
struct Tolerant<'a> {
    fanout: &'a FanOut,
    service: &'a ServiceInfo,
    req: &'a JobRequest,
    deadline: Instant,
    slots: Vec<Slot>,
    commits: FuturesUnordered<BoxFuture<'static, Committed>>,
    endorsements: FuturesUnordered<BoxFuture<'static, Endorsed>>,
    errors: Vec<(Address, String)>,
    /// Verified endorsements, of every candidate.
    agreed: Vec<(Reply, Signature)>,
    /// Who answered `disagree` to which candidate, with why.
    disagreed: HashMap<B256, Vec<(usize, String)>>,
    /// Who answered `conflict` to which candidate (its guard holds another result for the call).
    conflicts: HashMap<B256, Vec<usize>>,
    /// The candidates proposed, in order.
    tried: Vec<B256>,
    current: Option<Candidate>,
    /// Whether the first candidate was proposed.
    started: bool,
}

impl Tolerant<'_> {
    fn bitmap(&self, f: impl Fn(usize, &Slot) -> bool) -> U256 {
        self.slots.iter().enumerate().filter(|(i, s)| f(*i, s)).fold(U256::ZERO, |b, (i, _)| b | bit(i))
    }

    /// The operators that will not sign candidate `hash`: they disagree, or their guard holds another result.
    fn refused(&self, hash: B256) -> Vec<usize> {
        let disagreed = self.disagreed.get(&hash).into_iter().flatten().map(|(s, _)| *s);
        disagreed.chain(self.conflicts.get(&hash).into_iter().flatten().copied()).collect()
    }

    /// Asks `slot` to endorse the current candidate.
    fn ask(&mut self, slot: usize) {
        let Some(candidate) = &self.current else { return };
        self.slots[slot].asked = Some(candidate.hash);
        let operator = self.service.operators[slot];
        self.endorsements.push(self.fanout.endorse(slot, operator, candidate, self.deadline));
    }

    /// Drops a candidate that can no longer certify and proposes the next one when it is time; `false` when nothing
    /// more can happen.
    fn advance(&mut self) -> bool {
        if let Some(c) = &self.current {
            let (hash, refused) = (c.hash, self.refused(c.hash));
            let possible = self.bitmap(|i, s| s.signed == Some(hash) || (s.free() && !refused.contains(&i)));
            let idle = self.commits.is_empty() && self.endorsements.is_empty();
            if idle || !self.service.quorum_by_snapshot(possible) {
                tracing::debug!(call = %self.req.call_id, candidate = %hash, "the candidate cannot reach the quorum");
                self.current = None;
            }
        }
        if self.current.is_none() {
            let committed = self.bitmap(|_, s| s.commitment.is_some());
            if !(self.started || self.commits.is_empty() || self.service.quorum_by_snapshot(committed)) {
                return true;
            }
            self.started = true;
            // Every operator that could still sign a new candidate (those still answering about an earlier one
            // included): short of the quorum, no candidate can certify.
            if !self.service.quorum_by_snapshot(self.bitmap(|_, s| s.free())) {
                return false;
            }
            let hashes: Vec<(usize, B256)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.commitment.as_ref().map(|c| (i, c.commitment.output_hash)))
                .collect();
            let next = candidate_order(&hashes).into_iter().find(|(h, _)| !self.tried.contains(h));
            if let Some((hash, proposer)) = next
                && let Some(output) = self.slots[proposer].commitment.as_ref().map(|c| c.output.clone())
            {
                tracing::debug!(call = %self.req.call_id, candidate = %hash, proposer, "endorsement round");
                self.tried.push(hash);
                let body = Arc::new(EndorseRequest { request: self.req.clone(), output: output.clone() });
                self.current = Some(Candidate { hash, output, body });
                for slot in 0..self.slots.len() {
                    let s = &self.slots[slot];
                    if s.free() && s.commitment.is_some() && s.asked.is_none() {
                        self.ask(slot);
                    }
                }
            }
        }
        !(self.commits.is_empty() && self.endorsements.is_empty())
    }

    fn on_commitment(&mut self, slot: usize, answer: Result<SignedCommitment, NodeError>) {
        let operator = self.service.operators[slot];
        self.slots[slot].committing = false;
        let checked = answer
            .map_err(|e| e.to_string())
            .and_then(|c| self.fanout.check_commitment(self.service, slot, self.req, &c).map(|()| c));
        match checked {
            Ok(c) => {
                self.slots[slot].commitment = Some(c);
                if self.current.is_some() && self.slots[slot].free() && self.slots[slot].asked.is_none() {
                    self.ask(slot);
                }
            }
            Err(e) => {
                tracing::debug!(%operator, call = %self.req.call_id, error = %e, "commitment refused");
                self.slots[slot].out = true;
                self.errors.push((operator, format!("commitment: {e}")));
            }
        }
    }

    /// Handles one endorsement answer; the outcome once a candidate certifies.
    fn on_endorsement(
        &mut self,
        slot: usize,
        hash: B256,
        answer: Result<SignedResult, NodeError>,
    ) -> Option<FanOutOutcome> {
        let operator = self.service.operators[slot];
        self.slots[slot].asked = None;
        match answer {
            Ok(signed) => match self.fanout.precheck_endorsement(self.service, slot, self.req, hash, &signed) {
                Ok(signature) => {
                    self.slots[slot].signed = Some(hash);
                    self.agreed.push((Reply { slot, signed }, signature));
                    if self.current.as_ref().is_some_and(|c| c.hash == hash) {
                        return self.try_certify(hash);
                    }
                }
                Err(e) => {
                    self.slots[slot].out = true;
                    self.errors.push((operator, format!("endorsement: {e}")));
                }
            },
            Err(e) => {
                match &e {
                    NodeError::Refused { code, message, .. } if code == DISAGREE => {
                        self.errors.push((operator, format!("disagrees with {hash}: {message}")));
                        self.disagreed.entry(hash).or_default().push((slot, message.clone()));
                    }
                    // Its guard holds another result for this call (signed before a restart of this gateway, say):
                    // it may be a later candidate, which it would sign again.
                    e if is_conflict(e) => {
                        self.errors.push((operator, format!("endorsement: {e}")));
                        self.conflicts.entry(hash).or_default().push(slot);
                    }
                    e => {
                        self.slots[slot].out = true;
                        self.errors.push((operator, format!("endorsement: {e}")));
                        return None;
                    }
                }
                // Free again: ask it about the candidate now proposed, if another.
                if self.current.as_ref().is_some_and(|c| c.hash != hash)
                    && self.slots[slot].free()
                    && self.slots[slot].commitment.is_some()
                {
                    self.ask(slot);
                }
            }
        }
        None
    }

    /// The outcome if the endorsements of `hash` certify.
    fn try_certify(&mut self, hash: B256) -> Option<FanOutOutcome> {
        let (certificate, signers) =
            self.fanout.certify_group(self.service, &mut self.agreed, &mut self.errors, hash)?;
        let output = self.current.take().map(|c| c.output).unwrap_or_default();
        let suspects = suspects(&self.slots, &signers, self.service, hash, &self.tried, &self.disagreed);
        let late = self.fanout.late_suspects(
            self.service,
            self.req,
            &self.slots,
            (hash, output.clone()),
            std::mem::take(&mut self.commits),
            std::mem::take(&mut self.endorsements),
            self.deadline,
        );
        Some(FanOutOutcome::Quorum {
            output,
            certificate: Box::new(certificate),
            signers,
            dissent: Vec::new(),
            suspects,
            late,
        })
    }

    fn no_quorum(mut self) -> FanOutOutcome {
        for (i, s) in self.slots.iter().enumerate() {
            if s.committing {
                self.errors.push((self.service.operators[i], "no commitment before the deadline".into()));
            }
        }
        FanOutOutcome::NoQuorum { replies: self.agreed.into_iter().map(|(r, _)| r).collect(), errors: self.errors }
    }
}

/// The commitments that contradict certified output `hash` (see the module docs, *Evidence*): operators outside
/// `signers` that answered `disagree` to it, or whose committed output was tried and refused by a signer.
fn suspects(
    slots: &[Slot],
    signers: &[Address],
    service: &ServiceInfo,
    hash: B256,
    tried: &[B256],
    disagreed: &HashMap<B256, Vec<(usize, String)>>,
) -> Vec<CommitmentSuspect> {
    let signer_slots: Vec<usize> = signers.iter().filter_map(|a| service.slot_of(*a)).collect();
    let mut out = Vec::new();
    for (slot, s) in slots.iter().enumerate() {
        let Some(c) = &s.commitment else { continue };
        if signer_slots.contains(&slot) {
            continue;
        }
        let own = c.commitment.output_hash;
        let reason = if let Some((_, why)) = disagreed.get(&hash).and_then(|d| d.iter().find(|(x, _)| *x == slot)) {
            format!("answered disagree to the certified output {hash}: {why}")
        } else if own != hash
            && tried.contains(&own)
            && let Some(refusers) = disagreed.get(&own)
            && let Some((by, why)) = refusers.iter().find(|(x, _)| signer_slots.contains(x))
        {
            format!(
                "its committed output {own} was proposed and refused by certificate signer {}: {why}",
                service.operators[*by]
            )
        } else {
            continue;
        };
        out.push(CommitmentSuspect { slot, signed: c.clone(), reason });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_go_by_most_committers_then_lowest_slot() {
        let (a, b, c) = (B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3));
        assert_eq!(candidate_order(&[(2, a), (0, b), (1, c)]), vec![(b, 0), (c, 1), (a, 2)]);
        assert_eq!(candidate_order(&[(0, a), (2, b), (1, b), (3, c)]), vec![(b, 1), (a, 0), (c, 3)]);
        assert!(candidate_order(&[]).is_empty());
    }

    #[test]
    fn executors_rotate_by_call_id_with_down_operators_last() {
        assert_eq!(executor_order(U256::from(7), 3, |_| false), vec![1, 2, 0]);
        assert_eq!(executor_order(U256::from(7), 3, |s| s == 2), vec![1, 0, 2]);
        assert_eq!(executor_order(U256::MAX, 4, |_| false), vec![3, 0, 1, 2]);
        assert!(executor_order(U256::from(1), 0, |_| false).is_empty());
    }
}
