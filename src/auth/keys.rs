//! The JWT signing key: `REELBASE_JWT_SECRET` when set, else a random key generated once into
//! `$REELBASE_DATA_DIR/secrets/jwt.key` (mode 0600) and reused on every start, so tokens
//! survive restarts and no operator has to invent a secret.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::auth::tokens;
use crate::config::{Secret, Settings};

/// Shorter secrets are refused: HS256 is only as strong as its key.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("REELBASE_JWT_SECRET must be at least {MIN_SECRET_LEN} characters")]
    TooShort,
    #[error("cannot read or create the JWT key file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("the JWT key file {} is readable by other users; chmod 600 it", path.display())]
    Permissions { path: PathBuf },
}

pub fn load_or_create(settings: &Settings) -> Result<Secret, KeyError> {
    if let Some(secret) = &settings.jwt_secret {
        if secret.expose().len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort);
        }
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join("secrets").join("jwt.key");
    let file_error = |reason: String| KeyError::File {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path).map_err(|e| file_error(e.to_string()))?;
            if mode.permissions().mode() & 0o077 != 0 {
                return Err(KeyError::Permissions { path });
            }
            let secret = text.trim().to_owned();
            if secret.len() < MIN_SECRET_LEN {
                return Err(file_error("the key in it is too short".into()));
            }
            Ok(Secret::new(secret))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(error) => Err(file_error(error.to_string())),
    }
}

fn create(path: &Path) -> Result<Secret, KeyError> {
    let file_error = |reason: String| KeyError::File {
        path: path.to_owned(),
        reason,
    };
    let dir = path.parent().expect("the key path has a folder");
    std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
    let secret = tokens::random_token().map_err(|e| file_error(e.to_string()))?;
    // create_new: if another instance wins the race, read its key instead of overwriting it.
    let opened = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match opened {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .map_err(|e| file_error(e.to_string()))?;
            tracing::info!(path = %path.display(), "generated a new JWT signing key");
            Ok(Secret::new(secret))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
            Ok(Secret::new(text.trim()))
        }
        Err(error) => Err(file_error(error.to_string())),
    }
}
