use super::*;
use std::collections::HashMap;

#[test]
fn rate_limits_have_real_defaults_and_come_from_the_file_or_the_environment() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.rate_limits, RateLimitSettings::default());
    assert_eq!(s.rate_limits.deposits_per_minute, 600);
    assert_eq!(s.rate_limits.failed_auth_per_minute, 20);
    assert!(
        s.http.trusted_proxies.is_empty(),
        "no proxy is trusted by default"
    );
    let s = load(
        Some(
            "[rate_limits]\ndeposits_per_minute = 5\n[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\n",
        ),
        &[("RECOMMANDE_RATE_LIMITS_FAILED_AUTH_PER_MINUTE", "3")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.rate_limits.deposits_per_minute, 5);
    assert_eq!(s.rate_limits.failed_auth_per_minute, 3);
    assert_eq!(s.rate_limits.batches_per_minute, 60);
    assert_eq!(s.http.trusted_proxies.len(), 2);
    assert!(s.http.trusted_proxies[0].contains([10, 1, 2, 3].into()));
    assert!(!s.http.trusted_proxies[0].contains([11, 0, 0, 1].into()));
    for (file, key) in [
        (
            "[rate_limits]\napi_per_minute = 0\n",
            "rate_limits.api_per_minute",
        ),
        (
            "[http]\ntrusted_proxies = [\"10.0.0.1/8\"]\n",
            "http.trusted_proxies",
        ),
        (
            "[http]\ntrusted_proxies = [\"proxy.example\"]\n",
            "http.trusted_proxies",
        ),
    ] {
        match load(Some(file), &[], Overrides::default()) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn cidrs_contain_their_addresses_only() {
    let net = Cidr::parse("192.0.2.0/24").expect("v4");
    assert!(net.contains([192, 0, 2, 200].into()));
    assert!(!net.contains([192, 0, 3, 1].into()));
    assert!(net.contains("::ffff:192.0.2.7".parse().expect("mapped")));
    let all = Cidr::parse("0.0.0.0/0").expect("all v4");
    assert!(all.contains([203, 0, 113, 1].into()));
    assert!(!all.contains("2001:db8::1".parse().expect("v6")));
    let v6 = Cidr::parse("2001:db8::/32").expect("v6");
    assert!(v6.contains("2001:db8:ffff::1".parse().expect("v6")));
    assert!(!v6.contains("2001:db9::1".parse().expect("v6")));
    assert!(
        Cidr::parse("::/0")
            .expect("all v6")
            .contains("::1".parse().expect("v6"))
    );
    assert!(Cidr::parse("192.0.2.0/33").is_err());
    assert!(Cidr::parse("192.0.2.1/24").is_err());
}

fn load(
    file: Option<&str>,
    env: &[(&str, &str)],
    overrides: Overrides,
) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut overrides = overrides;
    if let Some(text) = file {
        let path = dir.path().join("recommande.toml");
        std::fs::write(&path, text).expect("write config");
        overrides.config_file = Some(path);
    }
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(&overrides, |k| env.get(k).cloned())
}

#[test]
fn defaults_give_the_embedded_service() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.server.data_dir, PathBuf::from("./data"));
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.database.url, "sqlite:./data/recommande.db");
    assert_eq!(s.timestamp.mode, TimestampMode::Embedded);
    assert!(s.pki.is_development());
    assert_eq!(s.server.max_upload_bytes, 25 * 1024 * 1024);
}

#[test]
fn http_limits_default_to_10_s_60_s_and_64_and_come_from_the_file_or_the_environment() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.http.limits, HttpSettings::default());
    assert_eq!(
        s.http.limits.header_read_timeout,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(
        s.http.limits.idle_timeout,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(s.http.limits.max_connections_per_address, 64);
    let s = load(
        Some("[http]\nheader_read_timeout_seconds = 5\nidle_timeout_seconds = 30\n"),
        &[("RECOMMANDE_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "500")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(
        s.http.limits.header_read_timeout,
        std::time::Duration::from_secs(5)
    );
    assert_eq!(
        s.http.limits.idle_timeout,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(s.http.limits.max_connections_per_address, 500);
}

#[test]
fn http_limits_out_of_range_are_refused_at_start() {
    for (file, key) in [
        (
            "[http]\nheader_read_timeout_seconds = 0\n",
            "http.header_read_timeout_seconds",
        ),
        (
            "[http]\nidle_timeout_seconds = 3601\n",
            "http.idle_timeout_seconds",
        ),
        (
            "[http]\nmax_connections_per_address = 0\n",
            "http.max_connections_per_address",
        ),
    ] {
        match load(Some(file), &[], Overrides::default()) {
            Err(ConfigError::Invalid { key: refused, .. }) => assert_eq!(refused, key),
            other => panic!("{file}: expected {key} refused, got {other:?}"),
        }
    }
}

#[test]
fn s3_storage_comes_from_the_file_and_the_environment() {
    let file = "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"lre-archive\"\nprefix = \"/prod/\"\nregion = \"eu-west-3\"\n";
    let s = load(
        Some(file),
        &[
            ("RECOMMANDE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("RECOMMANDE_S3_ALLOW_HTTP", "true"),
            ("RECOMMANDE_S3_ACCESS_KEY_ID", "AKIA"),
            ("RECOMMANDE_S3_SECRET_ACCESS_KEY", "secret"),
        ],
        Overrides::default(),
    )
    .expect("settings");
    let StorageBackend::S3(s3) = &s.storage else {
        panic!("expected S3, got {:?}", s.storage);
    };
    assert_eq!(s3.bucket, "lre-archive");
    assert_eq!(s3.prefix, "prod");
    assert_eq!(s3.region, "eu-west-3");
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s3.allow_http);
    assert_eq!(s3.access_key_id.as_deref(), Some("AKIA"));
    assert!(!format!("{s3:?}").contains("secret\""));
    // The environment alone selects the back end too.
    let s = load(
        None,
        &[
            ("RECOMMANDE_STORAGE_BACKEND", "s3"),
            ("RECOMMANDE_S3_BUCKET", "other-bucket"),
        ],
        Overrides::default(),
    )
    .expect("settings");
    assert!(
        matches!(&s.storage, StorageBackend::S3(s3) if s3.bucket == "other-bucket" && s3.region == "us-east-1")
    );
    assert_eq!(
        load(None, &[], Overrides::default())
            .expect("defaults")
            .storage,
        StorageBackend::Filesystem
    );
}

#[test]
fn bad_s3_settings_are_named() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("[storage]\nbackend = \"s3\"\n", &[], "storage.s3.bucket"),
        ("[storage]\nbackend = \"nfs\"\n", &[], "storage.backend"),
        (
            "",
            &[
                ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                ("RECOMMANDE_S3_BUCKET", "Bad_Bucket"),
            ],
            "storage.s3.bucket",
        ),
        (
            "",
            &[
                ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                ("RECOMMANDE_S3_BUCKET", "lre"),
                ("RECOMMANDE_S3_ENDPOINT", "http://minio:9000"),
            ],
            "storage.s3.endpoint",
        ),
        (
            "",
            &[
                ("RECOMMANDE_STORAGE_BACKEND", "s3"),
                ("RECOMMANDE_S3_BUCKET", "lre"),
                ("RECOMMANDE_S3_ACCESS_KEY_ID", "AKIA"),
            ],
            "storage.s3.secret_access_key",
        ),
        (
            "",
            &[("RECOMMANDE_S3_ALLOW_HTTP", "yes please")],
            "allow_http",
        ),
        (
            "[storage.s3]\nbucket = \"lre\"\nbucket_name = \"x\"\n",
            &[],
            "bucket_name",
        ),
    ];
    for (file, env, named) in cases {
        let file = (!file.is_empty()).then_some(*file);
        let err = load(file, env, Overrides::default())
            .expect_err("refused")
            .to_string();
        assert!(err.contains(named), "{named}: {err}");
    }
}

#[test]
fn the_dispatch_chunk_is_read_from_the_file_and_the_environment_and_checked() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.workers.dispatch_chunk, 500);
    let s = load(
        Some("[workers]\ndispatch_chunk = 1\n"),
        &[],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.workers.dispatch_chunk, 1);
    let s = load(
        None,
        &[("RECOMMANDE_WORKERS_DISPATCH_CHUNK", "2000")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.workers.dispatch_chunk, 2000);
    for bad in ["0", "5001"] {
        let e = load(
            None,
            &[("RECOMMANDE_WORKERS_DISPATCH_CHUNK", bad)],
            Overrides::default(),
        )
        .expect_err("out of range");
        assert!(e.to_string().contains("workers.dispatch_chunk"), "{e}");
    }
}

#[test]
fn the_workers_shutdown_grace_is_read_from_the_file_and_the_environment_and_checked() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.workers.shutdown_grace_seconds, 15);
    let s = load(
        Some("[workers]\nshutdown_grace_seconds = 40\n"),
        &[],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.workers.shutdown_grace_seconds, 40);
    let s = load(
        None,
        &[("RECOMMANDE_WORKERS_SHUTDOWN_GRACE_SECONDS", "3")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.workers.shutdown_grace_seconds, 3);
    for bad in ["0", "301"] {
        let e = load(
            None,
            &[("RECOMMANDE_WORKERS_SHUTDOWN_GRACE_SECONDS", bad)],
            Overrides::default(),
        )
        .expect_err("out of range");
        assert!(
            e.to_string().contains("workers.shutdown_grace_seconds"),
            "{e}"
        );
    }
    let e =
        load(Some("[workers]\ngrace = 3\n"), &[], Overrides::default()).expect_err("unknown key");
    assert!(e.to_string().contains("grace"), "{e}");
}

#[test]
fn renewal_and_rotation_settings_are_read_and_checked() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(
        (s.renewal.interval_seconds, s.renewal.margin_days),
        (86_400, 90)
    );
    assert_eq!(s.pki.development_validity_days, 3652);
    let s = load(
        Some("[renewal]\ninterval_seconds = 3600\nmargin_days = 30\n[pki]\nretired_roots = [\"old.pem\"]\ndevelopment_validity_days = 30\n"),
        &[],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.renewal.interval_seconds, 3600);
    assert_eq!(s.renewal.margin_days, 30);
    assert_eq!(s.pki.retired_roots, vec![PathBuf::from("old.pem")]);
    assert_eq!(s.pki.development_validity_days, 30);
    // Retired roots alone keep the development PKI.
    assert!(s.pki.is_development());
    let e = load(
        Some("[renewal]\ninterval_seconds = 864000\nmargin_days = 5\n"),
        &[],
        Overrides::default(),
    )
    .expect_err("a certificate could expire between two runs");
    assert!(e.to_string().contains("renewal.margin_days"), "{e}");
    let e = load(
        Some("[pki]\ndevelopment_validity_days = 0\n"),
        &[],
        Overrides::default(),
    )
    .expect_err("zero days");
    assert!(e.to_string().contains("development_validity_days"), "{e}");
}

#[test]
fn flags_override_environment_which_overrides_the_file() {
    let file = "listen = \"127.0.0.1:1\"\nprovider_name = \"from file\"\nmax_upload_bytes = 10\n";
    let s = load(
        Some(file),
        &[
            ("RECOMMANDE_LISTEN", "127.0.0.1:2"),
            ("RECOMMANDE_MAX_UPLOAD_BYTES", "20"),
        ],
        Overrides {
            listen: Some("127.0.0.1:3".into()),
            ..Overrides::default()
        },
    )
    .expect("settings");
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:3");
    assert_eq!(s.server.provider_name, "from file");
    assert_eq!(s.server.max_upload_bytes, 20);
}

#[test]
fn an_unknown_key_in_the_file_is_named() {
    let err = load(Some("lisen = \"x\"\n"), &[], Overrides::default()).expect_err("typo refused");
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn remote_timestamping_needs_a_url() {
    let err = load(
        Some("[timestamp]\nmode = \"remote\"\n"),
        &[],
        Overrides::default(),
    )
    .expect_err("no url");
    assert!(err.to_string().contains("timestamp.url"), "{err}");
    let s = load(
        None,
        &[
            ("RECOMMANDE_TIMESTAMP_MODE", "remote"),
            ("RECOMMANDE_TIMESTAMP_URL", "https://tsa.example/"),
        ],
        Overrides::default(),
    )
    .expect("remote");
    assert_eq!(
        s.timestamp.mode,
        TimestampMode::Remote {
            url: "https://tsa.example/".into()
        }
    );
}

#[test]
fn outbound_allowed_private_ranges_come_from_the_file_or_the_environment_and_are_checked() {
    let s = load(None, &[], Overrides::default()).expect("settings");
    assert!(s.outbound.allowed_private.is_empty(), "none by default");
    assert!(s.outbound_policy().permits("8.8.8.8".parse().expect("ip")));
    assert!(
        !s.outbound_policy()
            .permits("127.0.0.1".parse().expect("ip"))
    );
    assert!(
        !s.outbound_policy().require_https,
        "development PKI: http allowed"
    );
    let s = load(
        Some("[outbound]\nallowed_private = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\n"),
        &[],
        Overrides::default(),
    )
    .expect("file");
    let ranges: Vec<String> = s
        .outbound
        .allowed_private
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ranges, ["10.0.0.0/8", "127.0.0.1/32"]);
    assert!(s.outbound_policy().permits("10.2.3.4".parse().expect("ip")));
    let s = load(
        None,
        &[(
            "RECOMMANDE_OUTBOUND_ALLOWED_PRIVATE",
            "192.168.0.0/16, fd00::/8",
        )],
        Overrides::default(),
    )
    .expect("environment");
    assert_eq!(s.outbound.allowed_private.len(), 2);
    for bad in [
        "[outbound]\nallowed_private = [\"10.0.0.1/8\"]\n",
        "[outbound]\nallowed_private = [\"intranet\"]\n",
        "[outbound]\nallowed_private = [8]\n",
        "[outbound]\nallowed_private = 8\n",
    ] {
        let err = load(Some(bad), &[], Overrides::default()).expect_err(bad);
        assert!(
            err.to_string().contains("outbound.allowed_private"),
            "{err}"
        );
    }
}

#[test]
fn links_never_point_at_an_unspecified_address() {
    let s = load(
        None,
        &[("RECOMMANDE_LISTEN", "0.0.0.0:9000")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.server.public_url, "http://localhost:9000");
    let err = load(
        None,
        &[("RECOMMANDE_TIMESTAMP_TIMEOUT_SECONDS", "0")],
        Overrides::default(),
    )
    .expect_err("zero timeout");
    assert!(err.to_string().contains("timeout_seconds"), "{err}");
}

#[test]
fn evidence_retention_is_forever_or_at_least_one_year() {
    let s = load(None, &[], Overrides::default()).expect("settings");
    assert_eq!(s.archive.evidence_retention_years, None);
    let s = load(
        Some("[archive]\nevidence_retention = 5\n"),
        &[],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.archive.evidence_retention_years, Some(5));
    let s = load(
        Some("[archive]\nevidence_retention = 5\n"),
        &[("RECOMMANDE_ARCHIVE_EVIDENCE_RETENTION", "forever")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.archive.evidence_retention_years, None);
    for bad in ["0", "\"jamais\"", "-1", "2.5"] {
        let err = load(
            Some(&format!("[archive]\nevidence_retention = {bad}\n")),
            &[],
            Overrides::default(),
        )
        .expect_err(bad);
        assert!(
            err.to_string().contains("archive.evidence_retention"),
            "{err}"
        );
    }
}

#[test]
fn log_witnesses_come_from_the_file_or_the_environment_and_are_checked() {
    let file = r#"
[log.witnesses]
emails = ["greffe@tribunal.example.fr"]
webhooks = [{ url = "https://huissier.example.fr/tete", secret = "0123456789abcdef" }]
"#;
    let s = load(Some(file), &[], Overrides::default()).expect("settings");
    assert_eq!(s.log.witnesses.emails, ["greffe@tribunal.example.fr"]);
    assert_eq!(
        s.log.witnesses.webhooks[0].url,
        "https://huissier.example.fr/tete"
    );
    assert!(!format!("{s:?}").contains("0123456789abcdef"));
    let s = load(
        Some(file),
        &[
            (
                "RECOMMANDE_LOG_WITNESS_EMAILS",
                "a@greffe.example.fr, b@etude.example.fr",
            ),
            (
                "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
                "https://w1.example.fr/h#secret-one-0123456 http://w2.example.fr/#secret-two-0123456",
            ),
        ],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(
        s.log.witnesses.emails,
        ["a@greffe.example.fr", "b@etude.example.fr"]
    );
    assert_eq!(s.log.witnesses.webhooks.len(), 2);
    assert_eq!(
        s.log.witnesses.webhooks[1].secret.expose(),
        "secret-two-0123456"
    );
    for (var, value, needle) in [
        (
            "RECOMMANDE_LOG_WITNESS_EMAILS",
            "not-an-address",
            "not-an-address",
        ),
        (
            "RECOMMANDE_LOG_WITNESS_EMAILS",
            "a@b.fr,a@b.fr",
            "listed twice",
        ),
        (
            "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
            "https://w.fr/h",
            "URL#SECRET",
        ),
        (
            "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
            "ftp://w.fr/#0123456789abcdef",
            "http",
        ),
        (
            "RECOMMANDE_LOG_WITNESS_WEBHOOKS",
            "https://w.fr/#short",
            "16 to 256",
        ),
    ] {
        let err = load(None, &[(var, value)], Overrides::default()).expect_err(value);
        let text = err.to_string();
        assert!(text.contains("log.witnesses"), "{text}");
        assert!(text.contains(needle), "{text}");
    }
}

#[test]
fn mail_settings_come_from_the_environment_too() {
    let s = load(
        None,
        &[
            ("RECOMMANDE_MAIL_FROM", "LRE Exemple <lre@exemple.fr>"),
            ("RECOMMANDE_MAIL_BOUNCE_TOKEN", &"t".repeat(32)),
        ],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.mail.from, "LRE Exemple <lre@exemple.fr>");
    assert_eq!(
        s.mail.bounce_token.as_deref(),
        Some("t".repeat(32).as_str())
    );
    let err = load(
        None,
        &[("RECOMMANDE_MAIL_BOUNCE_TOKEN", "short")],
        Overrides::default(),
    )
    .expect_err("short");
    assert!(err.to_string().contains("bounce_token"), "{err}");
}

#[test]
fn dkim_and_relay_settings_are_read_and_checked() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.mail.dkim, None);
    assert_eq!(s.mail.relay, crate::config::RelaySettings::default());
    assert_eq!(s.mail.relay.max_connections, 10);
    let s = load(
        Some(
            "[mail]\ndkim_selector = \"lre2026.a\"\ndkim_key = \"/k.pem\"\n\
             dkim_algorithm = \"ed25519-sha256\"\nmax_connections = 4\n",
        ),
        &[("RECOMMANDE_MAIL_MAX_PER_SECOND", "14")],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(
        s.mail.dkim,
        Some(crate::config::DkimSettings {
            selector: "lre2026.a".into(),
            key: "/k.pem".into(),
            algorithm: crate::config::DkimAlgorithm::Ed25519Sha256,
        })
    );
    assert_eq!(s.mail.relay.max_connections, 4);
    assert_eq!(s.mail.relay.max_per_second, Some(14));
    for (file, named) in [
        ("[mail]\ndkim_selector = \"s\"\n", "mail.dkim_key"),
        ("[mail]\ndkim_key = \"/k.pem\"\n", "mail.dkim_selector"),
        (
            "[mail]\ndkim_selector = \"bad selector\"\ndkim_key = \"/k\"\n",
            "mail.dkim_selector",
        ),
        (
            "[mail]\ndkim_selector = \"s\"\ndkim_key = \"/k\"\ndkim_algorithm = \"rsa-sha1\"\n",
            "mail.dkim_algorithm",
        ),
        ("[mail]\nmax_connections = 0\n", "mail.max_connections"),
        ("[mail]\nmax_per_second = 0\n", "mail.max_per_second"),
    ] {
        let err = load(Some(file), &[], Overrides::default()).expect_err(file);
        assert!(err.to_string().contains(named), "{file}: {err}");
    }
}

#[test]
fn retention_below_one_year_is_refused() {
    let err = load(Some("retention_years = 0\n"), &[], Overrides::default()).expect_err("refused");
    assert!(err.to_string().contains("R.53-2"), "{err}");
}

#[test]
fn bad_values_are_named_precisely() {
    let err = load(
        None,
        &[("RECOMMANDE_LISTEN", "nowhere")],
        Overrides::default(),
    )
    .expect_err("bad listen");
    assert!(err.to_string().contains("listen"), "{err}");
    let err = load(
        None,
        &[("RECOMMANDE_DATABASE_URL", "mysql://x")],
        Overrides::default(),
    )
    .expect_err("bad db");
    assert!(err.to_string().contains("database_url"), "{err}");
    let err = load(
        None,
        &[("RECOMMANDE_TIMESTAMP_POLICY_OID", "1.2.x")],
        Overrides::default(),
    )
    .expect_err("oid");
    assert!(err.to_string().contains("policy_oid"), "{err}");
}

#[test]
fn the_provider_identity_defaults_to_the_name_and_is_checked() {
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.provider.legal_name, "recommande");
    assert!(!s.provider.qualified);
    let s = load(
        Some(
            "provider_name = \"Recommande\"\n[provider]\nlegal_name = \"Recommande SAS\"\naddress = \"1 rue de la Paix, 75002 Paris\"\nregistration = \"RCS Paris 123 456 789\"\ncontact = \"support@recommande.example\"\nprivacy_url = \"https://recommande.example/vie-privee\"\n",
        ),
        &[],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(s.provider.name, "Recommande");
    assert_eq!(s.provider.legal_name, "Recommande SAS");
    assert_eq!(
        s.provider.registration.as_deref(),
        Some("RCS Paris 123 456 789")
    );
    for (file, key) in [
        (
            "[provider]\nprivacy_url = \"ftp://x\"\n",
            "provider.privacy_url",
        ),
        ("[provider]\nlegal_name = \"\"\n", "provider.legal_name"),
        ("[provider]\naddress = \"a\\nb\"\n", "provider.address"),
    ] {
        match load(Some(file), &[], Overrides::default()) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn secrets_come_from_files_named_by_file_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = "metrics-token-from-a-file-0123456789abcdef";
    let token_file = dir.path().join("metrics_token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write");
    let database_file = dir.path().join("database_url");
    std::fs::write(&database_file, "postgres://app:s3cret@db:5432/recommande").expect("write");
    let s = load(
        None,
        &[
            (
                "RECOMMANDE_METRICS_TOKEN_FILE",
                token_file.to_str().expect("utf-8"),
            ),
            (
                "RECOMMANDE_DATABASE_URL_FILE",
                database_file.to_str().expect("utf-8"),
            ),
        ],
        Overrides::default(),
    )
    .expect("settings");
    assert_eq!(
        s.metrics.token.as_ref().map(|t| t.expose().to_string()),
        Some(token.to_string()),
        "the final line break is not part of the secret"
    );
    assert_eq!(s.database.url, "postgres://app:s3cret@db:5432/recommande");

    let missing = dir.path().join("no-such-file");
    let err = load(
        None,
        &[(
            "RECOMMANDE_METRICS_TOKEN_FILE",
            missing.to_str().expect("utf-8"),
        )],
        Overrides::default(),
    )
    .expect_err("unreadable");
    assert!(err.to_string().contains("no-such-file"), "{err}");

    let err = load(
        None,
        &[
            ("RECOMMANDE_METRICS_TOKEN", token),
            (
                "RECOMMANDE_METRICS_TOKEN_FILE",
                token_file.to_str().expect("utf-8"),
            ),
        ],
        Overrides::default(),
    )
    .expect_err("both");
    assert!(
        err.to_string()
            .contains("RECOMMANDE_METRICS_TOKEN and RECOMMANDE_METRICS_TOKEN_FILE"),
        "{err}"
    );
}

#[test]
fn token_keys_are_named_by_pkcs11_uris_and_their_pin_never_comes_from_the_file() {
    let toml = "[pki]\nseal_certificate = \"seal.pem\"\nseal_key = \"pkcs11:token=HSM%20A;object=seal;id=%01%02\"\nroots = \"roots.pem\"\n[pki.pkcs11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n";
    let s = load(
        Some(toml),
        &[("RECOMMANDE_PKI_PKCS11_PIN", "1234")],
        Overrides::default(),
    )
    .expect("settings");
    let Some(KeySource::Pkcs11(uri)) = &s.pki.seal_key else {
        panic!("a token key: {:?}", s.pki.seal_key);
    };
    assert_eq!(uri.token.as_deref(), Some("HSM A"));
    assert_eq!(uri.object.as_deref(), Some("seal"));
    assert_eq!(uri.id.as_deref(), Some(&[1u8, 2][..]));
    assert_eq!(
        uri.to_string(),
        "pkcs11:token=HSM%20A;object=seal;id=%01%02"
    );
    let pkcs11 = s.pki.pkcs11.as_ref().expect("module");
    assert_eq!(pkcs11.sessions, DEFAULT_PKCS11_SESSIONS);
    assert_eq!(pkcs11.pin, PinSource::Value(SecretText::new("1234".into())));
    assert!(
        !format!("{s:?}").contains("1234"),
        "the PIN is never printed"
    );

    // A PIN in the file, in a URI, or none at all: refused, naming the setting.
    let in_file = format!("{toml}pin = \"1234\"\n");
    let e = load(Some(&in_file), &[], Overrides::default()).expect_err("pin in file");
    assert!(e.to_string().contains("pki.pkcs11.pin"), "{e}");
    let e = load(Some(toml), &[], Overrides::default()).expect_err("no pin");
    assert!(e.to_string().contains("pki.pkcs11.pin_file"), "{e}");
    let e = load(
        Some(&toml.replace("object=seal", "object=seal?pin-value=1234")),
        &[("RECOMMANDE_PKI_PKCS11_PIN", "1234")],
        Overrides::default(),
    )
    .expect_err("pin in uri");
    assert!(
        e.to_string()
            .contains("a PIN may not be written in a key URI"),
        "{e}"
    );
    // A token key without a module; a URI that names no key; a bad attribute.
    let e = load(
        Some("[pki]\nseal_key = \"pkcs11:token=a;object=seal\"\n"),
        &[],
        Overrides::default(),
    )
    .expect_err("no module");
    assert!(e.to_string().contains("pki.pkcs11.module"), "{e}");
    for (uri, expected) in [
        ("pkcs11:token=a", "names no key"),
        ("pkcs11:token=a;object=s;colour=red", "unknown attribute"),
        ("pkcs11:object=%zz", "bad percent escape"),
        ("pkcs11:object=s;slot-id=x", "slot-id must be a number"),
    ] {
        let e = Pkcs11Uri::parse(uri).expect_err(uri);
        assert!(e.contains(expected), "{uri}: {e}");
    }
    // A path stays a key file.
    let s = load(
        Some("[pki]\nseal_key = \"/etc/recommande/seal.key.pem\"\n"),
        &[],
        Overrides::default(),
    )
    .expect("file key");
    assert_eq!(
        s.pki.seal_key,
        Some(KeySource::File(PathBuf::from(
            "/etc/recommande/seal.key.pem"
        )))
    );
    let e = load(
        Some(&format!("{toml}sessions = 0\n")),
        &[("RECOMMANDE_PKI_PKCS11_PIN", "1234")],
        Overrides::default(),
    )
    .expect_err("zero sessions");
    assert!(e.to_string().contains("pki.pkcs11.sessions"), "{e}");
}

#[test]
fn qualified_mode_lists_every_missing_prerequisite_and_only_it_may_claim_qualified_status() {
    let keys = |e: ConfigError| match e {
        ConfigError::Unqualified { refusals } => refusals.iter().map(|r| r.key).collect::<Vec<_>>(),
        other => panic!("not a qualification refusal: {other:?}"),
    };
    // The one-command development start is untouched, and is not qualified.
    let s = load(None, &[], Overrides::default()).expect("defaults");
    assert_eq!(s.qualification, QualificationMode::Development);
    assert!(!s.provider.qualified);

    // Development PKI, embedded TSA, outbox mail: every prerequisite named, in order.
    let e = load(
        Some("[qualification]\nmode = \"qualified\"\n"),
        &[],
        Overrides::default(),
    )
    .expect_err("development PKI in qualified mode");
    assert!(e.to_string().contains("pki.seal_certificate"), "{e}");
    assert_eq!(
        keys(e),
        [
            "pki.seal_certificate",
            "timestamp.mode",
            "mail.smtp_url",
            "revocation",
            "identity"
        ]
    );

    // Key files for seal and TSA: the keys are what is refused now.
    let files = "[pki]\nseal_certificate = \"seal.pem\"\nseal_key = \"seal.key\"\ntsa_certificate = \"tsa.pem\"\ntsa_key = \"tsa.key\"\nroots = \"roots.pem\"\n[timestamp]\npolicy_oid = \"1.3.6.1.4.1.99999.1\"\n";
    let e = load(
        Some(files),
        &[("RECOMMANDE_QUALIFICATION_MODE", "qualified")],
        Overrides {
            smtp_url: Some("smtp://relay.example:25".into()),
            ..Overrides::default()
        },
    )
    .expect_err("key files in qualified mode");
    assert_eq!(
        keys(e),
        ["pki.seal_key", "timestamp.mode", "revocation", "identity"]
    );

    // Both keys in a token: only what the service cannot yet provide remains.
    let tokens = "[qualification]\nmode = \"qualified\"\n[mail]\nsmtp_url = \"smtp://relay.example:25\"\n[pki]\nseal_certificate = \"seal.pem\"\nseal_key = \"pkcs11:token=hsm;object=seal\"\ntsa_certificate = \"tsa.pem\"\ntsa_key = \"pkcs11:token=hsm;object=tsa\"\nroots = \"roots.pem\"\n[pki.pkcs11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n[timestamp]\npolicy_oid = \"1.3.6.1.4.1.99999.1\"\n";
    let e = load(
        Some(tokens),
        &[("RECOMMANDE_PKI_PKCS11_PIN", "1234")],
        Overrides::default(),
    )
    .expect_err("revocation and identification are not there yet");
    assert_eq!(keys(e), ["revocation", "identity"]);

    // A remote TSA satisfies the time prerequisite even with the seal key in a file.
    let remote = "[qualification]\nmode = \"qualified\"\n[pki]\nseal_certificate = \"seal.pem\"\nseal_key = \"seal.key\"\nroots = \"roots.pem\"\n[timestamp]\nmode = \"remote\"\nurl = \"https://tsa.example/tsr\"\n";
    let e = load(Some(remote), &[], Overrides::default()).expect_err("seal key in a file");
    assert_eq!(
        keys(e),
        ["pki.seal_key", "mail.smtp_url", "revocation", "identity"]
    );

    // Outside qualified mode nobody may claim qualified status or the qualified policy.
    for (file, key) in [
        ("[provider]\nqualified = true\n", "provider.qualified"),
        (
            "evidence_policy = \"urn:recommande:evidence-policy:v1:qualified\"\n",
            "evidence_policy",
        ),
        ("[qualification]\nmode = \"yes\"\n", "qualification.mode"),
    ] {
        match load(Some(file), &[], Overrides::default()) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}
