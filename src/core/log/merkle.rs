//! The Merkle tree of the transparency log, as RFC 9162 (Certificate Transparency 2.0) §2.1
//! defines it: SHA-256, leaf hash `H(0x00 ‖ d)`, interior node `H(0x01 ‖ left ‖ right)`,
//! the split of `n` leaves at the largest power of two smaller than `n`, inclusion proofs
//! (§2.1.3) and consistency proofs (§2.1.4) with their verification algorithms.
//!
//! Storage keeps only *perfect* subtrees: node `(level, index)` is the hash of leaves
//! `[index·2^level, (index+1)·2^level)`. Appending a leaf creates at most `log2 n + 1` of
//! them and reads none (the [`Frontier`] holds the right edge); any root or proof needs at
//! most `2·log2 n` of them ([`needed_nodes`]). No step rebuilds the tree.

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// A stored perfect subtree: `(level, index, hash)`.
pub type Node = (u32, u64, Hash);

/// `H(0x00 ‖ data)`, RFC 9162 §2.1.1.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `H(0x01 ‖ left ‖ right)`, RFC 9162 §2.1.1.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The right edge of a tree of `size` leaves: the perfect subtrees its size decomposes into
/// (one per set bit of `size`, largest first). Enough to append and to compute the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)`, largest subtree first.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn empty() -> Self {
        Frontier {
            size: 0,
            peaks: Vec::new(),
        }
    }

    /// The frontier of a tree of `size` leaves, read from its stored perfect subtrees.
    pub fn load<E>(
        size: u64,
        mut node: impl FnMut(u32, u64) -> Result<Hash, E>,
    ) -> Result<Self, E> {
        let mut peaks = Vec::new();
        for (level, index) in peak_keys(size) {
            peaks.push((level, node(level, index)?));
        }
        Ok(Frontier { size, peaks })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The keys of the peaks (what [`Frontier::load`] reads).
    pub fn peak_keys(&self) -> Vec<(u32, u64)> {
        peak_keys(self.size)
    }

    /// Appends a leaf (already hashed with [`leaf_hash`]); returns the perfect subtrees this
    /// creates, to be stored: the leaf itself at level 0, then each completed parent.
    pub fn append(&mut self, leaf: Hash) -> Vec<Node> {
        let position = self.size;
        let mut created = vec![(0, position, leaf)];
        let mut current = (0u32, leaf);
        while let Some(&(level, left)) = self.peaks.last() {
            if level != current.0 {
                break;
            }
            self.peaks.pop();
            let parent = node_hash(&left, &current.1);
            let level = level + 1;
            created.push((level, position >> level, parent));
            current = (level, parent);
        }
        self.peaks.push(current);
        self.size += 1;
        created
    }

    /// The root hash (RFC 9162 MTH) of the tree.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some((_, last)) = iter.next() else {
            return empty_root();
        };
        // Peaks are combined right to left: MTH(D[n]) = H(MTH(left perfect) ‖ MTH(rest)).
        iter.fold(*last, |acc, (_, left)| node_hash(left, &acc))
    }
}

/// The perfect subtrees a tree of `size` leaves decomposes into, largest first.
pub fn peak_keys(size: u64) -> Vec<(u32, u64)> {
    let mut keys = Vec::new();
    let mut start = 0u64;
    for level in (0..64u32).rev() {
        if size & (1u64 << level) != 0 {
            keys.push((level, start >> level));
            start += 1u64 << level;
        }
    }
    keys
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Reads the hash of leaves `[start, start + size)` from perfect subtrees.
struct Tree<F> {
    node: F,
}

impl<E, F: FnMut(u32, u64) -> Result<Hash, E>> Tree<F> {
    fn subtree(&mut self, start: u64, size: u64) -> Result<Hash, E> {
        if size.is_power_of_two() && start.is_multiple_of(size) {
            let level = size.trailing_zeros();
            return (self.node)(level, start >> level);
        }
        let k = split(size);
        let left = self.subtree(start, k)?;
        let right = self.subtree(start + k, size - k)?;
        Ok(node_hash(&left, &right))
    }

    /// RFC 9162 §2.1.3.1 PATH(m, D[start..start+n]).
    fn path(&mut self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) -> Result<(), E> {
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out)?;
            out.push(self.subtree(start + k, n - k)?);
        } else {
            self.path(m - k, start + k, n - k, out)?;
            out.push(self.subtree(start, k)?);
        }
        Ok(())
    }

    /// RFC 9162 §2.1.4.1 SUBPROOF(m, D[start..start+n], b).
    fn subproof(
        &mut self,
        m: u64,
        start: u64,
        n: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), E> {
        if m == n {
            if !complete {
                out.push(self.subtree(start, n)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, complete, out)?;
            out.push(self.subtree(start + k, n - k)?);
        } else {
            self.subproof(m - k, start + k, n - k, false, out)?;
            out.push(self.subtree(start, k)?);
        }
        Ok(())
    }
}

/// The root of the first `size` leaves.
pub fn root<E>(size: u64, node: impl FnMut(u32, u64) -> Result<Hash, E>) -> Result<Hash, E> {
    if size == 0 {
        return Ok(empty_root());
    }
    Tree { node }.subtree(0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (`index < size`).
pub fn inclusion_proof<E>(
    index: u64,
    size: u64,
    node: impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    if index < size {
        Tree { node }.path(index, 0, size, &mut out)?;
    }
    Ok(out)
}

/// The consistency proof between the trees of `old` and `new` leaves (`0 < old ≤ new`).
pub fn consistency_proof<E>(
    old: u64,
    new: u64,
    node: impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    if old > 0 && old < new {
        Tree { node }.subproof(old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

/// The perfect subtrees a computation reads, found by running it once with placeholder
/// hashes (which nodes are read never depends on their values): lets storage fetch them in
/// one query.
pub fn needed_nodes<T>(
    run: impl FnOnce(&mut dyn FnMut(u32, u64) -> Result<Hash, ()>) -> Result<T, ()>,
) -> Vec<(u32, u64)> {
    let mut keys = Vec::new();
    let mut record = |level: u32, index: u64| -> Result<Hash, ()> {
        keys.push((level, index));
        Ok([0u8; 32])
    };
    let _ = run(&mut record);
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// RFC 9162 §2.1.3.2: does `proof` show leaf `leaf` at `index` in the tree of `size` leaves
/// whose root is `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `old` leaves with root `old_root`
/// is a prefix of the tree of `new` leaves with root `new_root`?
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        // Every tree extends the empty one; there is nothing to prove.
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// MTH straight from RFC 9162 §2.1.1, recursively over all leaves: the oracle.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    type Stored = HashMap<(u32, u64), Hash>;

    fn build(count: u64) -> (Vec<Hash>, Stored, Vec<Frontier>) {
        let mut frontier = Frontier::empty();
        let mut stored = HashMap::new();
        let mut leaves = Vec::new();
        let mut frontiers = vec![frontier.clone()];
        for i in 0..count {
            let leaf = leaf_hash(&Sha256::digest(i.to_be_bytes()));
            leaves.push(leaf);
            for (level, index, hash) in frontier.append(leaf) {
                assert!(
                    stored.insert((level, index), hash).is_none(),
                    "written once"
                );
            }
            frontiers.push(frontier.clone());
        }
        (leaves, stored, frontiers)
    }

    fn lookup(stored: &Stored) -> impl FnMut(u32, u64) -> Result<Hash, String> {
        move |level, index| {
            stored
                .get(&(level, index))
                .copied()
                .ok_or_else(|| format!("node ({level},{index}) not stored"))
        }
    }

    #[test]
    fn roots_match_the_rfc_definition_for_every_size() {
        let (leaves, stored, frontiers) = build(70);
        for n in 0..=70u64 {
            let expected = reference_root(&leaves[..n as usize]);
            assert_eq!(
                frontiers[n as usize].root(),
                expected,
                "frontier root, n={n}"
            );
            assert_eq!(root(n, lookup(&stored)).expect("root"), expected, "n={n}");
            let loaded = Frontier::load(n, lookup(&stored)).expect("load");
            assert_eq!(loaded, frontiers[n as usize], "reloaded frontier, n={n}");
        }
    }

    #[test]
    fn the_empty_tree_and_a_known_vector() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // One leaf: the root is the leaf hash of its data.
        let mut f = Frontier::empty();
        f.append(leaf_hash(b""));
        assert_eq!(
            hex::encode(f.root()),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        let (leaves, stored, frontiers) = build(40);
        for n in 1..=40u64 {
            let root_n = frontiers[n as usize].root();
            for m in 0..n {
                let proof = inclusion_proof(m, n, lookup(&stored)).expect("proof");
                assert!(
                    proof.len() <= 64 - (n.leading_zeros() as usize) + 1,
                    "O(log n) proof"
                );
                assert!(
                    verify_inclusion(&leaves[m as usize], m, n, &proof, &root_n),
                    "m={m} n={n}"
                );
                // The index is bound by the proof's shape: another position fails.
                if n > 1 {
                    let moved = (m + 1) % n;
                    assert!(!verify_inclusion(
                        &leaves[m as usize],
                        moved,
                        n,
                        &proof,
                        &root_n
                    ));
                }
                let other = (m + 1) % n;
                if other != m {
                    assert!(!verify_inclusion(
                        &leaves[other as usize],
                        m,
                        n,
                        &proof,
                        &root_n
                    ));
                }
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(&leaves[m as usize], m, n, &bad, &root_n));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewritten_history_does_not() {
        let (_, stored, frontiers) = build(40);
        for new in 1..=40u64 {
            let new_root = frontiers[new as usize].root();
            for old in 1..=new {
                let old_root = frontiers[old as usize].root();
                let proof = consistency_proof(old, new, lookup(&stored)).expect("proof");
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "old={old} new={new}"
                );
                if old < new {
                    // A different old root (history rewritten) must not verify.
                    let forged = node_hash(&old_root, &old_root);
                    assert!(!verify_consistency(old, new, &forged, &new_root, &proof));
                    assert!(!verify_consistency(old, new, &old_root, &forged, &proof));
                    let mut bad = proof.clone();
                    if let Some(last) = bad.last_mut() {
                        last[0] ^= 1;
                        assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                    }
                }
            }
        }
    }

    #[test]
    fn proofs_read_few_nodes_and_appends_write_few() {
        let (_, stored, _) = build(1023);
        let keys = needed_nodes(|node| inclusion_proof(517, 1000, node));
        assert!(keys.len() <= 2 * 10, "{} nodes for n=1000", keys.len());
        for key in &keys {
            assert!(
                stored.contains_key(key),
                "{key:?} is a stored perfect subtree"
            );
        }
        let keys = needed_nodes(|node| consistency_proof(333, 1000, node));
        assert!(keys.len() <= 2 * 10, "{} nodes", keys.len());
        let mut f = Frontier::load(1023, lookup(&stored)).expect("frontier");
        let created = f.append(leaf_hash(b"x"));
        assert_eq!(created.len(), 11, "the 1024th leaf completes 10 parents");
    }
}
