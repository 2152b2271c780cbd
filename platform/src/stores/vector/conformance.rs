//! Behaviour every [`VectorStore`] must show, written once and run against each backend.
//!
//! Each check takes the store and two distinct tenant spaces of the layout under test: `a` is the
//! tenant the check exercises, `b` a bystander holding points of its own, which must come out of
//! every check untouched. A check creates the spaces it needs and drops both at the end, so callers
//! only pick unique tenant names.

use memoryc_crds::layout::VECTOR_DIMENSION;
use uuid::Uuid;

use super::{
    Nearest, ScoredId, VectorFilter, VectorPoint, VectorQuery, VectorSpace, VectorStore,
    VectorStoreError,
};

/// A score this close to 1 means "the identical vector" (f32 rounding and HNSW included).
const IDENTICAL: f32 = 0.999;

/// A deterministic pseudo-random unit vector; equal seeds give equal vectors.
pub fn unit_vector(seed: u64) -> Vec<f32> {
    // Knuth's MMIX linear congruential generator: tiny and good enough to spread test vectors.
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The top 24 bits as a float in [-0.5, 0.5).
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let raw: Vec<f32> = (0..VECTOR_DIMENSION).map(|_| next()).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    raw.into_iter().map(|x| x / norm).collect()
}

/// A point with a fresh id whose vector is `unit_vector(seed)`.
pub fn point(seed: u64, category: &str, user_id: Uuid) -> VectorPoint {
    VectorPoint {
        memory_id: Uuid::new_v4(),
        vector: unit_vector(seed),
        category: category.to_owned(),
        user_id,
        created_at_ms: 1_700_000_000_000 + seed as i64,
    }
}

fn points(seeds: std::ops::Range<u64>, user_id: Uuid) -> Vec<VectorPoint> {
    seeds
        .map(|seed| point(seed, "TECHNICAL", user_id))
        .collect()
}

fn ids(points: &[VectorPoint]) -> Vec<Uuid> {
    points.iter().map(|p| p.memory_id).collect()
}

fn hit_ids(hits: &[ScoredId]) -> Vec<Uuid> {
    hits.iter().map(|h| h.memory_id).collect()
}

async fn count(store: &dyn VectorStore, space: &VectorSpace) -> u64 {
    store.count(space).await.expect("count")
}

async fn search(
    store: &dyn VectorStore,
    space: &VectorSpace,
    query: &[f32],
    limit: usize,
) -> Vec<ScoredId> {
    store
        .nearest(space, query, limit, &VectorFilter::default())
        .await
        .expect("search")
}

/// Creates both spaces and gives the bystander `b` points of its own (same vectors as `a` will
/// use, so a leak across tenants would rank at the top). Returns the bystander's points.
async fn set_up(store: &dyn VectorStore, a: &VectorSpace, b: &VectorSpace) -> Vec<VectorPoint> {
    store.ensure_space(a).await.expect("ensure space a");
    store.ensure_space(b).await.expect("ensure space b");
    let bystander = points(0..3, Uuid::new_v4());
    store.upsert(b, &bystander).await.expect("upsert bystander");
    bystander
}

/// Asserts the bystander still holds exactly its points, then drops both spaces.
async fn tear_down(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
    bystander: &[VectorPoint],
) {
    assert_eq!(
        count(store, b).await,
        bystander.len() as u64,
        "bystander count changed"
    );
    let hits = search(store, b, &bystander[0].vector, 1).await;
    assert_eq!(
        hit_ids(&hits),
        vec![bystander[0].memory_id],
        "bystander point lost"
    );
    store.drop_space(a).await.expect("drop space a");
    store.drop_space(b).await.expect("drop space b");
}

/// `ensure_space` can run any number of times and never loses points.
pub async fn ensure_space_is_idempotent(store: &dyn VectorStore, a: &VectorSpace, b: &VectorSpace) {
    let bystander = set_up(store, a, b).await;
    store.ensure_space(a).await.expect("second ensure_space");
    assert_eq!(count(store, a).await, 0, "a fresh space is empty");

    let stored = points(10..14, Uuid::new_v4());
    store.upsert(a, &stored).await.expect("upsert");
    store
        .ensure_space(a)
        .await
        .expect("ensure_space on a filled space");
    assert_eq!(
        count(store, a).await,
        4,
        "ensure_space must keep existing points"
    );
    let hits = search(store, a, &stored[2].vector, 1).await;
    assert_eq!(hit_ids(&hits), vec![stored[2].memory_id]);
    tear_down(store, a, b, &bystander).await;
}

/// Search ranks by cosine similarity, closest first, reports ~1 for the identical vector and
/// honours the limit; a point is searchable as soon as `upsert` returns.
pub async fn search_returns_nearest_first(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
) {
    let bystander = set_up(store, a, b).await;
    let stored = points(0..20, Uuid::new_v4());
    store.upsert(a, &stored).await.expect("upsert");

    let hits = search(store, a, &stored[7].vector, 5).await;
    assert_eq!(hits.len(), 5, "limit is honoured");
    assert_eq!(
        hits[0].memory_id, stored[7].memory_id,
        "identical vector ranks first"
    );
    assert!(
        hits[0].score > IDENTICAL && hits[0].score <= 1.0 + 1e-4,
        "score {}",
        hits[0].score
    );
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "scores descend: {hits:?}"
    );
    assert!(hits[1].score < IDENTICAL, "only one identical point");
    let own: Vec<Uuid> = ids(&stored);
    assert!(
        hit_ids(&hits).iter().all(|id| own.contains(id)),
        "hits belong to the tenant"
    );

    // A query near, not at, a point still finds that point first, with a score below 1.
    let mut near: Vec<f32> = stored[3]
        .vector
        .iter()
        .zip(unit_vector(999))
        .map(|(x, y)| x + 0.2 * y)
        .collect();
    let norm = near.iter().map(|x| x * x).sum::<f32>().sqrt();
    near.iter_mut().for_each(|x| *x /= norm);
    let hits = search(store, a, &near, 3).await;
    assert_eq!(hits[0].memory_id, stored[3].memory_id);
    assert!(
        hits[0].score < IDENTICAL && hits[0].score > 0.5,
        "score {}",
        hits[0].score
    );

    assert!(
        search(store, a, &near, 0).await.is_empty(),
        "limit 0 returns nothing"
    );
    let all = search(store, a, &near, 100).await;
    assert_eq!(
        all.len(),
        20,
        "a limit above the point count returns every point once"
    );
    tear_down(store, a, b, &bystander).await;
}

/// Several queries in one call answer exactly as one search each, in the order asked, and
/// stay within the tenant even when the bystander holds the same vectors.
pub async fn search_many_answers_each_query(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
) {
    let bystander = set_up(store, a, b).await;
    let stored = points(0..12, Uuid::new_v4());
    store.upsert(a, &stored).await.expect("upsert");

    let queries: Vec<&[f32]> = [5, 0, 11, 5]
        .iter()
        .map(|&i| stored[i].vector.as_slice())
        .chain([bystander[1].vector.as_slice()])
        .collect();
    let answered = store
        .search(a, VectorQuery::new(&queries, 4, &VectorFilter::default()))
        .await
        .expect("search many");
    assert_eq!(answered.len(), queries.len(), "one result list per query");
    for (query, hits) in queries.iter().zip(&answered) {
        let alone = search(store, a, query, 4).await;
        assert_eq!(
            hit_ids(hits),
            hit_ids(&alone),
            "same answer as a lone search"
        );
    }
    for (&i, hits) in [5, 0, 11, 5].iter().zip(&answered) {
        assert_eq!(
            hits[0].memory_id, stored[i].memory_id,
            "query {i} finds itself first"
        );
        assert!(hits[0].score > IDENTICAL, "score {}", hits[0].score);
    }
    let own = ids(&stored);
    assert!(
        answered
            .iter()
            .flatten()
            .all(|hit| own.contains(&hit.memory_id)),
        "every hit belongs to the tenant"
    );
    assert!(
        store
            .search(a, VectorQuery::new(&[], 4, &VectorFilter::default()))
            .await
            .expect("no queries")
            .is_empty(),
        "no queries, no result lists"
    );
    let empty = store
        .search(
            a,
            VectorQuery::new(&queries[..2], 0, &VectorFilter::default()),
        )
        .await
        .expect("limit 0");
    assert!(
        empty.len() == 2 && empty.iter().all(Vec::is_empty),
        "limit 0 gives an empty list per query: {empty:?}"
    );
    let short = vec![0.5_f32; VECTOR_DIMENSION - 1];
    assert!(matches!(
        store
            .search(
                a,
                VectorQuery::new(&[queries[0], &short], 4, &VectorFilter::default())
            )
            .await,
        Err(VectorStoreError::DimensionMismatch { .. })
    ));
    tear_down(store, a, b, &bystander).await;
}

/// Upserting an existing id replaces the point: no duplicate, new vector and fields.
pub async fn upsert_replaces_existing_point(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
) {
    let bystander = set_up(store, a, b).await;
    let user = Uuid::new_v4();
    let stored = points(0..5, user);
    store.upsert(a, &stored).await.expect("upsert");

    let mut replacement = stored[0].clone();
    replacement.vector = unit_vector(500);
    replacement.category = "WORKFLOW".to_owned();
    store
        .upsert(a, std::slice::from_ref(&replacement))
        .await
        .expect("re-upsert");
    assert_eq!(count(store, a).await, 5, "re-upsert must not add a row");

    let hits = search(store, a, &replacement.vector, 5).await;
    assert_eq!(hits[0].memory_id, replacement.memory_id);
    assert!(hits[0].score > IDENTICAL);
    let old = search(store, a, &stored[0].vector, 5).await;
    assert!(
        old.iter().all(|h| h.score < IDENTICAL),
        "the old vector is gone: {old:?}"
    );
    assert_eq!(
        old.iter()
            .filter(|h| h.memory_id == replacement.memory_id)
            .count(),
        1,
        "the id appears once"
    );
    let workflow = VectorFilter {
        category: Some("WORKFLOW".to_owned()),
        user_id: None,
    };
    let hits = store
        .nearest(a, &stored[1].vector, 10, &workflow)
        .await
        .expect("search");
    assert_eq!(
        hit_ids(&hits),
        vec![replacement.memory_id],
        "fields are replaced too"
    );

    // Back-to-back replacements leave exactly the last version.
    for seed in 700..705 {
        replacement.vector = unit_vector(seed);
        store
            .upsert(a, std::slice::from_ref(&replacement))
            .await
            .expect("re-upsert");
    }
    assert_eq!(
        count(store, a).await,
        5,
        "repeated re-upserts must not add rows"
    );
    let hits = search(store, a, &replacement.vector, 10).await;
    assert_eq!(hits[0].memory_id, replacement.memory_id);
    assert!(hits[0].score > IDENTICAL, "the last version is stored");
    assert_eq!(
        hits.iter()
            .filter(|h| h.memory_id == replacement.memory_id)
            .count(),
        1
    );

    // The same id twice in one call keeps the last.
    let mut first = point(600, "PROJECT", user);
    let mut last = first.clone();
    first.vector = unit_vector(601);
    last.vector = unit_vector(602);
    store
        .upsert(a, &[first, last.clone()])
        .await
        .expect("upsert duplicates");
    assert_eq!(count(store, a).await, 6);
    let hits = search(store, a, &last.vector, 1).await;
    assert_eq!(hit_ids(&hits), vec![last.memory_id]);
    assert!(hits[0].score > IDENTICAL, "the last write wins");
    tear_down(store, a, b, &bystander).await;
}

/// Deleted points are neither counted nor found; unknown ids and empty calls are ignored.
pub async fn delete_removes_points(store: &dyn VectorStore, a: &VectorSpace, b: &VectorSpace) {
    let bystander = set_up(store, a, b).await;
    let stored = points(0..6, Uuid::new_v4());
    store.upsert(a, &stored).await.expect("upsert");

    let gone = [stored[1].memory_id, stored[4].memory_id, Uuid::new_v4()];
    store.delete(a, &gone).await.expect("delete");
    store.delete(a, &[]).await.expect("empty delete");
    store.upsert(a, &[]).await.expect("empty upsert");
    assert_eq!(count(store, a).await, 4);

    let hits = search(store, a, &stored[1].vector, 10).await;
    assert_eq!(hits.len(), 4);
    assert!(
        hits.iter().all(|h| !gone.contains(&h.memory_id)),
        "deleted point found: {hits:?}"
    );
    store
        .delete(a, &gone)
        .await
        .expect("deleting again is a no-op");
    assert_eq!(count(store, a).await, 4);
    tear_down(store, a, b, &bystander).await;
}

/// Category and user filters restrict hits; a category that is not an uppercase word is refused.
pub async fn filters_by_category_and_user(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
) {
    let bystander = set_up(store, a, b).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let categories = ["TECHNICAL", "WORKFLOW", "PREFERENCE"];
    let stored: Vec<VectorPoint> = (0..12u64)
        .map(|seed| {
            let user = if seed % 2 == 0 { alice } else { bob };
            point(seed, categories[seed as usize % 3], user)
        })
        .collect();
    store.upsert(a, &stored).await.expect("upsert");
    let matching = |category: Option<&str>, user: Option<Uuid>| -> Vec<Uuid> {
        stored
            .iter()
            .filter(|p| category.is_none_or(|c| p.category == c))
            .filter(|p| user.is_none_or(|u| p.user_id == u))
            .map(|p| p.memory_id)
            .collect()
    };
    let cases = [
        (Some("WORKFLOW"), None),
        (None, Some(bob)),
        (Some("TECHNICAL"), Some(alice)),
        (Some("TECHNICAL"), Some(bob)),
    ];
    for (category, user) in cases {
        let filter = VectorFilter {
            category: category.map(str::to_owned),
            user_id: user,
        };
        let mut hits = hit_ids(
            &store
                .nearest(a, &stored[0].vector, 50, &filter)
                .await
                .expect("search"),
        );
        let mut expected = matching(category, user);
        hits.sort();
        expected.sort();
        assert_eq!(hits, expected, "filter {filter:?}");
    }

    let unknown_user = VectorFilter {
        category: None,
        user_id: Some(Uuid::new_v4()),
    };
    let hits = store
        .nearest(a, &stored[0].vector, 50, &unknown_user)
        .await
        .expect("search");
    assert!(hits.is_empty(), "a user without points sees nothing");

    for hostile in [
        "technical",
        "TECHNICAL\" || tenant != \"",
        "",
        "A_VERY_LONG_CATEGORY_NAME",
    ] {
        let filter = VectorFilter {
            category: Some(hostile.to_owned()),
            user_id: None,
        };
        let result = store.nearest(a, &stored[0].vector, 5, &filter).await;
        assert!(
            matches!(result, Err(VectorStoreError::Rejected(_))),
            "{hostile:?}: {result:?}"
        );
    }
    tear_down(store, a, b, &bystander).await;
}

/// Two tenants never see, count or delete each other's points, even with identical vectors.
pub async fn tenants_are_isolated(store: &dyn VectorStore, a: &VectorSpace, b: &VectorSpace) {
    store.ensure_space(a).await.expect("ensure a");
    store.ensure_space(b).await.expect("ensure b");
    let user = Uuid::new_v4();
    let of_a = points(0..4, user);
    let of_b = points(0..6, user);
    store.upsert(a, &of_a).await.expect("upsert a");
    store.upsert(b, &of_b).await.expect("upsert b");
    assert_eq!(count(store, a).await, 4);
    assert_eq!(count(store, b).await, 6);

    let hits = search(store, a, &of_b[0].vector, 20).await;
    assert_eq!(hits.len(), 4, "a sees its own points only: {hits:?}");
    assert!(hits.iter().all(|h| ids(&of_a).contains(&h.memory_id)));
    let filter = VectorFilter {
        category: Some("TECHNICAL".to_owned()),
        user_id: Some(user),
    };
    let hits = store
        .nearest(b, &of_a[0].vector, 20, &filter)
        .await
        .expect("search");
    assert_eq!(hits.len(), 6, "b sees its own points only: {hits:?}");
    assert!(hits.iter().all(|h| ids(&of_b).contains(&h.memory_id)));

    store
        .delete(a, &ids(&of_b))
        .await
        .expect("delete b's ids through a");
    assert_eq!(count(store, b).await, 6, "a cannot delete b's points");
    assert_eq!(count(store, a).await, 4);

    store.drop_space(a).await.expect("drop a");
    assert_eq!(count(store, b).await, 6, "dropping a keeps b");
    let hits = search(store, b, &of_b[5].vector, 1).await;
    assert_eq!(hit_ids(&hits), vec![of_b[5].memory_id]);
    store.drop_space(b).await.expect("drop b");
}

/// `drop_space` removes every point, may repeat, and leaves a space that can be recreated empty.
pub async fn drop_space_removes_everything(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
) {
    let bystander = set_up(store, a, b).await;
    let stored = points(0..5, Uuid::new_v4());
    store.upsert(a, &stored).await.expect("upsert");
    store.drop_space(a).await.expect("drop");
    store.drop_space(a).await.expect("second drop is a no-op");
    store.ensure_space(a).await.expect("recreate");
    assert_eq!(count(store, a).await, 0, "a recreated space starts empty");
    assert!(search(store, a, &stored[0].vector, 5).await.is_empty());
    tear_down(store, a, b, &bystander).await;
}

/// Vectors of the wrong length are refused before anything is written.
pub async fn dimension_mismatch_is_rejected(
    store: &dyn VectorStore,
    a: &VectorSpace,
    b: &VectorSpace,
) {
    let bystander = set_up(store, a, b).await;
    let mut short = point(1, "TECHNICAL", Uuid::new_v4());
    short.vector.truncate(3);
    let good = point(2, "TECHNICAL", Uuid::new_v4());
    let result = store.upsert(a, &[good, short]).await;
    assert!(
        matches!(
            result,
            Err(VectorStoreError::DimensionMismatch {
                expected: VECTOR_DIMENSION,
                actual: 3
            })
        ),
        "{result:?}"
    );
    assert_eq!(count(store, a).await, 0, "a rejected batch writes nothing");

    let long = vec![0.1; VECTOR_DIMENSION + 1];
    let result = store.nearest(a, &long, 5, &VectorFilter::default()).await;
    assert!(
        matches!(result, Err(VectorStoreError::DimensionMismatch { actual, .. }) if actual == VECTOR_DIMENSION + 1),
        "{result:?}"
    );
    tear_down(store, a, b, &bystander).await;
}
