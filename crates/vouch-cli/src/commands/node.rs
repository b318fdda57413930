//! `vouch node`: the operator node. `run` starts `vouch-node` with the blueprints this binary bundles (one cargo
//! feature each) and serves until SIGINT/SIGTERM; `init` creates its data directory and signing database; `guard
//! export|import` move the signing records to another machine (interchange v1).
//!
//! These commands read the node's own config file (`--config node.toml`, see [`crate::node_config`]), not the CLI's
//! settings, and run before them: a broken CLI `config.toml` never stops a node.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use clap::{Args, Subcommand};
use eyre::{Report, WrapErr, bail, eyre};
use serde_json::json;
use vouch_contracts::{AddressBook, AddressBookError};
use vouch_node::{
    Node, NodeKeys,
    chain::ChainView,
    guard::{Interchange, OpenMode, SigningGuard},
};
use vouch_primitives::ChainBinding;

use crate::{
    GlobalArgs,
    context::blocking,
    keyring,
    node_config::NodeSettings,
    output::{Output, count, hex0x},
};

/// How the node's settings are resolved (the `after_help` of `vouch node` and `vouch node run`).
pub(crate) const SETTINGS_HELP: &str = "Settings: built-in defaults < the node's config file, named by --config (`vouch \
    config default --node` prints one with every key) < environment variables < flags. Of the global options, --rpc \
    and --addresses (or VOUCH_RPC, VOUCH_ADDRESSES) override the file's `[chain]` keys, and --timeout bounds the chain \
    checks before start; --datadir, --from and --password-file do not apply: the node's data directory and keystores \
    are in its config file.";

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the operator node until SIGINT or SIGTERM (it finishes the requests in progress, then exits 0): the HTTP
    /// API, on-chain calls, signing through the signing guard, signature sharing and certificate submission. Needs an
    /// initialised signing database (`vouch node init`) and the BLS key registered on chain for the transaction key
    #[command(after_help = SETTINGS_HELP)]
    Run(RunArgs),
    /// Create the node's data directory and signing database for this operator key and deployment, and print where
    /// it is (idempotent: an existing database is checked and kept). Reads the chain to confirm the address book and
    /// decrypts both keystores
    #[command(after_help = SETTINGS_HELP)]
    Init(InitArgs),
    /// Export or import the signing database's records (interchange v1), to move the node to another machine
    #[command(subcommand)]
    Guard(GuardCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum GuardCommand {
    /// Write every record of the signing database to a new file (interchange v1; never overwrites). Needs no chain
    /// and no password; stop the node first when moving it, so that it signs nothing after the export
    #[command(after_help = SETTINGS_HELP)]
    Export(ExportArgs),
    /// Add the records of an exported file to the signing database (initialised first with `vouch node init`) and
    /// print how many; identical records are skipped, and one that conflicts with a record already signed refuses
    /// the whole import, naming the call
    #[command(after_help = SETTINGS_HELP)]
    Import(ImportArgs),
}

/// The override every `vouch node` command shares: where the node's state lives.
#[derive(Debug, Args)]
pub(crate) struct DataDirArg {
    /// The node's data directory (guard.sqlite, node.sqlite); overrides `data_dir` of the config file
    #[arg(long, env = "VOUCH_NODE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Run a blueprint bundled in this binary for an on-chain blueprint id, as NAME=ID; repeatable. Bundled in the
    /// default build: echo; with `--features ai`: embeddings, textgen
    #[arg(long = "blueprint", value_name = "NAME=ID", required = true, value_parser = parse_blueprint)]
    blueprints: Vec<BlueprintChoice>,
    /// Create the signing database if it is missing: only for an operator key that has never signed on this chain
    /// (otherwise `vouch node init` and `vouch node guard import` the old records first)
    #[arg(long)]
    init_guard: bool,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Where the HTTP API listens (port 0: any free port); overrides `[api] listen`
    #[arg(long, env = "VOUCH_NODE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The URL gateways and peers reach the API at, published on chain at start if it differs (`auto`:
    /// http://<listen address>); overrides `[api] announce`
    #[arg(long, env = "VOUCH_NODE_ANNOUNCE", value_name = "URL")]
    announce: Option<String>,
    /// Serve /metrics and /health on this address (keep it on loopback unless a firewall guards it); overrides
    /// `[metrics] listen` and enables them
    #[arg(long, env = "VOUCH_NODE_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Log one JSON object per line on stderr instead of text; overrides `[log] json`
    #[arg(long, env = "VOUCH_NODE_LOG_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    log_json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The file to write (must not exist)
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// An interchange file written by `vouch node guard export`
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// A blueprint this binary bundles, behind a cargo feature of the same name.
#[derive(Debug)]
struct Bundled {
    /// The name `--blueprint` takes.
    name: &'static str,
    /// Adds its router to the node for one on-chain blueprint id (loading what it needs, e.g. a model).
    add: fn(Node, u64) -> eyre::Result<Node>,
}

#[cfg(feature = "echo")]
fn add_echo(node: Node, blueprint_id: u64) -> eyre::Result<Node> {
    Ok(node.blueprint(blueprint_id, vouch_echo::router()))
}

#[cfg(feature = "embeddings")]
fn add_embeddings(node: Node, blueprint_id: u64) -> eyre::Result<Node> {
    Ok(node.serve(blueprint_id, vouch_embeddings::EmbeddingsBlueprint::default()))
}

#[cfg(feature = "textgen")]
fn add_textgen(node: Node, blueprint_id: u64) -> eyre::Result<Node> {
    Ok(node.serve(blueprint_id, vouch_textgen::TextGenBlueprint::default()))
}

/// Every blueprint this build bundles.
const BUNDLED: &[Bundled] = &[
    #[cfg(feature = "echo")]
    Bundled { name: "echo", add: add_echo },
    #[cfg(feature = "embeddings")]
    Bundled { name: "embeddings", add: add_embeddings },
    #[cfg(feature = "textgen")]
    Bundled { name: "textgen", add: add_textgen },
];

/// One `--blueprint NAME=ID`.
#[derive(Debug, Clone, Copy)]
struct BlueprintChoice {
    bundled: &'static Bundled,
    id: u64,
}

fn bundled_names() -> String {
    if BUNDLED.is_empty() {
        "none: this binary was built without blueprint features (e.g. `--features echo`)".to_owned()
    } else {
        BUNDLED.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
    }
}

fn parse_blueprint(text: &str) -> Result<BlueprintChoice, String> {
    let Some((name, id)) = text.split_once('=') else {
        return Err(format!("expected NAME=ID, e.g. echo=1 (bundled blueprints: {})", bundled_names()));
    };
    let name = name.trim();
    let bundled = BUNDLED.iter().find(|b| b.name == name).ok_or_else(|| {
        format!("`{name}` is not a blueprint bundled in this binary (bundled blueprints: {})", bundled_names())
    })?;
    let id = id.trim().parse::<u64>().map_err(|_| format!("`{id}` is not a blueprint id (a whole number)"))?;
    Ok(BlueprintChoice { bundled, id })
}

pub(crate) fn run(cmd: NodeCommand, global: &GlobalArgs, matches: &clap::ArgMatches, out: Output) -> eyre::Result<()> {
    let resolve = |dir: &DataDirArg| NodeSettings::resolve(global, matches, dir.data_dir.as_ref());
    match cmd {
        NodeCommand::Run(args) => {
            let settings = resolve(&args.data_dir)?;
            run_node(args, settings, out)
        }
        NodeCommand::Init(args) => {
            let settings = resolve(&args.data_dir)?;
            runtime(false)?.block_on(init(settings, out))
        }
        NodeCommand::Guard(GuardCommand::Export(args)) => {
            let settings = resolve(&args.data_dir)?;
            export(&args.output, &settings, out)
        }
        NodeCommand::Guard(GuardCommand::Import(args)) => {
            let settings = resolve(&args.data_dir)?;
            import(&args.file, &settings, out)
        }
    }
}

fn runtime(multi_thread: bool) -> eyre::Result<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| eyre!("cannot start the async runtime: {e}"))
}

/// The address book named by `[chain] address_book` (or --addresses).
fn load_book(s: &NodeSettings) -> eyre::Result<AddressBook> {
    AddressBook::load(&s.config.chain.address_book).map_err(|e| match e {
        AddressBookError::NotFound { path } => eyre!(
            "address book {} does not exist ({}): set `[chain] address_book` in the node config or pass --addresses \
             <FILE>",
            path.display(),
            s.address_book_source
        ),
        other => Report::new(other),
    })
}

/// Connects to `[chain] rpc_url` and confirms that the address book describes that chain.
async fn check_chain(s: &NodeSettings) -> eyre::Result<(DynProvider, AddressBook)> {
    let rpc = &s.config.chain.rpc_url;
    let url: alloy::transports::http::reqwest::Url =
        rpc.parse().map_err(|e| eyre!("RPC URL `{rpc}` ({}) is not a URL: {e}", s.rpc_source))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let unreachable = |why: String| eyre!("cannot reach RPC at {rpc} ({}): {why}", s.rpc_source);
    let chain_id = match tokio::time::timeout(s.timeout, provider.get_chain_id()).await {
        Err(_) => return Err(unreachable(format!("no answer to eth_chainId within {:?}", s.timeout))),
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(id)) => id,
    };
    let book = load_book(s)?;
    let book_path = s.config.chain.address_book.display();
    if book.chain_id != chain_id {
        bail!(
            "the address book {book_path} is for chain {}, but the RPC at {rpc} serves chain {chain_id}: wrong \
             `[chain] rpc_url` ({}), or a stale address book",
            book.chain_id,
            s.rpc_source
        );
    }
    match tokio::time::timeout(s.timeout, book.check(&provider)).await {
        Err(_) => return Err(unreachable(format!("checking the address book took longer than {:?}", s.timeout))),
        Ok(Err(e)) => {
            return Err(Report::new(e).wrap_err(format!(
                "the address book {book_path} does not match the chain at {rpc} (a restarted devnet?)"
            )));
        }
        Ok(Ok(())) => {}
    }
    Ok((provider, book))
}

/// Decrypts both keystores of `[operator]` (the KDFs run on a blocking thread).
async fn load_keys(s: &NodeSettings) -> eyre::Result<NodeKeys> {
    let operator = s.config.operator.clone();
    blocking(move || NodeKeys::load(&operator).map_err(Report::new)).await
}

/// Creates `dir` and its parents, private to the user (0700) where they are new.
pub(crate) fn create_private_dir(dir: &Path) -> eyre::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).wrap_err_with(|| format!("creating the data directory {}", dir.display()))
}

fn run_node(args: RunArgs, mut s: NodeSettings, out: Output) -> eyre::Result<()> {
    let blueprints = args.blueprints;
    for (i, a) in blueprints.iter().enumerate() {
        if let Some(b) = blueprints[..i].iter().find(|b| b.id == a.id) {
            bail!(
                "blueprint {} is given twice (--blueprint {}={0} and --blueprint {}={0}): one blueprint id runs one \
                 blueprint",
                a.id,
                b.bundled.name,
                a.bundled.name
            );
        }
    }
    let config = &mut s.config;
    if let Some(listen) = args.listen {
        config.api.listen = listen;
    }
    if let Some(announce) = args.announce {
        config.api.announce = Some(announce);
    }
    if let Some(listen) = args.metrics_listen {
        config.metrics.listen = listen;
        config.metrics.enabled = true;
    }
    if args.log_json {
        config.log.json = true;
    }
    vouch_node::logging::init(&config.log);

    runtime(true)?.block_on(async {
        let (_, book) = check_chain(&s).await?;
        let keys = load_keys(&s).await?;
        let mut node = Node::new(s.config.clone(), keys).init_guard(args.init_guard).address_book(book);
        for b in &blueprints {
            node = (b.bundled.add)(node, b.id)?;
        }
        let running = node.start().await?;
        let metrics = running.metrics_addr().map(|a| format!("http://{a}"));
        let listed: Vec<serde_json::Value> =
            blueprints.iter().map(|b| json!({"name": b.bundled.name, "blueprintId": b.id})).collect();
        let value = json!({
            "operator": running.operator(),
            "api": running.api_url(),
            "endpoint": running.endpoint(),
            "metrics": metrics,
            "guard": running.guard().path(),
            "dataDir": s.config.data_dir,
            "blueprints": listed,
        });
        let mut lines = vec![
            format!("node running: operator {}", running.operator()),
            format!("  api         {} (announced on chain: {})", running.api_url(), running.endpoint()),
            match &metrics {
                Some(m) => format!("  metrics     {m}/metrics, {m}/health"),
                None => "  metrics     off".to_owned(),
            },
            format!("  guard       {}", running.guard().path().display()),
        ];
        lines.extend(blueprints.iter().map(|b| format!("  blueprint   {} as {}", b.id, b.bundled.name)));
        lines.push("stop: Ctrl-C or SIGTERM (the requests in progress finish first)".to_owned());
        out.emit(&value, &lines.join("\n"));
        running.run_until_signal().await;
        out.progress("node stopped");
        Ok(())
    })
}

async fn init(s: NodeSettings, out: Output) -> eyre::Result<()> {
    let (provider, book) = check_chain(&s).await?;
    let keys = load_keys(&s).await?;
    let operator = keys.tx.address();
    let public = keys.bls.public_key();
    drop(keys);
    let chain = ChainView::new(provider, book);
    match chain.key_of(operator).await? {
        Some(registered) if registered == public => {}
        Some(registered) => bail!(
            "the BLS key in {} ({}) is not the key registered on chain for operator {operator} ({}): the node would \
             refuse to start; configure the registered key's keystore",
            s.config.operator.bls_keystore.display(),
            hex0x(public.to_compressed()),
            hex0x(registered.to_compressed())
        ),
        None => out.progress(&format!(
            "note: operator {operator} has no BLS key registered on chain yet: `vouch operator register` it before \
             `vouch node run`"
        )),
    }
    let binding = chain.binding();
    let data_dir = s.config.data_dir.clone();
    create_private_dir(&data_dir)?;
    let path = s.config.guard_path();
    let created = !path.exists();
    let guard = {
        let path = path.clone();
        blocking(move || SigningGuard::open(&path, OpenMode::Initialise, binding, &public).map_err(Report::new)).await?
    };
    let records = guard.export()?.records.len();
    let value = json!({
        "guard": path,
        "dataDir": data_dir,
        "created": created,
        "operator": operator,
        "chainId": binding.chain_id,
        "protocol": binding.contract,
        "publicKey": hex0x(public.to_compressed()),
        "records": records,
    });
    let status = if created { "initialised" } else { "already initialised" };
    let text = format!(
        "signing database {status}: {}\n  operator {operator}, BLS key {}\n  chain {}, protocol {}\n  {}",
        path.display(),
        hex0x(public.to_compressed()),
        binding.chain_id,
        binding.contract,
        count(u64::try_from(records).unwrap_or(u64::MAX), "record"),
    );
    out.emit(&value, &text);
    Ok(())
}

/// Opens the existing signing database, bound to the address book's deployment and the BLS keystore's public key
/// (read without its password). No chain needed.
fn open_guard(s: &NodeSettings) -> eyre::Result<SigningGuard> {
    let book = load_book(s)?;
    let keystore = &s.config.operator.bls_keystore;
    if keystore.as_os_str().is_empty() {
        bail!("no BLS keystore configured: set `[operator] bls_keystore` in {}", s.file.display());
    }
    let public = keyring::bls_public_key(keystore)?;
    let binding = ChainBinding::new(book.chain_id, book.contracts.protocol);
    Ok(SigningGuard::open(&s.config.guard_path(), OpenMode::Existing, binding, &public)?)
}

fn export(output: &Path, s: &NodeSettings, out: Output) -> eyre::Result<()> {
    if output.exists() {
        bail!("{} already exists: an export never overwrites a file; choose another --output", output.display());
    }
    let guard = open_guard(s)?;
    let data = guard.export()?;
    data.write_new_file(output)?;
    let records = data.records.len();
    let value = json!({
        "file": output,
        "guard": guard.path(),
        "records": records,
        "chainId": data.chain_id,
        "protocol": data.protocol,
        "publicKey": data.public_key,
    });
    out.emit(
        &value,
        &format!(
            "exported {} from {} to {}",
            count(u64::try_from(records).unwrap_or(u64::MAX), "record"),
            guard.path().display(),
            output.display()
        ),
    );
    Ok(())
}

fn import(file: &Path, s: &NodeSettings, out: Output) -> eyre::Result<()> {
    let guard = open_guard(s)?;
    let data = Interchange::read_file(file)?;
    let summary = guard.import(&data)?;
    let value = json!({
        "file": file,
        "guard": guard.path(),
        "records": data.records.len(),
        "imported": summary.imported,
        "identical": summary.identical,
    });
    out.emit(
        &value,
        &format!(
            "imported {} into {} ({} already there)",
            count(u64::try_from(summary.imported).unwrap_or(u64::MAX), "record"),
            guard.path().display(),
            summary.identical
        ),
    );
    Ok(())
}
