//! Exact fee arithmetic for tests (docs/protocol.md, "Money flows"): what each party of a settled call is credited.

use alloy_primitives::U256;
use vouch_contracts::{VouchProtocol, VouchStaking};
use vouch_devnet::Devnet;

use crate::HarnessError;

const BPS: U256 = U256::from_limbs([10_000, 0, 0, 0]);

/// How one call's payment is split when the operators at `slots` sign its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// To the blueprint owner (claimable).
    pub developer: U256,
    /// Protocol fee to the treasury (claimable).
    pub protocol: U256,
    /// Commission of each signer, in `slots` order (claimable by the operator).
    pub commissions: Vec<U256>,
    /// Delegator reward of each signer's pool, in `slots` order.
    pub rewards: Vec<U256>,
    /// Integer-division remainder, to the treasury.
    pub dust: U256,
}

/// The split of `price` on `service` among the signers at `slots`, computed from chain state now: weight of a
/// signer = min(snapshot stake, slashable stake), shares pro rata, commission at the operator's rate.
pub async fn expected_split(
    devnet: &Devnet,
    service: u64,
    price: U256,
    slots: &[usize],
) -> Result<Split, HarnessError> {
    let chain = |e: &dyn std::fmt::Display| HarnessError::Chain(e.to_string());
    let c = devnet.address_book().contracts;
    let provider = devnet.read_provider();
    let protocol = VouchProtocol::new(c.protocol, &provider);
    let staking = VouchStaking::new(c.staking, &provider);
    let s = protocol.getService(service).call().await.map_err(|e| chain(&e))?;
    let b = protocol.getBlueprint(s.blueprintId).call().await.map_err(|e| chain(&e))?;
    let developer = price * U256::from(b.policy.developerFeeBps) / BPS;
    let fee_bps = protocol.PROTOCOL_FEE_BPS().call().await.map_err(|e| chain(&e))?;
    let protocol_fee = price * U256::from(fee_bps) / BPS;
    let rest = price - developer - protocol_fee;
    let mut weights = Vec::new();
    for &slot in slots {
        let slashable = staking.slashableStake(s.operators[slot]).call().await.map_err(|e| chain(&e))?;
        weights.push(s.stakes[slot].min(slashable));
    }
    let signer_stake: U256 = weights.iter().copied().sum();
    let (mut commissions, mut rewards, mut shared) = (Vec::new(), Vec::new(), U256::ZERO);
    for (&slot, weight) in slots.iter().zip(weights) {
        let share = rest * weight / signer_stake;
        let bps = staking.commissionBps(s.operators[slot]).call().await.map_err(|e| chain(&e))?;
        let commission = share * U256::from(bps) / BPS;
        commissions.push(commission);
        rewards.push(share - commission);
        shared += share;
    }
    Ok(Split { developer, protocol: protocol_fee, commissions, rewards, dust: rest - shared })
}
