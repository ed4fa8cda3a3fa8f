#!/usr/bin/env bash
# Create .venv and install avssl with everything it needs.
# Called by `make test` and `make demo`; safe to re-run (it is skipped when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# System packages, installed when we can (root + apt), never required:
# - ffmpeg: the FFmpeg libraries TorchCodec decodes with (without them avssl decodes with PyAV);
# - chromium: the headless browser the cluster-gallery test drives (without it that test skips).
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing ${missing[*]} (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "[setup] apt-get failed for ${missing[*]}; avssl decodes with PyAV and the gallery browser test skips"
  else
    echo "[setup] ${missing[*]} not installed and no root apt-get; avssl decodes with PyAV, the gallery browser test skips"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch and torchvision first: pip takes these exact releases from the local wheel cache when present.
.venv/bin/python -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
echo "[setup] done: $(.venv/bin/python -c 'import avssl, torch; print("avssl", avssl.__version__, "torch", torch.__version__)')"
