//! A devnet with 3 in-process nodes and a gateway, and an x402 client written from the spec (what an agent does).

use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vouch_contracts::{
    AuthorizationExt as _, TokenDomain, VouchProtocol, VouchUSD, alloy::signers::local::PrivateKeySigner,
};
use vouch_gateway::{Gateway, GatewayConfig, RunningGateway};
use vouch_primitives::wire::TransferAuthorization;
use vouch_testing::{TestNetwork, TestNetworkBuilder, devnet::Funding};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Logs to the test output when `RUST_LOG` is set (`RUST_LOG=vouch_gateway=debug cargo test … -- --nocapture`).
pub(crate) fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    }
}

/// A network of `operators` nodes (quorum `quorum_bps`) and a gateway.
pub(crate) struct Setup {
    pub net: TestNetwork,
    pub gateway: Option<RunningGateway>,
    pub config: GatewayConfig,
    pub submitter: PrivateKeySigner,
    pub _dir: tempfile::TempDir,
}

impl Setup {
    pub(crate) async fn start(quorum_bps: u16) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_with(vouch_echo::router(), quorum_bps).await
    }

    /// Nodes running `router`.
    pub(crate) async fn start_with(
        router: vouch_sdk::Router,
        quorum_bps: u16,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_custom(TestNetwork::builder(router).quorum_bps(quorum_bps)).await
    }

    /// A network from `builder` (per-node routers, policy, …) and a gateway.
    pub(crate) async fn start_custom(builder: TestNetworkBuilder) -> Result<Self, Box<dyn std::error::Error>> {
        // The nodes' chain watchers stay out of the way: gateway calls never open on chain before settlement.
        let net = builder.confirmations(1_000).start().await?;
        let dir = tempfile::tempdir()?;
        let submitter = net
            .devnet()
            .new_account(&Funding { eth: U256::from(10u64).pow(U256::from(19)), ..Funding::default() })
            .await?;
        let config = GatewayConfig {
            listen: "127.0.0.1:0".parse()?,
            rpc_url: net.devnet().rpc_url().to_owned(),
            data_dir: dir.path().join("gateway"),
            max_batch_delay_ms: 300,
            ..GatewayConfig::default()
        };
        let mut setup = Self { net, gateway: None, config, submitter, _dir: dir };
        setup.restart_gateway().await?;
        Ok(setup)
    }

    pub(crate) async fn restart_gateway(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(g) = self.gateway.take() {
            self.config.listen = g.addr();
            g.kill();
        }
        let g = Gateway::new(self.config.clone(), self.net.devnet().address_book().clone(), self.submitter.clone())
            .start()
            .await?;
        self.gateway = Some(g);
        Ok(())
    }

    pub(crate) fn gateway(&self) -> &RunningGateway {
        self.gateway.as_ref().expect("gateway running")
    }

    pub(crate) fn job_url(&self, job: u8) -> String {
        format!("{}/v1/services/{}/jobs/{job}", self.gateway().url(), self.net.service_id().0)
    }

    pub(crate) async fn usd(&self, who: Address) -> U256 {
        let usd =
            VouchUSD::new(self.net.devnet().address_book().contracts.vouch_usd, self.net.devnet().read_provider());
        usd.balanceOf(who).call().await.expect("balanceOf")
    }

    pub(crate) async fn claimable(&self, who: Address) -> U256 {
        let p =
            VouchProtocol::new(self.net.devnet().address_book().contracts.protocol, self.net.devnet().read_provider());
        p.claimable(who).call().await.expect("claimable")
    }
}

/// Job `job` paid by the customer (the 402 first, then the payment): the answer's status, JSON body and the
/// `PAYMENT-SIGNATURE` sent.
pub(crate) async fn paid_call(
    setup: &Setup,
    job: u8,
    body: &[u8],
) -> Result<(StatusCode, Value, String), Box<dyn std::error::Error>> {
    let client = reqwest::Client::new();
    let r = client.post(setup.job_url(job)).body(body.to_vec()).send().await?;
    let required = payment_required(r.headers())?;
    let header = pay(setup, &required, setup.net.devnet().customer().signer(), |_| {}).await?;
    let r = client.post(setup.job_url(job)).header("PAYMENT-SIGNATURE", &header).body(body.to_vec()).send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null), header))
}

/// The `PAYMENT-REQUIRED` header of a 402, decoded.
pub(crate) fn payment_required(headers: &reqwest::header::HeaderMap) -> Result<Value, Box<dyn std::error::Error>> {
    let h = headers.get("payment-required").ok_or("no PAYMENT-REQUIRED header")?;
    Ok(serde_json::from_slice(&STANDARD.decode(h.as_bytes())?)?)
}

/// Signs the first offer of `required` as `payer` (what an x402 `exact` client does), with `tweak` applied to the
/// authorization first.
pub(crate) async fn pay(
    setup: &Setup,
    required: &Value,
    payer: &PrivateKeySigner,
    tweak: impl FnOnce(&mut TransferAuthorization),
) -> Result<String, Box<dyn std::error::Error>> {
    let accepted = required["accepts"][0].clone();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut auth = TransferAuthorization {
        from: payer.address(),
        to: accepted["payTo"].as_str().ok_or("payTo")?.parse()?,
        value: accepted["amount"].as_str().ok_or("amount")?.parse()?,
        valid_after: U256::ZERO,
        valid_before: U256::from(now + accepted["maxTimeoutSeconds"].as_u64().ok_or("maxTimeoutSeconds")?),
        nonce: {
            let mut n = [0u8; 32];
            getrandom::fill(&mut n).map_err(|e| e.to_string())?;
            B256::from(n)
        },
    };
    tweak(&mut auth);
    let domain =
        TokenDomain::read(&setup.net.devnet().read_provider(), setup.net.devnet().address_book().contracts.vouch_usd)
            .await?;
    let signature = auth.sign(payer, &domain)?;
    let payload = json!({
        "x402Version": 2,
        "accepted": accepted,
        "payload": { "authorization": auth, "signature": signature },
    });
    Ok(STANDARD.encode(serde_json::to_vec(&payload)?))
}

/// Waits until the gateway's store shows `call` settled.
pub(crate) async fn wait_settled(setup: &Setup, call: vouch_primitives::CallId) -> TestResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = setup.gateway().store().get(call)?.ok_or("recorded")?;
        if r.status == vouch_gateway::store::RequestStatus::Settled {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("call {call} not settled: {:?} {:?}", r.status, r.error).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
