//! Byte layout shared by the journal and the snapshot sidecar: checksummed frames around records.
//!
//! Every integer is little-endian, every UUID its 16 big-endian RFC 4122 bytes.
//!
//! ```text
//! frame          = body_len: u32 | fnv1a32(body): u32 | body
//! upsert body    = 0x01 | memory_id | user_id | created_at_ms: i64 | category | dims: u32 | dims × f32
//! delete body    = 0x02 | memory_id
//! snapshot entry = key: u64 | memory_id | user_id | created_at_ms: i64 | category
//! category       = len: u16 | UTF-8 bytes
//! ```

use uuid::Uuid;

use super::super::{VectorPoint, VectorStoreError};

/// Bytes in front of every frame body: its length and checksum.
pub(super) const FRAME_HEADER_LEN: usize = 8;
/// A record is a few KiB at most, so a longer length can only be a torn or corrupt header.
const MAX_BODY_LEN: usize = 1 << 20;

const OP_UPSERT: u8 = 1;
const OP_DELETE: u8 = 2;

/// One journalled write, in the order it was acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum JournalOp {
    Upsert(VectorPoint),
    Delete(Uuid),
}

/// A snapshot's record of one indexed point: everything but the vector, which lives in the index.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EntryRecord {
    pub key: u64,
    pub memory_id: Uuid,
    pub user_id: Uuid,
    pub category: String,
    pub created_at_ms: i64,
}

/// What [`read_frame`] found at an offset.
#[derive(Debug, PartialEq)]
pub(super) enum Frame<'a> {
    /// A complete frame whose checksum matches; the next frame starts at `next`.
    Complete { body: &'a [u8], next: usize },
    /// Nothing left.
    End,
    /// Bytes that are not a complete, intact frame: what a crash mid-append leaves behind.
    Torn,
}

pub(super) fn read_frame(buf: &[u8], offset: usize) -> Frame<'_> {
    let rest = buf.get(offset..).unwrap_or_default();
    if rest.is_empty() {
        return Frame::End;
    }
    let Some((len, sum)) = frame_header(rest) else {
        return Frame::Torn;
    };
    if len > MAX_BODY_LEN {
        return Frame::Torn;
    }
    let Some(body) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
        return Frame::Torn;
    };
    if fnv1a32(body) != sum {
        return Frame::Torn;
    }
    Frame::Complete {
        body,
        next: offset + FRAME_HEADER_LEN + len,
    }
}

fn frame_header(rest: &[u8]) -> Option<(usize, u32)> {
    let len = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?);
    let sum = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?);
    Some((usize::try_from(len).ok()?, sum))
}

/// Appends `body` as one frame.
fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    // Bodies are bounded by MAX_BODY_LEN through validated inputs, far below u32::MAX.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&fnv1a32(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// FNV-1a: enough to tell a torn or zero-filled tail from a record; not a defence against tampering.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

pub(super) fn push_upsert(out: &mut Vec<u8>, point: &VectorPoint) {
    let mut body = Vec::with_capacity(64 + point.category.len() + 4 * point.vector.len());
    body.push(OP_UPSERT);
    body.extend_from_slice(point.memory_id.as_bytes());
    body.extend_from_slice(point.user_id.as_bytes());
    body.extend_from_slice(&point.created_at_ms.to_le_bytes());
    push_str(&mut body, &point.category);
    let dims = u32::try_from(point.vector.len()).unwrap_or(u32::MAX);
    body.extend_from_slice(&dims.to_le_bytes());
    for value in &point.vector {
        body.extend_from_slice(&value.to_le_bytes());
    }
    push_frame(out, &body);
}

pub(super) fn push_delete(out: &mut Vec<u8>, memory_id: Uuid) {
    let mut body = Vec::with_capacity(17);
    body.push(OP_DELETE);
    body.extend_from_slice(memory_id.as_bytes());
    push_frame(out, &body);
}

pub(super) fn push_entry(out: &mut Vec<u8>, entry: &EntryRecord) {
    let mut body = Vec::with_capacity(48 + entry.category.len());
    body.extend_from_slice(&entry.key.to_le_bytes());
    body.extend_from_slice(entry.memory_id.as_bytes());
    body.extend_from_slice(entry.user_id.as_bytes());
    body.extend_from_slice(&entry.created_at_ms.to_le_bytes());
    push_str(&mut body, &entry.category);
    push_frame(out, &body);
}

/// Callers reject categories longer than `u16::MAX` bytes before they get here.
fn push_str(out: &mut Vec<u8>, value: &str) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&value.as_bytes()[..usize::from(len)]);
}

pub(super) fn decode_op(body: &[u8]) -> Result<JournalOp, VectorStoreError> {
    let mut reader = Reader::new(body);
    let op = match reader.u8()? {
        OP_UPSERT => {
            let memory_id = reader.uuid()?;
            let user_id = reader.uuid()?;
            let created_at_ms = reader.i64()?;
            let category = reader.string()?;
            let vector = reader.f32s()?;
            JournalOp::Upsert(VectorPoint {
                memory_id,
                vector,
                category,
                user_id,
                created_at_ms,
            })
        }
        OP_DELETE => JournalOp::Delete(reader.uuid()?),
        other => return Err(malformed(&format!("unknown journal operation {other}"))),
    };
    reader.finish()?;
    Ok(op)
}

pub(super) fn decode_entry(body: &[u8]) -> Result<EntryRecord, VectorStoreError> {
    let mut reader = Reader::new(body);
    let entry = EntryRecord {
        key: reader.u64()?,
        memory_id: reader.uuid()?,
        user_id: reader.uuid()?,
        created_at_ms: reader.i64()?,
        category: reader.string()?,
    };
    reader.finish()?;
    Ok(entry)
}

fn malformed(what: &str) -> VectorStoreError {
    VectorStoreError::Storage(format!("malformed embedded index record: {what}"))
}

/// Sequential reads from a frame body that has already passed its checksum.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(super) fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], VectorStoreError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or_else(|| malformed("length overflow"))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| malformed("truncated"))?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], VectorStoreError> {
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| malformed("truncated"))
    }

    pub(super) fn u8(&mut self) -> Result<u8, VectorStoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, VectorStoreError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, VectorStoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, VectorStoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, VectorStoreError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn uuid(&mut self) -> Result<Uuid, VectorStoreError> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, VectorStoreError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("category is not UTF-8"))
    }

    fn f32s(&mut self) -> Result<Vec<f32>, VectorStoreError> {
        let dims = usize::try_from(self.u32()?).map_err(|_| malformed("dimension overflow"))?;
        let bytes = self.take(
            dims.checked_mul(4)
                .ok_or_else(|| malformed("dimension overflow"))?,
        )?;
        Ok(bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect())
    }

    fn finish(self) -> Result<(), VectorStoreError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(malformed("trailing bytes"))
        }
    }
}
