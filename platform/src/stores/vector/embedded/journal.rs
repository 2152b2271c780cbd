//! The append-only journal: every acknowledged write since the last snapshot, in order.
//!
//! File layout: the 8-byte magic `MCVJRNL1`, then one [`codec`](super::codec) frame per operation.
//! A write appends all of its frames with one `write` call before it returns, so a crash can only
//! leave a torn tail; replay stops at the first frame that is incomplete or fails its checksum and
//! cuts the file back there, so later appends never land behind garbage.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::super::VectorStoreError;
use super::codec::{self, Frame, JournalOp};
use super::storage_error;

const MAGIC: &[u8; 8] = b"MCVJRNL1";
pub(super) const FILE_NAME: &str = "journal.bin";

#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    /// Opened on the first append: reads and replays never create files.
    file: Option<File>,
    /// Length of the file up to the last complete append.
    len: u64,
    /// Set when a failed append could not be rolled back: appending behind its remains would
    /// hide later writes from replay, so the journal refuses writes until the tenant reopens.
    failed: bool,
    sync: bool,
    /// Operations written since the last snapshot; drives compaction.
    pending_ops: usize,
}

impl Journal {
    /// Reads the journal in `dir` (if any) and returns it with the operations to replay.
    pub(super) fn open(dir: &Path, sync: bool) -> Result<(Self, Vec<JournalOp>), VectorStoreError> {
        let path = dir.join(FILE_NAME);
        let ops = replay(&path)?;
        let journal = Self {
            path,
            file: None,
            len: 0,
            failed: false,
            sync,
            pending_ops: ops.len(),
        };
        Ok((journal, ops))
    }

    pub(super) fn pending_ops(&self) -> usize {
        self.pending_ops
    }

    /// Makes the journal file exist, so the tenant shows up on disk before its first write.
    pub(super) fn create(&mut self) -> Result<(), VectorStoreError> {
        self.open_file()
    }

    /// Appends the frames of `ops` operations; returns once the bytes are with the OS (and on the
    /// disk when `sync` is set).
    pub(super) fn append(&mut self, frames: &[u8], ops: usize) -> Result<(), VectorStoreError> {
        if self.failed {
            return Err(VectorStoreError::Storage(
                "the vector journal could not recover from an earlier failed write".to_string(),
            ));
        }
        let sync = self.sync;
        self.open_file()?;
        let before = self.len;
        let file = self.writer()?;
        let written = file
            .write_all(frames)
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        if let Err(error) = written {
            // Cut off whatever part of the frames made it, so the write is not half-replayed and
            // later appends stay reachable.
            self.failed = file.set_len(before).is_err();
            return Err(storage_error("append to the vector journal")(error));
        }
        self.len = before + frames.len() as u64;
        self.pending_ops += ops;
        Ok(())
    }

    /// Empties the journal after a snapshot has made its operations redundant.
    pub(super) fn truncate(&mut self) -> Result<(), VectorStoreError> {
        if self.file.is_none() && !self.path.exists() {
            self.pending_ops = 0;
            return Ok(());
        }
        let file = self.writer()?;
        file.set_len(MAGIC.len() as u64)
            .map_err(storage_error("truncate the vector journal"))?;
        file.sync_all()
            .map_err(storage_error("sync the vector journal"))?;
        self.len = MAGIC.len() as u64;
        self.failed = false;
        self.pending_ops = 0;
        Ok(())
    }

    /// Opens the file on first use and learns its length.
    fn open_file(&mut self) -> Result<(), VectorStoreError> {
        if self.file.is_none() {
            let (file, len) = open_for_append(&self.path, self.sync)?;
            self.file = Some(file);
            self.len = len;
        }
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut File, VectorStoreError> {
        self.open_file()?;
        self.file
            .as_mut()
            .ok_or_else(|| VectorStoreError::Storage("vector journal is not open".to_string()))
    }
}

/// Opens the journal for appending, writing its header if it has none; returns it with its length.
fn open_for_append(path: &Path, sync: bool) -> Result<(File, u64), VectorStoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| VectorStoreError::Storage(format!("{} has no parent", path.display())))?;
    fs::create_dir_all(dir).map_err(storage_error("create the tenant index directory"))?;
    // Append mode: every write lands at the end even after `set_len` shrinks the file.
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(storage_error("open the vector journal"))?;
    let len = file
        .metadata()
        .map_err(storage_error("stat the vector journal"))?
        .len();
    if len < MAGIC.len() as u64 {
        // New, or its creation was torn: either way it holds no operations.
        file.set_len(0)
            .map_err(storage_error("reset the vector journal"))?;
        file.write_all(MAGIC)
            .map_err(storage_error("write the vector journal header"))?;
        if sync {
            file.sync_all()
                .map_err(storage_error("sync the vector journal"))?;
            super::snapshot::sync_dir(dir)?;
        }
        return Ok((file, MAGIC.len() as u64));
    }
    Ok((file, len))
}

/// Decodes every intact operation and cuts off a torn tail.
fn replay(path: &Path) -> Result<Vec<JournalOp>, VectorStoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(storage_error("read the vector journal")(error)),
    };
    if bytes.len() < MAGIC.len() {
        return Ok(Vec::new());
    }
    if !bytes.starts_with(MAGIC) {
        return Err(VectorStoreError::Storage(format!(
            "{} is not a vector journal",
            path.display()
        )));
    }
    let mut ops = Vec::new();
    let mut offset = MAGIC.len();
    loop {
        match codec::read_frame(&bytes, offset) {
            Frame::Complete { body, next } => {
                ops.push(codec::decode_op(body)?);
                offset = next;
            }
            Frame::End => break,
            Frame::Torn => {
                cut_torn_tail(path, offset, bytes.len())?;
                break;
            }
        }
    }
    Ok(ops)
}

fn cut_torn_tail(path: &Path, valid_len: usize, file_len: usize) -> Result<(), VectorStoreError> {
    tracing::warn!(
        journal = %path.display(),
        dropped_bytes = file_len - valid_len,
        "vector journal ends in a torn record (crash during a write); dropping it"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(storage_error("open the vector journal"))?;
    file.set_len(valid_len as u64)
        .map_err(storage_error("truncate the vector journal"))?;
    file.sync_all()
        .map_err(storage_error("sync the vector journal"))
}
