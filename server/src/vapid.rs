//! The server's VAPID key pair (RFC 8292): generated once, kept in the data dir.
//!
//! The private key is stored as the base64url of its 32-byte scalar, the
//! format `web_push::VapidSignatureBuilder::from_base64` reads.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};

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
    // Never print the private key (DESIGN: never log keys).
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
