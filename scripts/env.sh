# Source this to put the project's pinned tools (forge, anvil, cast) on PATH.
VOUCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$VOUCH_ROOT/node_modules/.bin:$PATH"
