//! One module per subcommand.

pub(crate) mod demo;
pub(crate) mod keys;

/// How results are printed.
pub(crate) struct Output {
    /// JSON on stdout instead of human text.
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text` for humans.
    pub(crate) fn emit(&self, value: &serde_json::Value, text: &str) {
        if self.json {
            println!("{value:#}");
        } else {
            println!("{text}");
        }
    }
}

/// `0x`-prefixed hex.
pub(crate) fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", alloy_primitives::hex::encode(bytes))
}
