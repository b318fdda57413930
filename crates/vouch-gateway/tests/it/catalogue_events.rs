//! The gateway's caches follow the chain's events (docs/design/catalogue-events.md): a terminated service, new
//! blueprint metadata and a new operator endpoint are seen within a couple of poll intervals, far below the backstop
//! TTL. Each test first shows that a cache without the watcher is still stale at that point.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy_primitives::keccak256;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;
use vouch_contracts::{
    VouchProtocol, VouchStaking,
    alloy::providers::Provider as _,
    view::{ChainView, SERVICE_ACTIVE},
};
use vouch_gateway::{catalogue::Catalogue, events::BACKSTOP_TTL};

use crate::common::{Setup, TestResult, paid_call};

/// The gateway's event poll interval in these tests.
const POLL: Duration = Duration::from_millis(250);

/// How long a change may take to show: two poll intervals, plus room for the RPC round trips on a loaded machine.
fn allowed() -> Duration {
    2 * POLL + Duration::from_secs(2)
}

/// A network whose gateway polls events every [`POLL`].
async fn start(quorum_bps: u16) -> Result<Setup, Box<dyn std::error::Error>> {
    let mut setup = Setup::start(quorum_bps).await?;
    setup.config.events_poll_ms = u64::try_from(POLL.as_millis())?;
    setup.restart_gateway().await?;
    Ok(setup)
}

/// A view of the same deployment with no watcher: what the gateway's caches did before events.
fn unwatched(setup: &Setup) -> ChainView {
    let devnet = setup.net.devnet();
    ChainView::new(devnet.read_provider().erased(), devnet.address_book().clone()).with_cache_ttl(BACKSTOP_TTL)
}

/// Polls `check` until it returns `Some`, failing after [`allowed`] from `since`.
async fn within<T, F, Fut>(
    what: &str,
    since: Instant,
    mut check: F,
) -> Result<(T, Duration), Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Box<dyn std::error::Error>>>,
{
    loop {
        if let Some(v) = check().await? {
            return Ok((v, since.elapsed()));
        }
        if since.elapsed() > allowed() {
            return Err(format!("{what}: not seen within {:?}", allowed()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn listing(client: &reqwest::Client, setup: &Setup) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(client.get(format!("{}/v1/services", setup.gateway().url())).send().await?.error_for_status()?.json().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_metadata_and_a_termination_show_within_two_polls() -> TestResult {
    crate::common::logs();
    let setup = start(6_667).await?;
    let devnet = setup.net.devnet();
    let book = devnet.address_book().clone();
    let id = setup.net.service_id();
    let client = reqwest::Client::new();

    // The gateway reads (and caches) the listing and the service.
    let list = listing(&client, &setup).await?;
    assert_eq!(list["services"][0]["serviceId"], id.0, "{list}");
    let old_uri = list["services"][0]["metadata"]["uri"].clone();
    let r = client.post(setup.job_url(0)).body("{}").send().await?;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let view = unwatched(&setup);
    let catalogue = Catalogue::new(view.clone()).with_ttl(BACKSTOP_TTL);
    assert_eq!(catalogue.list().await?.len(), 1);
    assert_eq!(view.service(id).await?.ok_or("service")?.status, SERVICE_ACTIVE);

    // The developer publishes new metadata (same jobs, another name).
    let mut metadata: Value = serde_json::from_slice(&std::fs::read(
        old_uri.as_str().and_then(|u| u.strip_prefix("file://")).ok_or("file:// metadata")?,
    )?)?;
    metadata["name"] = "renamed by an event".into();
    let text = serde_json::to_string_pretty(&metadata)?;
    let path = setup._dir.path().join("renamed.json");
    std::fs::write(&path, &text)?;
    let new_uri = format!("file://{}", path.display());
    let developer = devnet.provider(devnet.developer().signer());
    let receipt = VouchProtocol::new(book.contracts.protocol, &developer)
        .updateBlueprintMetadata(devnet.blueprint_id(), new_uri.clone(), keccak256(text.as_bytes()))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status());
    let since = Instant::now();
    // Stale without events: a catalogue with only a TTL still lists the old document.
    assert_eq!(catalogue.list().await?[0].metadata.uri, old_uri.as_str().ok_or("uri")?);
    let (_, took) = within("the new metadata in the listing", since, || async {
        let list = listing(&client, &setup).await?;
        let s = &list["services"][0];
        Ok((s["metadata"]["uri"] == new_uri.as_str()).then(|| {
            assert_eq!(s["metadata"]["verified"], true, "{s}");
            assert_eq!(s["blueprint"], "renamed by an event", "{s}");
        }))
    })
    .await?;
    eprintln!("new metadata listed after {took:?}");

    // The customer terminates the service.
    let customer = devnet.provider(devnet.customer().signer());
    let receipt = VouchProtocol::new(book.contracts.protocol, &customer)
        .terminateService(id.0)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status());
    let since = Instant::now();
    // Stale without events: the cached service is still active and still listed.
    assert_eq!(view.service(id).await?.ok_or("service")?.status, SERVICE_ACTIVE);
    assert_eq!(catalogue.list().await?.len(), 1);
    let (_, took) = within("the termination at the paid-call path", since, || async {
        let r = client.post(setup.job_url(0)).body("{}").send().await?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        Ok((status == StatusCode::CONFLICT).then(|| assert_eq!(body["error"]["code"], "service_not_active", "{body}")))
    })
    .await?;
    eprintln!("termination refused after {took:?}");
    let list = listing(&client, &setup).await?;
    assert_eq!(list["services"].as_array().map(Vec::len), Some(0), "terminated services are not listed: {list}");
    Ok(())
}

/// An HTTP forwarder to `target` that counts the job requests (`POST /v1/jobs`, the fan-out's) it forwards; the
/// settlement batcher's `/v1/batches` are forwarded but not counted (it keeps its own cache: see the design note).
struct Forwarder {
    url: String,
    jobs: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forwarder(target: String) -> Result<Forwarder, Box<dyn std::error::Error>> {
    use axum::{
        body::{Body, to_bytes},
        extract::{Request, State},
        http::{HeaderName, StatusCode as Status, header},
        response::Response,
    };
    #[derive(Clone)]
    struct Target {
        url: String,
        client: reqwest::Client,
        jobs: Arc<AtomicUsize>,
    }
    async fn forward(State(t): State<Target>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        if parts.uri.path() == "/v1/jobs" {
            t.jobs.fetch_add(1, Ordering::SeqCst);
        }
        let fail = |e: &dyn std::fmt::Display| {
            let mut r = Response::new(Body::from(e.to_string()));
            *r.status_mut() = Status::BAD_GATEWAY;
            r
        };
        let body = match to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => return fail(&e),
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut out = t.client.request(parts.method, format!("{}{path}", t.url.trim_end_matches('/'))).body(body);
        for (name, value) in &parts.headers {
            if name != header::HOST && name != header::CONTENT_LENGTH {
                out = out.header(name, value);
            }
        }
        let answer = match out.send().await {
            Ok(a) => a,
            Err(e) => return fail(&e),
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        let bytes = match answer.bytes().await {
            Ok(b) => b,
            Err(e) => return fail(&e),
        };
        let mut r = Response::new(Body::from(bytes));
        *r.status_mut() = status;
        let hop: [HeaderName; 3] = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION];
        for (name, value) in &headers {
            if !hop.contains(name) {
                r.headers_mut().insert(name, value.clone());
            }
        }
        r
    }
    let jobs = Arc::new(AtomicUsize::new(0));
    let state = Target { url: target, client: reqwest::Client::new(), jobs: jobs.clone() };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Forwarder { url, jobs, task })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_operator_endpoint_is_used_by_the_next_calls_without_waiting_for_the_ttl() -> TestResult {
    crate::common::logs();
    let setup = start(6_667).await?;
    let devnet = setup.net.devnet();
    let book = devnet.address_book().clone();
    let operator = &devnet.operators()[0];

    // A call: the gateway reads (and caches) every operator's endpoint.
    let (status, answer, _) = paid_call(&setup, 0, br#"{"message":"which endpoint?"}"#).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let view = unwatched(&setup);
    let old = view.endpoint_of(operator.address()).await?;

    // Operator 0 moves behind a forwarder to its node.
    let forwarder = forwarder(old.clone()).await?;
    let wallet = devnet.provider(operator.signer());
    let receipt = VouchStaking::new(book.contracts.staking, &wallet)
        .setEndpoint(forwarder.url.clone())
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status());
    let since = Instant::now();
    // Stale without events: the cached endpoint is still the old one.
    assert_eq!(view.endpoint_of(operator.address()).await?, old);
    let (answer, took) = within("a call through the new endpoint", since, || async {
        let (status, answer, _) = paid_call(&setup, 0, br#"{"message":"which endpoint?"}"#).await?;
        assert_eq!(status, StatusCode::OK, "{answer}");
        Ok((forwarder.jobs.load(Ordering::SeqCst) > 0).then_some(answer))
    })
    .await?;
    eprintln!("new endpoint used after {took:?}");
    // The node behind the new endpoint signed too (this quorum needs all three).
    let certificate: vouch_primitives::Certificate = serde_json::from_value(answer["certificate"].clone())?;
    assert_eq!(certificate.signer_bitmap.count_ones(), 3, "{answer}");
    Ok(())
}
