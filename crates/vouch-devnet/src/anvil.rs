//! The anvil process: found on `PATH` or where `./scripts/setup.sh` installs it, started on a port (0 = one the OS
//! picks), its output drained into `anvil.log` (so it never blocks on a full pipe), killed and reaped on drop.

use std::{
    collections::VecDeque,
    env,
    fs::File,
    io::{BufRead as _, BufReader, Read, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
    thread::{self, JoinHandle},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::DevnetError;

/// Lines of anvil's output kept in memory for error messages.
const TAIL_LINES: usize = 40;

/// Where `./scripts/setup.sh` installs anvil in this repository: `<repo>/node_modules/.bin/anvil`.
pub fn repo_anvil() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/.bin/anvil")
}

/// The anvil binary: `explicit` if given, else the first `anvil` on `PATH`, else [`repo_anvil`].
pub fn find_anvil(explicit: Option<&Path>) -> Result<PathBuf, DevnetError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(DevnetError::AnvilSpawn { path: path.to_owned(), source: std::io::ErrorKind::NotFound.into() })
        };
    }
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("anvil"));
    let repo = repo_anvil();
    on_path.chain([repo.clone()]).find(|p| p.is_file()).ok_or(DevnetError::AnvilNotFound { repo_anvil: repo })
}

/// The last lines anvil printed (stdout and stderr interleaved by arrival).
#[derive(Debug, Default)]
struct Tail(VecDeque<String>);

impl Tail {
    fn push(&mut self, line: String) {
        if self.0.len() == TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }
}

/// A running anvil; dropping it kills the process and waits for it.
#[derive(Debug)]
pub(crate) struct Anvil {
    child: Child,
    tail: Arc<Mutex<Tail>>,
    drains: Vec<JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Anvil {
    /// Starts `bin` with `--hardfork prague` on 127.0.0.1:`port` (0 = a free port the OS picks), copying its output to
    /// `log`. Returns at once; [`Anvil::listening`] waits for the address.
    pub(crate) fn spawn(
        bin: &Path,
        port: u16,
        chain_id: u64,
        log: File,
    ) -> Result<(Self, oneshot::Receiver<SocketAddr>), DevnetError> {
        let mut child = Command::new(bin)
            .args(["--hardfork", "prague", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--chain-id", &chain_id.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| DevnetError::AnvilSpawn { path: bin.to_owned(), source })?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let log = Arc::new(Mutex::new(log));
        let (tx, rx) = oneshot::channel();
        let mut drains = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            drains.push(drain(stdout, Arc::clone(&tail), Arc::clone(&log), Some(tx)));
        }
        if let Some(stderr) = child.stderr.take() {
            drains.push(drain(stderr, Arc::clone(&tail), log, None));
        }
        Ok((Self { child, tail, drains, exited: None }, rx))
    }

    /// Waits until anvil reports `Listening on <addr>` and returns the address; fails if it exits first or takes
    /// longer than `timeout`.
    pub(crate) async fn listening(
        &mut self,
        address: oneshot::Receiver<SocketAddr>,
        timeout: Duration,
    ) -> Result<SocketAddr, DevnetError> {
        match tokio::time::timeout(timeout, address).await {
            Ok(Ok(address)) => Ok(address),
            // stdout closed before the line: anvil is exiting. Reap it for its status.
            Ok(Err(_)) => {
                let status = self.child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
                self.join_drains();
                Err(DevnetError::AnvilExited { status, output: self.output() })
            }
            Err(_) => Err(DevnetError::AnvilTimeout { waited: timeout, output: self.output() }),
        }
    }

    /// anvil's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if anvil has exited (reaping it), else `None`.
    pub(crate) fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// anvil's last lines of output.
    pub(crate) fn output(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.0.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// Kills anvil (if still running), waits for it and for its output to be drained. Idempotent.
    pub(crate) fn kill(&mut self) -> std::io::Result<()> {
        if self.try_wait().is_none() {
            // Fails only if it exited in between, which `wait` then reports.
            let _ = self.child.kill();
            self.exited = Some(self.child.wait()?);
        }
        self.join_drains();
        Ok(())
    }

    fn join_drains(&mut self) {
        for handle in self.drains.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Copies `stream` line by line to `log` and `tail` until it closes; on stdout, sends the `Listening on` address once.
fn drain(
    stream: impl Read + Send + 'static,
    tail: Arc<Mutex<Tail>>,
    log: Arc<Mutex<File>>,
    mut listening: Option<oneshot::Sender<SocketAddr>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end();
            if let Some(address) = line.strip_prefix("Listening on ")
                && let Ok(address) = address.trim().parse::<SocketAddr>()
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(address);
            }
            {
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = writeln!(log, "{line}");
            }
            tail.lock().unwrap_or_else(PoisonError::into_inner).push(line.to_owned());
        }
    })
}
