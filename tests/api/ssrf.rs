//! Outbound requests that cannot be turned against the network (issue 12 §3): non-public
//! addresses refused at registration and at delivery, names checked once and connected to
//! as checked, tenant-facing errors without network details, and tenants isolated from each
//! other's slow receivers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use recommande::app::webhook::{WebhookEvent, deliver_due, fan_out, post_signed};
use recommande::config::{SecretText, WitnessSettings, WitnessWebhook};
use recommande::core::clock::{SystemClock, unix_micros};
use recommande::infra::net_guard::{Lookup, Outbound, OutboundPolicy, REFUSED};
use recommande::infra::storage::WebhookRow;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{Engine, TestApp, fresh_database, settings_for, spawn_app, spawn_app_with};

crate::on_both_engines!(
    every_form_of_a_non_public_address_is_refused_at_registration_and_nothing_is_stored,
    webhooks_stored_while_loopback_was_allowed_are_refused_at_delivery_once_it_is_not,
    one_tenants_hanging_receiver_does_not_delay_another_tenants_delivery,
    a_witness_at_a_non_public_address_stops_the_start_unless_its_range_is_allowed,
    claims_take_at_most_four_deliveries_per_tenant_and_none_of_a_busy_tenant,
);

const SECRET: &str = "whsec-0123456789-abcdef";

/// Every form of a loopback or metadata target a URL parser or a resolver accepts.
fn forms(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "127.1",
        "[::ffff:7f00:1]",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "localhost",
        "api.localhost",
        "metadata.google.internal",
        "instance-data",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/hooks"))
    .collect()
}

/// A receiver on 127.0.0.1:0 answering 200 and counting requests.
async fn receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    async fn receive(State(count): State<Arc<AtomicUsize>>, _body: Bytes) -> StatusCode {
        count.fetch_add(1, Ordering::SeqCst);
        StatusCode::OK
    }
    let router = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(count.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("receiver") });
    (port, count)
}

async fn post_webhook(app: &TestApp, key: &str, url: &str) -> reqwest::Response {
    app.post_json_as(
        key,
        "/v1/webhooks",
        &json!({"url": url, "secret": SECRET, "events": ["letter.deposited"]}),
    )
    .await
}

async fn tenant_of(app: &TestApp, name: &str) -> String {
    app.service
        .storage
        .list_api_keys(Some(name))
        .await
        .expect("keys")[0]
        .tenant_id
        .clone()
}

fn event_of(letter: &Value, tenant_id: &str) -> WebhookEvent {
    WebhookEvent {
        tenant_id: tenant_id.to_string(),
        letter_id: letter["id"].as_str().expect("id").to_string(),
        event: "letter.deposited".into(),
        evidence_id: letter["evidence"][0]["id"]
            .as_str()
            .expect("evidence")
            .to_string(),
        occurred_at: letter["evidence"][0]["event_time"]
            .as_str()
            .expect("time")
            .to_string(),
    }
}

async fn every_form_of_a_non_public_address_is_refused_at_registration_and_nothing_is_stored(
    engine: Engine,
) {
    // Without the test helpers' loopback allowance: the service's own default.
    let Some(app) = spawn_app_with(engine, Arc::new(SystemClock), |s| {
        s.outbound.allowed_private.clear()
    })
    .await
    else {
        return;
    };
    let mut urls = forms(8080);
    urls.extend(
        [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "http://0xa9fea9fe/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://metadata/",
            "http://instance-data/latest/",
            "http://10.0.0.1/hooks",
            "http://100.64.0.1/hooks",
            "http://192.168.1.1/hooks",
            "http://0.0.0.0/hooks",
            "http://[fe80::1]/hooks",
            "http://[fd00:ec2::254]/hooks",
            "http://[fec0::1]/hooks",
            "http://[64:ff9b::7f00:1]/hooks",
            "http://[2002:7f00:1::1]/hooks",
            "http://224.0.0.1/hooks",
            "http://255.255.255.255/hooks",
            "http://192.0.2.1/hooks",
        ]
        .map(String::from),
    );
    for url in &urls {
        let response = post_webhook(&app, &app.api_key, url).await;
        assert_eq!(response.status(), 422, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{url}"
        );
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
        assert_eq!(
            problem["errors"].as_array().map(Vec::len),
            Some(1),
            "{problem}"
        );
    }
    let listed: Value = app.get_json("/v1/webhooks").await;
    assert_eq!(listed["items"], json!([]), "nothing half-registered");
    // A public name is accepted (resolved at delivery only).
    let response = post_webhook(&app, &app.api_key, "http://hooks.example.fr/lre").await;
    assert_eq!(response.status(), 201);
}

async fn webhooks_stored_while_loopback_was_allowed_are_refused_at_delivery_once_it_is_not(
    engine: Engine,
) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (port, received) = receiver().await;
    let tenant = tenant_of(&app, "Cabinet Recouvr").await;
    // Stored as written (as an older version or an allowing configuration kept them),
    // without the normalisation of registration.
    let now = OffsetDateTime::now_utc();
    let urls = forms(port);
    for url in &urls {
        let row = WebhookRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.clone(),
            url: url.clone(),
            secret: SECRET.into(),
            events: vec!["letter.deposited".into()],
            created_at: unix_micros(now),
            deleted_at: None,
            previous_secret: None,
            secret_rotated_at: None,
        };
        app.service
            .storage
            .insert_webhook(&row, None)
            .await
            .expect("webhook");
    }
    let letter = app.deposit().await;
    let storage = &app.service.storage;
    let created = fan_out(storage, &event_of(&letter, &tenant), now)
        .await
        .expect("fan out");
    assert_eq!(created, urls.len());

    // The configuration without `[outbound] allowed_private`.
    let strict = Outbound::new(OutboundPolicy::default()).expect("client");
    let mut attempted = 0;
    while attempted < urls.len() {
        let n = deliver_due(storage, &strict, now, 100)
            .await
            .expect("deliver");
        assert!(n > 0, "every delivery is attempted");
        assert!(n <= recommande::app::webhook::PER_TENANT_CONCURRENCY, "{n}");
        attempted += n;
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        0,
        "nothing reached 127.0.0.1"
    );
    for webhook in storage.active_webhooks(&tenant).await.expect("webhooks") {
        let log = storage
            .list_deliveries(&tenant, &webhook.id, None, 10)
            .await
            .expect("deliveries");
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].attempts, 1, "{}", webhook.url);
        assert_eq!(
            log[0].last_error.as_deref(),
            Some(REFUSED),
            "{}",
            webhook.url
        );
        assert!(log[0].delivered_at.is_none());
    }

    // Control: with loopback allowed, the same deliveries do reach the receiver — except
    // the names refused whatever they resolve to (4), ::1 (not in 127.0.0.1/32) and the
    // metadata address (2 spellings), refused again.
    let later = now + time::Duration::hours(1);
    let mut attempted = 0;
    while attempted < urls.len() {
        attempted += deliver_due(storage, &app.service.outbound, later, 100)
            .await
            .expect("deliver");
    }
    assert_eq!(received.load(Ordering::SeqCst), urls.len() - 7);
}

/// A fixed name table standing for DNS, counting lookups.
#[derive(Default)]
struct Table {
    names: HashMap<String, Vec<IpAddr>>,
    lookups: Mutex<Vec<String>>,
}

impl Lookup for Table {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        self.lookups.lock().expect("lock").push(host.clone());
        let found = self.names.get(&host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
        })
    }
}

fn table() -> Arc<Table> {
    let ip = |t: &str| t.parse::<IpAddr>().expect("ip");
    Arc::new(Table {
        names: HashMap::from([
            ("hooks.example.test".to_string(), vec![ip("127.0.0.1")]),
            (
                "mixed.example.test".to_string(),
                vec![ip("93.184.215.14"), ip("127.0.0.1")],
            ),
            ("meta.example.test".to_string(), vec![ip("169.254.169.254")]),
            (
                "mapped.example.test".to_string(),
                vec![ip("::ffff:127.0.0.1")],
            ),
        ]),
        lookups: Mutex::default(),
    })
}

async fn post(outbound: &Outbound, url: &str) -> (Option<u16>, Option<String>) {
    post_signed(
        outbound,
        url,
        &[SECRET.as_bytes()],
        "letter.deposited",
        "d-1",
        b"{}",
        OffsetDateTime::now_utc(),
    )
    .await
}

#[tokio::test]
async fn a_name_is_resolved_once_refused_if_any_address_is_not_public_and_connected_to_as_checked()
{
    let (port, received) = receiver().await;
    let names = table();
    let strict = Outbound::with_lookup(OutboundPolicy::default(), names.clone()).expect("client");
    for host in [
        "hooks.example.test",
        "mixed.example.test",
        "meta.example.test",
        "mapped.example.test",
    ] {
        let outcome = post(&strict, &format!("http://{host}:{port}/hooks")).await;
        assert_eq!(outcome, (None, Some(REFUSED.to_string())), "{host}");
    }
    assert_eq!(received.load(Ordering::SeqCst), 0);
    // A refused name is never even looked up.
    let outcome = post(&strict, &format!("http://localhost:{port}/hooks")).await;
    assert_eq!(outcome.1.as_deref(), Some(REFUSED));
    assert!(
        !names
            .lookups
            .lock()
            .expect("lock")
            .contains(&"localhost".to_string())
    );

    // Loopback allowed: the request goes to the one address the table gave — a name no
    // real resolver knows, so a second resolution could not have reached the receiver.
    let policy = OutboundPolicy {
        allowed_private: vec!["127.0.0.1/32".parse().expect("range")],
        require_https: false,
    };
    let allowed = Outbound::with_lookup(policy, names.clone()).expect("client");
    names.lookups.lock().expect("lock").clear();
    let outcome = post(&allowed, &format!("http://hooks.example.test:{port}/hooks")).await;
    assert_eq!(outcome, (Some(200), None));
    assert_eq!(received.load(Ordering::SeqCst), 1);
    assert_eq!(
        *names.lookups.lock().expect("lock"),
        ["hooks.example.test"],
        "one resolution for the connection"
    );
    let outcome = post(&allowed, &format!("http://meta.example.test:{port}/hooks")).await;
    assert_eq!(outcome.1.as_deref(), Some(REFUSED));

    // What a tenant reads of other failures: no OS error, no address.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let outcome = post(&allowed, &format!("http://127.0.0.1:{closed_port}/hooks")).await;
    assert_eq!(outcome, (None, Some("unreachable".to_string())));
    let outcome = post(
        &allowed,
        &format!("http://unknown.example.test:{port}/hooks"),
    )
    .await;
    assert_eq!(outcome, (None, Some("unreachable".to_string())));
    let outcome = post(&allowed, &format!("http://127.0.0.1:{port}/missing")).await;
    assert_eq!(outcome, (Some(404), Some("HTTP 404".to_string())));
}

/// A receiver that accepts connections and never answers; counts the connections.
async fn hanging_receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, accepted)
}

async fn wait_until(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn one_tenants_hanging_receiver_does_not_delay_another_tenants_delivery(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let (slow_port, accepted) = hanging_receiver().await;
    let (fast_port, received) = receiver().await;
    let key_b = app.new_api_key("Autre Cabinet").await;
    let slow = post_webhook(
        &app,
        &app.api_key,
        &format!("http://127.0.0.1:{slow_port}/hooks"),
    )
    .await;
    assert_eq!(slow.status(), 201);
    let slow: Value = slow.json().await.expect("json");
    let fast = post_webhook(&app, &key_b, &format!("http://127.0.0.1:{fast_port}/hooks")).await;
    assert_eq!(fast.status(), 201);
    let fast: Value = fast.json().await.expect("json");
    let tenant_a = tenant_of(&app, "Cabinet Recouvr").await;
    let tenant_b = tenant_of(&app, "Autre Cabinet").await;
    // Deliveries carry identifiers only; B's event names A's letter, which the receiver
    // never reads here.
    let letter = app.deposit().await;
    let storage = app.service.storage.clone();
    let worker = recommande::app::webhook::spawn_delivery_worker(
        storage.clone(),
        Arc::new(SystemClock),
        Duration::from_millis(100),
        app.service.outbound.clone(),
    );

    fan_out(
        &storage,
        &event_of(&letter, &tenant_a),
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("fan out A");
    assert!(
        wait_until(Duration::from_secs(5), async || accepted
            .load(Ordering::SeqCst)
            > 0)
        .await,
        "tenant A's attempt started"
    );
    let started = Instant::now();
    fan_out(
        &storage,
        &event_of(&letter, &tenant_b),
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("fan out B");
    let delivery = async |tenant: &str, webhook: &Value| {
        storage
            .list_deliveries(tenant, webhook["id"].as_str().expect("id"), None, 10)
            .await
            .expect("deliveries")
            .remove(0)
    };
    assert!(
        wait_until(Duration::from_secs(5), async || delivery(&tenant_b, &fast)
            .await
            .delivered_at
            .is_some())
        .await,
        "tenant B delivered promptly"
    );
    assert_eq!(received.load(Ordering::SeqCst), 1);
    // … while A's attempt is still hanging: not yet recorded.
    let a = delivery(&tenant_a, &slow).await;
    assert_eq!(a.attempts, 0, "A's attempt still in flight");
    assert!(a.delivered_at.is_none());
    assert!(
        started.elapsed() < recommande::app::webhook::ATTEMPT_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    // A's attempt ends at the attempt timeout, and says only that.
    assert!(
        wait_until(Duration::from_secs(20), async || delivery(&tenant_a, &slow)
            .await
            .attempts
            == 1)
        .await,
        "A's attempt ended"
    );
    let a = delivery(&tenant_a, &slow).await;
    assert_eq!(a.last_error.as_deref(), Some("timeout"));
    worker.abort();
}

async fn a_witness_at_a_non_public_address_stops_the_start_unless_its_range_is_allowed(
    engine: Engine,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(database_url) = fresh_database(engine, dir.path()).await else {
        return;
    };
    let witness = |url: &str| WitnessSettings {
        emails: Vec::new(),
        webhooks: vec![WitnessWebhook {
            url: url.into(),
            secret: SecretText::new(SECRET.into()),
        }],
    };
    for (url, allowed) in [
        ("http://169.254.169.254/latest/", vec![]),
        ("http://0x7f.1:8080/witness", vec![]),
        ("http://metadata.google.internal/", vec!["0.0.0.0/0"]),
        ("http://10.1.2.3/witness", vec!["127.0.0.1/32"]),
    ] {
        let mut settings = settings_for(dir.path(), &database_url);
        settings.log.witnesses = witness(url);
        settings.outbound.allowed_private =
            allowed.iter().map(|r| r.parse().expect("range")).collect();
        let error = recommande::app::service::Service::start(settings, Arc::new(SystemClock))
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
        let text = error.to_string();
        assert!(text.contains("log.witnesses.webhooks"), "{text}");
    }
    let mut settings = settings_for(dir.path(), &database_url);
    settings.log.witnesses = witness("http://10.1.2.3/witness");
    settings.outbound.allowed_private = vec!["10.0.0.0/8".parse().expect("range")];
    assert!(
        recommande::app::service::Service::start(settings, Arc::new(SystemClock))
            .await
            .is_ok(),
        "an allowed on-premise witness"
    );
}

async fn claims_take_at_most_four_deliveries_per_tenant_and_none_of_a_busy_tenant(engine: Engine) {
    let Some(app) = spawn_app(engine).await else {
        return;
    };
    let key_b = app.new_api_key("Autre Cabinet").await;
    for _ in 0..6 {
        let response = post_webhook(&app, &app.api_key, "http://127.0.0.1:9/unused").await;
        assert_eq!(response.status(), 201);
    }
    let response = post_webhook(&app, &key_b, "http://127.0.0.1:9/unused").await;
    assert_eq!(response.status(), 201);
    let tenant_a = tenant_of(&app, "Cabinet Recouvr").await;
    let tenant_b = tenant_of(&app, "Autre Cabinet").await;
    let letter = app.deposit().await;
    let storage = &app.service.storage;
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        fan_out(storage, &event_of(&letter, &tenant_a), now)
            .await
            .expect("fan out A"),
        6
    );
    assert_eq!(
        fan_out(storage, &event_of(&letter, &tenant_b), now)
            .await
            .expect("fan out B"),
        1
    );
    let at = unix_micros(now);
    let lease = unix_micros(now + time::Duration::minutes(1));
    let tenants = |claimed: &[recommande::infra::storage::ClaimedDelivery]| -> Vec<String> {
        claimed
            .iter()
            .map(|c| c.delivery.tenant_id.clone())
            .collect()
    };
    // A is busy: only B's delivery is claimed.
    let claimed = storage
        .claim_due_deliveries(at, lease, 100, 4, std::slice::from_ref(&tenant_a))
        .await
        .expect("claim");
    assert_eq!(tenants(&claimed), vec![tenant_b]);
    // Then four of A's six, then the last two.
    let claimed = storage
        .claim_due_deliveries(at, lease, 100, 4, &[])
        .await
        .expect("claim");
    assert_eq!(tenants(&claimed), vec![tenant_a.clone(); 4]);
    let claimed = storage
        .claim_due_deliveries(at, lease, 100, 4, &[])
        .await
        .expect("claim");
    assert_eq!(tenants(&claimed), vec![tenant_a.clone(); 2]);
    let claimed = storage
        .claim_due_deliveries(at, lease, 100, 4, &[])
        .await
        .expect("claim");
    assert!(claimed.is_empty(), "all leased");
}
