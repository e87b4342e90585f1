#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, list the Vulkan devices
# and run detection on a bundled sample image, on the best device present (lavapipe when there is
# no GPU). The model is $VKYOLO_MODEL when set (any official YOLOv9 / GELAN .pt or our
# .safetensors); vkyolo ships no trained model yet, so without it the randomly initialised test
# model from ../shared/oracle is used (every code path runs, but the boxes mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
./build/apps/vkyolo devices

shared=${VKYOLO_SHARED:-../shared}
model=${VKYOLO_MODEL:-}
conf=0.25
if [ -z "$model" ]; then
	model="$shared/oracle/gelan-t.pt"
	conf=0.5
	if [ ! -f "$model" ]; then
		echo "demo: no model: set VKYOLO_MODEL to a YOLOv9 / GELAN checkpoint (e.g. the official gelan-c.pt)" >&2
		exit 1
	fi
	echo "demo: VKYOLO_MODEL is not set; using the random-weight test model $model (boxes are meaningless)"
fi
./build/apps/vkyolo detect --model "$model" --source assets/images/000000000049.jpg --conf "$conf"
