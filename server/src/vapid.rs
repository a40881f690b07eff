//! The server's VAPID key pair (RFC 8292): generated once, kept in the data dir.
//!
//! The private key is stored as the base64url of its 32-byte scalar, the
//! format `web_push::VapidSignatureBuilder::from_base64` reads.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::algorithms::{ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair};

/// File name of the private key inside the data directory.
pub const PRIVATE_KEY_FILE: &str = "vapid-private-key.txt";

/// Why the VAPID keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    /// Reading or writing the key file failed.
    #[error("VAPID key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key is not a base64url P-256 private key.
    #[error("VAPID private key ({origin}) is not a base64url P-256 private key")]
    Malformed {
        /// Where the key came from (file path or env var).
        origin: String,
    },
}

/// A loaded VAPID key pair.
#[derive(Clone)]
pub struct VapidKeys {
    private_base64: String,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for VapidKeys {
    // Never print the private key: whoever has it can push to every subscription
    // restricted to it (RFC 8292 §4); its file is 0600 (README, *Security model*).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public_key", &self.public_key_base64())
            .finish()
    }
}

impl VapidKeys {
    /// Makes a fresh random key pair.
    pub fn generate() -> Self {
        let pair = ES256KeyPair::generate();
        let private_base64 = URL_SAFE_NO_PAD.encode(pair.to_bytes());
        let public_key = pair.public_key().public_key().to_bytes_uncompressed();
        Self {
            private_base64,
            public_key,
        }
    }

    /// Parses a base64url private key; `origin` names its source in errors.
    ///
    /// # Errors
    /// [`VapidError::Malformed`] when it is not a P-256 private key.
    pub fn from_private_base64(encoded: &str, origin: &str) -> Result<Self, VapidError> {
        let malformed = || VapidError::Malformed { origin: origin.into() };
        let bytes = URL_SAFE_NO_PAD.decode(encoded.trim()).map_err(|_| malformed())?;
        let pair = ES256KeyPair::from_bytes(&bytes).map_err(|_| malformed())?;
        Ok(Self {
            private_base64: URL_SAFE_NO_PAD.encode(pair.to_bytes()),
            public_key: pair.public_key().public_key().to_bytes_uncompressed(),
        })
    }

    /// Loads the key from `data_dir`, generating and saving one on first start.
    ///
    /// # Errors
    /// [`VapidError`] when the file cannot be read/written or holds a bad key.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, VapidError> {
        let path = data_dir.join(PRIVATE_KEY_FILE);
        let io = |source| VapidError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => Self::from_private_base64(&text, &path.display().to_string()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self::generate();
                fs::create_dir_all(data_dir).map_err(io)?;
                write_private(&path, &keys.private_base64).map_err(io)?;
                tracing::info!(path = %path.display(), "generated a new VAPID key pair");
                Ok(keys)
            }
            Err(err) => Err(io(err)),
        }
    }

    /// The public key as browsers want it for `applicationServerKey`.
    pub fn public_key_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_key)
    }

    /// The private key in the form `web_push` reads (never log it).
    pub fn private_key_base64(&self) -> &str {
        &self.private_base64
    }
}

/// Writes the key readable by the owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_the_generated_key_across_restarts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = VapidKeys::load_or_generate(dir.path()).expect("generate");
        let second = VapidKeys::load_or_generate(dir.path()).expect("reload");
        assert_eq!(first.public_key_base64(), second.public_key_base64());
        assert_eq!(first.public_key.len(), 65, "uncompressed P-256 point");
    }

    #[test]
    fn web_push_derives_the_same_public_key() {
        let keys = VapidKeys::generate();
        let builder = web_push::VapidSignatureBuilder::from_base64_no_sub(keys.private_key_base64())
            .expect("web-push reads the key");
        assert_eq!(builder.get_public_key(), keys.public_key);
    }

    #[test]
    fn names_the_source_of_a_malformed_key() {
        let err = VapidKeys::from_private_base64("not a key", "ASKWELL_VAPID_PRIVATE_KEY").expect_err("malformed");
        assert!(err.to_string().contains("ASKWELL_VAPID_PRIVATE_KEY"));
    }
}

/// Signs VAPID JWTs (RFC 8292), one per push-service origin, cached.
///
/// Signing (an ECDSA P-256 signature) is the main cost of building a push
/// request; a JWT is valid for every message to the same origin, so one per
/// origin is kept for 12 h and renewed an hour before it expires. `aud` is the
/// endpoint's full origin *including* a non-default port, which the web-push
/// crate's own signer drops.
pub struct VapidSigner {
    key: jwt_simple::algorithms::ES256KeyPair,
    public_key: Vec<u8>,
    subject: String,
    cache: std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
}

/// Lifetime of a signed JWT (RFC 8292 allows up to 24 h).
const JWT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// Renew this long before expiry, so a message in flight never carries a stale token.
const JWT_RENEW_BEFORE: std::time::Duration = std::time::Duration::from_secs(3600);

impl VapidSigner {
    /// A signer for `keys` with contact `subject` (`mailto:` or `https:`).
    ///
    /// # Errors
    /// When the stored key cannot be read back (never for keys from this module).
    pub fn new(keys: &VapidKeys, subject: &str) -> Result<Self, VapidError> {
        let malformed = || VapidError::Malformed {
            origin: "VAPID key".into(),
        };
        let bytes = URL_SAFE_NO_PAD.decode(&keys.private_base64).map_err(|_| malformed())?;
        let key = ES256KeyPair::from_bytes(&bytes).map_err(|_| malformed())?;
        Ok(Self {
            key,
            public_key: keys.public_key.clone(),
            subject: subject.to_owned(),
            cache: Default::default(),
        })
    }

    /// The `web_push` signature (JWT + public key) for an endpoint URL.
    ///
    /// # Errors
    /// When the endpoint has no origin or signing fails.
    pub fn signature_for(&self, endpoint: &url::Url) -> Result<web_push::VapidSignature, String> {
        let origin = endpoint.origin();
        if !origin.is_tuple() {
            return Err("endpoint has no origin".into());
        }
        let audience = origin.ascii_serialization();
        let now = std::time::Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((jwt, expires)) = cache.get(&audience) {
            if *expires > now + JWT_RENEW_BEFORE {
                return Ok(web_push::VapidSignature {
                    auth_t: jwt.clone(),
                    auth_k: self.public_key.clone(),
                });
            }
        }
        let claims =
            jwt_simple::claims::Claims::create(jwt_simple::prelude::Duration::from_secs(JWT_LIFETIME.as_secs()))
                .with_audience(&audience)
                .with_subject(&self.subject);
        let jwt = self.key.sign(claims).map_err(|err| err.to_string())?;
        cache.insert(audience, (jwt.clone(), now + JWT_LIFETIME));
        Ok(web_push::VapidSignature {
            auth_t: jwt,
            auth_k: self.public_key.clone(),
        })
    }
}

/// Checks a VAPID subject: a `mailto:` address or an `https:` URL, and not a
/// local address (Apple's push service rejects `@localhost`-style subjects).
///
/// # Errors
/// A message naming `ASKWELL_VAPID_SUBJECT`.
pub fn check_subject(subject: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("ASKWELL_VAPID_SUBJECT {subject:?}: {why}"));
    let host = if let Some(address) = subject.strip_prefix("mailto:") {
        match address.rsplit_once('@') {
            Some((user, host)) if !user.is_empty() => host.to_owned(),
            _ => return bad("expected mailto:name@example.com"),
        }
    } else if subject.starts_with("https://") {
        match url::Url::parse(subject)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            Some(host) => host,
            None => return bad("expected an https:// URL with a host"),
        }
    } else {
        return bad("must start with mailto: or https://");
    };
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") || host.ends_with(".local") || !host.contains('.') {
        return bad("push services reject local addresses; use a real domain");
    }
    Ok(())
}

#[cfg(test)]
mod signer_tests {
    use super::*;

    #[test]
    fn caches_one_jwt_per_origin_with_the_port_in_aud() {
        let signer = VapidSigner::new(&VapidKeys::generate(), "mailto:ops@example.com").expect("signer");
        let a = url::Url::parse("https://push.example.com/x/1").expect("url");
        let b = url::Url::parse("https://push.example.com/x/2").expect("url");
        let c = url::Url::parse("http://127.0.0.1:9123/push/3").expect("url");
        let first = signer.signature_for(&a).expect("sign");
        assert_eq!(
            first,
            signer.signature_for(&b).expect("sign"),
            "same origin, same token"
        );
        let local = signer.signature_for(&c).expect("sign");
        assert_ne!(first.auth_t, local.auth_t);
        let payload = local.auth_t.split('.').nth(1).expect("JWT payload");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "http://127.0.0.1:9123");
        assert_eq!(claims["sub"], "mailto:ops@example.com");
    }

    #[test]
    fn subjects_must_be_real_contacts() {
        assert!(check_subject("mailto:ops@example.com").is_ok());
        assert!(check_subject("https://example.com/contact").is_ok());
        for bad in [
            "mailto:admin@localhost",
            "ops@example.com",
            "http://example.com",
            "mailto:@example.com",
            "https://intranet/x",
        ] {
            assert!(check_subject(bad).is_err(), "{bad}");
        }
    }
}
