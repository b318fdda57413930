//! `vouch call --x402 <GATEWAY_URL> …`: a call through a Vouch gateway, paid with x402 v2 (`exact`, EIP-3009), as
//! the official clients pay it (docs/gateway.md):
//!
//! 1. `POST /v1/services/{id}/jobs/{job}` without payment → `402` with `PAYMENT-REQUIRED`;
//! 2. the offer is checked against the deployment of the address book before anything is signed: network = its
//!    chain, asset = its vUSD, `payTo` = its protocol contract, amount = the job's price on chain and at most
//!    `--max-amount` (default 1 vUSD, the official clients' default spend limit);
//! 3. an EIP-3009 authorization is signed with the transaction key and sent in `PAYMENT-SIGNATURE`; the same payment
//!    is resent if the answer is lost (the gateway answers a retry from its log and never charges twice);
//!    With `--async` the request asks for `Prefer: respond-async`: a `202` is followed by polling its `Location`
//!    (`GET /v1/calls/{callId}`, every `Retry-After` seconds) until the answer;
//! 4. the `200` answer's certificate is checked to be this call's and verified against the chain (`vouch verify`),
//!    and written to `--certificate`.
//!
//! Nothing is charged for a refused or failed call: the gateway collects the authorization only together with the
//! certificate, in its next settlement batch.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256, keccak256};
use eyre::{WrapErr, bail, eyre};
use serde_json::{Value, json};
use vouch_contracts::Contract;
use vouch_gateway::{
    api::{CERTIFICATE_HEADER, MIN_STAKE_HEADER},
    calls::PREFER,
    x402::{
        PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentPayload, PaymentRequired, PaymentRequirements,
        SCHEME_EXACT, SettlementResponse, X402_VERSION, chain_id_of, decode_header, encode_header,
    },
};
use vouch_primitives::{CallId, ServiceId, paid_call_id};

use crate::{
    certificate::{self, Certificate, join_slots},
    chain::Chain,
    commands::verify::print_verification,
    context::Ctx,
};

/// One `vouch call --x402`.
pub(crate) struct X402Call<'a> {
    /// The gateway's base URL.
    pub(crate) gateway: &'a str,
    /// Service id.
    pub(crate) service: u64,
    /// Job index.
    pub(crate) job: u8,
    /// The request body (JSON).
    pub(crate) inputs: Vec<u8>,
    /// `--min-stake`, in stake-token units.
    pub(crate) min_stake: Option<&'a str>,
    /// `--max-amount`, in payment-token units.
    pub(crate) max_amount: Option<&'a str>,
    /// `--certificate`.
    pub(crate) certificate: Option<&'a Path>,
    /// `--async`: `Prefer: respond-async`, then poll the result URL.
    pub(crate) respond_async: bool,
}

/// What one HTTP exchange returned.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The gateway's base URL, without a trailing `/`; plain HTTP only in this build.
fn gateway_base(url: &str) -> eyre::Result<String> {
    let base = url.trim().trim_end_matches('/');
    if base.starts_with("https://") {
        bail!(
            "--x402 {url}: this vouch speaks plain HTTP only; reach an HTTPS gateway through a local proxy, or use an \
             official x402 client (docs/gateway.md)"
        );
    }
    let Some(rest) = base.strip_prefix("http://") else {
        bail!("--x402 {url}: expected the gateway's base URL, e.g. http://127.0.0.1:8402");
    };
    if rest.is_empty() || rest.contains(['?', '#']) {
        bail!("--x402 {url}: expected the gateway's base URL, e.g. http://127.0.0.1:8402");
    }
    Ok(base.to_owned())
}

/// A gateway error answer (`{"error":{"code","message"}}`) as an error, quoting it exactly.
fn gateway_error(url: &str, reply: &Reply) -> eyre::Report {
    let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    match (
        error.and_then(|e| e.get("code")).and_then(Value::as_str),
        error.and_then(|e| e.get("message")).and_then(Value::as_str),
    ) {
        (Some(code), Some(message)) => eyre!("the gateway answered {} {code}: {message}", reply.status),
        _ => {
            let text = String::from_utf8_lossy(&reply.body);
            let text = text.trim();
            let shown: String = text.chars().take(300).collect();
            let more = if shown.len() < text.len() { "…" } else { "" };
            eyre!("{url} answered HTTP {} (not a Vouch gateway error): {shown}{more}", reply.status)
        }
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    inputs: &[u8],
    min_stake: Option<U256>,
    payment: Option<&str>,
    respond_async: bool,
) -> Result<Reply, reqwest::Error> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(inputs.to_vec());
    if let Some(min) = min_stake {
        request = request.header(MIN_STAKE_HEADER, min.to_string());
    }
    if let Some(payment) = payment {
        request = request.header(PAYMENT_SIGNATURE, payment);
    }
    if respond_async {
        request = request.header(PREFER, "respond-async");
    }
    reply(request).await
}

async fn reply(request: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok(Reply { status, headers, body })
}

/// The payment option to pay: the first `exact` one on an `eip155` chain, checked against the deployment.
fn choose<'r>(required: &'r PaymentRequired, chain: &Chain) -> eyre::Result<&'r PaymentRequirements> {
    let Some(offer) = required.accepts.iter().find(|r| r.scheme == SCHEME_EXACT && chain_id_of(&r.network).is_some())
    else {
        let offered: Vec<String> = required.accepts.iter().map(|r| format!("{} on {}", r.scheme, r.network)).collect();
        bail!(
            "the gateway offers no x402 `exact` payment on an EVM chain (it offers: {}); vouch pays only `exact`",
            if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") }
        );
    };
    let book = &chain.book;
    let refuse = "refusing to sign: a gateway of another deployment (check --rpc and --addresses), or a dishonest one";
    if chain_id_of(&offer.network) != Some(chain.chain_id()) {
        bail!(
            "the gateway asks for payment on {}, but the deployment of {} is on chain {}: {refuse}",
            offer.network,
            chain.book_path.display(),
            chain.chain_id()
        );
    }
    if offer.asset != book.contracts.vouch_usd {
        bail!(
            "the gateway asks for payment in token {}, not in this deployment's {} ({}): {refuse}",
            offer.asset,
            chain.payment.symbol,
            book.contracts.vouch_usd
        );
    }
    if offer.pay_to != book.contracts.protocol {
        bail!(
            "the gateway asks to pay {}, not this deployment's VouchProtocol {}: {refuse}",
            offer.pay_to,
            book.contracts.protocol
        );
    }
    Ok(offer)
}

/// The job's price on chain (the gateway must ask exactly that).
async fn job_price(chain: &Chain, service_id: u64, job: u8) -> eyre::Result<U256> {
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let service = chain.read(p, "VouchProtocol.getService", protocol.getService(service_id).call()).await?;
    let blueprint =
        chain.read(p, "VouchProtocol.getBlueprint", protocol.getBlueprint(service.blueprintId).call()).await?;
    let spec = blueprint
        .jobs
        .get(usize::from(job))
        .ok_or_else(|| eyre!("service {service_id} has no job {job} on chain, yet the gateway offers it"))?;
    Ok(U256::from(spec.price))
}

fn random_nonce() -> eyre::Result<B256> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| eyre!("system randomness unavailable: {e}"))?;
    Ok(B256::from(nonce))
}

/// Checks before paying that the certificate can be written where asked.
fn check_certificate_path(path: &Path) -> eyre::Result<()> {
    if path.is_dir() {
        bail!("--certificate {}: is a directory; name a file", path.display());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("--certificate {}: directory {} does not exist", path.display(), parent.display());
    }
    Ok(())
}

pub(crate) async fn call(ctx: &Ctx, c: X402Call<'_>) -> eyre::Result<()> {
    let base = gateway_base(c.gateway)?;
    if let Some(path) = c.certificate {
        check_certificate_path(path)?;
    }
    let signer = ctx.signer().await?;
    let me = signer.address();
    ctx.out.detail(&format!("transaction key {me}"));
    let chain = ctx.connect().await?;
    let pay = &chain.payment;
    let max_amount = match c.max_amount {
        Some(text) => pay.parse(text).map_err(|e| eyre!("--max-amount: {e}"))?,
        None => U256::from(10u64).pow(U256::from(pay.decimals)),
    };
    let min_stake = c.min_stake.map(|t| chain.stake.parse(t).map_err(|e| eyre!("--min-stake: {e}"))).transpose()?;
    let timeout = Duration::from_secs(ctx.settings.timeout.value);
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| eyre!("cannot build the HTTP client: {e}"))?;
    let url = format!("{base}/v1/services/{}/jobs/{}", c.service, c.job);

    // 1. The price.
    ctx.out.progress(&format!("asking {url} for its price…"));
    let first = post(&http, &url, &c.inputs, min_stake, None, false)
        .await
        .map_err(|e| eyre::Report::new(e).wrap_err(format!("cannot reach the gateway at {base}")))?;
    let required: PaymentRequired = match first.status {
        402 => {
            let header = first.header(PAYMENT_REQUIRED).ok_or_else(|| {
                eyre!("{url} answered 402 without a {PAYMENT_REQUIRED} header: not an x402 v2 server")
            })?;
            decode_header(header).map_err(|e| eyre!("{url}: the {PAYMENT_REQUIRED} header is malformed: {e}"))?
        }
        200..=299 => bail!("{url} answered {} without asking for payment: not a Vouch gateway", first.status),
        _ => return Err(gateway_error(&url, &first)),
    };
    if required.x402_version != X402_VERSION {
        bail!("{url} speaks x402 version {}, vouch pays version {X402_VERSION}", required.x402_version);
    }

    // 2. What is asked, checked before anything is signed.
    let offer = choose(&required, &chain)?;
    let price = job_price(&chain, c.service, c.job).await?;
    if offer.amount != price {
        bail!(
            "the gateway asks {} for job {} of service {}, but its price on chain is {}: refusing to sign",
            pay.format(offer.amount),
            c.job,
            c.service,
            pay.format(price)
        );
    }
    if offer.amount > max_amount {
        bail!(
            "the gateway asks {} for job {} of service {}, more than --max-amount {}: nothing was signed or paid; pass \
             --max-amount {} to pay it",
            pay.format(offer.amount),
            c.job,
            c.service,
            pay.format(max_amount),
            pay.format(offer.amount)
        );
    }
    chain.require_balance(pay, me, offer.amount).await?;

    // 3. Pay: an EIP-3009 authorization of exactly the price to the protocol, valid from chain time on.
    let now = chain.now().await?;
    let nonce = random_nonce()?;
    let payload = PaymentPayload {
        x402_version: X402_VERSION,
        accepted: offer.clone(),
        resource: Some(required.resource.clone()),
        extensions: required.extensions.clone().map(Value::Object),
        payload: offer.authorize(&signer, now, nonce).map_err(|e| eyre!("cannot sign the payment: {e}"))?,
    };
    let header = encode_header(&payload);
    let call_id = paid_call_id(ServiceId(c.service), c.job, me, nonce);
    ctx.out.progress(&format!(
        "paying {} for job {} of service {} ({call_id}); the operators run it…",
        pay.format(offer.amount),
        c.job,
        c.service
    ));
    let reply = paid_request(ctx, &http, &base, &url, &c, min_stake, &header, call_id).await?;
    match reply.status {
        200 => {}
        402 => {
            let reason = reply
                .header(PAYMENT_REQUIRED)
                .and_then(|h| decode_header::<PaymentRequired>(h).ok())
                .and_then(|r| r.error)
                .unwrap_or_else(|| "no reason given".to_owned());
            bail!("the gateway refused the payment: {reason} (402); nothing was charged");
        }
        _ => return Err(gateway_error(&url, &reply)),
    }

    // 4. The answer: this call's certificate, verified against the chain.
    let answer: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| eyre!("{url} answered 200 with a body that is not JSON: {e}"))?;
    let cert_value = answer.get("certificate").cloned().or_else(|| {
        let header = reply.header(CERTIFICATE_HEADER)?;
        decode_header::<Value>(header).ok()
    });
    let cert: Certificate =
        serde_json::from_value(cert_value.ok_or_else(|| eyre!("{url} answered without a certificate"))?)
            .map_err(|e| eyre!("the gateway's certificate is malformed: {e}"))?;
    let inputs_hash = keccak256(&c.inputs);
    if cert.call_id != call_id.0 || cert.service_id != c.service || cert.inputs_hash != inputs_hash {
        bail!(
            "the gateway answered with a certificate of {} of service {} (inputs {}), not of this {call_id} of service \
             {} (inputs {inputs_hash}): it cannot collect this payment with it",
            CallId(cert.call_id),
            cert.service_id,
            cert.inputs_hash,
            c.service
        );
    }
    let settlement: Option<SettlementResponse> = reply.header(PAYMENT_RESPONSE).and_then(|h| decode_header(h).ok());
    if let Some(path) = c.certificate {
        let mut text = serde_json::to_string_pretty(&cert).wrap_err("serialising the certificate")?;
        text.push('\n');
        std::fs::write(path, text).wrap_err_with(|| format!("writing the certificate to {}", path.display()))?;
    }
    let verification = certificate::verify(&chain, &cert).await?;
    if let Some(failure) = &verification.failure {
        let shown = c.certificate.map_or_else(|| PathBuf::from("(the gateway's answer)"), Path::to_path_buf);
        print_verification(&chain, &shown, &cert, &verification);
        bail!("the gateway's certificate is invalid: {failure}; the payment cannot be collected with it");
    }

    let output = answer.get("output").cloned().unwrap_or(Value::Null);
    let signers: Vec<String> = verification.signer_addresses.iter().map(ToString::to_string).collect();
    let mut doc = answer.clone();
    if let Value::Object(map) = &mut doc {
        map.insert(
            "payment".into(),
            json!({
                "amount": pay.json(offer.amount), "payer": me, "payTo": offer.pay_to, "asset": offer.asset,
                "network": offer.network, "nonce": nonce, "settlement": settlement,
            }),
        );
        map.insert("stakeAtRisk".into(), chain.stake.json(verification.signer_stake));
        map.insert("certificateFile".into(), json!(c.certificate));
    }
    let saved = c.certificate.map_or_else(
        || "not saved (pass --certificate FILE to keep it)".to_owned(),
        |p| format!("{} (`vouch verify {}` checks it again)", p.display(), p.display()),
    );
    let lines = [
        format!("{call_id}: job {} of service {} answered", c.job, c.service),
        format!("  output         {output}"),
        format!("  signers        slots {}: {}", join_slots(&verification.signers), signers.join(", ")),
        format!(
            "  stake at risk  {} behind result {} (verified against the chain)",
            chain.stake.format(verification.signer_stake),
            cert.result_hash
        ),
        format!(
            "  price          {} from {me}, collected with the certificate in the gateway's next settlement batch",
            pay.format(offer.amount)
        ),
        format!("  certificate    {saved}"),
    ];
    ctx.out.emit(&doc, &lines.join("\n"));
    Ok(())
}

/// Sends the paid request; resends the same payment while the answer is lost or still in progress (the gateway
/// answers a retry from its log and never charges twice), until `--timeout` has passed since the first attempt. With
/// `--async`, a `202` is followed by polling its result URL (`Location`, on the gateway) until another answer.
#[allow(clippy::too_many_arguments)]
async fn paid_request(
    ctx: &Ctx,
    http: &reqwest::Client,
    base: &str,
    url: &str,
    c: &X402Call<'_>,
    min_stake: Option<U256>,
    header: &str,
    call_id: CallId,
) -> eyre::Result<Reply> {
    let timeout = Duration::from_secs(ctx.settings.timeout.value);
    let started = Instant::now();
    let mut result_url: Option<String> = None;
    loop {
        let sent = match &result_url {
            Some(poll) => reply(http.get(poll).header(reqwest::header::ACCEPT, "application/json")).await,
            None => post(http, url, &c.inputs, min_stake, Some(header), c.respond_async).await,
        };
        let (retry_why, wait) = match sent {
            Ok(reply) if reply.status == 409 && is_code(&reply, "request_in_progress") => {
                ("the gateway is still answering".to_owned(), Duration::from_secs(1))
            }
            Ok(reply) if reply.status == 202 => {
                let location = reply.header("location").unwrap_or_default();
                // Only a path on this gateway is followed.
                if !location.starts_with("/v1/calls/") || location.len() > 256 {
                    bail!("the gateway answered 202 without a result URL on itself (Location: {location:?})");
                }
                result_url = Some(format!("{base}{location}"));
                let after = reply.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
                (format!("the operators are working (result at {location})"), Duration::from_secs(after.clamp(1, 10)))
            }
            Ok(reply) => return Ok(reply),
            Err(e) => (format!("no answer ({e})"), Duration::from_secs(1)),
        };
        if started.elapsed() >= timeout {
            bail!(
                "no answer from the gateway for {call_id} within {timeout:?}: {retry_why}. The payment was sent: if the \
                 operators answer, the gateway collects it and keeps the answer; nothing is collected otherwise"
            );
        }
        if result_url.is_some() {
            ctx.out.progress(&format!("{retry_why}; polling…"));
        } else {
            ctx.out.progress(&format!("{retry_why}; asking again with the same payment (never charged twice)…"));
        }
        tokio::time::sleep(wait).await;
    }
}

fn is_code(reply: &Reply, code: &str) -> bool {
    serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(Value::as_str).map(|c| c == code))
        .unwrap_or(false)
}
