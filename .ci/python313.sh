#!/usr/bin/env bash
# CI: Python 3.13 (the default python3 of Debian 13 and Fedora 42) from a fresh clone, through uv, as a participant:
#   python3 -m aurore setup, then steps 1-5 on the stand-in (one request to step 5's page), doctor, and every check.
# It uses the Python 3.13 already on this machine (pyenv); uv's managed-Python downloads cannot be reached from here.
set -euo pipefail
cd "$(dirname "$0")/.."
books=${AURORE_GUTENBERG_MIRROR:-$(cd .. && pwd)/shared/corpus/gutenberg}
python313=${AURORE_PYTHON313:-$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.*/bin/python3.13 2> /dev/null | tail -1)}
[ -x "$python313" ] || { echo "[python313] FAILED: no Python 3.13 here (set AURORE_PYTHON313)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aurore-py313.XXXXXX")
server=
cleanup() {
  [ -z "$server" ] || kill "$server" 2> /dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '[python313] %s\n' "$*"; }

git clone -q . "$tmp/clone"
cd "$tmp/clone"
"$python313" -m pip install --quiet --disable-pip-version-check uv==0.13.9  # the participant's `pip install uv`
say "$("$python313" --version): python -m aurore setup"
"$python313" -m aurore setup --no-doctor
# shellcheck disable=SC1091
source .venv/bin/activate
[ "$(python -c 'import sys; print(*sys.version_info[:2], sep=".")')" = 3.13 ] || { say "FAILED: .venv is not 3.13"; exit 1; }
export AURORE_GUTENBERG_MIRROR=$books HF_HUB_OFFLINE=1
python aurore/1_prepare_dataset_solution.py > "$tmp/log" 2>&1 || { tail -30 "$tmp/log"; exit 1; }
python -m aurore build-standin > "$tmp/log" 2>&1 || { tail -30 "$tmp/log"; exit 1; }
export AURORE_BASE_MODEL=$PWD/aurore/models/standin
for step in "2_tokenize_solution.py" "3_train_solution.py --max-steps 5" "4_generate_solution.py --max-new-tokens 8"; do
  say "python aurore/$step"
  # shellcheck disable=SC2086
  python aurore/$step > "$tmp/log" 2>&1 || { tail -30 "$tmp/log"; say "FAILED: $step"; exit 1; }
done
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python -m aurore doctor --port "$port" > "$tmp/doctor.log" 2>&1 || { cat "$tmp/doctor.log"; say "FAILED: doctor"; exit 1; }
say "python aurore/5_flask_solution.py --port $port, then POST /api/generate"
python aurore/5_flask_solution.py --port "$port" > "$tmp/server.log" 2>&1 &
server=$!
python - "$port" << 'PY' || { tail -30 "$tmp/server.log"; say "FAILED: step 5"; exit 1; }
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(300):
    try:
        urllib.request.urlopen(url + "/healthz", timeout=5)
        break
    except OSError:
        time.sleep(1)
request = urllib.request.Request(url + "/api/generate", data=json.dumps({"prompt": "Le soir"}).encode(),
                                 headers={"Content-Type": "application/json"})
texts = json.load(urllib.request.urlopen(request, timeout=120))["texts"]
assert texts and all(isinstance(text, str) and text for text in texts), texts
print("[python313]   200:", texts[0][:80])
PY
kill "$server"; wait "$server" 2> /dev/null || true; server=
for step in 1 2 3 4 5 6; do
  python -m aurore check "$step" --solution > "$tmp/log" 2>&1 || { tail -30 "$tmp/log"; say "FAILED: check $step"; exit 1; }
done
say "all passed on $(python --version)"
