//! [`Embedder`]: the model on a worker thread that batches the inputs of concurrent calls together.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use tokio::sync::{oneshot, watch};

use crate::model::{EmbedError, MiniLm, check_inputs};

/// How the worker merges concurrent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Once a call is taken, how long the worker waits for more calls to run with it. Zero (the default) takes
    /// only the calls already queued: no call ever waits for another, and calls that arrive while the model runs
    /// are merged into the next round.
    pub max_wait: Duration,
    /// Most inputs merged into one round (a call is never split; one call alone may be up to
    /// [`MAX_INPUTS`](crate::MAX_INPUTS)).
    pub max_round_inputs: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self { max_wait: Duration::ZERO, max_round_inputs: 512 }
    }
}

/// Embeddings of one call, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedded {
    /// One unit vector of [`DIMENSIONS`](crate::DIMENSIONS) floats per input.
    pub embeddings: Vec<Vec<f32>>,
    /// Tokens the model read for each input (`[CLS]` and `[SEP]` included, after truncation).
    pub tokens: Vec<usize>,
}

/// Counters of the worker, for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Calls answered.
    pub calls: u64,
    /// Rounds run (each merges one or more calls).
    pub rounds: u64,
    /// Inputs embedded.
    pub inputs: u64,
}

/// The embedding model, loaded once, on a dedicated worker thread.
///
/// Calls are queued; the worker takes every queued call (up to [`BatcherConfig::max_round_inputs`] inputs),
/// tokenizes them, and embeds all their inputs together, sorted by length in batches of similar lengths
/// ([`MiniLm::embed_tokens`]). So concurrent single-sentence calls share forward passes. An input's embedding
/// depends on the other inputs of its round only through float rounding (see the crate's README).
///
/// Cheap to clone (an `Arc`); the worker stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Embedder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    jobs: mpsc::Sender<Job>,
    /// `None` while loading; then `Ok` or the load error's text.
    ready: watch::Receiver<Option<Result<(), String>>>,
    stats: Arc<Stats>,
}

#[derive(Debug, Default)]
struct Stats {
    calls: AtomicU64,
    rounds: AtomicU64,
    inputs: AtomicU64,
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Embedded, EmbedError>>,
}

impl Embedder {
    /// Starts the worker with a model already loaded.
    pub fn new(model: MiniLm, config: BatcherConfig) -> Self {
        Self::spawn(move || Ok(model), config)
    }

    /// Starts the worker, which first runs `load` (on its own thread: this returns at once). Calls made before
    /// the model is loaded wait for it; if loading fails, every call fails with
    /// [`EmbedError::Unavailable`] and [`Embedder::ready`] says why.
    pub fn spawn(load: impl FnOnce() -> Result<MiniLm, EmbedError> + Send + 'static, config: BatcherConfig) -> Self {
        let (jobs, queue) = mpsc::channel();
        let (loaded, ready) = watch::channel(None);
        let stats = Arc::new(Stats::default());
        let worker_stats = Arc::clone(&stats);
        let worker = move || match load() {
            Ok(model) => {
                loaded.send_replace(Some(Ok(())));
                serve(&model, &queue, config, &worker_stats);
            }
            Err(error) => {
                let reason = error.to_string();
                tracing::error!(%reason, "the embedding model did not load");
                loaded.send_replace(Some(Err(reason.clone())));
                for job in queue {
                    let _ = job.reply.send(Err(EmbedError::Unavailable(reason.clone())));
                }
            }
        };
        if let Err(error) = thread::Builder::new().name("vouch-embeddings".to_owned()).spawn(worker) {
            // Without a thread there is no worker: the receiver is gone, and every call says so.
            tracing::error!(%error, "cannot start the embeddings worker thread");
        }
        Self { inner: Arc::new(Inner { jobs, ready, stats }) }
    }

    /// The process-wide embedder of the pinned model at its default location ([`MiniLm::load_default`]),
    /// started on first use and shared by every caller, so the model is loaded once.
    pub fn shared() -> Self {
        static SHARED: OnceLock<Embedder> = OnceLock::new();
        SHARED.get_or_init(|| Self::spawn(MiniLm::load_default, BatcherConfig::default())).clone()
    }

    /// Waits until the model is loaded; its load error otherwise.
    pub async fn ready(&self) -> Result<(), EmbedError> {
        let mut ready = self.inner.ready.clone();
        let state = ready
            .wait_for(Option::is_some)
            .await
            .map_err(|_| EmbedError::Unavailable("the embeddings worker stopped while loading".to_owned()))?;
        match state.as_ref() {
            Some(Err(reason)) => Err(EmbedError::Unavailable(reason.clone())),
            _ => Ok(()),
        }
    }

    /// Embeds `texts` (checked first: 1 to [`MAX_INPUTS`](crate::MAX_INPUTS) non-empty texts of at most
    /// [`MAX_INPUT_CHARS`](crate::MAX_INPUT_CHARS) characters), together with the inputs of concurrent calls.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embedded, EmbedError> {
        check_inputs(&texts)?;
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job { texts, reply })
            .map_err(|_| EmbedError::Unavailable("the embeddings worker is not running".to_owned()))?;
        answer.await.map_err(|_| EmbedError::Unavailable("the embeddings worker stopped".to_owned()))?
    }

    /// Counters since the worker started.
    pub fn stats(&self) -> BatcherStats {
        let stats = &self.inner.stats;
        BatcherStats {
            calls: stats.calls.load(Ordering::Relaxed),
            rounds: stats.rounds.load(Ordering::Relaxed),
            inputs: stats.inputs.load(Ordering::Relaxed),
        }
    }
}

/// The worker's loop: take the queued calls, embed them in one round, answer each; until every sender is gone.
fn serve(model: &MiniLm, queue: &mpsc::Receiver<Job>, config: BatcherConfig, stats: &Stats) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut round = vec![first];
        let mut inputs = round[0].texts.len();
        let deadline = Instant::now() + config.max_wait;
        while inputs < config.max_round_inputs {
            let next = match deadline.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => queue.recv_timeout(wait).ok(),
                _ => queue.try_recv().ok(),
            };
            let Some(job) = next else { break };
            if inputs + job.texts.len() > config.max_round_inputs {
                held = Some(job);
                break;
            }
            inputs += job.texts.len();
            round.push(job);
        }
        // A call whose caller is gone (timed out, cancelled) is not computed.
        round.retain(|job| !job.reply.is_closed());
        if round.is_empty() {
            continue;
        }
        stats.rounds.fetch_add(1, Ordering::Relaxed);
        run_round(model, round, stats);
    }
}

/// Tokenizes every call of the round, embeds all their inputs together, and answers each call.
fn run_round(model: &MiniLm, round: Vec<Job>, stats: &Stats) {
    let mut tokens: Vec<Vec<u32>> = Vec::new();
    let mut calls = Vec::with_capacity(round.len());
    for job in round {
        match model.tokenize(&job.texts) {
            Ok(ids) => {
                let start = tokens.len();
                tokens.extend(ids);
                calls.push((job.reply, start..tokens.len()));
            }
            Err(error) => {
                let _ = job.reply.send(Err(error));
            }
        }
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| model.embed_tokens(&tokens)))
        .unwrap_or_else(|_| Err(EmbedError::Unavailable("the model panicked on this round".to_owned())));
    match outcome {
        Ok(mut embeddings) => {
            for (reply, range) in calls.into_iter().rev() {
                let counts = tokens[range.clone()].iter().map(Vec::len).collect();
                let embedded = Embedded { embeddings: embeddings.split_off(range.start), tokens: counts };
                stats.calls.fetch_add(1, Ordering::Relaxed);
                stats.inputs.fetch_add(range.len() as u64, Ordering::Relaxed);
                let _ = reply.send(Ok(embedded));
            }
        }
        Err(error) => {
            let reason = error.to_string();
            tracing::error!(%reason, "an embeddings round failed");
            for (reply, _) in calls {
                let _ = reply.send(Err(EmbedError::Unavailable(reason.clone())));
            }
        }
    }
}
