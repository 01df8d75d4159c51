#!/usr/bin/env bash
# Peer packages the tests compare hubcls against. They install with --no-deps because their declared
# requirements conflict with Paddle 3 / each other; what they really import is in hubcls[test].
set -euo pipefail
pip install -q --no-deps "paddleclas==2.6.0"
# PaddleDetection for the detection-backbone tests (hubcls.det); its imports come from hubcls[det].
pip install -q --no-deps "paddledet==2.6.0"
# PaddleHub 2.4.0 (tests/test_paddlehub_compat.py) imports beside Paddle 3.3.1 only with the pins of
# the `hub` extra, and its protobuf==3.20.3 conflicts with onnxruntime: it gets its own venv that
# still sees this environment's packages (paddle, hubcls) through --system-site-packages.
hub_venv=build/peers/paddlehub-venv
if ! "$hub_venv/bin/python" -c "import paddlehub" >/dev/null 2>&1; then
  python -m venv --system-site-packages "$hub_venv"
  hub_pins=$(python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['hub']))")
  # a failed install leaves no half-made venv behind (the PaddleHub test then skips, saying why)
  echo "$hub_pins" | xargs "$hub_venv/bin/pip" install -q \
    || { echo "warning: PaddleHub venv could not be installed; tests/test_paddlehub_compat.py will skip" >&2; rm -rf "$hub_venv"; }
fi
