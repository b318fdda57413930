//! What the batcher reads from the chain: a service's operators with their keys and endpoints, its job prices.

use alloy::providers::DynProvider;
use alloy_primitives::{Address, U256};
use futures_util::future::join_all;
use vouch_contracts::{AddressBook, KeyRegistry, VouchProtocol, VouchStaking};
use vouch_crypto::PublicKey;
use vouch_primitives::ServiceId;

use super::SettlementError;

/// `IVouchProtocol.ServiceStatus.Active`.
pub(super) const SERVICE_ACTIVE: u8 = 2;

/// A service as the batcher needs it.
#[derive(Clone, Debug)]
pub(super) struct ServiceView {
    /// `IVouchProtocol.ServiceStatus` as a number (0 = no such service).
    pub(super) status: u8,
    /// No calls after this unix time.
    pub(super) expiry: u64,
    /// Anyone who pays may call it (otherwise permitted callers only).
    pub(super) public_access: bool,
    /// Operators in slot order (slot i = bitmap bit i).
    pub(super) operators: Vec<Address>,
    /// Their registered BLS keys (`None`: none or unreadable).
    pub(super) keys: Vec<Option<PublicKey>>,
    /// Their announced API endpoints (`None` or empty: none).
    pub(super) endpoints: Vec<Option<String>>,
    /// Job prices by job index.
    pub(super) prices: Vec<U256>,
}

impl ServiceView {
    /// The slot of `operator`, if it is in the service.
    pub(super) fn slot_of(&self, operator: Address) -> Option<usize> {
        self.operators.iter().position(|o| *o == operator)
    }
}

pub(super) fn chain_error(what: impl Into<String>, reason: impl std::fmt::Display) -> SettlementError {
    SettlementError::Chain { what: what.into(), reason: reason.to_string() }
}

/// Reads service `id` (`None` if the chain has no such service).
pub(super) async fn read_service(
    provider: &DynProvider,
    book: &AddressBook,
    id: ServiceId,
) -> Result<Option<ServiceView>, SettlementError> {
    let protocol = VouchProtocol::new(book.contracts.protocol, provider);
    let s = protocol.getService(id.0).call().await.map_err(|e| chain_error(format!("getService({})", id.0), e))?;
    if s.status == 0 {
        return Ok(None);
    }
    let b = protocol
        .getBlueprint(s.blueprintId)
        .call()
        .await
        .map_err(|e| chain_error(format!("getBlueprint({})", s.blueprintId), e))?;
    let registry = KeyRegistry::new(book.contracts.key_registry, provider);
    let staking = VouchStaking::new(book.contracts.staking, provider);
    let keys = join_all(s.operators.iter().map(|op| {
        let registry = &registry;
        async move {
            let raw = registry.keyOf(*op).call().await.map_err(|e| chain_error(format!("keyOf({op})"), e))?;
            Ok::<_, SettlementError>(PublicKey::from_eip2537(&raw).ok())
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let endpoints = join_all(s.operators.iter().map(|op| {
        let staking = &staking;
        async move {
            let info =
                staking.operatorInfo(*op).call().await.map_err(|e| chain_error(format!("operatorInfo({op})"), e))?;
            Ok::<_, SettlementError>(Some(info.endpoint).filter(|e| !e.is_empty()))
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ServiceView {
        status: s.status,
        expiry: s.expiry,
        public_access: s.publicAccess,
        operators: s.operators,
        keys,
        endpoints,
        prices: b.jobs.iter().map(|j| U256::from(j.price)).collect(),
    }))
}
