//! Issue 12 §2: slow clients cannot hold the server's connections, and over-long request
//! heads are answered as problem+json, through the real connection loop on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Engine, spawn_app, spawn_app_with};

const SLOW_CLIENTS: usize = 500;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens a connection that sends its request head one byte a second, and tells after how
/// long after connecting the server closed it (`None`: still open when the test gave up, after 8 s).
async fn slow_client(address: std::net::SocketAddr) -> Option<Duration> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    // Counted from the established connection: when 500 connects arrive at once, those the
    // listen queue cannot take yet wait for a SYN retransmission (about 1 s) first.
    let started = Instant::now();
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .is_err()
    {
        return Some(started.elapsed());
    }
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                // Closed (or answered, which closes too): either way the server let go.
                Ok(0) | Err(_) => return Some(started.elapsed()),
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"a").await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
    }
    None
}

#[tokio::test]
async fn five_hundred_slow_clients_are_let_go_and_healthz_answers_within_a_second() {
    let Some(app) = spawn_app_with(
        Engine::Sqlite,
        std::sync::Arc::new(recommande::core::clock::SystemClock),
        |s| s.http.limits.header_read_timeout = HEADER_READ_TIMEOUT,
    )
    .await
    else {
        return;
    };
    let address: std::net::SocketAddr = app
        .address
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let max_per_address = app.service.settings.http.limits.max_connections_per_address as usize;
    let clients: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| tokio::spawn(slow_client(address)))
        .collect();

    // Another client address (all of 127.0.0.0/8 is loopback) is not hurt by the cap that
    // the slow clients of 127.0.0.1 exhaust.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let asked = Instant::now();
        let answer = other
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("healthz answers within 1 s while slow clients hold connections");
        assert_eq!(answer.status(), 200);
        assert!(asked.elapsed() < Duration::from_secs(1));
    }

    let mut closed_at_once = 0;
    for client in clients {
        let closed = client
            .await
            .expect("client task")
            .expect("the server closed every slow connection");
        // Past the header read timeout, with slack for a loaded machine.
        assert!(
            closed < HEADER_READ_TIMEOUT + Duration::from_secs(3),
            "{closed:?}"
        );
        // A connection within the cap is closed by the timeout, 3 s after it was accepted;
        // one over the cap at once. The line between them leaves a loaded machine (the
        // whole suite runs beside this test) 2 s to close the second kind.
        if closed < HEADER_READ_TIMEOUT - Duration::from_secs(1) {
            closed_at_once += 1;
        }
    }
    // Those over the per-address cap were closed without waiting for the timeout.
    assert!(
        closed_at_once >= SLOW_CLIENTS - max_per_address,
        "{closed_at_once} closed at once"
    );
}

#[tokio::test]
async fn an_over_long_uri_answers_414_and_over_large_headers_431_as_problem_json() {
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let long_query = "a".repeat(recommande::http::server::MAX_URI_BYTES + 1);
    let answer = app
        .client
        .get(format!("{}/healthz?q={long_query}", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 414);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["status"], 414);

    let big = "b".repeat(recommande::http::server::MAX_HEADER_BYTES + 1);
    let answer = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-big", big)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 431);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["status"], 431);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout_and_shutdown_waits_for_no_idle_one() {
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let limits = recommande::config::HttpSettings {
        idle_timeout: Duration::from_secs(1),
        ..app.service.settings.http.limits
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(recommande::http::server::serve_connections(
        listener,
        recommande::http::router(app.service.clone()),
        limits,
        async {
            let _ = stopped.await;
        },
    ));

    // A keep-alive connection that answered one request, then says nothing.
    let mut idle = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let quiet = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection was not closed");
    assert!(quiet.elapsed() >= Duration::from_millis(900));

    // A fresh idle connection does not hold the shutdown back.
    let _waiting = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(());
    let finished = tokio::time::timeout(Duration::from_secs(3), server).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "shutdown did not finish: {finished:?}"
    );
}

#[tokio::test]
async fn a_path_that_does_not_decode_to_utf8_answers_400_as_problem_json() {
    let Some(app) = spawn_app(Engine::Sqlite).await else {
        return;
    };
    for path in ["/v1/verify/%FF%FE", "/r/%C3"] {
        let answer = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 400, "{path}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["type"], "urn:recommande:problem:invalid-path");
    }
}
