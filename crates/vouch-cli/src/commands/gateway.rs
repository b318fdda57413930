//! `vouch gateway run`: the x402 gateway (`vouch-gateway`) customers and agents call — `402` with the price, fan-out
//! of paid requests to the service's operators, the quorum certificate in the answer, and settlement in batches
//! (`settlePaidBatch`) sent with the submitter's transaction key. Serves until SIGINT/SIGTERM (docs/gateway.md).
//!
//! It reads the gateway's own config file (`--config gateway.toml`, see [`crate::gateway_config`]), not the CLI's
//! `config.toml`, and runs before the CLI's settings are resolved.

use std::{net::SocketAddr, path::PathBuf};

use alloy::providers::Provider;
use clap::{Args, Subcommand};
use eyre::{Report, bail};
use serde_json::json;
use vouch_gateway::Gateway;

use crate::{
    GlobalArgs, amount::Token, commands::node::create_private_dir, context::Ctx, gateway_config::GatewaySettings,
    output::Output,
};

/// How the gateway's settings are resolved (the `after_help` of `vouch gateway` and `vouch gateway run`).
pub(crate) const SETTINGS_HELP: &str = "Settings: built-in defaults < the gateway's config file, named by --config \
    (`vouch config default --gateway` prints one with every key; without it, the defaults with data_dir \
    <datadir>/gateway) < environment variables < flags. Of the global options, --rpc (VOUCH_RPC) overrides the \
    file's `rpc_url`; --addresses names the deployment's address book and --from / --password-file the submitter's \
    transaction key, which sends the settlement transactions and pays their gas (defaults: <datadir>/addresses.json \
    and the only transaction key in <datadir>/keys). The CLI's config.toml is not read.";

#[derive(Debug, Subcommand)]
pub(crate) enum GatewayCommand {
    /// Run the gateway until SIGINT or SIGTERM (it finishes the requests in progress, then exits 0): `GET
    /// /v1/services`, x402-paid `POST /v1/services/{id}/jobs/{job}` answered with the operators' certificate, and
    /// settlement of the answered calls in batches, paid for by the submitter's transaction key
    #[command(after_help = SETTINGS_HELP)]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Where the HTTP API listens (port 0: any free port); overrides `listen`
    #[arg(long, env = "VOUCH_GATEWAY_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The request log's directory (gateway.sqlite); overrides `data_dir`
    #[arg(long, env = "VOUCH_GATEWAY_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The base URL clients reach the gateway at, used in the 402's `resource.url` (default: http://<listen
    /// address>); overrides `public_url`
    #[arg(long, env = "VOUCH_GATEWAY_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Log one JSON object per line on stderr instead of text
    #[arg(long, env = "VOUCH_GATEWAY_LOG_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    log_json: bool,
}

pub(crate) fn run(
    cmd: GatewayCommand,
    global: &GlobalArgs,
    matches: &clap::ArgMatches,
    out: Output,
) -> eyre::Result<()> {
    let GatewayCommand::Run(args) = cmd;
    let mut s = GatewaySettings::resolve(global, matches)?;
    if let Some(listen) = args.listen {
        s.config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        s.config.data_dir = dir;
    }
    if let Some(url) = args.public_url {
        s.config.public_url = Some(url);
    }
    if let Some(url) = &s.config.public_url {
        let url = url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            bail!("public URL `{url}` must be an http:// or https:// URL, e.g. https://gateway.example.com");
        }
        s.config.public_url = Some(url.to_owned());
    }
    vouch_node::logging::init(&vouch_node::config::LogConfig {
        json: args.log_json,
        ..vouch_node::config::LogConfig::default()
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| eyre::eyre!("cannot start the async runtime: {e}"))?
        .block_on(serve(s, out))
}

async fn serve(s: GatewaySettings, out: Output) -> eyre::Result<()> {
    let ctx = Ctx { settings: s.cli.clone(), out };
    let signer = ctx.signer().await?;
    let submitter = signer.address();
    let chain = ctx.connect().await?;
    let eth = chain
        .provider
        .get_balance(submitter)
        .await
        .map_err(|e| chain.transport("reading the submitter's ETH balance", e))?;
    let ether = Token { address: alloy_primitives::Address::ZERO, symbol: "ETH".into(), decimals: 18 };
    if eth.is_zero() {
        bail!(
            "the submitter {submitter} holds no ETH: it pays the gas of every settlement transaction, and without it \
             answered calls are never collected; fund it, or choose another transaction key with --from"
        );
    }
    let config = s.config;
    create_private_dir(&config.data_dir)?;
    let running = Gateway::new(config.clone(), chain.book.clone(), signer)
        .start()
        .await
        .map_err(|e| Report::new(e).wrap_err("cannot start the gateway"))?;
    let url = running.url();
    let public = config.public_url.clone().unwrap_or_else(|| url.clone());
    let log = config.data_dir.join("gateway.sqlite");
    let value = json!({
        "url": url,
        "listen": running.addr(),
        "publicUrl": public,
        "submitter": submitter,
        "submitterBalance": ether.json(eth),
        "chainId": chain.chain_id(),
        "rpc": chain.rpc,
        "protocol": chain.book.contracts.protocol,
        "token": chain.book.contracts.vouch_usd,
        "dataDir": config.data_dir,
        "requestLog": log,
        "config": s.file,
    });
    let lines = [
        format!("gateway running: {url}"),
        format!("  public URL   {public}"),
        format!("  chain        {} at {}, protocol {}", chain.chain_id(), chain.rpc, chain.book.contracts.protocol),
        format!("  submitter    {submitter} (pays settlement gas; holds {})", ether.format(eth)),
        format!("  request log  {}", log.display()),
        format!("  services     GET {public}/v1/services; paid calls: POST {public}/v1/services/<id>/jobs/<job>"),
        "stop: Ctrl-C or SIGTERM (the requests in progress finish first)".to_owned(),
    ];
    out.emit(&value, &lines.join("\n"));
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let signal = tokio::select! {
        () = ctrl_c => "SIGINT",
        () = term => "SIGTERM",
    };
    out.progress(&format!("{signal}: shutting down (the requests in progress finish first)"));
    running.shutdown().await;
    out.progress("gateway stopped");
    Ok(())
}
