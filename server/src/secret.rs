//! Secrets: unguessable ids, comparisons that do not leak where two
//! secrets differ through timing, and proofs of identity.

/// 128 random bits, hex: unguessable, so delivery ids in payloads cannot be
/// forged.
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut hex = String::with_capacity(32);
    for byte in bytes {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// An unguessable id that sorts by time: 48 bits of `now_ms` then 80
/// random bits, hex (32 characters, like [`random_id`]; the layout of
/// UUIDv7). Notification ids: 80 random bits keep the delivery ids in
/// payloads unforgeable, and the time first makes the rows of a sweep or
/// fan-out land side by side in the indexes instead of each on its own
/// page (random keys made every commit of a 100,000-user journey sweep
/// rewrite hundreds of scattered pages).
pub fn ordered_id(now_ms: i64) -> String {
    let random: [u8; 10] = rand::random();
    let time = u64::try_from(now_ms).unwrap_or(0) & 0xffff_ffff_ffff;
    let mut hex = format!("{time:012x}");
    for byte in random {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// Constant-time equality for secrets (admin token, auth secrets). The length
/// is not secret (tokens have fixed, public formats).
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Fold every byte: no early exit, so time does not depend on the first difference.
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof of identity: the app's backend signs a user id with the secret it
/// shares with askwell-server (`ASKWELL_IDENTITY_SECRET`), as lowercase hex
/// of HMAC-SHA256(secret, user id) — the scheme Intercom's and OneSignal's
/// identity verification use, so existing backend code carries over. A page
/// can only bind a device to a user id its backend vouched for.
pub fn user_proof(secret: &[u8], user: &str) -> String {
    use hmac::Mac;
    let mut mac = Hmac::new_from_slice(secret).expect("unreachable: HMAC takes keys of any length");
    mac.update(user.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in tag {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// Whether `proof` is [`user_proof`] of `user`, compared in constant time
/// (case-insensitive hex, surrounding spaces ignored).
pub fn user_proven(secret: &[u8], user: &str, proof: &str) -> bool {
    let expected = user_proof(secret, user);
    equal(expected.as_bytes(), proof.trim().to_ascii_lowercase().as_bytes())
}

type Hmac = hmac::Hmac<sha2::Sha256>;
const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    #[test]
    fn user_proofs_match_hmac_sha256_test_vectors() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let proof = super::user_proof(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            proof,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(super::user_proven(
            b"Jefe",
            "what do ya want for nothing?",
            &proof.to_uppercase()
        ));
        assert!(!super::user_proven(b"Jefe", "what do ya want for nothing!", &proof));
        assert!(!super::user_proven(b"jefe", "what do ya want for nothing?", &proof));
        assert!(!super::user_proven(b"Jefe", "what do ya want for nothing?", ""));
    }

    #[test]
    fn ordered_ids_sort_by_time_and_keep_80_random_bits() {
        let early = super::ordered_id(1_700_000_000_000);
        let late = super::ordered_id(1_700_000_000_001);
        assert_eq!(early.len(), 32);
        assert!(early.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(early < late, "{early} sorts before {late}");
        assert_eq!(&early[..12], "018bcfe56800");
        // Same millisecond: the random 80 bits still tell them apart.
        let ids: std::collections::HashSet<String> = (0..1_000).map(|_| super::ordered_id(5)).collect();
        assert_eq!(ids.len(), 1_000);
    }

    #[test]
    fn compares_whole_secrets() {
        assert!(super::equal(b"token-123", b"token-123"));
        assert!(!super::equal(b"token-123", b"token-124"));
        assert!(!super::equal(b"token", b"token-123"));
    }
}
