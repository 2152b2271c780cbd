//! Embeddings are stored as little-endian f32 bytes: compact and identical on every backend.

use crate::stores::error::StoreError;

pub fn encode_embedding(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn decode_embedding(bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!(
            "embedding of {} bytes is not a whole number of f32s",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect())
}

/// Cuts text to a column's width on a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_exactly() {
        let vector = vec![0.0, -1.5, f32::MIN_POSITIVE, 3.25e-7, 1.0];
        let decoded = decode_embedding(&encode_embedding(&vector)).expect("decodes");
        assert_eq!(decoded, vector);
    }

    #[test]
    fn truncated_embeddings_are_reported_as_corrupt() {
        assert!(matches!(
            decode_embedding(&[0, 1, 2]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
