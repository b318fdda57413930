//! Reverts of the real contracts come back as typed errors with their fields.

use vouch_contracts::{
    CallError, Contract, ContractError, DeployConfig, VouchProtocol,
    VouchProtocol::VouchProtocolErrors,
    VouchStaking,
    VouchStaking::VouchStakingErrors,
    VouchUSD,
    VouchUSD::VouchUSDErrors,
    alloy::{
        primitives::{Address, Bytes, U256},
        providers::WalletProvider,
    },
    decode_revert, deploy,
};

use crate::anvil::Anvil;

#[tokio::test]
async fn reverts_decode_into_typed_errors() {
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let book = deploy(&provider, &DeployConfig::default()).await.expect("deploys");
    let c = &book.contracts;
    let protocol = VouchProtocol::new(c.protocol, &provider);

    // Raised inside the linked ProtocolAdmin library, declared by VouchProtocol.
    let err = protocol.approveService(999).send().await.expect_err("unknown service");
    let err = decode_revert(err).expect("decodes");
    match &err {
        ContractError::Protocol(VouchProtocolErrors::ServiceNotRequested(e)) => {
            assert_eq!((e.serviceId, e.status), (999, 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.to_string(), "ServiceNotRequested(serviceId 999, status None)");

    // Through `?`-style conversion, as a call (eth_call) rather than a transaction.
    let err: CallError =
        protocol.callJob(999, 0, Bytes::from_static(b"hi")).call().await.expect_err("no such service").into();
    match err.reverted() {
        Some(ContractError::Protocol(VouchProtocolErrors::ServiceNotActive(e))) => {
            assert_eq!((e.serviceId, e.status), (999, 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.to_string(), "execution reverted: ServiceNotActive(serviceId 999, status None)");

    // A shared error, read as the called contract's.
    let staking = VouchStaking::new(c.staking, &provider);
    let err = staking.initialize(c.protocol, c.slasher).send().await.expect_err("initialized already");
    let err = CallError::for_contract(Contract::Staking, err);
    assert!(
        matches!(err.reverted(), Some(ContractError::Staking(VouchStakingErrors::AlreadyInitialized(_)))),
        "{err:?}"
    );

    // An OpenZeppelin error of the token, with its fields.
    let broke = anvil.provider(1);
    let usd = VouchUSD::new(c.vouch_usd, &broke);
    let err = usd.transfer(Address::repeat_byte(1), U256::from(10)).send().await.expect_err("no balance");
    let err = decode_revert(err).expect("decodes");
    match &err {
        ContractError::VouchUsd(VouchUSDErrors::ERC20InsufficientBalance(e)) => {
            assert_eq!(e.sender, broke.default_signer_address());
            assert_eq!((e.balance, e.needed), (U256::ZERO, U256::from(10)));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("ERC20InsufficientBalance(sender {}, balance 0, needed 10)", broke.default_signer_address())
    );

    // Not a revert: the original error comes back.
    let down = VouchProtocol::new(c.protocol, anvil.provider(0));
    drop(anvil);
    let err = down.paymentToken().call().await.expect_err("node is gone");
    assert!(decode_revert(err).is_err());
}
