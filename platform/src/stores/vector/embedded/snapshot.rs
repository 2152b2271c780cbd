//! Snapshots: the HNSW graph as usearch saves it, plus a sidecar holding the catalog.
//!
//! ```text
//! index-<generation>.usearch   usearch `save` output (vectors and graph)
//! snapshot.bin                 "MCVSNAP2" | generation: u64 | entries: u64
//!                              | one codec entry per indexed point
//!                              | fnv1a64 of every byte before it: u64
//! ```
//!
//! Each file is written under a temporary name, synced and renamed. Renaming the sidecar is the
//! commit point: it names the generation of the index file to load, so a crash at any step leaves
//! either the old snapshot or the new one in force, never a mix. A snapshot is only a head start:
//! whatever it lacks or has wrong, opening the tenant fetches from the source.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use usearch::Index;

use super::super::VectorStoreError;
use super::catalog::Catalog;
use super::codec::{self, Reader};
use super::{index_error, storage_error};

const MAGIC: &[u8; 8] = b"MCVSNAP2";
/// Sidecars of the first layout carry no point versions, so nothing in them can be trusted
/// against the source; the tenant is rebuilt instead.
const FIRST_LAYOUT_MAGIC: &[u8; 8] = b"MCVSNAP1";
const CHECKSUM_LEN: usize = 8;
pub(super) const SIDECAR: &str = "snapshot.bin";
const INDEX_PREFIX: &str = "index-";
const INDEX_SUFFIX: &str = ".usearch";
const TEMP_SUFFIX: &str = ".tmp";
/// The write-ahead journal of the first layout. Everything it held is in the source, so it is
/// deleted with the first snapshot of the current layout.
const FIRST_LAYOUT_JOURNAL: &str = "journal.bin";

/// A snapshot's sidecar, read back.
pub(super) struct Snapshot {
    pub generation: u64,
    pub catalog: Catalog,
}

pub(super) fn index_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{INDEX_PREFIX}{generation}{INDEX_SUFFIX}"))
}

/// usearch takes paths as UTF-8 strings.
pub(super) fn path_str(path: &Path) -> Result<&str, VectorStoreError> {
    path.to_str().ok_or_else(|| {
        VectorStoreError::Storage(format!("index path {} is not UTF-8", path.display()))
    })
}

/// Reads the sidecar in `dir`, if a snapshot was ever committed there.
pub(super) fn read(dir: &Path) -> Result<Option<Snapshot>, VectorStoreError> {
    let bytes = match fs::read(dir.join(SIDECAR)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(storage_error("read the vector snapshot")(error)),
    };
    decode(&bytes).map(Some)
}

fn decode(bytes: &[u8]) -> Result<Snapshot, VectorStoreError> {
    if bytes.starts_with(FIRST_LAYOUT_MAGIC) {
        return Err(corrupt("written in a layout without point versions"));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(corrupt("unknown header"));
    }
    let body_len = bytes
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| corrupt("truncated"))?;
    let (body, checksum) = bytes.split_at(body_len);
    let checksum: [u8; CHECKSUM_LEN] = checksum.try_into().map_err(|_| corrupt("truncated"))?;
    if codec::fnv1a64(body) != u64::from_le_bytes(checksum) {
        return Err(corrupt("checksum mismatch"));
    }
    let header_and_entries = body
        .get(MAGIC.len()..)
        .ok_or_else(|| corrupt("truncated"))?;
    let mut reader = Reader::new(header_and_entries);
    let generation = reader.u64()?;
    let entries = reader.u64()?;
    let mut catalog = Catalog::default();
    // Every entry takes bytes, so a wrong count runs out of them rather than looping long.
    for _ in 0..entries {
        catalog.insert(&codec::decode_entry(&mut reader)?)?;
    }
    reader.finish()?;
    catalog.collect_free_keys();
    Ok(Snapshot {
        generation,
        catalog,
    })
}

fn corrupt(what: &str) -> VectorStoreError {
    VectorStoreError::Storage(format!("vector snapshot is unusable: {what}"))
}

/// Writes and commits snapshot `generation` of `index` and `catalog` into `dir`.
pub(super) fn write(
    dir: &Path,
    generation: u64,
    index: &Index,
    catalog: &Catalog,
) -> Result<(), VectorStoreError> {
    fs::create_dir_all(dir).map_err(storage_error("create the tenant index directory"))?;
    let index_file = index_path(dir, generation);
    let index_temp = temp_path(&index_file);
    index
        .save(path_str(&index_temp)?)
        .map_err(index_error("save the index"))?;
    sync_file(&index_temp)?;
    rename(&index_temp, &index_file)?;

    let sidecar = dir.join(SIDECAR);
    let sidecar_temp = temp_path(&sidecar);
    write_synced(&sidecar_temp, &encode(generation, catalog))?;
    rename(&sidecar_temp, &sidecar)?;
    sync_dir(dir)
}

fn encode(generation: u64, catalog: &Catalog) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + catalog.len() * 72);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(catalog.len() as u64).to_le_bytes());
    for record in catalog.records() {
        codec::push_entry(&mut out, &record);
    }
    let checksum = codec::fnv1a64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// The highest generation of any index file in `dir`, committed or not (0 when there is none).
/// A tenant whose snapshot is unusable starts counting from there, so its next snapshot never
/// reuses a file name the old sidecar may still point at.
pub(super) fn latest_generation(dir: &Path) -> u64 {
    let Ok(listing) = fs::read_dir(dir) else {
        return 0;
    };
    listing
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            name.strip_prefix(INDEX_PREFIX)?
                .strip_suffix(INDEX_SUFFIX)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// Deletes index files of other generations (superseded ones and leftovers of failed
/// snapshots) and what the first layout kept beside them.
pub(super) fn remove_stale(dir: &Path, keep_generation: u64) {
    let keep = index_path(dir, keep_generation);
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(INDEX_PREFIX)
            || name.ends_with(TEMP_SUFFIX)
            || name == FIRST_LAYOUT_JOURNAL;
        if ours
            && path != keep
            && let Err(error) = fs::remove_file(&path)
        {
            tracing::warn!(file = %path.display(), %error, "could not remove a stale vector index file");
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), VectorStoreError> {
    let mut file = File::create(path).map_err(storage_error("create the vector snapshot"))?;
    file.write_all(bytes)
        .map_err(storage_error("write the vector snapshot"))?;
    file.sync_all()
        .map_err(storage_error("sync the vector snapshot"))
}

fn sync_file(path: &Path) -> Result<(), VectorStoreError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(storage_error("sync the saved index"))
}

fn rename(from: &Path, to: &Path) -> Result<(), VectorStoreError> {
    fs::rename(from, to).map_err(storage_error("commit the vector snapshot"))
}

/// Makes renames and file creations in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), VectorStoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(storage_error("sync the tenant index directory"))
}

/// Directories cannot be opened as files here; renames are as durable as the platform makes them.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), VectorStoreError> {
    Ok(())
}
