#!/usr/bin/env python3
"""Reference embeddings for the embeddings blueprint: sentence-transformers (PyTorch, CPU) with all-MiniLM-L6-v2.

Two commands (run with bench/reference/.venv/bin/python after bench/reference/setup.sh):

  golden --out blueprints/embeddings/tests/golden.json
      Embeds a few fixed sentences and writes the fixture that the blueprint's golden test compares candle with
      (within 1e-5). The fixture records the model's sha256 and the library versions: this script is its provenance.

  bench --sentences FILE --threads N [--batch-size B ...] [--rounds R] [--embeddings-out FILE]
      Embeds the sentences of FILE (one JSON string per line) with N threads, once per batch size, R timed rounds
      each after one warm-up, and prints one JSON object per batch size on stdout ({"batch_size", "seconds",
      "per_second", ...}). `--embeddings-out` also writes the embeddings of the first batch size as little-endian f32,
      row-major (n x 384), so the caller can measure candle against PyTorch. `cargo run --release -p vouch-bench --bin
      embeddings` runs this as a subprocess.

The model is the sentence-transformers directory unpacked by setup.sh from the pinned PyPI wheel (modules.json:
Transformer with max_seq_length 256, mean Pooling, Normalize), its model.safetensors checked against the same sha256
as the blueprint pins.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = HERE / ".venv" / "model" / "all-minilm-l6-v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# The golden sentences: short English, punctuation and numbers, accents and CJK (BertNormalizer lowercases, strips
# accents and splits CJK characters), and a text longer than 256 tokens (sentence-transformers truncates it).
LONG_SENTENCE = " ".join(
    f"Paragraph {i}: staked operators run the embedding job, sign the result, and a certificate settles the call."
    for i in range(1, 21)
)
GOLDEN_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Vouch operators stake collateral, run AI jobs for 0.001 vUSD each, and sign results with BLS12-381.",
    "Crème brûlée at the naïve café: ÜNÏCÖDÉ, 漢字 and emoji 🚀 go through the BERT normaliser.",
    LONG_SENTENCE,
]


def set_threads(threads: int) -> None:
    """Pins every thread pool PyTorch may use to `threads`, before torch is imported."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers 5 swaps layers for "hub kernels" downloaded at run time unless told not to: the reference is
    # plain PyTorch, offline.
    os.environ["USE_HUB_KERNELS"] = "0"
    os.environ["HF_HUB_OFFLINE"] = "1"


def load_model(model_dir: pathlib.Path, threads: int):
    """The sentence-transformers model from `model_dir`, on the CPU, after checking the weights' sha256."""
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        sys.exit(f"{weights} is missing: run bench/reference/setup.sh")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        sys.exit(f"{weights}: sha256 {digest}, pinned {MODEL_SHA256}")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.eval()
    if model.max_seq_length != 256:
        sys.exit(f"expected max_seq_length 256 from sentence_bert_config.json, got {model.max_seq_length}")
    return model


def versions() -> dict[str, str]:
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def golden(args: argparse.Namespace) -> None:
    model = load_model(args.model_dir, args.threads)
    embeddings = model.encode(GOLDEN_SENTENCES, batch_size=1, convert_to_numpy=True)
    tokenizer = model.tokenizer
    rows = []
    for text, embedding in zip(GOLDEN_SENTENCES, embeddings):
        ids = tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        # float(f32) is exact in a double; json writes it with enough digits to round-trip.
        rows.append({"text": text, "token_ids": list(ids), "embedding": [float(x) for x in embedding]})
    fixture = {
        "provenance": "bench/reference/embed_reference.py golden (sentence-transformers, one sentence per batch)",
        "model": "all-MiniLM-L6-v2",
        "model_sha256": MODEL_SHA256,
        "max_seq_length": model.max_seq_length,
        "versions": versions(),
        "sentences": rows,
    }
    args.out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} embeddings to {args.out}", file=sys.stderr)


def bench(args: argparse.Namespace) -> None:
    sentences = [json.loads(line) for line in args.sentences.read_text(encoding="utf-8").splitlines() if line]
    model = load_model(args.model_dir, args.threads)
    import numpy as np
    import torch

    for index, batch_size in enumerate(args.batch_size):
        with torch.inference_mode():
            model.encode(sentences[:32], batch_size=batch_size)  # warm-up
            seconds = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                embeddings = model.encode(sentences, batch_size=batch_size, convert_to_numpy=True)
                seconds.append(time.perf_counter() - start)
        if index == 0 and args.embeddings_out is not None:
            args.embeddings_out.write_bytes(np.ascontiguousarray(embeddings, dtype="<f4").tobytes())
        median = statistics.median(seconds)
        result = {
            "stack": "sentence-transformers",
            "threads": torch.get_num_threads(),
            "batch_size": batch_size,
            "sentences": len(sentences),
            "seconds": seconds,
            "per_second": len(sentences) / median,
            "versions": versions(),
        }
        print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=pathlib.Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--threads", type=int, default=2)
    commands = parser.add_subparsers(dest="command", required=True)
    golden_parser = commands.add_parser("golden", help="write the golden fixture")
    golden_parser.add_argument("--out", type=pathlib.Path, required=True)
    bench_parser = commands.add_parser("bench", help="time sentence-transformers")
    bench_parser.add_argument("--sentences", type=pathlib.Path, required=True, help="one JSON string per line")
    bench_parser.add_argument("--batch-size", type=int, action="append", help="repeatable; default 1 and 32")
    bench_parser.add_argument("--rounds", type=int, default=3)
    bench_parser.add_argument("--embeddings-out", type=pathlib.Path)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.command == "golden":
        golden(args)
    else:
        args.batch_size = args.batch_size or [1, 32]
        bench(args)


if __name__ == "__main__":
    main()
