//! x402 / EIP-3009 payment checks against the real `VouchUSD` on anvil: what passes the Rust checks is what the
//! token accepts, and each bad payment gets its own error and x402 code.

use std::time::Duration;

use vouch_contracts::{
    AuthorizationExt as _, Contract, ContractError, DeployConfig, PaymentError, PaymentExpectation, SignatureFault,
    TRANSFER_WITH_AUTHORIZATION_TYPE, TokenDomain, TransferAuthorization, VouchUSD,
    VouchUSD::VouchUSDErrors,
    X402_MIN_VALIDITY,
    alloy::{
        primitives::{Address, B256, Bytes, U256, keccak256},
        providers::{Provider, WalletProvider},
        signers::local::PrivateKeySigner,
    },
    chain_now, check_payment, check_payment_offline, decode_revert_for, deploy,
};

use crate::anvil::Anvil;

const PRICE: u64 = 10_000;

/// A deterministic test key (never use it elsewhere).
fn key(label: &str) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(label.as_bytes())).expect("valid key")
}

fn nonce(label: &str) -> B256 {
    keccak256(format!("nonce {label}").as_bytes())
}

/// anvil, the deployed protocol, the token's domain and a payer holding `funds`.
struct Env<P> {
    _anvil: Anvil,
    provider: P,
    domain: TokenDomain,
    protocol: Address,
    payer: PrivateKeySigner,
}

async fn env(funds: u64) -> Env<impl Provider + WalletProvider + Clone> {
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let book = deploy(&provider, &DeployConfig::default()).await.expect("deploys");
    let domain = TokenDomain::read(&provider, book.contracts.vouch_usd).await.expect("reads the domain");
    let payer = key("eip3009 payer");
    let usd = VouchUSD::new(domain.token, &provider);
    let receipt =
        usd.mint(payer.address(), U256::from(funds)).send().await.expect("sends").get_receipt().await.expect("mined");
    assert!(receipt.status());
    Env { _anvil: anvil, provider, domain, protocol: book.contracts.protocol, payer }
}

impl<P: Provider> Env<P> {
    fn expectation(&self) -> PaymentExpectation {
        PaymentExpectation { pay_to: self.protocol, amount: U256::from(PRICE), min_validity: X402_MIN_VALIDITY }
    }

    /// An authorization as the v2 client signs it: validAfter 0, validBefore now + 60 s.
    fn authorization(&self, now: u64, label: &str) -> TransferAuthorization {
        TransferAuthorization {
            from: self.payer.address(),
            to: self.protocol,
            value: U256::from(PRICE),
            valid_after: U256::ZERO,
            valid_before: U256::from(now + 60),
            nonce: nonce(label),
        }
    }

    /// Submits the authorization to the token (`transferWithAuthorization(…, bytes signature)`), as a transaction.
    async fn settle(&self, auth: &TransferAuthorization, signature: &Bytes) -> Result<(), ContractError> {
        let usd = VouchUSD::new(self.domain.token, &self.provider);
        let call = usd.transferWithAuthorization_0(
            auth.from,
            auth.to,
            auth.value,
            auth.valid_after,
            auth.valid_before,
            auth.nonce,
            signature.clone(),
        );
        let pending = call.send().await.map_err(|e| decode_revert_for(Contract::VouchUsd, e).expect("a revert"))?;
        assert!(pending.get_receipt().await.expect("mined").status());
        Ok(())
    }

    /// Simulates the submission (eth_call) and returns the token's revert, if any.
    async fn simulate(&self, auth: &TransferAuthorization, signature: &Bytes) -> Result<(), ContractError> {
        let usd = VouchUSD::new(self.domain.token, &self.provider);
        usd.transferWithAuthorization_0(
            auth.from,
            auth.to,
            auth.value,
            auth.valid_after,
            auth.valid_before,
            auth.nonce,
            signature.clone(),
        )
        .call()
        .await
        .map(|_| ())
        .map_err(|e| decode_revert_for(Contract::VouchUsd, e).expect("a revert"))
    }

    async fn check(&self, auth: &TransferAuthorization, signature: &[u8], now: u64) -> Result<(), PaymentError> {
        check_payment(&self.provider, &self.domain, auth, signature, &self.expectation(), now).await
    }
}

#[tokio::test]
async fn a_checked_authorization_is_accepted_by_the_token() {
    let env = env(1_000_000).await;
    let d = &env.domain;
    assert_eq!((d.name.as_str(), d.version.as_str(), d.chain_id), ("Vouch USD", "1", 31337));
    d.check_domain("Vouch USD", "1").expect("same domain");
    let usd = VouchUSD::new(d.token, &env.provider);
    assert_eq!(usd.DOMAIN_SEPARATOR().call().await.expect("call"), d.separator());
    assert_eq!(
        usd.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call().await.expect("call"),
        keccak256(TRANSFER_WITH_AUTHORIZATION_TYPE)
    );

    let now = chain_now(&env.provider).await.expect("now");
    let auth = env.authorization(now, "paid");
    let signature = auth.sign(&env.payer, d).expect("signs");
    assert_eq!(signature.len(), 65);
    assert!(matches!(signature[64], 27 | 28));
    assert_eq!(auth.recover(d, &signature).expect("recovers"), env.payer.address());
    assert!(auth.is_valid_at(now + 1));
    check_payment_offline(d, &auth, &signature, &env.expectation(), now).expect("offline check passes");
    env.check(&auth, &signature, now).await.expect("full check passes");

    // The token computes the same EIP-712 hash: it accepts the very authorization and signature.
    let before = usd.balanceOf(env.protocol).call().await.expect("call");
    env.settle(&auth, &signature).await.expect("the token accepts it");
    assert_eq!(usd.balanceOf(env.protocol).call().await.expect("call"), before + U256::from(PRICE));
    assert!(usd.authorizationState(auth.from, auth.nonce).call().await.expect("call"));

    // Once used on-chain, the nonce is refused (offline checks cannot see it).
    let now = chain_now(&env.provider).await.expect("now");
    check_payment_offline(d, &auth, &signature, &env.expectation(), now).expect("offline cannot know");
    let err = env.check(&auth, &signature, now).await.expect_err("used");
    assert_eq!(err, PaymentError::NonceAlreadyUsed { from: auth.from, nonce: auth.nonce });
    assert_eq!(err.code(), "invalid_exact_evm_nonce_already_used");
    assert!(err.is_payment_fault());
    let replay = env.settle(&auth, &signature).await;
    assert!(matches!(replay, Err(ContractError::VouchUsd(VouchUSDErrors::AuthorizationAlreadyUsed(_)))), "{replay:?}");

    // An authorization parsed from the x402 JSON is the same message.
    let json = serde_json::to_string(&auth).expect("serializes");
    let parsed: TransferAuthorization = serde_json::from_str(&json).expect("parses");
    assert_eq!(parsed.signing_hash(d), auth.signing_hash(d));
}

#[tokio::test]
async fn each_bad_payment_is_refused_with_its_code() {
    let env = env(1_000_000).await;
    let d = &env.domain;
    let expect = env.expectation();
    let now = chain_now(&env.provider).await.expect("now");
    let payer = env.payer.address();

    // Wrong amount (correctly signed).
    let auth = TransferAuthorization { value: U256::from(PRICE - 1), ..env.authorization(now, "amount") };
    let sig = auth.sign(&env.payer, d).expect("signs");
    let err = env.check(&auth, &sig, now).await.expect_err("wrong amount");
    assert_eq!(err, PaymentError::ValueMismatch { expected: U256::from(PRICE), got: U256::from(PRICE - 1) });
    assert_eq!(err.code(), "invalid_exact_evm_payload_authorization_value_mismatch");
    assert_eq!(check_payment_offline(d, &auth, &sig, &expect, now), Err(err));

    // Wrong payee.
    let other = Address::repeat_byte(0x77);
    let auth = TransferAuthorization { to: other, ..env.authorization(now, "payee") };
    let sig = auth.sign(&env.payer, d).expect("signs");
    let err = env.check(&auth, &sig, now).await.expect_err("wrong payee");
    assert_eq!(err, PaymentError::RecipientMismatch { expected: env.protocol, got: other });
    assert_eq!(err.code(), "invalid_exact_evm_recipient_mismatch");

    // Expiring within the minimum validity, and expired.
    for valid_before in [now + 5, now, now - 1] {
        let auth = TransferAuthorization { valid_before: U256::from(valid_before), ..env.authorization(now, "soon") };
        let sig = auth.sign(&env.payer, d).expect("signs");
        let err = env.check(&auth, &sig, now).await.expect_err("expires too soon");
        assert_eq!(err, PaymentError::ValidBefore { valid_before: U256::from(valid_before), now, min: now + 6 });
        assert_eq!(err.code(), "invalid_exact_evm_payload_authorization_valid_before");
    }
    let exactly = TransferAuthorization { valid_before: U256::from(now + 6), ..env.authorization(now, "6s") };
    let sig = exactly.sign(&env.payer, d).expect("signs");
    env.check(&exactly, &sig, now).await.expect("now + 6 s is enough");
    let relaxed = PaymentExpectation { min_validity: Duration::ZERO, ..expect };
    let auth = TransferAuthorization { valid_before: U256::from(now + 1), ..env.authorization(now, "relaxed") };
    let sig = auth.sign(&env.payer, d).expect("signs");
    check_payment_offline(d, &auth, &sig, &relaxed, now).expect("no minimum validity");

    // Not valid yet.
    let auth = TransferAuthorization { valid_after: U256::from(now + 100), ..env.authorization(now, "later") };
    let sig = auth.sign(&env.payer, d).expect("signs");
    let err = env.check(&auth, &sig, now).await.expect_err("not valid yet");
    assert_eq!(err, PaymentError::ValidAfter { valid_after: U256::from(now + 100), now });
    assert_eq!(err.code(), "invalid_exact_evm_payload_authorization_valid_after");
    assert!(matches!(
        env.simulate(&auth, &sig).await,
        Err(ContractError::VouchUsd(VouchUSDErrors::AuthorizationNotYetValid(_)))
    ));

    // Signed for another token name or version: recovers someone else; the token refuses it too.
    for (name, version) in [("USD Coin", "1"), ("Vouch USD", "2")] {
        let wrong = TokenDomain { name: name.into(), version: version.into(), ..d.clone() };
        let auth = env.authorization(now, "domain");
        let sig = auth.sign(&env.payer, &wrong).expect("signs");
        assert_eq!(auth.recover(&wrong, &sig).expect("recovers"), payer);
        let err = env.check(&auth, &sig, now).await.expect_err("wrong domain");
        assert!(
            matches!(err, PaymentError::InvalidSignature { from, fault: SignatureFault::OtherSigner(x) } if from == payer && x != payer),
            "{err}"
        );
        assert_eq!(err.code(), "invalid_exact_evm_signature");
        assert!(matches!(
            env.simulate(&auth, &sig).await,
            Err(ContractError::VouchUsd(VouchUSDErrors::InvalidAuthorizationSignature(_)))
        ));
    }
    // The mismatch is named when the payload says which domain it signed for.
    let err = d.check_domain("USD Coin", "1").expect_err("name");
    assert_eq!(err, PaymentError::TokenNameMismatch { expected: "Vouch USD".into(), got: "USD Coin".into() });
    assert_eq!(err.code(), "invalid_exact_evm_token_name_mismatch");
    let err = d.check_domain("Vouch USD", "2").expect_err("version");
    assert_eq!(err, PaymentError::TokenVersionMismatch { expected: "1".into(), got: "2".into() });
    assert_eq!(err.code(), "invalid_exact_evm_token_version_mismatch");
    // Another chain id or token address is another domain as well.
    let elsewhere = TokenDomain { chain_id: 1, ..d.clone() };
    let auth = env.authorization(now, "chain");
    let sig = auth.sign(&env.payer, &elsewhere).expect("signs");
    assert!(matches!(check_payment_offline(d, &auth, &sig, &expect, now), Err(PaymentError::InvalidSignature { .. })));

    // Signed by someone else than `from`.
    let mallory = key("eip3009 mallory");
    let auth = env.authorization(now, "mallory");
    let sig = auth.sign(&mallory, d).expect("signs");
    let err = env.check(&auth, &sig, now).await.expect_err("not the payer");
    assert_eq!(
        err,
        PaymentError::InvalidSignature { from: payer, fault: SignatureFault::OtherSigner(mallory.address()) }
    );

    // Malformed signatures, refused as the token refuses them.
    let auth = env.authorization(now, "malformed");
    let good = auth.sign(&env.payer, d).expect("signs");
    let fault = |sig: &[u8]| match check_payment_offline(d, &auth, sig, &expect, now) {
        Err(PaymentError::InvalidSignature { fault, .. }) => fault,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(fault(&good[..64]), SignatureFault::Length(64));
    assert_eq!(fault(&[]), SignatureFault::Length(0));
    let mut v01 = good.to_vec();
    v01[64] -= 27;
    assert_eq!(fault(&v01), SignatureFault::V(v01[64]));
    // The malleable twin (n - s, flipped v) recovers the same key but the token refuses it.
    let n: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141".parse().expect("n");
    let mut high = good.to_vec();
    let s = U256::from_be_slice(&good[32..64]);
    high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high[64] = if good[64] == 27 { 28 } else { 27 };
    assert_eq!(fault(&high), SignatureFault::HighS);
    let high = Bytes::from(high);
    assert!(matches!(
        env.simulate(&auth, &high).await,
        Err(ContractError::VouchUsd(VouchUSDErrors::InvalidAuthorizationSignature(_)))
    ));
    assert!(matches!(
        env.check(&auth, &high, now).await,
        Err(PaymentError::InvalidSignature { fault: SignatureFault::HighS, .. })
    ));
    env.simulate(&auth, &good).await.expect("the original is fine");

    // A payer without the funds.
    let broke = key("eip3009 broke");
    let auth = TransferAuthorization { from: broke.address(), ..env.authorization(now, "broke") };
    let sig = auth.sign(&broke, d).expect("signs");
    check_payment_offline(d, &auth, &sig, &expect, now).expect("offline cannot know");
    let err = env.check(&auth, &sig, now).await.expect_err("no funds");
    assert_eq!(
        err,
        PaymentError::InsufficientBalance { from: broke.address(), balance: U256::ZERO, needed: U256::from(PRICE) }
    );
    assert_eq!(err.code(), "invalid_exact_evm_insufficient_balance");
    assert!(matches!(
        env.simulate(&auth, &sig).await,
        Err(ContractError::VouchUsd(VouchUSDErrors::ERC20InsufficientBalance(_)))
    ));

    // Not a token, and a failed read: not the payer's fault.
    let err = TokenDomain::read(&env.provider, Address::repeat_byte(0x55)).await.expect_err("no code");
    assert!(matches!(err, PaymentError::Rpc(_)), "{err}");
    assert_eq!(err.code(), "unexpected_verify_error");
    assert!(!err.is_payment_fault());
}

#[tokio::test]
async fn smart_wallet_payers_are_checked_with_erc1271() {
    let env = env(0).await;
    let d = &env.domain;
    let now = chain_now(&env.provider).await.expect("now");

    // A wallet whose isValidSignature returns the magic value for anything, and one that returns nothing.
    // Runtime: PUSH4 0x1626ba7e, PUSH1 224, SHL, PUSH1 0, MSTORE, PUSH1 32, PUSH1 0, RETURN.
    let yes = Address::repeat_byte(0xa1);
    let no = Address::repeat_byte(0xa2);
    let set_code = |who: Address, code: &'static str| {
        let provider = env.provider.clone();
        async move {
            let code: Bytes = code.parse().expect("hex");
            provider.raw_request::<_, ()>("anvil_setCode".into(), (who, code)).await.expect("sets code");
        }
    };
    set_code(yes, "0x631626ba7e60e01b60005260206000f3").await;
    set_code(no, "0x00").await;
    let usd = VouchUSD::new(d.token, &env.provider);
    for wallet in [yes, no] {
        let receipt =
            usd.mint(wallet, U256::from(PRICE)).send().await.expect("sends").get_receipt().await.expect("mined");
        assert!(receipt.status());
    }

    let signature = Bytes::from_static(b"wallet-specific");
    let auth = TransferAuthorization { from: yes, ..env.authorization(now, "1271") };
    let err = check_payment_offline(d, &auth, &signature, &env.expectation(), now).expect_err("needs the chain");
    assert!(matches!(err, PaymentError::InvalidSignature { fault: SignatureFault::Length(15), .. }), "{err}");
    env.check(&auth, &signature, now).await.expect("the wallet accepts it");
    env.settle(&auth, &signature).await.expect("and so does the token");

    let auth = TransferAuthorization { from: no, ..env.authorization(now, "1271 no") };
    let err = env.check(&auth, &signature, now).await.expect_err("the wallet refuses");
    assert_eq!(err, PaymentError::InvalidSignature { from: no, fault: SignatureFault::Length(15) });
    assert!(matches!(
        env.simulate(&auth, &signature).await,
        Err(ContractError::VouchUsd(VouchUSDErrors::InvalidAuthorizationSignature(_)))
    ));
}

/// As the official x402 v2 client sends `payload.authorization`.
const CLIENT_JSON: &str = r#"{"from":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","to":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","value":"10000","validAfter":"0","validBefore":"1740000000","nonce":"0x3d7a1c4bb1a5e3b8e3f7f0c1e22f9c1d5ad8f6b1e0c2a4d6f8e9b7c5a3d1e0f2"}"#;

#[test]
fn authorization_json_is_the_x402_clients() {
    let auth: TransferAuthorization = serde_json::from_str(CLIENT_JSON).expect("parses");
    assert_eq!(auth.from, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse::<Address>().expect("address"));
    assert_eq!(auth.to, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>().expect("address"));
    assert_eq!(auth.value, U256::from(10_000));
    assert_eq!(auth.valid_after, U256::ZERO);
    assert_eq!(auth.valid_before, U256::from(1_740_000_000));
    assert_eq!(
        auth.nonce,
        "0x3d7a1c4bb1a5e3b8e3f7f0c1e22f9c1d5ad8f6b1e0c2a4d6f8e9b7c5a3d1e0f2".parse::<B256>().expect("b256")
    );
    // Serialized back exactly: decimal strings, checksummed addresses, lowercase nonce.
    assert_eq!(serde_json::to_string(&auth).expect("serializes"), CLIENT_JSON);

    // Lowercase addresses and the largest uint256 are fine.
    let max = U256::MAX.to_string();
    let json = CLIENT_JSON
        .replace("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8")
        .replace(r#""value":"10000""#, &format!(r#""value":"{max}""#));
    let auth: TransferAuthorization = serde_json::from_str(&json).expect("parses");
    assert_eq!(auth.value, U256::MAX);

    let refused = |from: &str, to: &str| {
        let json = CLIENT_JSON.replacen(from, to, 1);
        assert_ne!(json, CLIENT_JSON, "{from} is in the sample");
        let err = serde_json::from_str::<TransferAuthorization>(&json).expect_err(&json);
        err.to_string()
    };
    assert!(refused(r#""nonce""#, r#""extra":1,"nonce""#).contains("unknown field"));
    refused(r#""value":"10000""#, r#""value":10000"#); // a JSON number
    refused(r#""value":"10000""#, r#""value":"0x2710""#); // hex
    refused(r#""value":"10000""#, r#""value":"-1""#);
    refused(r#""value":"10000""#, r#""value":"""#);
    refused(r#""value":"10000""#, r#""value":" 10000""#);
    refused(r#""value":"10000""#, &format!(r#""value":"{max}0""#)); // overflows
    refused(r#""validBefore":"1740000000","#, ""); // missing
    refused(r#""0x3d7a"#, r#""3d7a"#); // nonce without 0x
    refused(r#"e0f2""#, r#"e0""#); // short nonce
    refused(r#""0x70997970C51812dc3A010C7d01b50e0d17dc79C8""#, r#""70997970C51812dc3A010C7d01b50e0d17dc79C8""#);
    refused("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"); // checksum
    refused(r#""0x70997970C51812dc3A010C7d01b50e0d17dc79C8""#, "[112,153]"); // bytes array
}

#[test]
fn codes_are_the_x402_ones() {
    let a = Address::ZERO;
    let cases = [
        (
            PaymentError::InvalidSignature { from: a, fault: SignatureFault::Unrecoverable },
            "invalid_exact_evm_signature",
        ),
        (PaymentError::RecipientMismatch { expected: a, got: a }, "invalid_exact_evm_recipient_mismatch"),
        (
            PaymentError::ValidBefore { valid_before: U256::ZERO, now: 0, min: 6 },
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            PaymentError::ValidAfter { valid_after: U256::ZERO, now: 0 },
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        (
            PaymentError::ValueMismatch { expected: U256::ZERO, got: U256::ZERO },
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        (PaymentError::NonceAlreadyUsed { from: a, nonce: B256::ZERO }, "invalid_exact_evm_nonce_already_used"),
        (
            PaymentError::InsufficientBalance { from: a, balance: U256::ZERO, needed: U256::ZERO },
            "invalid_exact_evm_insufficient_balance",
        ),
        (
            PaymentError::TokenNameMismatch { expected: String::new(), got: String::new() },
            "invalid_exact_evm_token_name_mismatch",
        ),
        (
            PaymentError::TokenVersionMismatch { expected: String::new(), got: String::new() },
            "invalid_exact_evm_token_version_mismatch",
        ),
        (PaymentError::Rpc("down".into()), "unexpected_verify_error"),
    ];
    for (err, code) in cases {
        assert_eq!(err.code(), code, "{err}");
    }
}
