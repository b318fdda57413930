//! Decoded reverts in words a newcomer can act on: amounts in human units, the command that fixes the problem, and the
//! contract's own error (`vouch_contracts::ContractError`) in parentheses. A decodable revert is never shown as hex.

use alloy_primitives::U256;
use vouch_contracts::{
    ContractError, VouchProtocol::VouchProtocolErrors as P, VouchSlasher::VouchSlasherErrors as Sl,
    VouchStaking::VouchStakingErrors as S, VouchUSD::VouchUSDErrors as U,
};

use crate::{amount::Token, duration::format_timestamp, rate::format_bps, rate::format_share};

/// The tokens a revert's amounts may be in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens<'a> {
    /// The payment token (fees, prices, rewards).
    pub(crate) payment: &'a Token,
    /// The stake token (stake, slashes).
    pub(crate) stake: &'a Token,
    /// The token the failing action moved, when one did (ERC-20 errors do not say which token raised them).
    pub(crate) moved: Option<&'a Token>,
}

/// One sentence for a decoded revert.
pub(crate) fn describe(err: &ContractError, tokens: Tokens<'_>) -> String {
    let raw = err.to_string();
    let amount = |token: &Token, units: U256| token.format(units);
    let erc20 = |units: U256| match tokens.moved {
        Some(token) => token.format(units),
        None => format!("{units} base units"),
    };
    let symbol = tokens.moved.map_or("token", |t| t.symbol.as_str());
    let friendly = match err {
        ContractError::VouchUsd(U::ERC20InsufficientBalance(e)) => Some(format!(
            "insufficient {symbol} balance: {} holds {}, needs {}",
            e.sender,
            erc20(e.balance),
            erc20(e.needed)
        )),
        ContractError::VouchUsd(U::ERC20InsufficientAllowance(e)) => Some(format!(
            "allowance too low: {} may spend {} of this account's {symbol}, needs {}",
            e.spender,
            erc20(e.allowance),
            erc20(e.needed)
        )),
        ContractError::Staking(S::OperatorNotRegistered(e)) => {
            Some(format!("operator {} is not registered: run `vouch operator register`", e.operator))
        }
        ContractError::Staking(S::OperatorKeyNotRegistered(e)) => {
            Some(format!("{} has no BLS key in the KeyRegistry: `vouch operator register` registers it", e.operator))
        }
        ContractError::Staking(S::OperatorAlreadyRegistered(e)) => {
            Some(format!("{} is already a registered operator (see `vouch operator status`)", e.operator))
        }
        ContractError::Staking(S::SelfStakeBelowMinimum(e)) => Some(format!(
            "the operator's self-stake would be {}, below the minimum of {}",
            amount(tokens.stake, e.selfStake),
            amount(tokens.stake, e.minimum)
        )),
        ContractError::Staking(S::InsufficientShares(e)) => {
            Some(format!("only {} active shares are available, {} requested", e.available, e.requested))
        }
        ContractError::Staking(S::WithdrawalNotReady(e)) => {
            Some(format!("the withdrawal is not ready before {}", format_timestamp(e.readyAt)))
        }
        ContractError::Staking(S::CommissionNotReady(e)) => {
            Some(format!("the commission change cannot be applied before {}", format_timestamp(e.readyAt)))
        }
        ContractError::Staking(S::NothingToClaim(_)) | ContractError::Protocol(P::NothingToClaim(_)) => {
            Some("nothing to claim".to_owned())
        }
        ContractError::Protocol(P::WrongPaymentValue(e)) => Some(format!(
            "the payment of {} differs from the job's price of {}",
            amount(tokens.payment, e.value),
            amount(tokens.payment, e.price)
        )),
        ContractError::Protocol(P::UnknownService(e)) => Some(format!("unknown service {}", e.serviceId)),
        ContractError::Protocol(P::UnknownBlueprint(e)) => Some(format!("unknown blueprint {}", e.blueprintId)),
        ContractError::Protocol(P::NotOperator(e)) => {
            Some(format!("{} is not a registered operator: it must run `vouch operator register` first", e.operator))
        }
        ContractError::Protocol(P::QuorumNotReached(e)) => Some(format!(
            "quorum: signers hold {} of stake, the blueprint needs {}",
            format_share(e.signerStake, e.totalStake).unwrap_or_else(|| "0%".into()),
            format_bps(u64::from(e.quorumBps))
        )),
        ContractError::Protocol(P::TooFewSigners(e)) => {
            Some(format!("{} signers, the blueprint needs at least {}", e.count, e.minSigners))
        }
        ContractError::Protocol(P::DeadlinePassed(e)) => Some(format!(
            "call {} passed its deadline ({}): it can only be refunded now (`vouch call refund {}`)",
            e.callId,
            format_timestamp(e.deadline),
            e.callId
        )),
        ContractError::Protocol(P::DeadlineNotPassed(e)) => {
            Some(format!("call {} can be refunded only after its deadline, {}", e.callId, format_timestamp(e.deadline)))
        }
        ContractError::Protocol(P::CallerNotPermitted(e)) => Some(format!(
            "{} may not call service {}: it is private and this account is not a permitted caller",
            e.caller, e.serviceId
        )),
        ContractError::Slasher(Sl::AlreadyReported(e)) => {
            Some(format!("this fault of {} on call {} was already reported", e.operator, e.callId))
        }
        _ => None,
    };
    match friendly {
        Some(text) => format!("{text} ({raw})"),
        None => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, address};
    use vouch_contracts::{VouchProtocol, VouchUSD};

    fn token(symbol: &str, decimals: u8) -> Token {
        Token { address: Address::ZERO, symbol: symbol.into(), decimals }
    }

    #[test]
    fn balances_are_printed_in_the_moved_token() {
        let vusd = token("vUSD", 6);
        let vst = token("VST", 18);
        let sender = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let err = ContractError::VouchUsd(U::ERC20InsufficientBalance(VouchUSD::ERC20InsufficientBalance {
            sender,
            balance: U256::from(5_000_000u64),
            needed: U256::from(10_500_000u64),
        }));
        let text = describe(&err, Tokens { payment: &vusd, stake: &vst, moved: Some(&vusd) });
        assert_eq!(
            text,
            "insufficient vUSD balance: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 holds 5 vUSD, needs 10.5 vUSD \
             (ERC20InsufficientBalance(sender 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, balance 5000000, needed 10500000))"
        );
        let quorum = ContractError::Protocol(P::QuorumNotReached(VouchProtocol::QuorumNotReached {
            signerStake: U256::from(1),
            totalStake: U256::from(3),
            quorumBps: 6667,
        }));
        assert!(
            describe(&quorum, Tokens { payment: &vusd, stake: &vst, moved: None })
                .starts_with("quorum: signers hold 33.33% of stake, the blueprint needs 66.67%")
        );
    }
}
