//! Request quotas (issue 12 §2): per tenant on deposits and the API, per client address on
//! refused API keys, recipient routes and code requests, per letter on code requests; the
//! `RateLimit-Policy` / `RateLimit` fields; `[http] trusted_proxies`.

use crate::helpers::header_str;
use std::sync::Arc;

use recommande::config::{Cidr, Settings};
use recommande::core::clock::SystemClock;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Engine, TestApp, letter_body, spawn_app_with};
use crate::smtp::{body_text, link_token};

crate::on_both_engines!(
    deposits_count_down_in_the_ratelimit_fields_then_get_a_429_naming_the_limit,
    one_tenant_over_its_limit_leaves_another_tenant_alone,
    refused_keys_from_one_address_get_429_while_another_address_still_gets_401,
    forwarded_for_from_an_untrusted_peer_cannot_escape_the_limit,
    recipient_routes_are_limited_per_address_with_a_page_in_the_readers_language,
    code_requests_are_limited_per_letter_and_per_address,
);

async fn app(engine: Engine, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    spawn_app_with(engine, Arc::new(SystemClock), adjust).await
}

fn trust_loopback(s: &mut Settings) {
    s.http.trusted_proxies = vec![Cidr::parse("127.0.0.1/32").expect("cidr")];
}

fn header(response: &reqwest::Response, name: &str) -> String {
    header_str(response, name).unwrap_or_default().to_string()
}

/// `r` of the quota `name` in a `RateLimit` field.
fn remaining(field: &str, name: &str) -> Option<u32> {
    field
        .split(',')
        .map(str::trim)
        .find(|item| item.starts_with(&format!("\"{name}\";")))?
        .split(';')
        .find_map(|p| p.strip_prefix("r="))?
        .parse()
        .ok()
}

/// Checks a 429 problem naming `limit`; returns its `Retry-After`.
async fn assert_rate_limited(response: reqwest::Response, limit: &str) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    let retry: u64 = header(&response, "retry-after")
        .parse()
        .expect("Retry-After in seconds");
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["type"], "urn:recommande:problem:rate-limited");
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["title"], "Too many requests");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains(&format!("the {limit} limit")), "{detail}");
    assert!(retry >= 1, "{retry}");
    retry
}

async fn deposits_count_down_in_the_ratelimit_fields_then_get_a_429_naming_the_limit(
    engine: Engine,
) {
    let Some(app) = app(engine, |s| s.rate_limits.deposits_per_minute = 3).await else {
        return;
    };
    let document = app.upload_pdf().await;
    let mut seen = Vec::new();
    for i in 0..3 {
        let mut body = letter_body(&document);
        body["reference"] = Value::from(format!("RL-{i}"));
        let response = app.post_letter(&body).await;
        assert_eq!(response.status(), 201);
        let policy = header(&response, "ratelimit-policy");
        assert!(policy.contains("\"deposits\";q=3;w=60"), "{policy}");
        assert!(policy.contains("\"api\";q=6000;w=60"), "{policy}");
        let field = header(&response, "ratelimit");
        seen.push(remaining(&field, "deposits").expect("deposits in RateLimit"));
        let t: u64 = field
            .split(',')
            .find(|item| item.contains("\"deposits\""))
            .and_then(|item| item.split(';').find_map(|p| p.trim().strip_prefix("t=")))
            .and_then(|t| t.parse().ok())
            .expect("t of deposits");
        assert!((1..=60).contains(&t), "{field}");
    }
    assert_eq!(seen, [2, 1, 0]);

    let mut body = letter_body(&document);
    body["reference"] = Value::from("RL-over");
    let refused = app.post_letter(&body).await;
    let field = header(&refused, "ratelimit");
    assert_eq!(remaining(&field, "deposits"), Some(0), "{field}");
    let retry = assert_rate_limited(refused, "deposits").await;
    assert!(retry <= 20, "one deposit comes back every 20 s: {retry}");
    // Nothing was written for the refused deposit; reading is not a deposit.
    assert_eq!(app.letter_count().await, 3);
    let list = app.get("/v1/letters").await;
    assert_eq!(list.status(), 200);
    assert!(!header(&list, "ratelimit-policy").contains("deposits"));
}

async fn one_tenant_over_its_limit_leaves_another_tenant_alone(engine: Engine) {
    let Some(app) = app(engine, |s| s.rate_limits.api_per_minute = 4).await else {
        return;
    };
    let other = app.new_api_key("Étude Autre").await;
    for expected in [3, 2, 1, 0] {
        let response = app.get("/v1/letters").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            remaining(&header(&response, "ratelimit"), "api"),
            Some(expected)
        );
    }
    assert_rate_limited(app.get("/v1/letters").await, "api").await;
    let response = app.get_as(&other, "/v1/letters").await;
    assert_eq!(response.status(), 200);
    assert_eq!(remaining(&header(&response, "ratelimit"), "api"), Some(3));
    // Public routes are not counted against anyone.
    assert_eq!(app.get_anon("/healthz").await.status(), 200);
}

async fn get_letters(app: &TestApp, key: &str, forwarded_for: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/letters"))
        .bearer_auth(key)
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .expect("GET")
}

async fn refused_keys_from_one_address_get_429_while_another_address_still_gets_401(
    engine: Engine,
) {
    let Some(app) = app(engine, |s| {
        s.rate_limits.failed_auth_per_minute = 3;
        trust_loopback(s);
    })
    .await
    else {
        return;
    };
    let attacker = "198.51.100.1";
    for expected in [2, 1, 0] {
        let response = get_letters(&app, "rk_wrong", attacker).await;
        assert_eq!(response.status(), 401);
        let policy = header(&response, "ratelimit-policy");
        assert!(policy.contains("\"failed-auth\";q=3;w=60"), "{policy}");
        assert_eq!(
            remaining(&header(&response, "ratelimit"), "failed-auth"),
            Some(expected)
        );
    }
    assert_rate_limited(get_letters(&app, "rk_wrong", attacker).await, "failed-auth").await;
    // Even a good key is not looked at from that address now.
    assert_rate_limited(
        get_letters(&app, &app.api_key, attacker).await,
        "failed-auth",
    )
    .await;

    let neighbour = "198.51.100.2";
    assert_eq!(get_letters(&app, "rk_wrong", neighbour).await.status(), 401);
    let ok = get_letters(&app, &app.api_key, neighbour).await;
    assert_eq!(ok.status(), 200);
    // A successful authentication spends nothing of the failed-auth quota.
    assert!(!header(&ok, "ratelimit").contains("failed-auth"));
    // A request without any credentials is a refused key too.
    let bare = app
        .client
        .get(app.url("/v1/letters"))
        .header("x-forwarded-for", attacker)
        .send()
        .await
        .expect("GET");
    assert_rate_limited(bare, "failed-auth").await;
}

async fn forwarded_for_from_an_untrusted_peer_cannot_escape_the_limit(engine: Engine) {
    // No trusted proxy (the default): every spoofed address is the loopback peer.
    let Some(app) = app(engine, |s| s.rate_limits.failed_auth_per_minute = 2).await else {
        return;
    };
    assert!(app.service.settings.http.trusted_proxies.is_empty());
    for i in 0..2 {
        let spoofed = format!("203.0.113.{i}");
        assert_eq!(get_letters(&app, "rk_wrong", &spoofed).await.status(), 401);
    }
    assert_rate_limited(
        get_letters(&app, "rk_wrong", "203.0.113.99").await,
        "failed-auth",
    )
    .await;
    let forwarded = app
        .client
        .get(app.url("/v1/letters"))
        .bearer_auth("rk_wrong")
        .header("forwarded", "for=203.0.113.98")
        .send()
        .await
        .expect("GET");
    assert_rate_limited(forwarded, "failed-auth").await;

    // Behind a trusted proxy, the right-most untrusted hop counts: a client prepending
    // addresses of its own stays in its bucket.
    let Some(app) = self::app(engine, |s| {
        s.rate_limits.failed_auth_per_minute = 2;
        trust_loopback(s);
    })
    .await
    else {
        return;
    };
    for i in 0..2 {
        let chain = format!("203.0.113.{i}, 198.51.100.7");
        assert_eq!(get_letters(&app, "rk_wrong", &chain).await.status(), 401);
    }
    assert_rate_limited(
        get_letters(&app, "rk_wrong", "203.0.113.50, 198.51.100.7").await,
        "failed-auth",
    )
    .await;
    // The proxy's other clients are not affected.
    assert_eq!(
        get_letters(&app, "rk_wrong", "198.51.100.8").await.status(),
        401
    );
}

async fn recipient_routes_are_limited_per_address_with_a_page_in_the_readers_language(
    engine: Engine,
) {
    let Some(app) = app(engine, |s| s.rate_limits.recipient_per_minute = 3).await else {
        return;
    };
    for expected in [2, 1] {
        let page = app.get_anon("/r/unknownlink").await;
        assert_eq!(page.status(), 404);
        assert_eq!(
            remaining(&header(&page, "ratelimit"), "recipient"),
            Some(expected)
        );
    }
    // The recipient API shares the address's quota.
    let api = app.get_anon("/v1/recipient/unknownlink").await;
    assert_eq!(api.status(), 404);
    assert_rate_limited(app.get_anon("/v1/recipient/unknownlink").await, "recipient").await;

    let french = app.get_anon("/r/unknownlink").await;
    assert_eq!(french.status(), 429);
    assert!(header(&french, "content-type").starts_with("text/html"));
    assert!(
        header(&french, "retry-after")
            .parse::<u64>()
            .expect("seconds")
            >= 1
    );
    assert_eq!(header(&french, "x-content-type-options"), "nosniff");
    let html = french.text().await.expect("html");
    assert!(html.contains(r#"<html lang="fr">"#));
    assert!(html.contains("Trop de demandes"), "{html}");

    let english = app.get_anon("/r/unknownlink?lang=en").await;
    assert_eq!(english.status(), 429);
    let html = english.text().await.expect("html");
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains("Too many requests"), "{html}");
}

fn mail_count(app: &TestApp) -> usize {
    std::fs::read_dir(app.dir.path().join("mail"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

async fn request_code(app: &TestApp, token: &str, from: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/recipient/{token}/otp")))
        .header("x-forwarded-for", from)
        .send()
        .await
        .expect("POST otp")
}

async fn code_requests_are_limited_per_letter_and_per_address(engine: Engine) {
    let Some(app) = app(engine, |s| {
        s.rate_limits.otp_per_letter_per_hour = 2;
        s.rate_limits.otp_per_address_per_hour = 3;
        trust_loopback(s);
    })
    .await
    else {
        return;
    };
    app.deposit().await;
    app.service.lifecycle.run_due_jobs(10).await.expect("jobs");
    let dir = app.dir.path().join("mail");
    let notification = std::fs::read_dir(&dir)
        .expect("mail dir")
        .filter_map(Result::ok)
        .map(|e| body_text(&std::fs::read_to_string(e.path()).expect("eml")))
        .find(|body| body.contains("/r/"))
        .expect("the notification");
    let token = link_token(&notification);
    let mails = mail_count(&app);

    // Per letter: two codes, from whichever address.
    assert_eq!(
        request_code(&app, &token, "198.51.100.1").await.status(),
        202
    );
    let second = request_code(&app, &token, "198.51.100.2").await;
    assert_eq!(second.status(), 202);
    assert_eq!(
        remaining(&header(&second, "ratelimit"), "otp-letter"),
        Some(0)
    );
    assert_rate_limited(
        request_code(&app, &token, "198.51.100.3").await,
        "otp-letter",
    )
    .await;
    assert_eq!(
        mail_count(&app),
        mails + 2,
        "a refused request sends no code"
    );

    // Per address: three requests, whichever the letters.
    let from = "198.51.100.9";
    for i in 0..3 {
        let response = request_code(&app, &format!("nolink{i}"), from).await;
        assert_eq!(response.status(), 404);
    }
    assert_rate_limited(request_code(&app, "nolink9", from).await, "otp-address").await;
    // Viewing the letter is not a code request.
    let view = app
        .client
        .get(app.url(&format!("/v1/recipient/{token}")))
        .header("x-forwarded-for", from)
        .send()
        .await
        .expect("GET");
    assert_eq!(view.status(), 200);

    // The page's code form counts the same way, with an HTML answer.
    let page = app
        .client
        .post(app.url(&format!("/r/{token}/code?lang=en")))
        .header("x-forwarded-for", "198.51.100.20")
        .header("origin", app.address.clone())
        .send()
        .await
        .expect("POST code");
    assert_eq!(page.status(), 429);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("Too many requests")
    );
}
