#!/usr/bin/env bash
# Peer packages the tests compare hubcls against. They install with --no-deps because their declared
# requirements conflict with Paddle 3 / each other; what they really import is in hubcls[test].
set -euo pipefail
pip install -q --no-deps "paddleclas==2.6.0"
# PaddleDetection for the detection-backbone tests (hubcls.det); its imports come from hubcls[det].
pip install -q --no-deps "paddledet==2.6.0"
