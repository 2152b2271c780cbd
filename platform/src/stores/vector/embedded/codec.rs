//! Byte layout of the snapshot sidecar's records, and the checksum guarding the whole file.
//!
//! Every integer is little-endian, every UUID its 16 big-endian RFC 4122 bytes.
//!
//! ```text
//! entry    = key: u64 | memory_id | user_id | created_at_ms: i64 | version: i64 | category
//! category = len: u16 | UTF-8 bytes
//! ```

use uuid::Uuid;

use super::super::VectorStoreError;

/// A snapshot's record of one indexed point: everything but the vector, which lives in the index.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EntryRecord {
    pub key: u64,
    pub memory_id: Uuid,
    pub user_id: Uuid,
    pub category: String,
    pub created_at_ms: i64,
    /// The state of the memory row the point mirrors (see `IndexSource`).
    pub version: i64,
}

pub(super) fn push_entry(out: &mut Vec<u8>, entry: &EntryRecord) {
    out.extend_from_slice(&entry.key.to_le_bytes());
    out.extend_from_slice(entry.memory_id.as_bytes());
    out.extend_from_slice(entry.user_id.as_bytes());
    out.extend_from_slice(&entry.created_at_ms.to_le_bytes());
    out.extend_from_slice(&entry.version.to_le_bytes());
    push_str(out, &entry.category);
}

/// Callers reject categories longer than `u16::MAX` bytes before they get here.
fn push_str(out: &mut Vec<u8>, value: &str) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&value.as_bytes()[..usize::from(len)]);
}

pub(super) fn decode_entry(reader: &mut Reader<'_>) -> Result<EntryRecord, VectorStoreError> {
    Ok(EntryRecord {
        key: reader.u64()?,
        memory_id: reader.uuid()?,
        user_id: reader.uuid()?,
        created_at_ms: reader.i64()?,
        version: reader.i64()?,
        category: reader.string()?,
    })
}

/// FNV-1a, 64 bits: enough to tell a damaged or half-written file from a snapshot; not a defence
/// against tampering.
pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash: u64, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn malformed(what: &str) -> VectorStoreError {
    VectorStoreError::Storage(format!("malformed vector snapshot record: {what}"))
}

/// Sequential reads from bytes whose checksum has already been verified.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
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

    fn u16(&mut self) -> Result<u16, VectorStoreError> {
        Ok(u16::from_le_bytes(self.array()?))
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

    /// Fails unless every byte was read.
    pub(super) fn finish(self) -> Result<(), VectorStoreError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(malformed("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let entry = EntryRecord {
            key: 42,
            memory_id: Uuid::from_u128(7),
            user_id: Uuid::from_u128(9),
            category: "WORKFLOW".to_string(),
            created_at_ms: 1_700_000_000_123,
            version: -5,
        };
        let mut bytes = Vec::new();
        push_entry(&mut bytes, &entry);
        let mut reader = Reader::new(&bytes);
        assert_eq!(decode_entry(&mut reader).expect("decodes"), entry);
        reader.finish().expect("nothing left over");
    }

    #[test]
    fn a_truncated_entry_is_malformed() {
        let entry = EntryRecord {
            key: 1,
            memory_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            category: "TECHNICAL".to_string(),
            created_at_ms: 0,
            version: 0,
        };
        let mut bytes = Vec::new();
        push_entry(&mut bytes, &entry);
        bytes.pop();
        assert!(matches!(
            decode_entry(&mut Reader::new(&bytes)),
            Err(VectorStoreError::Storage(_))
        ));
    }
}
