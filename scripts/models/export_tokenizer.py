"""Exports SmolLM2's tokenizer from its GGUF file as a `tokenizer.json`, the way Hugging Face transformers does.

candle's `TokenizerFromGguf` does not reproduce this tokenizer (it adds a prefix space; see
shared/notes/models.md), so the textgen blueprint loads the file written here. It runs transformers' own GGUF
tokenizer converter on metadata read with the `gguf` package, which keeps PyTorch out: transformers' GGUF reader
imports it. The output is deterministic; scripts/fetch-models.sh pins its sha256.

usage: export_tokenizer.py MODEL.gguf OUT/tokenizer.json
"""

import sys

from gguf import GGUFReader
from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer


def main(gguf_path: str, out_path: str) -> None:
    reader = GGUFReader(gguf_path)
    metadata = {
        key: field.contents()
        for key, field in reader.fields.items()
        if key.startswith("tokenizer.") or key == "general.architecture"
    }
    tokenizer = {
        name: metadata[f"tokenizer.{key}"]
        for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
        if f"tokenizer.{key}" in metadata
    }
    backend, _ = convert_gguf_tokenizer(metadata["general.architecture"], tokenizer)
    backend.save(out_path)
    # The one fact candle gets wrong, checked here so a broken export fails setup, not a test much later.
    ids = backend.encode("Once upon a time").ids
    if ids[0] != 6403:
        sys.exit(f"exported tokenizer encodes 'Once' as {ids[0]}, not 6403 (HF transformers, llama.cpp)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
