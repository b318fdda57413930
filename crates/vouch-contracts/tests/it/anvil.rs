//! A real anvil (Prague: EIP-2537 BLS precompiles) per test, on a port the OS picks, killed on drop.

use std::{
    env,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use vouch_contracts::alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder, WalletProvider},
    signers::local::PrivateKeySigner,
};

/// anvil's well-known development keys (mnemonic "test test … junk"): never use them elsewhere.
const KEYS: [&str; 3] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];

pub(crate) struct Anvil {
    child: Child,
    url: String,
}

/// The anvil binary: on `PATH`, else the one `scripts/setup.sh` installs under `<repo>/node_modules/.bin`.
fn find_anvil() -> Option<PathBuf> {
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("anvil"));
    let in_repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/.bin/anvil");
    on_path.chain([in_repo]).find(|p| p.is_file())
}

impl Anvil {
    pub(crate) fn start() -> Self {
        let bin = find_anvil().expect("anvil not found: run ./scripts/setup.sh");
        let mut child = Command::new(&bin)
            .args(["--hardfork", "prague", "--host", "127.0.0.1", "--port", "0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the port from "Listening on 127.0.0.1:<port>", then keeps draining stdout so anvil never blocks on
        // a full pipe.
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("Listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("anvil did not report its address within 60 s");
        };
        Self { child, url: format!("http://{addr}") }
    }

    /// A provider signing with development key `index`.
    pub(crate) fn provider(&self, index: usize) -> impl Provider + WalletProvider + Clone + use<> {
        let signer: PrivateKeySigner = KEYS[index].parse().expect("valid key");
        ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(self.url.parse().expect("valid url"))
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
