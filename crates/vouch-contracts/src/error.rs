//! Revert data decoded into typed errors: [`ContractError`] (one variant per contract's `sol!` error enum, plus
//! Solidity's `Error(string)` and `Panic(uint256)`), [`decode_revert`] for alloy errors and [`CallError`] for `?`.
//!
//! The same custom error can be declared by several contracts (`ZeroAddress()`, OpenZeppelin's
//! `SafeERC20FailedOperation(address)`, …), and a revert bubbles up from whichever contract raised it (a token's
//! `ERC20InsufficientAllowance` surfaces from `VouchProtocol.callJob`). Revert data does not say which contract
//! raised it, so decoding tries the contract that was called first (when known, [`ContractError::decode_for`]),
//! then every other contract in a fixed order: protocol, staking, slasher, key registry, VouchUSD, stake token,
//! ProtocolAdmin. [`ContractError::to_interface`] re-reads the same error as any other contract's error enum.

use std::{collections::BTreeMap, fmt::Write as _, sync::OnceLock};

use alloy::{
    dyn_abi::{DynSolValue, JsonAbiExt as _},
    json_abi::{InternalType, JsonAbi, Param},
    primitives::{Bytes, U256, hex},
    providers::PendingTransactionError,
    sol_types::{Panic, Revert, SolError, SolInterface},
    transports::TransportError,
};

use crate::contracts::{
    Contract, key_registry::KeyRegistry, protocol_admin::ProtocolAdmin, stake_token::StakeToken,
    vouch_protocol::VouchProtocol, vouch_slasher::VouchSlasher, vouch_staking::VouchStaking, vouch_usd::VouchUSD,
};

/// A revert of one of the protocol's contracts, decoded.
///
/// `Display` names the error and its fields, e.g. `ServiceNotActive(serviceId 7, status Requested)`; enum fields
/// are printed by variant name, addresses checksummed, amounts in base units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A custom error declared by `VouchProtocol` (including those it shares with `ProtocolAdmin`).
    #[error("{}", describe(self))]
    Protocol(VouchProtocol::VouchProtocolErrors),
    /// A custom error declared by `VouchStaking`.
    #[error("{}", describe(self))]
    Staking(VouchStaking::VouchStakingErrors),
    /// A custom error declared by `VouchSlasher`.
    #[error("{}", describe(self))]
    Slasher(VouchSlasher::VouchSlasherErrors),
    /// A custom error declared by `KeyRegistry`.
    #[error("{}", describe(self))]
    KeyRegistry(KeyRegistry::KeyRegistryErrors),
    /// A custom error declared by `VouchUSD` (OpenZeppelin's ERC-20, EIP-2612, `Ownable` errors and EIP-3009's).
    #[error("{}", describe(self))]
    VouchUsd(VouchUSD::VouchUSDErrors),
    /// A custom error declared by `StakeToken` (OpenZeppelin's ERC-20 and `Ownable` errors).
    #[error("{}", describe(self))]
    StakeToken(StakeToken::StakeTokenErrors),
    /// A custom error declared by the `ProtocolAdmin` library and by no other contract.
    #[error("{}", describe(self))]
    ProtocolAdmin(ProtocolAdmin::ProtocolAdminErrors),
    /// `Error(string)`: a `require` with a message or `revert("…")` (none of the protocol's contracts use one).
    #[error("Error({0:?})")]
    Revert(String),
    /// `Panic(uint256)`: a failed `assert`, arithmetic overflow, division by zero, out-of-bounds index, ….
    #[error("Panic({})", describe_panic(*.0))]
    Panic(U256),
}

/// The order in which contracts' errors are tried when the called contract is unknown or does not declare it.
const DECODE_ORDER: [Contract; 7] = [
    Contract::Protocol,
    Contract::Staking,
    Contract::Slasher,
    Contract::KeyRegistry,
    Contract::VouchUsd,
    Contract::StakeToken,
    Contract::ProtocolAdmin,
];

impl ContractError {
    /// Decodes revert data, trying every contract's errors in the default order (see the module docs).
    pub fn decode(data: &[u8]) -> Option<Self> {
        DECODE_ORDER.into_iter().find_map(|c| Self::decode_as(c, data)).or_else(|| Self::decode_builtin(data))
    }

    /// Decodes revert data of a call to `called`: its own errors first, then every other contract's.
    pub fn decode_for(called: Contract, data: &[u8]) -> Option<Self> {
        Self::decode_as(called, data).or_else(|| Self::decode(data))
    }

    /// Decodes revert data as an error declared by `contract` only.
    pub fn decode_as(contract: Contract, data: &[u8]) -> Option<Self> {
        fn try_decode<E: SolInterface>(data: &[u8], wrap: fn(E) -> ContractError) -> Option<ContractError> {
            E::abi_decode_validate(data).ok().map(wrap)
        }
        match contract {
            Contract::Protocol => try_decode(data, Self::Protocol),
            Contract::Staking => try_decode(data, Self::Staking),
            Contract::Slasher => try_decode(data, Self::Slasher),
            Contract::KeyRegistry => try_decode(data, Self::KeyRegistry),
            Contract::VouchUsd => try_decode(data, Self::VouchUsd),
            Contract::StakeToken => try_decode(data, Self::StakeToken),
            Contract::ProtocolAdmin => try_decode(data, Self::ProtocolAdmin),
        }
    }

    fn decode_builtin(data: &[u8]) -> Option<Self> {
        if let Ok(revert) = Revert::abi_decode_validate(data) {
            return Some(Self::Revert(revert.reason));
        }
        Panic::abi_decode_validate(data).ok().map(|p| Self::Panic(p.code))
    }

    /// The contract whose ABI declares this error (`None` for `Error(string)` and `Panic`). This is where the error
    /// is declared, which is not necessarily the contract that raised it (see the module docs).
    pub const fn contract(&self) -> Option<Contract> {
        match self {
            Self::Protocol(_) => Some(Contract::Protocol),
            Self::Staking(_) => Some(Contract::Staking),
            Self::Slasher(_) => Some(Contract::Slasher),
            Self::KeyRegistry(_) => Some(Contract::KeyRegistry),
            Self::VouchUsd(_) => Some(Contract::VouchUsd),
            Self::StakeToken(_) => Some(Contract::StakeToken),
            Self::ProtocolAdmin(_) => Some(Contract::ProtocolAdmin),
            Self::Revert(_) | Self::Panic(_) => None,
        }
    }

    /// The revert data this error was decoded from (selector + ABI-encoded fields).
    pub fn abi_encode(&self) -> Bytes {
        match self {
            Self::Protocol(e) => e.abi_encode(),
            Self::Staking(e) => e.abi_encode(),
            Self::Slasher(e) => e.abi_encode(),
            Self::KeyRegistry(e) => e.abi_encode(),
            Self::VouchUsd(e) => e.abi_encode(),
            Self::StakeToken(e) => e.abi_encode(),
            Self::ProtocolAdmin(e) => e.abi_encode(),
            Self::Revert(reason) => Revert::from(reason.as_str()).abi_encode(),
            Self::Panic(code) => Panic { code: *code }.abi_encode(),
        }
        .into()
    }

    /// The 4-byte selector.
    pub fn selector(&self) -> [u8; 4] {
        let data = self.abi_encode();
        [data[0], data[1], data[2], data[3]]
    }

    /// The error's Solidity name, e.g. `ServiceNotActive`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Revert(_) => "Error",
            Self::Panic(_) => "Panic",
            _ => self
                .contract()
                .and_then(Contract::abi)
                .and_then(|abi| abi.errors().find(|e| e.selector() == self.selector()))
                .map_or("<unknown>", |e| e.name.as_str()),
        }
    }

    /// Reads the same revert as another error enum, e.g. `err.to_interface::<VouchStakingErrors>()` when
    /// `ZeroAddress()` decoded as [`ContractError::Protocol`] but the caller matches on the staking contract's.
    pub fn to_interface<E: SolInterface>(&self) -> Option<E> {
        E::abi_decode_validate(&self.abi_encode()).ok()
    }
}

/// Errors that may carry a revert's data: alloy's contract, transport and pending-transaction errors.
pub trait RevertData {
    /// The revert data, if this error is a revert reported by the node with its data.
    fn revert_data(&self) -> Option<Bytes>;
}

impl RevertData for alloy::contract::Error {
    fn revert_data(&self) -> Option<Bytes> {
        self.as_revert_data()
    }
}

impl RevertData for TransportError {
    fn revert_data(&self) -> Option<Bytes> {
        self.as_error_resp().and_then(|e| e.as_revert_data())
    }
}

impl RevertData for PendingTransactionError {
    fn revert_data(&self) -> Option<Bytes> {
        match self {
            Self::TransportError(e) => e.revert_data(),
            _ => None,
        }
    }
}

/// Returns the decoded revert when `err` carries revert data of a known error, else `err` unchanged.
pub fn decode_revert<E: RevertData>(err: E) -> Result<ContractError, E> {
    match err.revert_data().and_then(|data| ContractError::decode(&data)) {
        Some(decoded) => Ok(decoded),
        None => Err(err),
    }
}

/// [`decode_revert`] for a call to `called` (its own errors are tried first).
pub fn decode_revert_for<E: RevertData>(called: Contract, err: E) -> Result<ContractError, E> {
    match err.revert_data().and_then(|data| ContractError::decode_for(called, &data)) {
        Some(decoded) => Ok(decoded),
        None => Err(err),
    }
}

/// A failed contract call or transaction: a decoded revert, or alloy's error when it is not one (transport failure,
/// unknown revert data, ABI mismatch, …). `From` alloy's errors, so `?` decodes reverts on the way.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call reverted with a known error.
    #[error("execution reverted: {0}")]
    Reverted(ContractError),
    /// Anything else.
    #[error(transparent)]
    Other(alloy::contract::Error),
}

impl CallError {
    /// Wraps `err`, decoding a revert of a call to `called` (its own errors first).
    pub fn for_contract(called: Contract, err: impl Into<alloy::contract::Error>) -> Self {
        decode_revert_for(called, err.into()).map_or_else(Self::Other, Self::Reverted)
    }

    /// The decoded revert, if this is one.
    pub const fn reverted(&self) -> Option<&ContractError> {
        match self {
            Self::Reverted(e) => Some(e),
            Self::Other(_) => None,
        }
    }
}

impl From<alloy::contract::Error> for CallError {
    fn from(err: alloy::contract::Error) -> Self {
        decode_revert(err).map_or_else(Self::Other, Self::Reverted)
    }
}

impl From<TransportError> for CallError {
    fn from(err: TransportError) -> Self {
        alloy::contract::Error::from(err).into()
    }
}

impl From<PendingTransactionError> for CallError {
    fn from(err: PendingTransactionError) -> Self {
        alloy::contract::Error::from(err).into()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------------------------------------

/// `Name(field value, …)` from the contract's JSON ABI (names, enum types), or the `Debug` form if the ABI lacks it.
fn describe(err: &ContractError) -> String {
    let data = err.abi_encode();
    err.contract()
        .and_then(Contract::abi)
        .and_then(|abi| describe_error(abi, &data))
        .unwrap_or_else(|| format!("{err:?} (revert data {})", hex::encode_prefixed(&data)))
}

fn describe_panic(code: U256) -> String {
    let kind = u32::try_from(code).ok().and_then(alloy::sol_types::PanicKind::from_number);
    match kind {
        Some(kind) => format!("0x{code:02x}: {}", kind.as_str()),
        None => format!("0x{code:x}: unknown panic code"),
    }
}

/// Formats revert `data` with the matching error of `abi`; `None` if no error of `abi` decodes it.
pub(crate) fn describe_error(abi: &JsonAbi, data: &[u8]) -> Option<String> {
    let selector = data.get(..4)?;
    let error = abi.errors().find(|e| e.selector().as_slice() == selector)?;
    let values = error.abi_decode_input(&data[4..]).ok()?;
    let mut out = format!("{}(", error.name);
    write_fields(&mut out, &error.inputs, &values);
    out.push(')');
    Some(out)
}

fn write_fields(out: &mut String, params: &[Param], values: &[DynSolValue]) {
    for (i, (param, value)) in params.iter().zip(values).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if !param.name.is_empty() {
            out.push_str(&param.name);
            out.push(' ');
        }
        write_value(out, param, value);
    }
}

fn write_value(out: &mut String, param: &Param, value: &DynSolValue) {
    match value {
        DynSolValue::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        DynSolValue::Uint(n, _) => match enum_variant(param, *n) {
            Some(variant) => out.push_str(variant),
            None => {
                let _ = write!(out, "{n}");
            }
        },
        DynSolValue::Int(n, _) => {
            let _ = write!(out, "{n}");
        }
        DynSolValue::Address(a) => {
            let _ = write!(out, "{a}");
        }
        DynSolValue::FixedBytes(word, size) => out.push_str(&hex::encode_prefixed(&word[..*size])),
        DynSolValue::Function(f) => out.push_str(&hex::encode_prefixed(f)),
        DynSolValue::Bytes(b) => out.push_str(&hex::encode_prefixed(b)),
        DynSolValue::String(s) => {
            let _ = write!(out, "{s:?}");
        }
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, param, item);
            }
            out.push(']');
        }
        DynSolValue::Tuple(fields) => {
            out.push('(');
            write_fields(out, &param.components, fields);
            out.push(')');
        }
        #[allow(unreachable_patterns)] // `CustomStruct`, when another crate enables alloy's eip712 feature
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

/// The variant name for `n` if `param` is a Solidity enum (or an array of one) listed in `artifacts/enums.json`.
fn enum_variant(param: &Param, n: U256) -> Option<&'static str> {
    let Some(InternalType::Enum { contract, ty }) = &param.internal_type else { return None };
    let ty = ty.split('[').next().unwrap_or(ty);
    let key = match contract {
        Some(contract) => format!("{contract}.{ty}"),
        None => ty.to_owned(),
    };
    let index = usize::try_from(n).ok()?;
    enums().get(&key)?.get(index).map(String::as_str)
}

/// `artifacts/enums.json`: qualified enum name → variant names, in declaration order.
pub(crate) fn enums() -> &'static BTreeMap<String, Vec<String>> {
    static ENUMS: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    ENUMS.get_or_init(|| serde_json::from_str(include_str!("../artifacts/enums.json")).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use alloy::{
        dyn_abi::{DynSolType, Specifier as _},
        primitives::{Address, B256, I256, address},
    };

    use super::*;
    use crate::{
        VouchProtocol::VouchProtocolErrors, VouchSlasher::VouchSlasherErrors, VouchStaking::VouchStakingErrors,
        VouchUSD::VouchUSDErrors,
    };

    fn sample(ty: &DynSolType) -> DynSolValue {
        match ty {
            DynSolType::Bool => DynSolValue::Bool(true),
            DynSolType::Int(n) => DynSolValue::Int(I256::MINUS_ONE, *n),
            DynSolType::Uint(n) => DynSolValue::Uint(U256::from(1), *n),
            DynSolType::FixedBytes(n) => DynSolValue::FixedBytes(B256::repeat_byte(0xab), *n),
            DynSolType::Address => DynSolValue::Address(Address::repeat_byte(0x11)),
            DynSolType::Function => DynSolValue::Function(Default::default()),
            DynSolType::Bytes => DynSolValue::Bytes(vec![1, 2]),
            DynSolType::String => DynSolValue::String("s".into()),
            DynSolType::Array(t) => DynSolValue::Array(vec![sample(t)]),
            DynSolType::FixedArray(t, n) => DynSolValue::FixedArray(vec![sample(t); *n]),
            DynSolType::Tuple(ts) => DynSolValue::Tuple(ts.iter().map(sample).collect()),
            #[allow(unreachable_patterns)] // `CustomStruct`, with alloy's eip712 feature
            other => panic!("unexpected type {other:?}"),
        }
    }

    #[test]
    fn every_error_of_every_contract_decodes_and_prints_readably() {
        let mut count = 0;
        for contract in Contract::ALL {
            let abi = contract.abi().expect("committed ABI parses");
            for error in abi.errors() {
                let values: Vec<_> =
                    error.inputs.iter().map(|p| sample(&p.resolve().expect("type resolves"))).collect();
                let data = error.abi_encode_input(&values).expect("encodes");
                let decoded = ContractError::decode_for(contract, &data).expect("decodes");
                assert_eq!(decoded.contract(), Some(contract), "{} of {contract}", error.name);
                assert_eq!(decoded.name(), error.name);
                assert_eq!(decoded.abi_encode(), data);
                let shown = decoded.to_string();
                assert!(shown.starts_with(&format!("{}(", error.name)), "{shown}");
                assert!(!shown.contains("revert data"), "{shown}");
                // Decoding without a hint finds the same error (possibly declared by another contract).
                assert_eq!(ContractError::decode(&data).expect("decodes").name(), error.name);
                count += 1;
            }
        }
        assert!(count > 100, "only {count} errors");
    }

    #[test]
    fn enum_fields_print_their_variant() {
        let err = ContractError::Protocol(VouchProtocolErrors::ServiceNotActive(VouchProtocol::ServiceNotActive {
            serviceId: 7,
            status: 1,
        }));
        assert_eq!(err.to_string(), "ServiceNotActive(serviceId 7, status Requested)");
        let err = ContractError::Protocol(VouchProtocolErrors::CallNotOpen(VouchProtocol::CallNotOpen {
            callId: U256::from(3),
            status: 9,
        }));
        assert_eq!(err.to_string(), "CallNotOpen(callId 3, status 9)", "out-of-range values print as numbers");
    }

    #[test]
    fn token_errors_bubbling_through_the_protocol_decode() {
        let sender = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let data =
            VouchUSD::ERC20InsufficientBalance { sender, balance: U256::from(5), needed: U256::from(10) }.abi_encode();
        let err = ContractError::decode_for(Contract::Protocol, &data).expect("decodes");
        assert!(matches!(err, ContractError::VouchUsd(VouchUSDErrors::ERC20InsufficientBalance(_))));
        assert_eq!(
            err.to_string(),
            "ERC20InsufficientBalance(sender 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, balance 5, needed 10)"
        );
    }

    #[test]
    fn shared_errors_prefer_the_called_contract() {
        let data = VouchStaking::ZeroAddress {}.abi_encode();
        assert!(matches!(ContractError::decode(&data), Some(ContractError::Protocol(_))));
        let err = ContractError::decode_for(Contract::Staking, &data).expect("decodes");
        assert!(matches!(err, ContractError::Staking(VouchStakingErrors::ZeroAddress(_))));
        let as_protocol: VouchProtocolErrors = err.to_interface().expect("the protocol declares it too");
        assert!(matches!(as_protocol, VouchProtocolErrors::ZeroAddress(_)));
        assert_eq!(err.to_string(), "ZeroAddress()");
    }

    /// The errors only `proposeCommitmentDeviation` raises decode as the slasher's, with or without the hint, and print
    /// their fields (the gateway's reporter marks evidence `failed` with this text).
    #[test]
    fn commitment_deviation_errors_decode() {
        let data = VouchSlasher::OutputMismatch {
            callId: U256::from(11),
            outputHash: B256::repeat_byte(0xaa),
            actual: B256::repeat_byte(0xbb),
        }
        .abi_encode();
        let err = ContractError::decode(&data).expect("decodes");
        assert!(matches!(err, ContractError::Slasher(VouchSlasherErrors::OutputMismatch(_))), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("OutputMismatch(callId 11, outputHash 0x{}, actual 0x{})", "aa".repeat(32), "bb".repeat(32))
        );

        let data = VouchSlasher::CommitmentNotDisputable {
            callId: U256::from(20),
            blueprintId: 2,
            arbiter: Address::ZERO,
            disputeWindow: 86_400,
        }
        .abi_encode();
        let err = ContractError::decode_for(Contract::Slasher, &data).expect("decodes");
        match &err {
            ContractError::Slasher(VouchSlasherErrors::CommitmentNotDisputable(e)) => {
                assert_eq!(
                    (e.callId, e.blueprintId, e.arbiter, e.disputeWindow),
                    (U256::from(20), 2, Address::ZERO, 86_400)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "CommitmentNotDisputable(callId 20, blueprintId 2, arbiter 0x0000000000000000000000000000000000000000, \
             disputeWindow 86400)"
        );

        // One deviation per (operator, call), whichever entry point: the shared `AlreadyReported(…, Deviation)`.
        let data =
            VouchSlasher::AlreadyReported { operator: Address::repeat_byte(0x11), callId: U256::from(11), fault: 1 }
                .abi_encode();
        let err = ContractError::decode_for(Contract::Slasher, &data).expect("decodes");
        assert!(err.to_string().ends_with("callId 11, fault Deviation)"), "{err}");
    }

    #[test]
    fn builtin_reverts_and_unknown_data() {
        let data = Revert::from("nope").abi_encode();
        let err = ContractError::decode(&data).expect("decodes");
        assert_eq!(err, ContractError::Revert("nope".into()));
        assert_eq!(err.to_string(), "Error(\"nope\")");
        let data = Panic { code: U256::from(0x11) }.abi_encode();
        assert_eq!(
            ContractError::decode(&data).expect("decodes").to_string(),
            "Panic(0x11: arithmetic underflow or overflow)"
        );
        assert_eq!(ContractError::decode(&[0xde, 0xad, 0xbe, 0xef]), None);
        assert_eq!(ContractError::decode(&[]), None);
        // A known selector with truncated fields is not decoded.
        let data = VouchProtocol::ServiceNotActive { serviceId: 7, status: 1 }.abi_encode();
        assert_eq!(ContractError::decode(&data[..40]), None);
    }

    #[test]
    fn enums_are_exported() {
        assert_eq!(enums()["IVouchProtocol.ServiceStatus"], ["None", "Requested", "Active", "Terminated"]);
    }
}
