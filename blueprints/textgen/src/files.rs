//! Where the model files are, and their pinned sha256 hashes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::LoadError;

/// The GGUF file (weights, chat template), relative to the models directory.
pub const GGUF_FILE: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The tokenizer (exported from the GGUF by HF transformers), relative to the models directory.
pub const TOKENIZER_FILE: &str = "smollm2-135m-instruct/tokenizer.json";
/// sha256 of [`GGUF_FILE`], as pinned in `scripts/fetch-models.sh`.
pub const GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// sha256 of [`TOKENIZER_FILE`], as pinned in `scripts/fetch-models.sh`.
pub const TOKENIZER_SHA256: &str = "bf346d64f6f0fbcefb4c1b6928a98241467dff36c6fbae5fe1785c4ff90667f4";

/// The environment variable naming the models directory (default `~/.cache/vouch/models`), as in
/// `scripts/fetch-models.sh`.
pub const MODELS_ENV: &str = "VOUCH_MODELS";

/// The paths of the two files the blueprint loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// The GGUF file.
    pub gguf: PathBuf,
    /// The `tokenizer.json` file.
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    /// The files inside the models directory `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self { gguf: dir.join(GGUF_FILE), tokenizer: dir.join(TOKENIZER_FILE) }
    }

    /// The files where `scripts/fetch-models.sh` puts them: in `$VOUCH_MODELS`, or else in
    /// `$HOME/.cache/vouch/models`. Fails when neither variable is set, or when a file is missing.
    pub fn locate() -> Result<Self, LoadError> {
        let dir = match std::env::var_os(MODELS_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => PathBuf::from(home).join(".cache/vouch/models"),
                _ => return Err(LoadError::NoModelsDir),
            },
        };
        let files = Self::in_dir(&dir);
        for path in [&files.gguf, &files.tokenizer] {
            if !path.is_file() {
                return Err(LoadError::Missing { path: path.clone() });
            }
        }
        Ok(files)
    }
}

/// Reads `path` whole and checks its sha256 against `pinned` (lowercase hex). The bytes returned are
/// the bytes hashed, so the file cannot change between the check and its use.
pub(crate) fn read_pinned(path: &Path, pinned: &str) -> Result<Vec<u8>, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing { path: path.to_owned() }
        } else {
            LoadError::Read { path: path.to_owned(), source }
        }
    })?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != pinned {
        return Err(LoadError::Sha256Mismatch { path: path.to_owned(), expected: pinned.to_owned(), actual });
    }
    Ok(bytes)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}
