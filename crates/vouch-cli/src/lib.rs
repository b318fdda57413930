//! `vouch`: the command-line tool for operators, delegators, blueprint developers and customers of the Vouch network.
//!
//! Every protocol action has a subcommand (one module each under `commands/`): keys, operator registration and
//! stake, delegation, blueprints, services, calls, claims, slashing reports and offline certificate verification;
//! `vouch node` runs the operator node (`vouch-node`) with the project's own blueprints, one cargo feature each;
//! `vouch gateway` runs the x402 gateway (`vouch-gateway`), and `vouch call --x402` pays one.
//! Amounts are read and printed in human units of the tokens (`10.5 vUSD`, `1000 VST`); reverts are decoded into
//! sentences that say what to do.
//!
//! The binary (`src/main.rs`) only calls [`main`]; the library exists so the integration tests can inspect the
//! command tree ([`command`]). It depends on every other Vouch crate and nothing depends on it.

mod amount;
mod certificate;
mod chain;
mod commands;
mod config;
mod context;
mod duration;
mod evidence;
mod gateway_config;
mod json_file;
mod keyring;
mod manifest;
mod node_config;
mod output;
mod rate;
mod revert;

use std::{path::PathBuf, process::ExitCode};

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Verified, paid, slashable off-chain compute.
#[derive(Debug, Parser)]
#[command(
    name = "vouch",
    version,
    about = "Verified, paid, slashable off-chain compute",
    long_about = "Verified, paid, slashable off-chain compute.\n\n\
        Settings come from built-in defaults < <datadir>/config.toml (or --config) < VOUCH_* environment variables < \
        flags. Amounts are written in token units (`10.5 vUSD`, `1000 VST`), rates as `66.67%` or `6667bps`, \
        durations as `90s`, `5m`, `1h30m`, `7d`.",
    propagate_version = true,
    max_term_width = 120
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// JSON-RPC endpoint of the chain [default: http://127.0.0.1:8545]
    #[arg(long, global = true, env = "VOUCH_RPC", value_name = "URL")]
    pub(crate) rpc: Option<String>,
    /// Data directory: keys/, addresses.json, config.toml [default: ~/.vouch]
    #[arg(long, global = true, env = "VOUCH_DATADIR", value_name = "DIR")]
    pub(crate) datadir: Option<PathBuf>,
    /// Config file [default: <datadir>/config.toml, if it exists; for `vouch node`: the node's node.toml, required;
    /// for `vouch gateway`: the gateway's gateway.toml]
    #[arg(long, global = true, env = "VOUCH_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address book of the deployment [default: <datadir>/addresses.json]
    #[arg(long, global = true, env = "VOUCH_ADDRESSES", value_name = "FILE")]
    pub(crate) addresses: Option<PathBuf>,
    /// Transaction key that signs and pays: a key name in <datadir>/keys or a keystore path [default: the only one]
    #[arg(long, global = true, env = "VOUCH_FROM", value_name = "KEY")]
    pub(crate) from: Option<String>,
    /// Password file of the transaction key (for `keys new|import`: of the new key) [default: beside the keystore]
    #[arg(long, global = true, env = "VOUCH_PASSWORD_FILE", value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// How long to wait for the RPC and for receipts, e.g. 30s [default: 60s]
    #[arg(long, global = true, env = "VOUCH_TIMEOUT", value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Print more (transaction hashes, gas); repeatable
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Print no progress on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, show and import keys: transaction keys (ECDSA) and result-signing keys (BLS)
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Register as an operator, manage its stake and commission, show its status
    #[command(subcommand)]
    Operator(commands::operator::OperatorCommand),
    /// Run the operator node, initialise its signing database, export or import its signing records
    #[command(subcommand, after_help = commands::node::SETTINGS_HELP)]
    Node(commands::node::NodeCommand),
    /// Run the x402 gateway customers and agents call: payment, fan-out to the operators, certificate, settlement
    #[command(subcommand, after_help = commands::gateway::SETTINGS_HELP)]
    Gateway(commands::gateway::GatewayCommand),
    /// Delegate stake to an operator's pool (shares its fees and its slashing risk)
    Delegate(commands::delegate::DelegateArgs),
    /// Queue delegated stake for withdrawal (withdraw it with `vouch operator withdraw` after the unbonding delay)
    Undelegate(commands::delegate::UndelegateArgs),
    /// Deploy a blueprint from a manifest, show a blueprint
    #[command(subcommand)]
    Blueprint(commands::blueprint::BlueprintCommand),
    /// Request, approve and show services (a blueprint run by a fixed operator set)
    #[command(subcommand)]
    Service(commands::service::ServiceCommand),
    /// Call a job on-chain (paying its price) or through a gateway paying with x402 (--x402), or show, settle and
    /// refund calls
    Call(commands::call::CallArgs),
    /// Claim everything this account is owed: fees and refunds, delegator rewards, slashed-stake payouts
    Claim(commands::claim::ClaimArgs),
    /// Report provable faults for slashing
    #[command(subcommand)]
    Slash(commands::slash::SlashCommand),
    /// Check a certificate against the chain: service, signers, quorum and the BLS aggregate
    Verify(commands::verify::VerifyArgs),
    /// Sign a call's result with the operators' BLS keystores in <datadir>/keys and write its certificate (devnets)
    Certify(commands::certify::CertifyArgs),
    /// Run a local network: `up` in the foreground, `down` from another shell, `status`
    #[command(subcommand)]
    Devnet(commands::devnet::DevnetCommand),
    /// Show the effective configuration, or print a default config file
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Run the BLS round trip offline: keystores, proofs of possession, signing, aggregation, verification
    Demo(commands::demo::DemoArgs),
}

/// The `vouch` command tree (for `--help` and the CLI's own tests).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the `vouch` binary: parses `std::env::args`, runs the command, prints an error (and its causes) on stderr.
/// Exit codes: 0 success, 1 failure (including an invalid certificate), 2 bad usage.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (a bug in vouch; please report it): {info}");
    }));
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let out = output::Output {
        json: cli.global.json,
        verbosity: if cli.global.quiet { -1 } else { i8::try_from(cli.global.verbose).unwrap_or(i8::MAX) },
    };
    match run(cli, &matches, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches, out: output::Output) -> eyre::Result<()> {
    match cli.command {
        // Needs no settings, so it works even when the config file it would replace is broken.
        Command::Config(commands::config::ConfigCommand::Default(args)) => {
            print!("{}", commands::config::default_file(args));
            return Ok(());
        }
        // The node has its own config file and runtime (multi-threaded); the CLI's settings do not apply.
        Command::Node(cmd) => return commands::node::run(cmd, &cli.global, matches, out),
        // So is the gateway (its own config file; the CLI's key and address book settings, without config.toml).
        Command::Gateway(cmd) => return commands::gateway::run(cmd, &cli.global, matches, out),
        _ => {}
    }
    let settings = config::Settings::resolve(&cli.global, matches)?;
    let ctx = context::Ctx { settings, out };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eyre::eyre!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        match cli.command {
            Command::Keys(cmd) => commands::keys::run(cmd, &ctx).await,
            Command::Operator(cmd) => commands::operator::run(cmd, &ctx).await,
            Command::Node(_) => unreachable!("`vouch node` runs before the CLI's settings are resolved"),
            Command::Gateway(_) => unreachable!("`vouch gateway` runs before the CLI's settings are resolved"),
            Command::Delegate(args) => commands::delegate::delegate(args, &ctx).await,
            Command::Undelegate(args) => commands::delegate::undelegate(args, &ctx).await,
            Command::Blueprint(cmd) => commands::blueprint::run(cmd, &ctx).await,
            Command::Service(cmd) => commands::service::run(cmd, &ctx).await,
            Command::Call(args) => commands::call::run(args, &ctx).await,
            Command::Claim(args) => commands::claim::run(args, &ctx).await,
            Command::Slash(cmd) => commands::slash::run(cmd, &ctx).await,
            Command::Verify(args) => commands::verify::run(args, &ctx).await,
            Command::Certify(args) => commands::certify::run(args, &ctx).await,
            Command::Devnet(cmd) => commands::devnet::run(cmd, &ctx).await,
            Command::Config(cmd) => commands::config::run(cmd, &ctx),
            Command::Demo(args) => commands::demo::run(&args, &ctx),
        }
    })
}
