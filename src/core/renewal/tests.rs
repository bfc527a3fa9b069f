use super::*;
use crate::core::log::merkle::Frontier;
use crate::core::pki::test_support::dev_pki;
use crate::core::timestamp::{SerialNumbers, TimestampAuthority};

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&Sha256::digest(i.to_be_bytes()).into(), &[i as u8; 7]))
        .collect()
}

#[test]
fn the_tree_is_the_rfc_9162_tree_and_every_path_of_every_size_leads_to_its_root() {
    for n in 1..=40 {
        let leaves = leaves(n);
        let tree = RenewalTree::build(leaves.clone()).expect("non-empty");
        let mut frontier = Frontier::empty();
        for leaf in &leaves {
            frontier.append(*leaf);
        }
        assert_eq!(tree.root(), frontier.root(), "size {n}: RFC 9162 root");
        assert_eq!(tree.size(), n);
        for (i, leaf) in leaves.iter().enumerate() {
            let path = tree.path(i);
            assert!(path.len() <= 6, "size {n}: path of {} steps", path.len());
            assert_eq!(
                root_from_path(leaf, &path),
                Ok(tree.root()),
                "size {n}, leaf {i}"
            );
        }
    }
    assert!(RenewalTree::build(Vec::new()).is_none());
}

#[test]
fn a_tampered_path_never_leads_to_the_root() {
    for n in 2..=40 {
        let leaves = leaves(n);
        let tree = RenewalTree::build(leaves.clone()).expect("non-empty");
        for (i, leaf) in leaves.iter().enumerate() {
            let path = tree.path(i);
            assert!(!path.is_empty());
            for step in 0..path.len() {
                let mut flipped = path.clone();
                flipped[step].side = match flipped[step].side {
                    Side::Left => Side::Right,
                    Side::Right => Side::Left,
                };
                assert_ne!(root_from_path(leaf, &flipped), Ok(tree.root()));
                let mut changed = path.clone();
                changed[step].hash = hex::encode([0x5a; 32]);
                assert_ne!(root_from_path(leaf, &changed), Ok(tree.root()));
            }
            let mut shorter = path.clone();
            shorter.pop();
            assert_ne!(root_from_path(leaf, &shorter), Ok(tree.root()));
            // Another leaf's path does not fit this leaf.
            let other = tree.path((i + 1) % n);
            assert_ne!(root_from_path(leaf, &other), Ok(tree.root()));
        }
    }
    let bad = vec![PathStep {
        side: Side::Left,
        hash: "zz".into(),
    }];
    assert!(root_from_path(&[0; 32], &bad).is_err());
}

/// A record, its original token, and one renewal of it by the same TSA one second later.
fn renewed_record() -> ([u8; 32], Vec<u8>, Vec<u8>, Vec<u8>, OffsetDateTime) {
    let pki = dev_pki();
    let tsa = TimestampAuthority::new(
        pki.material.tsa.clone().expect("dev tsa"),
        "1.3.6.1.4.1.99999.1",
        SerialNumbers::new(7),
    )
    .expect("tsa");
    let record_sha: [u8; 32] = Sha256::digest(b"an evidence record").into();
    let original = tsa.timestamp_sha256(record_sha, pki.now).expect("token");
    let mut all = leaves(4);
    all.insert(2, leaf_hash(&record_sha, &original));
    let tree = RenewalTree::build(all).expect("tree");
    let record = RenewalRecord {
        version: RENEWAL_VERSION,
        renewal_id: 1,
        generation: 1,
        reason: "test".into(),
        evidence_id: "e-1".into(),
        record_sha256: hex::encode(record_sha),
        covered_token_sha256: hex::encode(Sha256::digest(&original)),
        hash_algorithm: "sha-256".into(),
        leaf_hash: hex::encode(leaf_hash(&record_sha, &original)),
        leaf_index: 2,
        tree_size: 5,
        path: tree.path(2),
        root: hex::encode(tree.root()),
    };
    let token = tsa
        .timestamp_sha256(tree.root(), pki.now + time::Duration::seconds(1))
        .expect("renewal token");
    (
        record_sha,
        original,
        record.to_canonical_bytes().expect("json"),
        token,
        pki.now,
    )
}

#[test]
fn a_renewal_chain_is_checked_link_by_link_and_judged_at_the_verification_time() {
    let (record_sha, original, record, token, now) = renewed_record();
    let anchors = TrustAnchors::from_der(dev_pki().material.roots_der.clone()).expect("anchors");
    let renewal = [RenewalFiles {
        record: &record,
        token: &token,
    }];
    let ok = verify_chain(&record_sha, Some("e-1"), &original, &renewal, &anchors, now);
    assert!(ok.is_ok(), "{ok:?}");
    assert!(verify_chain(&record_sha, None, &original, &[], &anchors, now).is_ok());
    // Twenty years on, the development TSA certificate (ten years) has expired: neither the
    // original token nor a renewal by the same TSA is enough.
    let later = now + time::Duration::days(365 * 20);
    let expired =
        verify_chain(&record_sha, None, &original, &renewal, &anchors, later).expect_err("expired");
    assert!(expired.contains("expired"), "{expired}");
    // A renewal about another evidence record, or over another token, is refused.
    let wrong_id = verify_chain(&record_sha, Some("e-2"), &original, &renewal, &anchors, now)
        .expect_err("other evidence");
    assert!(wrong_id.contains("evidence e-1"), "{wrong_id}");
    let other_token = [RenewalFiles {
        record: &record,
        token: &original,
    }];
    let wrong_token = verify_chain(&record_sha, None, &original, &other_token, &anchors, now)
        .expect_err("token over the record, not the root");
    assert!(wrong_token.contains("imprint"), "{wrong_token}");
    // A tampered path.
    let mut parsed: RenewalRecord = serde_json::from_slice(&record).expect("parse");
    parsed.path[0].hash = hex::encode([1u8; 32]);
    let tampered = parsed.to_canonical_bytes().expect("json");
    let broken = [RenewalFiles {
        record: &tampered,
        token: &token,
    }];
    let e = verify_chain(&record_sha, None, &original, &broken, &anchors, now)
        .expect_err("tampered path");
    assert!(e.contains("the path leads to"), "{e}");
}
