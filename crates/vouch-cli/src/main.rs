//! `vouch`: the command-line tool for operators, blueprint developers and customers.
//!
//! Today it manages BLS keys and runs the BLS demo; the protocol subcommands (devnet, operator,
//! blueprint, service, call, slash, verify) arrive with the contracts and the devnet.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Verified, paid, slashable off-chain compute.
#[derive(Debug, Parser)]
#[command(name = "vouch", version, about, propagate_version = true)]
struct Cli {
    /// Data directory for keys and local state.
    #[arg(long, global = true, env = "VOUCH_DATADIR", default_value = ".vouch")]
    datadir: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and inspect BLS keys (they sign job results; they never send transactions).
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Run the BLS round trip: keystores, proofs of possession, signing, aggregation, verification.
    Demo(commands::demo::DemoArgs),
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    let out = commands::Output { json: cli.json };
    match cli.command {
        Command::Keys(cmd) => commands::keys::run(cmd, &cli.datadir, &out),
        Command::Demo(args) => commands::demo::run(&args, &cli.datadir, &out),
    }
}
