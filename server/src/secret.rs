//! Comparing secrets without leaking where they differ through timing.

/// Constant-time equality for secrets (admin token, auth secrets). The length
/// is not secret (tokens have fixed, public formats).
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Fold every byte: no early exit, so time does not depend on the first difference.
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_secrets() {
        assert!(super::equal(b"token-123", b"token-123"));
        assert!(!super::equal(b"token-123", b"token-124"));
        assert!(!super::equal(b"token", b"token-123"));
    }
}
