//! `vouch devnet`: a local Vouch network in the foreground (`up`), stopped from another shell (`down`), checked
//! (`status`). The network itself is `vouch-devnet`; this module gives it the CLI's data directory, writes
//! `<datadir>/config.toml` (so every other command finds the RPC without `--rpc`) and `<datadir>/devnet.pid`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use serde_json::json;
use vouch_devnet::{Devnet, DevnetConfig, DevnetError, DevnetManifest, MANIFEST_FILE};

use crate::{context::Ctx, output::hex0x};

/// File name of the pid of the `vouch devnet up` process in the data directory.
pub(crate) const PID_FILE: &str = "devnet.pid";
/// How long `vouch devnet down` waits for the devnet to exit.
const DOWN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start a local network in the foreground (anvil, the protocol, funded accounts, staked operators, a demo
    /// blueprint and an active service) with --datadir as its data directory; Ctrl-C or `vouch devnet down` stops it
    Up(UpArgs),
    /// Stop the devnet running in --datadir (SIGTERM to its `vouch devnet up`, then wait up to 10s)
    Down,
    /// Tell whether the devnet of --datadir is running: process, RPC, chain id, contracts, operator keys
    Status,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Number of operators (each with a transaction key, a BLS key and a self-stake)
    #[arg(long, default_value_t = 3, value_name = "N")]
    operators: usize,
    /// anvil's JSON-RPC port on 127.0.0.1; 0 picks a free one
    #[arg(long, default_value_t = 8545, value_name = "PORT")]
    port: u16,
    /// Remove the data directory when the devnet stops
    #[arg(long)]
    ephemeral: bool,
}

pub(crate) async fn run(cmd: DevnetCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        DevnetCommand::Up(args) => up(&args, ctx).await,
        DevnetCommand::Down => down(ctx),
        DevnetCommand::Status => status(ctx).await,
    }
}

fn check_empty(datadir: &Path) -> eyre::Result<()> {
    let entries = match fs::read_dir(datadir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("data directory {} is a file, not a directory: choose another --datadir", datadir.display())
        }
        Err(e) => return Err(eyre!("cannot read data directory {}: {e}", datadir.display())),
    };
    let mut names: Vec<String> =
        entries.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let hint = if names.iter().any(|n| n == PID_FILE) {
        format!(
            "a devnet may be running there (`vouch --datadir {0} devnet status`, `vouch --datadir {0} devnet down`); ",
            datadir.display()
        )
    } else if names.iter().any(|n| n == MANIFEST_FILE) {
        "it holds a stopped devnet; ".to_owned()
    } else {
        String::new()
    };
    let shown = if names.len() > 5 { format!("{}, …", names[..5].join(", ")) } else { names.join(", ") };
    bail!(
        "data directory {} is not empty ({shown}): `vouch devnet up` needs a new or empty directory, because a \
         devnet writes fresh keys and never overwrites any; {hint}choose another --datadir or remove this one",
        datadir.display()
    )
}

async fn up(args: &UpArgs, ctx: &Ctx) -> eyre::Result<()> {
    let datadir = ctx.settings.datadir.value.clone();
    check_empty(&datadir)?;
    let out = ctx.out;
    out.progress(&format!("starting a devnet in {} ({} operators)…", datadir.display(), args.operators));
    let config = DevnetConfig {
        data_dir: Some(datadir.clone()),
        ephemeral: args.ephemeral,
        port: args.port,
        operators: args.operators,
        ..DevnetConfig::default()
    };
    let devnet = Devnet::start(config).await.map_err(|e| match e {
        DevnetError::AnvilExited { .. } if args.port != 0 => eyre!(e).wrap_err(format!(
            "cannot start anvil on port {}: is the port in use (another devnet)? pass --port 0 for a free one",
            args.port
        )),
        e => eyre!(e).wrap_err("the devnet could not start"),
    })?;
    let pid_file = datadir.join(PID_FILE);
    let setup = (|| -> eyre::Result<()> {
        let config_toml = format!(
            "# Written by `vouch devnet up`: the devnet in this directory.\nrpc = \"{}\"\naddresses = \"{}\"\n",
            devnet.rpc_url(),
            vouch_devnet::ADDRESS_BOOK_FILE
        );
        let config_path = datadir.join("config.toml");
        fs::write(&config_path, config_toml).wrap_err_with(|| format!("writing {}", config_path.display()))?;
        // Written last: its presence means the devnet is ready.
        fs::write(&pid_file, format!("{}\n", std::process::id()))
            .wrap_err_with(|| format!("writing {}", pid_file.display()))
    })();
    if let Err(e) = setup {
        let _ = devnet.stop();
        return Err(e);
    }
    print_up(&devnet, &datadir, ctx);
    let result = devnet.run_until_ctrl_c().await;
    match fs::remove_file(&pid_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => out.progress(&format!("warning: cannot remove {}: {e}", pid_file.display())),
    }
    result.map_err(|e| eyre!(e).wrap_err("the devnet stopped with an error"))?;
    out.progress(&format!(
        "devnet stopped (anvil shut down){}",
        if args.ephemeral { format!(", {} removed", datadir.display()) } else { String::new() }
    ));
    Ok(())
}

fn print_up(devnet: &Devnet, datadir: &Path, ctx: &Ctx) {
    let book = devnet.address_book();
    let contracts = serde_json::to_value(book.contracts).unwrap_or_default();
    let contract_list: Vec<(String, String)> = contracts
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    let account = |a: &vouch_devnet::Account| json!({"name": a.name(), "address": a.address()});
    let operators: Vec<serde_json::Value> = devnet
        .operators()
        .iter()
        .map(|o| {
            json!({
                "index": o.index(), "name": o.account().name(), "transactionAddress": o.address(),
                "blsPublicKey": hex0x(o.bls_public().to_compressed()), "endpoint": o.endpoint(),
            })
        })
        .collect();
    let dir = datadir.display();
    let stop = format!("Ctrl-C here, or `vouch --datadir {dir} devnet down` from another shell");
    let value = json!({
        "rpcUrl": devnet.rpc_url(), "chainId": devnet.chain_id(), "dataDir": datadir, "pid": std::process::id(),
        "anvilPid": devnet.anvil_pid(), "contracts": contracts, "treasury": book.treasury,
        "accounts": {
            "deployer": account(devnet.deployer()), "developer": account(devnet.developer()),
            "customer": account(devnet.customer()),
        },
        "operators": operators,
        "blueprintId": devnet.blueprint_id(), "serviceId": devnet.service_id(),
        "jobs": devnet.jobs().iter().enumerate().map(|(i, j)| json!({"index": i, "name": j.name, "price": j.price.to_string(), "deadline": j.deadline})).collect::<Vec<_>>(),
        "stop": stop,
    });
    let mut lines = vec![
        format!("devnet running: {}", devnet.rpc_url()),
        format!("  chain id      {}", devnet.chain_id()),
        format!("  data dir      {dir} (config.toml points every `vouch --datadir {dir} …` here)"),
        "contracts".to_owned(),
    ];
    let width = contract_list.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines.extend(contract_list.iter().map(|(k, v)| format!("  {k:width$}  {v}")));
    lines.push("accounts (transaction keys, `--from <name>`; keystores in keys/)".to_owned());
    for (role, a) in [
        ("deployer (owns the dev tokens, treasury)", devnet.deployer()),
        ("developer (owns the blueprint)", devnet.developer()),
        ("customer (holds vUSD, owns the service)", devnet.customer()),
    ] {
        lines.push(format!("  {:11} {}  {role}", a.name(), a.address()));
    }
    lines.push("operators (transaction key sends transactions; BLS key signs results)".to_owned());
    for o in devnet.operators() {
        lines.push(format!("  {:11} transaction {}", o.account().name(), o.address()));
        lines.push(format!("  {:11} BLS         {}", "", hex0x(o.bls_public().to_compressed())));
    }
    let jobs: Vec<String> = devnet.jobs().iter().enumerate().map(|(i, j)| format!("{i} {}", j.name)).collect();
    lines.push(format!("blueprint {} (jobs: {})", devnet.blueprint_id(), jobs.join(", ")));
    lines.push(format!("service   {} (active, run by every operator)", devnet.service_id()));
    lines.push(format!("stop: {stop}"));
    ctx.out.emit(&value, &lines.join("\n"));
}

/// The pid recorded in `<datadir>/devnet.pid`, if the file exists.
fn read_pid(datadir: &Path) -> eyre::Result<Option<u32>> {
    let path = datadir.join(PID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u32>().map(Some).map_err(|_| {
            eyre!(
                "{} does not hold a process id ({:?}): remove it if no devnet runs there",
                path.display(),
                text.trim()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(eyre!("cannot read {}: {e}", path.display())),
    }
}

/// Sends `signal` (`-0` only checks) to `pid` with kill(1); true if it was delivered.
fn kill(pid: u32, signal: &str) -> eyre::Result<bool> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| eyre!("cannot run `kill`: {e}"))?;
    Ok(status.success())
}

fn alive(pid: u32) -> eyre::Result<bool> {
    // A zombie is gone for our purposes; /proc tells it from a live process on Linux.
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(state) = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next())
        && state == "Z"
    {
        return Ok(false);
    }
    kill(pid, "-0")
}

fn down(ctx: &Ctx) -> eyre::Result<()> {
    let datadir = &ctx.settings.datadir.value;
    let dir = datadir.display();
    let pid_file: PathBuf = datadir.join(PID_FILE);
    let Some(pid) = read_pid(datadir)? else {
        if !datadir.is_dir() {
            bail!("no devnet in {dir}: the directory does not exist");
        }
        if datadir.join(MANIFEST_FILE).is_file() {
            bail!("no devnet running in {dir}: {PID_FILE} is absent, so its devnet already stopped");
        }
        bail!("no devnet in {dir}: it has no {PID_FILE} (start one with `vouch --datadir {dir} devnet up`)");
    };
    if !alive(pid)? {
        let _ = fs::remove_file(&pid_file);
        bail!(
            "no devnet running in {dir}: process {pid} from {PID_FILE} is gone (it did not exit cleanly); removed the stale {PID_FILE}"
        );
    }
    if !kill(pid, "-TERM")? {
        bail!("cannot send SIGTERM to process {pid} (from {}): not ours?", pid_file.display());
    }
    ctx.out.progress(&format!("sent SIGTERM to the devnet (pid {pid}), waiting for it to stop…"));
    let started = Instant::now();
    while alive(pid)? {
        if started.elapsed() > DOWN_TIMEOUT {
            bail!(
                "the devnet (pid {pid}) did not stop within {} s; see {}/anvil.log, or kill it with `kill -9 {pid}`",
                DOWN_TIMEOUT.as_secs(),
                dir
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ctx.out.emit(
        &json!({"stopped": true, "pid": pid, "dataDir": datadir}),
        &format!("devnet in {dir} stopped (pid {pid})"),
    );
    Ok(())
}

async fn status(ctx: &Ctx) -> eyre::Result<()> {
    let datadir = &ctx.settings.datadir.value;
    let dir = datadir.display();
    let pid = read_pid(datadir)?;
    let process = match pid {
        Some(pid) => Some((pid, alive(pid)?)),
        None => None,
    };
    let result = vouch_devnet::status(datadir).await;
    let manifest: Option<DevnetManifest> = match &result {
        Ok(s) => Some(s.manifest.clone()),
        Err(_) => DevnetManifest::load(datadir).ok(),
    };
    let running = matches!(process, Some((_, true))) && result.is_ok();
    let process_text = match process {
        Some((pid, true)) => format!("running (pid {pid})"),
        Some((pid, false)) => format!("not running (pid {pid} in {PID_FILE} is gone)"),
        None => format!("not running (no {PID_FILE})"),
    };
    let mut lines = vec![format!("devnet in {dir}: {}", if running { "running" } else { "not running" })];
    lines.push(format!("  process      {process_text}"));
    match &result {
        Ok(s) => {
            lines.push(format!("  rpc          {} reachable, block {}", s.manifest.rpc_url, s.block_number));
            lines.push(format!("  chain id     {}", s.manifest.chain_id));
            lines.push("  contracts    present and wired (addresses.json matches the chain)".to_owned());
            lines.push(format!(
                "  operators    {} with their BLS keys registered; service {}",
                s.manifest.operators.len(),
                s.manifest.service.id
            ));
        }
        Err(e) => lines.push(format!("  rpc          {e}")),
    }
    ctx.out.emit(
        &json!({
            "dataDir": datadir, "running": running,
            "pid": process.map(|p| p.0), "processAlive": process.map(|p| p.1),
            "rpcUrl": manifest.as_ref().map(|m| m.rpc_url.clone()),
            "rpcReachable": result.is_ok(),
            "chainId": manifest.as_ref().map(|m| m.chain_id),
            "contractsPresent": result.is_ok(),
            "blockNumber": result.as_ref().ok().map(|s| s.block_number),
            "error": result.as_ref().err().map(ToString::to_string),
        }),
        &lines.join("\n"),
    );
    if !running {
        bail!("no devnet running in {dir}");
    }
    Ok(())
}
