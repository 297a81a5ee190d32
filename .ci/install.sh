#!/usr/bin/env bash
# The one set-up of the project, used by `make`, by CI and by the Dockerfile:
#   bash .ci/install.sh VENV [REQUIREMENTS]
# creates the virtualenv VENV if missing, installs the pinned requirements, and installs this project in editable
# mode (pyproject.toml), so `import aurore` works from anywhere (`python aurore/1_….py` from the repository root).
# INSTALL_PROJECT=0 skips that last part (the Docker image finds the package through PYTHONPATH instead).
set -euo pipefail
venv=${1:?usage: install.sh VENV [REQUIREMENTS]}
requirements=${2:-requirements.txt}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

"$python" - <<'PY' || { echo "erreur : il faut Python 3.10 à 3.12 (TensorFlow 2.21 n'existe pas pour celui-ci) ; installez python3.11 puis relancez avec PYTHON=python3.11 make setup" >&2; exit 1; }
import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
PY
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/$requirements"
if [ "${INSTALL_PROJECT:-1}" != 0 ]; then
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -f "$site/aurore-repo.pth"  # what earlier versions of this script wrote instead
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$root"
fi
echo "installé : $venv ($("$venv/bin/python" --version), paquets de $requirements)"
