//! RFC 8291 message encryption for Web Push: one aes128gcm record
//! (RFC 8188) under a key agreed between a fresh P-256 key of ours and the
//! subscriber's, mixed with their auth secret.
//!
//! Done here with aws-lc-rs rather than by the web-push crate (which calls
//! the `ece` crate over OpenSSL): its key generation plus ECDH, the whole
//! cost of a push, is about three times faster, and a fan-out is that
//! cost times its recipients. The web-push crate still builds the request
//! ([`crate::delivery::build_request`] hands it the encrypted body).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, ECDH_P256};
use aws_lc_rs::hmac;

/// The largest payload every push service takes (the web-push crate's
/// limit too; `POST /v1/notify` refuses larger ones before they queue).
pub const MAX_PAYLOAD: usize = 3052;

/// The record size written in the header: any payload up to
/// [`MAX_PAYLOAD`] fits in one record of this size.
const RECORD_SIZE: u32 = 4096;

/// A public key's length, uncompressed (`0x04 || x || y`).
const PUBLIC_KEY_LEN: usize = 65;

/// Encrypts `payload` for the subscriber with public key `p256dh` (65
/// bytes) and `auth` secret (16 bytes), under a new key and salt: the body
/// of a push with `Content-Encoding: aes128gcm`.
///
/// # Errors
/// When the keys are unusable or the payload is over [`MAX_PAYLOAD`].
pub fn encrypt(p256dh: &[u8], auth: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    let key = PrivateKey::generate(&ECDH_P256).map_err(|_| "could not make a key".to_owned())?;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no random salt".to_owned())?;
    encrypt_with(&key, &salt, p256dh, auth, payload)
}

/// [`encrypt`] with our key and the salt given (RFC 8291 §3.4, §4).
fn encrypt_with(
    key: &PrivateKey,
    salt: &[u8; 16],
    p256dh: &[u8],
    auth: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("payload of {} bytes, over {MAX_PAYLOAD}", payload.len()));
    }
    if p256dh.len() != PUBLIC_KEY_LEN || auth.len() != 16 {
        return Err("subscriber keys of the wrong length".into());
    }
    let ours = key.compute_public_key().map_err(|_| "no public key".to_owned())?;
    let ours = ours.as_ref();
    let peer = UnparsedPublicKey::new(&ECDH_P256, p256dh);
    let ecdh = agreement::agree(key, peer, "the subscriber's key is not a P-256 point", |shared| {
        Ok(shared.to_vec())
    })?;
    // IKM = HKDF(auth, ecdh, "WebPush: info" 0 ua_public as_public, 32).
    let prk_key = hmac_sha256(auth, &[&ecdh]);
    let ikm = hmac_sha256(&prk_key, &[b"WebPush: info\0", p256dh, ours, &[1]]);
    // CEK and nonce = HKDF(salt, IKM, "Content-Encoding: …" 0, 16 / 12).
    let prk = hmac_sha256(salt, &[&ikm]);
    let cek = hmac_sha256(&prk, &[b"Content-Encoding: aes128gcm\0", &[1]]);
    let nonce = hmac_sha256(&prk, &[b"Content-Encoding: nonce\0", &[1]]);
    let cipher = UnboundKey::new(&AES_128_GCM, &cek[..16]).map_err(|_| "bad content key".to_owned())?;
    let nonce = Nonce::try_assume_unique_for_key(&nonce[..12]).map_err(|_| "bad nonce".to_owned())?;
    // Header: salt, record size, key id length and our public key (the key
    // id); then the one record, its padding delimiter 2 (the last record).
    let mut body = Vec::with_capacity(16 + 4 + 1 + PUBLIC_KEY_LEN + payload.len() + 1 + 16);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(PUBLIC_KEY_LEN as u8);
    body.extend_from_slice(ours);
    let header = body.len();
    body.extend_from_slice(payload);
    body.push(2);
    let mut record = body.split_off(header);
    LessSafeKey::new(cipher)
        .seal_in_place_append_tag(nonce, Aad::empty(), &mut record)
        .map_err(|_| "encryption failed".to_owned())?;
    body.append(&mut record);
    Ok(body)
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut context = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.sign().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    /// RFC 8291 Appendix A: the application server's key and salt given,
    /// the body is the RFC's byte for byte.
    #[test]
    fn the_rfc_8291_example_encrypts_to_the_rfcs_bytes() {
        let key = PrivateKey::from_private_key(&ECDH_P256, &b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
            .expect("the RFC's key");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("16 bytes");
        let ua_public = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let body = encrypt_with(
            &key,
            &salt,
            &ua_public,
            &auth,
            b"When I grow up, I want to be a watermelon",
        )
        .expect("encrypts");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn bad_keys_and_large_payloads_are_refused_not_sent() {
        let ua_public = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let mut off_curve = ua_public.clone();
        off_curve[64] ^= 1;
        assert!(encrypt(&off_curve, &auth, b"hi").is_err());
        assert!(encrypt(&ua_public[..64], &auth, b"hi").is_err());
        assert!(encrypt(&ua_public, &auth[..15], b"hi").is_err());
        assert!(encrypt(&ua_public, &auth, &[b'x'; MAX_PAYLOAD + 1]).is_err());
        let body = encrypt(&ua_public, &auth, &[b'x'; MAX_PAYLOAD]).expect("the largest fits");
        assert_eq!(body.len(), 86 + MAX_PAYLOAD + 1 + 16);
        // A fresh key and salt each time: two bodies of one payload differ.
        assert_ne!(encrypt(&ua_public, &auth, b"hi"), encrypt(&ua_public, &auth, b"hi"));
    }
}
