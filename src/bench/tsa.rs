//! Throughput of the embedded TSA compared with raw ECDSA P-256 signing.
//!
//! Issuing a token should cost one ECDSA signature plus two small SHA-256 and
//! byte copies, so the token rate should stay close to the raw signature rate
//! (target ≥ 70 %). Both are measured in the same run, with the same thread count
//! and a message of the size of a token's signed attributes.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::core::timestamp::{ParsedToken, SerialNumbers, TimestampAuthority, TimestampRequest};

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct TsaBenchReport {
    /// Full `issue_token` calls per second (certReq true, fresh digest each time).
    pub tokens_per_second: f64,
    /// Raw ECDSA P-256 signatures per second over a message of the same size.
    pub raw_signatures_per_second: f64,
    /// tokens_per_second / raw_signatures_per_second.
    pub ratio: f64,
    /// The same two figures with the key in a PKCS#11 token (`--pkcs11-key`), same run.
    pub token: Option<TokenFigures>,
}

/// Figures of a key inside a PKCS#11 token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenFigures {
    /// The key's URI.
    pub key: String,
    /// Tokens per second signed in the token.
    pub tokens_per_second: f64,
    /// Raw signatures per second made by the token.
    pub raw_signatures_per_second: f64,
}

impl fmt::Display for TsaBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TSA: {:.0} tokens/s, raw ECDSA P-256: {:.0} signatures/s, ratio {:.1} %",
            self.tokens_per_second,
            self.raw_signatures_per_second,
            self.ratio * 100.0
        )?;
        if let Some(token) = &self.token {
            write!(
                f,
                "\nPKCS#11 key {}: {:.0} tokens/s ({:.1} % of the key file's), raw: {:.0} signatures/s",
                token.key,
                token.tokens_per_second,
                100.0 * token.tokens_per_second / self.tokens_per_second.max(f64::EPSILON),
                token.raw_signatures_per_second
            )?;
        }
        Ok(())
    }
}

/// Removes the benchmark's temporary directory when dropped.
/// Runs `f(i)` for `i in 0..total` spread over `threads` threads; returns ops/s.
fn rate<F>(total: usize, threads: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> anyhow::Result<()> + Sync,
{
    let threads = threads.max(1);
    let per_thread = total.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                scope.spawn(move || {
                    (t * per_thread..((t + 1) * per_thread).min(total)).try_for_each(f)
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?
        })
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(total as f64 / elapsed.max(f64::EPSILON))
}

/// Generates a throw-away development PKI, then measures raw ECDSA P-256 signing
/// and full token issuance with `threads` threads, `tokens` operations each.
pub fn run(tokens: usize, threads: usize) -> anyhow::Result<TsaBenchReport> {
    run_with(tokens, threads, None)
}

/// [`run`], and the same with `token_key` (a key in a PKCS#11 token, certified for the
/// bench by a throw-away development root) in the same run.
pub fn run_with(
    tokens: usize,
    threads: usize,
    token_key: Option<crate::infra::pkcs11::TokenKey>,
) -> anyhow::Result<TsaBenchReport> {
    let tokens = tokens.max(1);
    let dir = super::Scratch::new();
    let now = OffsetDateTime::now_utc();
    let (material, _) = crate::infra::key_files::load_or_create_development_pki(dir.path(), now)
        .context("generating the benchmark PKI")?;
    let identity = material
        .tsa
        .clone()
        .context("the development PKI has no TSA identity")?;
    let (issued, raw) = measure(identity, tokens, threads, now)?;
    let token = match token_key {
        None => None,
        Some(key) => {
            use crate::core::pki::{CertificateRole, SigningIdentity, development_chain_for};
            let location = crate::core::pki::KeySigner::location(&key);
            let (_, leaf) = development_chain_for(&key, CertificateRole::Timestamping, now, 30)?;
            let (cert, chain) = crate::core::pki::chain_from_pem(leaf.as_bytes(), "bench")?;
            let identity =
                SigningIdentity::with_signer(cert, chain, Box::new(key), "bench", &location)?;
            let (issued, raw) = measure(Arc::new(identity), tokens, threads, now)?;
            Some(TokenFigures {
                key: location,
                tokens_per_second: issued,
                raw_signatures_per_second: raw,
            })
        }
    };
    Ok(TsaBenchReport {
        tokens_per_second: issued,
        raw_signatures_per_second: raw,
        ratio: issued / raw,
        token,
    })
}

/// (tokens/s, raw signatures/s) of one identity.
fn measure(
    identity: Arc<crate::core::pki::SigningIdentity>,
    tokens: usize,
    threads: usize,
    now: OffsetDateTime,
) -> anyhow::Result<(f64, f64)> {
    let tsa = Arc::new(TimestampAuthority::new(
        identity.clone(),
        "1.3.6.1.4.1.99999.1.1",
        SerialNumbers::new(1),
    )?);

    // Same message size as what a token signature covers: its signed attributes.
    let sample = tsa.timestamp_sha256([0; 32], now)?;
    let signed_len = ParsedToken::parse(&sample)?.signed_attributes_len();
    let message = vec![0x5au8; signed_len];

    // Warm up both paths (page faults, lazy CPU feature detection, token sessions).
    for _ in 0..50 {
        identity.sign(&message)?;
        tsa.timestamp_sha256([1; 32], now)?;
    }

    let raw = rate(tokens, threads, |_| {
        identity.sign(&message)?;
        Ok(())
    })?;
    let issued = rate(tokens, threads, |i| {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let request = TimestampRequest::for_sha256(digest, None, true);
        tsa.issue_token(&request, now)?;
        Ok(())
    })?;
    Ok((issued, raw))
}

#[cfg(test)]
mod tests {
    /// Smoke test in debug builds; run `cargo test --release --lib bench -- --nocapture`
    /// for meaningful figures (set `TSA_BENCH_TOKENS` to change the count).
    #[test]
    fn bench_tsa() {
        let tokens = std::env::var("TSA_BENCH_TOKENS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if cfg!(debug_assertions) { 200 } else { 20_000 });
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let report = super::run(tokens, threads).expect("bench");
        println!("{report} ({tokens} operations, {threads} threads)");
        assert!(report.tokens_per_second > 0.0 && report.raw_signatures_per_second > 0.0);
    }
}
