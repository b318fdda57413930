//! Typed errors of the crypto crate.

use std::path::PathBuf;

/// Why bytes could not be read as a curve point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    /// The input has the wrong number of bytes for this encoding.
    #[error("expected {expected} bytes, got {actual}")]
    Length {
        /// Bytes the encoding requires.
        expected: usize,
        /// Bytes supplied.
        actual: usize,
    },
    /// An EIP-2537 field element has non-zero bytes in its 16-byte padding.
    #[error("EIP-2537 field element {index} has non-zero padding (not a 64-byte big-endian value < p)")]
    Padding {
        /// Index of the 64-byte field element (0-based).
        index: usize,
    },
    /// The bytes are not a valid encoding (bad flags, or a coordinate not below the field modulus).
    #[error("invalid point encoding (bad flag bits or a coordinate not below the field modulus)")]
    Encoding,
    /// The coordinates are not on the curve.
    #[error("point is not on the curve")]
    NotOnCurve,
    /// The point is on the curve but not in the prime-order subgroup.
    #[error("point is not in the prime-order subgroup")]
    NotInSubgroup,
    /// The point at infinity, which is never a valid key or signature.
    #[error("point at infinity is not allowed")]
    Infinity,
}

impl PointError {
    pub(crate) fn from_blst(err: blst::BLST_ERROR) -> Self {
        match err {
            blst::BLST_ERROR::BLST_POINT_NOT_ON_CURVE => Self::NotOnCurve,
            blst::BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Self::NotInSubgroup,
            blst::BLST_ERROR::BLST_PK_IS_INFINITY => Self::Infinity,
            _ => Self::Encoding,
        }
    }
}

/// Errors from key handling, signing and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Input key material must be at least 32 bytes (IETF BLS KeyGen, EIP-2333).
    #[error("input key material must be at least 32 bytes, got {0}")]
    ShortKeyMaterial(usize),
    /// A secret key must be 32 big-endian bytes encoding a non-zero scalar below the group order.
    #[error("invalid secret key: must be 32 bytes encoding a non-zero scalar below the group order")]
    InvalidSecretKey,
    /// A public key failed to decode or validate.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(PointError),
    /// A signature failed to decode or validate.
    #[error("invalid signature: {0}")]
    InvalidSignature(PointError),
    /// The signature does not verify against the key(s) and message.
    #[error("signature does not verify")]
    VerificationFailed,
    /// The proof of possession does not verify for this key, operator and deployment.
    #[error("proof of possession does not verify for operator {operator}")]
    InvalidProofOfPossession {
        /// The operator the proof was checked for.
        operator: alloy_primitives::Address,
    },
    /// Aggregation needs at least one element.
    #[error("cannot aggregate an empty set")]
    EmptyAggregate,
    /// The operating system's random number generator failed.
    #[error("system randomness unavailable: {0}")]
    Randomness(String),
}

/// Errors reading, writing, encrypting or decrypting an EIP-2335 keystore.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// Filesystem error, with the file involved.
    #[error("{path}: {source}")]
    Io {
        /// File being read or written.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file already exists; key material is never overwritten.
    #[error("{0}: file already exists (key material is never overwritten); move it away or choose another name")]
    AlreadyExists(PathBuf),
    /// Not a regular file (a directory, FIFO or device).
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    /// The file is larger than a keystore or password file can be.
    #[error("{path}: larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{0}: not UTF-8 text")]
    NotUtf8(PathBuf),
    /// The JSON is not an EIP-2335 keystore.
    #[error("not an EIP-2335 keystore")]
    Json(#[from] serde_json::Error),
    /// The file is not an EIP-2335 keystore.
    #[error("{path}: not an EIP-2335 keystore")]
    JsonFile {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A field is well-formed JSON but outside what this implementation accepts.
    #[error("unsupported keystore: {0}")]
    Unsupported(String),
    /// The password is wrong (the checksum does not match).
    #[error("wrong password (keystore checksum mismatch)")]
    WrongPassword,
    /// Decryption succeeded but the secret or the recorded public key is not valid.
    #[error("keystore content invalid")]
    Key(#[from] CryptoError),
    /// The decrypted secret does not match the public key the keystore records.
    #[error("keystore public key does not match its secret")]
    PublicKeyMismatch,
}
