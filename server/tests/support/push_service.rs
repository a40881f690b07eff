//! An honest local push service (RFC 8030) for tests: it verifies each
//! request's VAPID JWT (RFC 8292: ES256 signature, `aud` = its own origin with
//! port, `exp` ≤ 24 h, `k` = the server's key) with p256's ECDSA directly, and
//! decrypts the body (RFC 8291 aes128gcm) with the subscriber's private key
//! using RustCrypto's HKDF and AES-GCM — an implementation independent of the
//! web-push/ece/OpenSSL path that encrypted it. Each subscriber can be told to
//! answer with a status, a Retry-After, or slowly.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::Sha256;

/// One answer the service gives.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub delay: Duration,
}

impl Reply {
    pub const CREATED: Reply = Reply {
        status: 201,
        retry_after: None,
        delay: Duration::ZERO,
    };

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::CREATED
        }
    }
}

/// A browser's subscription keys.
pub struct Subscriber {
    secret: p256::SecretKey,
    pub auth: [u8; 16],
}

impl Subscriber {
    pub fn new() -> Self {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        Self {
            secret,
            auth: rand::random(),
        }
    }

    pub fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    pub fn auth_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }
}

#[derive(Default)]
struct Inner {
    subscribers: HashMap<String, Subscriber>,
    replies: HashMap<String, VecDeque<Reply>>,
    received: Vec<(String, String)>,
    rejected: Vec<String>,
}

/// The running service.
#[derive(Clone)]
pub struct PushService {
    inner: Arc<Mutex<Inner>>,
    pub origin: String,
    server_key: Arc<Mutex<Option<Vec<u8>>>>,
}

impl PushService {
    /// Starts on an ephemeral loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let service = Self {
            inner: Arc::default(),
            origin,
            server_key: Arc::default(),
        };
        let app = Router::new()
            .route("/push/{id}", post(receive))
            .with_state(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("push service") });
        service
    }

    /// Only accept JWTs whose `k` is this public key.
    pub fn expect_server_key(&self, key: Vec<u8>) {
        *self.server_key.lock().expect("lock") = Some(key);
    }

    /// Registers a subscriber; returns its endpoint.
    pub fn subscribe(&self, id: &str, subscriber: Subscriber) -> String {
        self.inner
            .lock()
            .expect("lock")
            .subscribers
            .insert(id.to_owned(), subscriber);
        format!("{}/push/{id}", self.origin)
    }

    /// The next answers for `id` (after them: 201).
    pub fn reply(&self, id: &str, replies: &[Reply]) {
        self.inner
            .lock()
            .expect("lock")
            .replies
            .entry(id.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Decrypted payloads received, as `(subscriber id, plaintext)`.
    pub fn received(&self) -> Vec<(String, String)> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// How many pushes were accepted so far.
    pub fn received_count(&self) -> usize {
        self.inner.lock().expect("lock").received.len()
    }

    /// Why requests were refused (bad JWT, undecryptable body).
    pub fn rejected(&self) -> Vec<String> {
        self.inner.lock().expect("lock").rejected.clone()
    }
}

async fn receive(
    State(service): State<PushService>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = service
        .inner
        .lock()
        .expect("lock")
        .replies
        .get_mut(&id)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Reply::CREATED);
    tokio::time::sleep(reply.delay).await;
    let checked = verify_vapid(&service, &headers).and_then(|()| {
        let inner = service.inner.lock().expect("lock");
        let subscriber = inner
            .subscribers
            .get(&id)
            .ok_or_else(|| format!("unknown subscriber {id}"))?;
        decrypt(subscriber, &body)
    });
    let mut inner = service.inner.lock().expect("lock");
    match checked {
        Err(why) => {
            inner.rejected.push(why);
            (StatusCode::FORBIDDEN, "rejected").into_response()
        }
        Ok(plaintext) => {
            if reply.status < 300 {
                inner.received.push((id, plaintext));
            }
            let status = StatusCode::from_u16(reply.status).expect("status");
            let mut response = status.into_response();
            if let Some(seconds) = reply.retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().expect("header"));
            }
            response
        }
    }
}

/// RFC 8292: `Authorization: vapid t=<JWT>, k=<public key>`.
fn verify_vapid(service: &PushService, headers: &HeaderMap) -> Result<(), String> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization")?;
    let rest = header.strip_prefix("vapid ").ok_or("not a vapid Authorization")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    let key_bytes = URL_SAFE_NO_PAD.decode(key).map_err(|_| "k is not base64url")?;
    if let Some(expected) = service.server_key.lock().expect("lock").as_ref() {
        if *expected != key_bytes {
            return Err("k is not the server's VAPID key".into());
        }
    }
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key_bytes).map_err(|_| "k is not a P-256 key")?;
    let (signed, signature) = token.rsplit_once('.').ok_or("malformed JWT")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "signature not base64url")?;
    let signature = p256::ecdsa::Signature::from_slice(&signature).map_err(|_| "signature not r||s")?;
    verifying
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "bad ES256 signature")?;
    let (header_b64, claims_b64) = signed.split_once('.').ok_or("malformed JWT")?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| "header b64")?)
            .map_err(|_| "header json")?;
    if header["alg"] != "ES256" {
        return Err("alg is not ES256".into());
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).map_err(|_| "claims b64")?)
            .map_err(|_| "claims json")?;
    if claims["aud"] != service.origin.as_str() {
        return Err(format!("aud {} is not {}", claims["aud"], service.origin));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 h of {now}"));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err(format!("sub {sub:?} is not mailto: or https:"));
    }
    Ok(())
}

/// RFC 8291 §3.4 + RFC 8188: one aes128gcm record.
pub fn decrypt(subscriber: &Subscriber, body: &[u8]) -> Result<String, String> {
    decrypt_with(&subscriber.secret, &subscriber.auth, body)
}

/// Decrypts with an explicit private key and auth secret (for the RFC 8291 vector).
pub fn decrypt_with(secret: &p256::SecretKey, auth: &[u8], body: &[u8]) -> Result<String, String> {
    if body.len() < 21 {
        return Err("body shorter than the aes128gcm header".into());
    }
    let salt = &body[..16];
    let id_len = usize::from(body[20]);
    let sender_public = body.get(21..21 + id_len).ok_or("truncated key id")?;
    let ciphertext = &body[21 + id_len..];
    let sender = p256::PublicKey::from_sec1_bytes(sender_public).map_err(|_| "keyid is not a P-256 key")?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), sender.as_affine());
    let receiver_public = secret.public_key().to_encoded_point(false);
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(receiver_public.as_bytes());
    info.extend_from_slice(sender_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| "hkdf ikm")?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| "hkdf cek")?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| "hkdf nonce")?;
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| "aes key")?;
    let padded = cipher
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "AES-GCM authentication failed")?;
    let end = padded.iter().rposition(|b| *b != 0).ok_or("no padding delimiter")?;
    if padded[end] != 2 {
        return Err("last record delimiter is not 0x02".into());
    }
    String::from_utf8(padded[..end].to_vec()).map_err(|_| "plaintext is not UTF-8".into())
}
