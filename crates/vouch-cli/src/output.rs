//! How results and progress are printed: the result on stdout (text, or one JSON document with `--json`), progress
//! and details on stderr (`-q` silences progress, `-v` adds transaction hashes and gas).

/// Output mode of one invocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// JSON on stdout instead of human text.
    pub(crate) json: bool,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub(crate) verbosity: i8,
}

impl Output {
    /// Prints the command's result: `value` as JSON, or `text` for humans.
    pub(crate) fn emit(&self, value: &serde_json::Value, text: &str) {
        if self.json {
            println!("{value:#}");
        } else {
            println!("{text}");
        }
    }

    /// A progress line on stderr (not with `-q`).
    pub(crate) fn progress(&self, line: &str) {
        if self.verbosity >= 0 {
            eprintln!("{line}");
        }
    }

    /// A detail on stderr (only with `-v`).
    pub(crate) fn detail(&self, line: &str) {
        if self.verbosity >= 1 {
            eprintln!("  {line}");
        }
    }
}

/// `1 blueprint`, `3 blueprints`.
pub(crate) fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `0x`-prefixed hex.
pub(crate) fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", alloy_primitives::hex::encode(bytes))
}
