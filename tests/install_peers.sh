#!/usr/bin/env bash
# Peer packages the tests compare hubcls against. They install with --no-deps because their declared
# requirements conflict with Paddle 3 / each other; what they really import is in hubcls[test].
set -euo pipefail
pip install -q --no-deps "paddleclas==2.6.0"
# PaddleDetection for the detection-backbone tests (hubcls.det); its imports come from hubcls[det].
pip install -q --no-deps "paddledet==2.6.0"
# PaddleHub 2.4.0 (tests/test_paddlehub_compat.py) imports beside Paddle 3.3.1 only with the pins of
# the `hub` extra, and its protobuf==3.20.3 conflicts with onnxruntime: it gets its own venv that
# still sees this environment's packages (paddle, hubcls).
hub_venv=build/peers/paddlehub-venv
if ! "$hub_venv/bin/python" -c "import paddlehub" >/dev/null 2>&1; then
  python -m venv --system-site-packages "$hub_venv"
  hub_pins=$(python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['hub']))")
  # a failed install leaves no half-made venv behind (the PaddleHub test then skips, saying why)
  echo "$hub_pins" | xargs "$hub_venv/bin/pip" install -q \
    || { echo "warning: PaddleHub venv could not be installed; tests/test_paddlehub_compat.py will skip" >&2; rm -rf "$hub_venv"; }
fi
if [ -x "$hub_venv/bin/python" ]; then
  # --system-site-packages shows the BASE interpreter's packages; when this environment is itself a
  # venv (where paddle and hubcls are), a .pth in the PaddleHub venv adds this environment's
  # site-packages after its own (so PaddleHub's pins win) and runs their .pth files (hubcls's
  # editable-install finder among them). Rewritten on every run: the venv may have moved.
  hub_site=$("$hub_venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  python - "$hub_site/hubcls_outer_env.pth" <<'PY'
import site, sys
dirs = [p for p in site.getsitepackages() if sys.prefix != sys.base_prefix and p.startswith(sys.prefix)]
with open(sys.argv[1], "w") as f:
    f.write("".join(f"import site; site.addsitedir({d!r})\n" for d in dirs))
PY
  "$hub_venv/bin/python" -c "import paddle, paddlehub, hubcls" \
    || echo "warning: the PaddleHub venv cannot import paddle + paddlehub + hubcls; tests/test_paddlehub_compat.py will fail" >&2
fi
