//! Snapshots: the HNSW graph as usearch saves it, plus a sidecar holding the catalog.
//!
//! ```text
//! index-<generation>.usearch   usearch `save` output (vectors and graph)
//! snapshot.bin                 "MCVSNAP1" | generation: u64 | entries: u64
//!                              | one codec entry frame per indexed point
//! ```
//!
//! Each file is written under a temporary name, synced and renamed. Renaming the sidecar is the
//! commit point: it names the generation of the index file to load, so a crash at any step leaves
//! either the old snapshot or the new one in force, never a mix.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use usearch::Index;

use super::super::VectorStoreError;
use super::catalog::Catalog;
use super::codec::{self, Frame, Reader};
use super::{index_error, storage_error};

const MAGIC: &[u8; 8] = b"MCVSNAP1";
pub(super) const SIDECAR: &str = "snapshot.bin";
const INDEX_PREFIX: &str = "index-";
const INDEX_SUFFIX: &str = ".usearch";
const TEMP_SUFFIX: &str = ".tmp";

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
    let header = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("unknown header"))?;
    let mut reader = Reader::new(header);
    let generation = reader.u64()?;
    let expected = reader.u64()?;
    let mut offset = MAGIC.len() + reader.position();
    let mut catalog = Catalog::default();
    let mut found = 0u64;
    loop {
        match codec::read_frame(bytes, offset) {
            Frame::Complete { body, next } => {
                catalog.insert(&codec::decode_entry(body)?)?;
                found += 1;
                offset = next;
            }
            Frame::End => break,
            // The sidecar is synced before it is renamed into place, so damage here is real.
            Frame::Torn => return Err(corrupt("damaged entry")),
        }
    }
    if found != expected {
        return Err(corrupt("entry count does not match its header"));
    }
    catalog.collect_free_keys();
    Ok(Snapshot {
        generation,
        catalog,
    })
}

fn corrupt(what: &str) -> VectorStoreError {
    VectorStoreError::Storage(format!("vector snapshot is corrupt: {what}"))
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
    let mut out = Vec::with_capacity(32 + catalog.len() * 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(catalog.len() as u64).to_le_bytes());
    for record in catalog.records() {
        codec::push_entry(&mut out, &record);
    }
    out
}

/// Deletes index files of other generations: superseded ones and leftovers of failed snapshots.
pub(super) fn remove_stale(dir: &Path, keep_generation: u64) {
    let keep = index_path(dir, keep_generation);
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(INDEX_PREFIX) || name.ends_with(TEMP_SUFFIX);
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
pub(super) fn sync_dir(dir: &Path) -> Result<(), VectorStoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(storage_error("sync the tenant index directory"))
}

/// Directories cannot be opened as files here; renames are as durable as the platform makes them.
#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> Result<(), VectorStoreError> {
    Ok(())
}
