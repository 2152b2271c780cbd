//! Opening a tenant: its snapshot, if one is usable, brought up to date with the source.
//!
//! The source lists every point the index must hold with its version. Points the snapshot lacks
//! or holds at another version are fetched, points the source no longer lists are removed; a
//! current snapshot therefore costs one listing and no fetch, and a missing or damaged one means
//! fetching everything. Nothing is compared by time, so no clock can make a point look current
//! when it is not.
//!
//! A write the source has committed but whose sync has not reached the index yet is caught up
//! here and then applied again by that sync; both apply the row as the source has it, so the
//! second is harmless. Opening holds the tenant's other operations back, so a sync that runs
//! after it (a delete, say) still has the last word.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use memoryc_crds::layout::TenantName;
use uuid::Uuid;

use super::super::{IndexSource, PointVersion, VectorPoint, VectorStoreError};
use super::tenant::{self, TenantIndex};
use super::{Settings, blocking, snapshot};

/// Points fetched from the source per request: few enough for one statement of either database
/// and a few MiB of vectors, enough for the graph insertions to spread over every core.
const FETCH_CHUNK: usize = 1_000;

/// The tenant's index in `dir`, caught up with `source` when there is one.
///
/// Without a source the snapshot is all there is: writes since it are lost, and a snapshot that
/// cannot be read is an error rather than an empty tenant.
pub(super) async fn open(
    dir: PathBuf,
    settings: Settings,
    tenant: &TenantName,
    source: Option<&dyn IndexSource>,
) -> Result<TenantIndex, VectorStoreError> {
    let Some(source) = source else {
        return blocking(move || match TenantIndex::from_snapshot(&dir, settings)? {
            Some(index) => Ok(index),
            None => TenantIndex::empty(&dir, settings, 0),
        })
        .await;
    };
    let mut index = blocking(move || usable_snapshot(&dir, settings)).await?;
    let wanted = source.versions(tenant).await?;
    let Plan { fetch, remove } = Plan::new(&index, &wanted);
    let (fetched, removed) = (fetch.len(), remove.len());
    if !remove.is_empty() {
        index = blocking(move || {
            index.delete(&remove)?;
            Ok(index)
        })
        .await?;
    }
    for chunk in fetch.chunks(FETCH_CHUNK) {
        let points = source.points(tenant, chunk).await?;
        let asked = chunk.to_vec();
        index = blocking(move || {
            apply(&mut index, &asked, points)?;
            Ok(index)
        })
        .await?;
    }
    if fetched > 0 || removed > 0 {
        tracing::info!(%tenant, fetched, removed, "vector index caught up with its source");
    }
    blocking(move || {
        // A long catch-up is saved at once, so the next start does not repeat it. Failing to
        // save only costs that: the index is complete either way.
        let saved = index
            .snapshot_due()
            .and_then(|due| if due { index.snapshot() } else { Ok(()) });
        if let Err(error) = saved {
            tracing::warn!(%error, "could not snapshot a caught-up vector index");
        }
        Ok(index)
    })
    .await
}

/// The snapshot in `dir`, or an empty index when there is none or it cannot be used: with a
/// source, a damaged snapshot costs a rebuild, never an error.
fn usable_snapshot(dir: &Path, settings: Settings) -> Result<TenantIndex, VectorStoreError> {
    match TenantIndex::from_snapshot(dir, settings) {
        Ok(Some(index)) => return Ok(index),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "vector snapshot unusable; rebuilding the tenant's index from its source");
        }
    }
    TenantIndex::empty(dir, settings, snapshot::latest_generation(dir))
}

/// What opening a tenant must change in its snapshot.
#[derive(Debug)]
struct Plan {
    /// Listed by the source and missing from the index or held at another version.
    fetch: Vec<Uuid>,
    /// Held by the index and not listed by the source.
    remove: Vec<Uuid>,
}

impl Plan {
    fn new(index: &TenantIndex, wanted: &[PointVersion]) -> Self {
        let mut listed = HashSet::with_capacity(wanted.len());
        let fetch = wanted
            .iter()
            .filter(|point| listed.insert(point.memory_id))
            .filter(|point| index.version_of(&point.memory_id) != Some(point.version))
            .map(|point| point.memory_id)
            .collect();
        let remove = index
            .memory_ids()
            .filter(|memory_id| !listed.contains(memory_id))
            .collect();
        Self { fetch, remove }
    }
}

/// Applies what the source returned for `asked`. An asked point it did not return (deleted
/// since it was listed) or returned unusable must not stay in the index at an older version.
fn apply(
    index: &mut TenantIndex,
    asked: &[Uuid],
    points: Vec<VectorPoint>,
) -> Result<(), VectorStoreError> {
    let asked_ids: HashSet<Uuid> = asked.iter().copied().collect();
    let mut usable = Vec::with_capacity(points.len());
    for point in points {
        if !asked_ids.contains(&point.memory_id) {
            continue;
        }
        match tenant::check_point(&point) {
            Ok(()) => usable.push(point),
            Err(error) => {
                tracing::warn!(memory_id = %point.memory_id, %error, "source point cannot be indexed; leaving it out");
            }
        }
    }
    let returned: HashSet<Uuid> = usable.iter().map(|point| point.memory_id).collect();
    let gone: Vec<Uuid> = asked
        .iter()
        .filter(|memory_id| !returned.contains(*memory_id))
        .copied()
        .collect();
    index.delete(&gone)?;
    index.upsert(&usable)
}
