//! The witness's check between two signed tree heads (docs/LOG.md): both heads are sealed
//! and timestamped by the provider, the newer is not smaller, and a consistency proof
//! (RFC 9162 §2.1.4) links the older root to the newer one. Pure: the caller reads the
//! heads and obtains the proof (from a file or the service) between the two steps, since
//! the proof asked for depends on the sizes of the verified heads.

use time::OffsetDateTime;

use super::merkle::Hash;
use super::{ConsistencyProof, PublishedTreeHead, TreeHead, root_of};
use crate::core::trust::TrustAnchors;

/// Two genuine tree heads, the older not larger than the newer, with their roots decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHeads {
    /// The head kept earlier.
    pub old: TreeHead,
    /// Its timestamp token's time.
    pub old_time: OffsetDateTime,
    /// The later head.
    pub new: TreeHead,
    /// Its timestamp token's time.
    pub new_time: OffsetDateTime,
    old_root: Hash,
    new_root: Hash,
}

/// Checks both heads' seals and tokens against `anchors` and that the newer head has at
/// least as many leaves. The error is the sentence that says why the log is not shown to
/// have only grown.
pub fn verify_heads(
    old: &PublishedTreeHead,
    new: &PublishedTreeHead,
    anchors: &TrustAnchors,
) -> Result<VerifiedHeads, String> {
    let (old, old_time) = old
        .verify(anchors)
        .map_err(|e| format!("the old tree head is not genuine: {e}"))?;
    let (new, new_time) = new
        .verify(anchors)
        .map_err(|e| format!("the new tree head is not genuine: {e}"))?;
    if new.tree_size < old.tree_size {
        return Err(format!(
            "the new head has fewer leaves ({}) than the old one ({})",
            new.tree_size, old.tree_size
        ));
    }
    let (Ok(old_root), Ok(new_root)) = (root_of(&old), root_of(&new)) else {
        return Err("a root hash cannot be read".into());
    };
    Ok(VerifiedHeads {
        old,
        old_time,
        new,
        new_time,
        old_root,
        new_root,
    })
}

impl VerifiedHeads {
    /// Whether a consistency proof is needed: heads of one size need only equal roots.
    pub fn needs_proof(&self) -> bool {
        self.old.tree_size != self.new.tree_size
    }

    /// Checks that the older tree is a prefix of the newer: equal roots for equal sizes,
    /// otherwise `proof` must be between exactly these sizes and link the two roots. A
    /// missing proof when one is needed fails like a wrong one.
    pub fn verify_growth(&self, proof: Option<&ConsistencyProof>) -> Result<(), String> {
        let consistent = if self.needs_proof() {
            proof.is_some_and(|proof| {
                proof.from == self.old.tree_size
                    && proof.to == self.new.tree_size
                    && proof.verify(&self.old_root, &self.new_root)
            })
        } else {
            self.old_root == self.new_root
        };
        if consistent {
            Ok(())
        } else {
            Err(format!(
                "the tree of {} leaves (root {}) is not a prefix of the tree of {} leaves (root {}): history was changed",
                self.old.tree_size, self.old.root_hash, self.new.tree_size, self.new.root_hash
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::core::log::merkle::{self, Frontier};

    /// A log of `count` leaves: its stored nodes and the frontier after each append.
    fn log(count: u64) -> (HashMap<(u32, u64), Hash>, Vec<Frontier>) {
        let mut frontier = Frontier::empty();
        let mut stored = HashMap::new();
        let mut frontiers = vec![frontier.clone()];
        for i in 0..count {
            let leaf = merkle::leaf_hash(&Sha256::digest(i.to_be_bytes()));
            for (level, index, hash) in frontier.append(leaf) {
                stored.insert((level, index), hash);
            }
            frontiers.push(frontier.clone());
        }
        (stored, frontiers)
    }

    fn head(size: u64, root: &Hash) -> TreeHead {
        TreeHead {
            version: crate::core::log::TREE_HEAD_VERSION,
            log: "test".into(),
            hash_algorithm: "SHA-256".into(),
            leaf_rule: crate::core::log::LEAF_RULE.into(),
            tree_size: size,
            root_hash: hex::encode(root),
            issued_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn heads(old: (u64, Hash), new: (u64, Hash)) -> VerifiedHeads {
        VerifiedHeads {
            old: head(old.0, &old.1),
            old_time: OffsetDateTime::UNIX_EPOCH,
            new: head(new.0, &new.1),
            new_time: OffsetDateTime::UNIX_EPOCH,
            old_root: old.1,
            new_root: new.1,
        }
    }

    #[test]
    fn growth_needs_a_proof_between_exactly_the_two_sizes_that_links_the_roots() {
        let (stored, frontiers) = log(11);
        let node = |level: u32, index: u64| {
            stored
                .get(&(level, index))
                .copied()
                .ok_or_else(|| format!("node ({level},{index}) not stored"))
        };
        let (old_root, new_root) = (frontiers[4].root(), frontiers[11].root());
        let path = merkle::consistency_proof(4, 11, node).expect("proof");
        let proof = ConsistencyProof {
            from: 4,
            to: 11,
            proof: path.iter().map(hex::encode).collect(),
        };
        let grown = heads((4, old_root), (11, new_root));
        assert!(grown.needs_proof());
        assert_eq!(grown.verify_growth(Some(&proof)), Ok(()));
        let refused = grown.verify_growth(None).expect_err("no proof");
        assert!(refused.contains("is not a prefix"), "{refused}");
        let other_sizes = ConsistencyProof {
            from: 3,
            ..proof.clone()
        };
        assert!(grown.verify_growth(Some(&other_sizes)).is_err());
        let forged = heads((4, frontiers[5].root()), (11, new_root));
        assert!(forged.verify_growth(Some(&proof)).is_err());
    }

    #[test]
    fn heads_of_one_size_need_equal_roots_and_no_proof() {
        let (_, frontiers) = log(6);
        let same = heads((6, frontiers[6].root()), (6, frontiers[6].root()));
        assert!(!same.needs_proof());
        assert_eq!(same.verify_growth(None), Ok(()));
        let changed = heads((6, frontiers[6].root()), (6, frontiers[5].root()));
        assert!(changed.verify_growth(None).is_err());
    }
}
