//! Vectors for retrieval: cosine similarity, a byte form to store an
//! embedding in a blob or `bytea` column, the top k of a scan, and hybrid
//! fusion of a keyword ranking with a vector ranking.
//!
//! Everything is pure and deterministic. Retrieval scores candidates in
//! process (there is no `pgvector` here, see `DESIGN.md`), so these
//! functions are the whole of vector search:
//!
//! - [`cosine`] is 0, not NaN, whenever it has no meaning (a zero vector, a
//!   length mismatch, a non-finite component), so a bad row scores lowest
//!   instead of poisoning a sort.
//! - [`to_le_bytes`] / [`from_le_bytes`] store `f32`s as little-endian
//!   bytes, four per component: the same bytes on every platform and both
//!   database backends.
//! - [`top_k`] and [`fuse`] break ties by key, ascending, so the same input
//!   always gives the same order.
//! - [`fuse`] is reciprocal rank fusion (Cormack, Clarke and Büttcher,
//!   2009) with the constant [`RRF_K`] = 60: a document's fused score is
//!   the sum over the rankings it appears in of `1 / (60 + rank)`, rank
//!   counted from 1. It uses ranks only, so BM25 scores and cosines, which
//!   live on unrelated scales, need no calibration against each other.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// The constant of reciprocal rank fusion: the value of the original paper,
/// and the one Elasticsearch, OpenSearch and Azure AI Search use. It damps
/// the weight of the very first ranks, so one list's top hit cannot outvote
/// agreement between both lists further down.
pub const RRF_K: f64 = 60.0;

/// Bytes of one stored component.
const COMPONENT_BYTES: usize = std::mem::size_of::<f32>();

/// Cosine similarity of `a` and `b`, in [-1, 1].
///
/// 0 when it is undefined: different lengths, empty vectors, a zero vector,
/// or a component that is NaN or infinite. Computed in `f64`, so unit
/// vectors compared with themselves give exactly 1.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut norm_a, mut norm_b) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    let denominator = norm_a.sqrt() * norm_b.sqrt();
    let similarity = dot / denominator;
    if denominator > 0.0 && similarity.is_finite() {
        similarity.clamp(-1.0, 1.0) as f32
    } else {
        0.0
    }
}

/// `v` scaled to unit length; a zero or non-finite vector comes back as
/// all zeros (it has no direction, and [`cosine`] scores it 0).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter().map(|&x| (f64::from(x) / norm) as f32).collect()
    } else {
        vec![0.0; v.len()]
    }
}

/// A stored vector whose length is not a whole number of `f32`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored vector of {len} bytes is not a whole number of 4-byte floats")]
pub struct VectorBytesError {
    pub len: usize,
}

/// `v` as little-endian bytes, four per component (for a blob or `bytea`).
pub fn to_le_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * COMPONENT_BYTES);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The vector that [`to_le_bytes`] wrote. Bit-exact: NaNs and infinities
/// come back as they went in (and [`cosine`] scores them 0).
pub fn from_le_bytes(bytes: &[u8]) -> Result<Vec<f32>, VectorBytesError> {
    if !bytes.len().is_multiple_of(COMPONENT_BYTES) {
        return Err(VectorBytesError { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(COMPONENT_BYTES)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// A scored key, ordered best first: higher score, then smaller key.
struct Ranked<K> {
    score: f32,
    key: K,
}

impl<K: Ord> Ranked<K> {
    /// `Less` when `self` ranks before `other`.
    fn rank_cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl<K: Ord> PartialEq for Ranked<K> {
    fn eq(&self, other: &Self) -> bool {
        self.rank_cmp(other) == Ordering::Equal
    }
}

impl<K: Ord> Eq for Ranked<K> {}

impl<K: Ord> PartialOrd for Ranked<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> Ord for Ranked<K> {
    /// The heap's maximum is the worst-ranked entry, the first to evict.
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank_cmp(other)
    }
}

/// The `k` candidates most similar to `query` by [`cosine`], best first;
/// equal scores in ascending key order. One pass, O(n log k).
pub fn top_k<'a, K: Ord>(
    query: &[f32],
    candidates: impl IntoIterator<Item = (K, &'a [f32])>,
    k: usize,
) -> Vec<(K, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Ranked<K>> = BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16));
    for (key, vector) in candidates {
        let entry = Ranked {
            score: cosine(query, vector),
            key,
        };
        if heap.len() < k {
            heap.push(entry);
        } else if heap.peek().is_some_and(|worst| entry < *worst) {
            heap.pop();
            heap.push(entry);
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|r| (r.key, r.score))
        .collect()
}

/// Reciprocal rank fusion of a keyword ranking and a vector ranking (see
/// the module docs): the `k` best ids with their fused scores, best first,
/// equal scores in ascending id order.
///
/// Each list is ranked by its own scores, highest first (equal scores in
/// ascending id order), so the order the caller passes does not matter. An
/// id listed twice in one list counts once, at its best rank. An id found
/// by only one list still gets that list's share.
pub fn fuse(keyword: &[(String, f32)], vector: &[(String, f32)], k: usize) -> Vec<(String, f32)> {
    let mut fused: BTreeMap<&str, f64> = BTreeMap::new();
    for list in [keyword, vector] {
        let mut ranked: Vec<Ranked<&str>> = list
            .iter()
            .map(|(id, score)| Ranked {
                score: *score,
                key: id.as_str(),
            })
            .collect();
        ranked.sort();
        let mut seen = std::collections::BTreeSet::new();
        let mut rank = 0u32;
        for entry in ranked {
            if !seen.insert(entry.key) {
                continue;
            }
            rank += 1;
            *fused.entry(entry.key).or_default() += 1.0 / (RRF_K + f64::from(rank));
        }
    }
    let mut out: Vec<Ranked<&str>> = fused
        .into_iter()
        .map(|(key, score)| Ranked {
            score: score as f32,
            key,
        })
        .collect();
    out.sort();
    out.truncate(k);
    out.into_iter().map(|r| (r.key.to_owned(), r.score)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(scored: &[(String, f32)]) -> Vec<&str> {
        scored.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn list(items: &[(&str, f32)]) -> Vec<(String, f32)> {
        items.iter().map(|(id, s)| ((*id).to_owned(), *s)).collect()
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert_eq!(cosine(&[1.0, 0.0], &[1.0, 0.0]), 1.0);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), 0.0);
        assert_eq!(cosine(&[1.0, 0.0], &[-3.0, 0.0]), -1.0);
        assert!((cosine(&[1.0, 1.0], &[1.0, 0.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn cosine_is_zero_where_undefined() {
        assert_eq!(cosine(&[], &[]), 0.0);
        assert_eq!(cosine(&[1.0, 2.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[f32::NAN, 1.0], &[1.0, 1.0]), 0.0);
        assert_eq!(cosine(&[f32::INFINITY, 1.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn normalized_has_unit_length_and_zero_stays_zero() {
        let v = normalized(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(normalized(&[f32::NAN, 1.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn bytes_round_trip_and_odd_lengths_are_refused() {
        let v = vec![1.5, -0.25, f32::MIN_POSITIVE, 0.0];
        let bytes = to_le_bytes(&v);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &1.5f32.to_le_bytes());
        assert_eq!(from_le_bytes(&bytes), Ok(v));
        assert_eq!(from_le_bytes(&[]), Ok(Vec::new()));
        assert_eq!(from_le_bytes(&[0, 0, 0]), Err(VectorBytesError { len: 3 }));
    }

    #[test]
    fn top_k_orders_by_score_then_key() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 1.0];
        let c = [1.0f32, 1.0];
        let candidates = vec![("b", &b[..]), ("c", &c[..]), ("a2", &a[..]), ("a1", &a[..])];
        let top = top_k(&[1.0, 0.0], candidates.clone(), 3);
        let keys: Vec<_> = top.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["a1", "a2", "c"]);
        assert_eq!(top[0].1, 1.0);
        assert_eq!(top_k(&[1.0, 0.0], candidates.clone(), 0), Vec::new());
        assert_eq!(top_k(&[1.0, 0.0], candidates, 10).len(), 4);
    }

    #[test]
    fn fuse_rewards_agreement_and_keeps_single_list_hits() {
        let keyword = list(&[("refunds", 9.0), ("shipping", 5.0), ("returns", 1.0)]);
        let vector = list(&[("returns", 0.9), ("refunds", 0.8), ("privacy", 0.7)]);
        let fused = fuse(&keyword, &vector, 10);
        assert_eq!(ids(&fused), ["refunds", "returns", "shipping", "privacy"]);
        let expected = 1.0 / 61.0 + 1.0 / 62.0;
        assert!((f64::from(fused[0].1) - expected).abs() < 1e-7);
        assert_eq!(ids(&fuse(&keyword, &vector, 2)), ["refunds", "returns"]);
        assert!(fuse(&[], &[], 5).is_empty());
    }

    #[test]
    fn fuse_ignores_input_order_and_duplicates() {
        let keyword = list(&[("a", 1.0), ("b", 3.0), ("b", 0.5), ("c", 2.0)]);
        let reordered = list(&[("c", 2.0), ("b", 3.0), ("a", 1.0)]);
        assert_eq!(fuse(&keyword, &[], 10), fuse(&reordered, &[], 10));
        assert_eq!(ids(&fuse(&keyword, &[], 10)), ["b", "c", "a"]);
        // Equal fused scores: ascending id.
        let tie = fuse(&list(&[("y", 1.0)]), &list(&[("x", 1.0)]), 10);
        assert_eq!(ids(&tie), ["x", "y"]);
    }

    fn vector(len: usize) -> impl Strategy<Value = Vec<f32>> {
        proptest::collection::vec(-1000.0f32..1000.0, len)
    }

    proptest! {
        #[test]
        fn cosine_is_bounded_and_symmetric((a, b) in (1usize..32).prop_flat_map(|n| (vector(n), vector(n)))) {
            let c = cosine(&a, &b);
            prop_assert!((-1.0..=1.0).contains(&c), "{c}");
            prop_assert_eq!(c, cosine(&b, &a));
        }

        #[test]
        fn a_normalised_vector_is_its_own_nearest(a in vector(16)) {
            let n = normalized(&a);
            if a.iter().any(|&x| x != 0.0) {
                prop_assert!((cosine(&n, &n) - 1.0).abs() < 1e-6);
                prop_assert!((cosine(&a, &n) - 1.0).abs() < 1e-6);
            }
        }

        #[test]
        fn bytes_round_trip(a in proptest::collection::vec(any::<f32>(), 0..64)) {
            let back = from_le_bytes(&to_le_bytes(&a)).unwrap();
            prop_assert_eq!(
                back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                a.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }

        #[test]
        fn top_k_is_the_prefix_of_a_full_sort(
            query in vector(4),
            rows in proptest::collection::vec(vector(4), 0..40),
            k in 0usize..50,
        ) {
            let keyed: Vec<(usize, &[f32])> = rows.iter().enumerate().map(|(i, v)| (i, v.as_slice())).collect();
            let mut all: Vec<(usize, f32)> = keyed.iter().map(|(i, v)| (*i, cosine(&query, v))).collect();
            all.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            all.truncate(k);
            prop_assert_eq!(top_k(&query, keyed, k), all);
        }

        #[test]
        fn fusion_is_stable_and_bounded(
            keyword in proptest::collection::vec(("[a-e]", 0.0f32..10.0), 0..8),
            vector in proptest::collection::vec(("[a-e]", -1.0f32..1.0), 0..8),
            k in 0usize..8,
        ) {
            let fused = fuse(&keyword, &vector, k);
            let mut reversed_k = keyword.clone();
            reversed_k.reverse();
            let mut reversed_v = vector.clone();
            reversed_v.reverse();
            prop_assert_eq!(&fused, &fuse(&reversed_k, &reversed_v, k));
            prop_assert!(fused.len() <= k);
            for pair in fused.windows(2) {
                prop_assert!(pair[0].1 > pair[1].1 || (pair[0].1 == pair[1].1 && pair[0].0 < pair[1].0));
            }
            for (_, score) in &fused {
                prop_assert!(*score > 0.0 && f64::from(*score) <= 2.0 / (RRF_K + 1.0) + 1e-6);
            }
        }
    }
}
