//! Library linking: replaces solc's `__$<34 hex>$__` placeholders in creation bytecode with deployed addresses.
//!
//! solc leaves a 20-byte placeholder wherever code calls an external library function; the placeholder is `__$`, the
//! first 17 bytes of `keccak256(<source path>:<library name>)` in hex, and `$__`. forge records where they are
//! (`linkReferences`: source path → library → `[{start, length}]`, in bytes). Linking checks each recorded position
//! holds exactly the placeholder of the library named there, so stale or corrupted bytecode fails here instead of
//! deploying a contract that calls the wrong address.

use std::collections::BTreeMap;

use alloy::primitives::{Address, Bytes, hex, keccak256};
use serde::Deserialize;

/// A deployed library to link against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Library<'a> {
    /// Fully qualified name, `<source path>:<library name>` (e.g. [`crate::PROTOCOL_ADMIN_LIBRARY`]).
    pub name: &'a str,
    /// Where it is deployed.
    pub address: Address,
}

/// Why bytecode could not be linked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link references are not forge's `{ "<source>": { "<library>": [{ "start": n, "length": 20 }] } }`.
    #[error("link references are not valid JSON: {0}")]
    LinkReferences(String),
    /// The bytecode links a library that was not supplied.
    #[error("bytecode links library {library}, which was not supplied")]
    MissingLibrary {
        /// Fully qualified name of the library.
        library: String,
    },
    /// A link reference points outside the bytecode or does not cover 20 bytes.
    #[error("link reference of {library} at byte {offset} (length {length}) is outside the {code_len}-byte bytecode")]
    BadReference {
        /// Fully qualified name of the library.
        library: String,
        /// Byte offset of the reference.
        offset: usize,
        /// Length of the reference (20 for an address).
        length: usize,
        /// Length of the bytecode in bytes.
        code_len: usize,
    },
    /// The bytes at a link reference are not the placeholder solc derives from the library's name: the bytecode or
    /// its link references are corrupted or stale (rerun `scripts/export-artifacts.sh`).
    #[error(
        "placeholder mismatch for {library} at byte {offset}: expected {expected}, found {found} \
         (corrupted or stale artifacts: run scripts/export-artifacts.sh)"
    )]
    PlaceholderMismatch {
        /// Fully qualified name of the library.
        library: String,
        /// Byte offset of the reference.
        offset: usize,
        /// The placeholder `keccak256(library)` gives.
        expected: String,
        /// What the bytecode holds there.
        found: String,
    },
    /// A placeholder is left after linking: the link references do not cover it.
    #[error("unlinked library placeholder {placeholder} at byte {offset} is not in the link references")]
    Unlinked {
        /// Byte offset of the placeholder.
        offset: usize,
        /// The placeholder text.
        placeholder: String,
    },
    /// The bytecode is not hex (after linking).
    #[error("bytecode is not valid hex: {0}")]
    Hex(String),
}

#[derive(Deserialize)]
struct Reference {
    start: usize,
    length: usize,
}

/// forge's link references: source path → library name → positions.
type LinkReferences = BTreeMap<String, BTreeMap<String, Vec<Reference>>>;

/// The placeholder solc writes for the library `fully_qualified_name` (`<source path>:<name>`):
/// `__$` + hex of the first 17 bytes of its keccak256 + `$__`, 40 characters (the width of an address in hex).
pub fn placeholder(fully_qualified_name: &str) -> String {
    format!("__${}$__", &hex::encode(keccak256(fully_qualified_name.as_bytes()))[..34])
}

/// Links `bytecode_hex` (with or without `0x`) against `libraries` at the positions in `link_references` (forge's
/// JSON; `None` when the bytecode links nothing) and decodes it.
pub fn link(bytecode_hex: &str, link_references: Option<&str>, libraries: &[Library<'_>]) -> Result<Bytes, LinkError> {
    let mut code = bytecode_hex.trim().trim_start_matches("0x").to_ascii_lowercase();
    let refs: LinkReferences = match link_references {
        Some(json) => serde_json::from_str(json).map_err(|e| LinkError::LinkReferences(e.to_string()))?,
        None => LinkReferences::new(),
    };
    for (source, libs) in &refs {
        for (name, positions) in libs {
            let library = format!("{source}:{name}");
            let address = libraries
                .iter()
                .find(|l| l.name == library)
                .ok_or_else(|| LinkError::MissingLibrary { library: library.clone() })?
                .address;
            let expected = placeholder(&library);
            let replacement = hex::encode(address);
            for &Reference { start, length } in positions {
                let range = start * 2..(start + length) * 2;
                let found =
                    code.get(range.clone()).filter(|_| length == 20).ok_or_else(|| LinkError::BadReference {
                        library: library.clone(),
                        offset: start,
                        length,
                        code_len: code.len() / 2,
                    })?;
                if found != expected {
                    return Err(LinkError::PlaceholderMismatch {
                        library: library.clone(),
                        offset: start,
                        expected,
                        found: found.to_owned(),
                    });
                }
                code.replace_range(range, &replacement);
            }
        }
    }
    if let Some(at) = code.find("__$") {
        let placeholder = code.get(at..at + 40).unwrap_or(&code[at..]).to_owned();
        return Err(LinkError::Unlinked { offset: at / 2, placeholder });
    }
    hex::decode(&code).map(Bytes::from).map_err(|e| LinkError::Hex(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Contract, PROTOCOL_ADMIN_LIBRARY};

    const ADMIN: Address = Address::repeat_byte(0xad);

    fn admin() -> [Library<'static>; 1] {
        [Library { name: PROTOCOL_ADMIN_LIBRARY, address: ADMIN }]
    }

    #[test]
    fn protocol_admin_placeholder_is_the_one_forge_computed() {
        let p = placeholder(PROTOCOL_ADMIN_LIBRARY);
        assert_eq!(p.len(), 40);
        assert!(Contract::Protocol.bytecode_hex().contains(&p));
        assert_eq!(
            Contract::Protocol.bytecode_hex().matches("__$").count(),
            Contract::Protocol.bytecode_hex().matches(&p).count()
        );
    }

    #[test]
    fn links_protocol_admin_everywhere() {
        let code = Contract::Protocol.creation_code(&admin()).expect("links");
        let refs: LinkReferences =
            serde_json::from_str(Contract::Protocol.link_references().expect("has references")).expect("json");
        let positions = &refs["src/protocol/ProtocolAdmin.sol"]["ProtocolAdmin"];
        assert!(!positions.is_empty());
        for r in positions {
            assert_eq!(&code[r.start..r.start + 20], ADMIN.as_slice());
        }
        assert_eq!(code.len() * 2, Contract::Protocol.bytecode_hex().len());
    }

    #[test]
    fn contracts_without_libraries_decode_as_is() {
        for c in Contract::ALL.into_iter().filter(|c| *c != Contract::Protocol) {
            let code = c.creation_code(&[]).expect("no libraries needed");
            assert_eq!(hex::encode(&code), c.bytecode_hex());
        }
    }

    #[test]
    fn missing_library_is_refused() {
        assert_eq!(
            Contract::Protocol.creation_code(&[]),
            Err(LinkError::MissingLibrary { library: PROTOCOL_ADMIN_LIBRARY.to_owned() })
        );
    }

    #[test]
    fn corrupted_placeholder_is_refused() {
        let good = placeholder(PROTOCOL_ADMIN_LIBRARY);
        // Another library's placeholder (as if the source had moved): same shape, wrong hash.
        let other = placeholder("src/protocol/Other.sol:ProtocolAdmin");
        let corrupted = Contract::Protocol.bytecode_hex().replacen(&good, &other, 1);
        let err = link(&corrupted, Contract::Protocol.link_references(), &admin()).expect_err("must fail");
        match err {
            LinkError::PlaceholderMismatch { library, expected, found, .. } => {
                assert_eq!(library, PROTOCOL_ADMIN_LIBRARY);
                assert_eq!(expected, good);
                assert_eq!(found, other);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err_display_mentions_export(&corrupted));
    }

    fn err_display_mentions_export(corrupted: &str) -> bool {
        link(corrupted, Contract::Protocol.link_references(), &admin())
            .expect_err("fails")
            .to_string()
            .contains("scripts/export-artifacts.sh")
    }

    #[test]
    fn placeholder_outside_the_references_is_refused() {
        // A placeholder the link references do not list (e.g. a second library added to the bytecode only).
        let stray = placeholder("src/Stray.sol:Stray");
        let code = format!("{}{stray}", Contract::Protocol.bytecode_hex());
        let err = link(&code, Contract::Protocol.link_references(), &admin()).expect_err("must fail");
        assert!(matches!(err, LinkError::Unlinked { placeholder, .. } if placeholder == stray));
    }

    #[test]
    fn reference_past_the_end_is_refused() {
        let refs = r#"{"src/protocol/ProtocolAdmin.sol":{"ProtocolAdmin":[{"start":1,"length":20}]}}"#;
        let err = link("6080", Some(refs), &admin()).expect_err("must fail");
        assert!(matches!(err, LinkError::BadReference { offset: 1, length: 20, code_len: 2, .. }));
    }
}
