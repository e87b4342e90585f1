#!/usr/bin/env bash
# Trains the demo model: gelan-t from scratch on coco128 (../shared/data/coco128) at 320 with the
# official recipe, on the best device present (lavapipe when there is no GPU). Resumable: run it again
# and it continues from the run's weights/last.safetensors. The run folder defaults to
# runs/train/gelan-t-coco128 (override with VKYOLO_DEMO_RUN=DIR, e.g. a folder that outlives the
# checkout). When it is done, weights/best.safetensors is the candidate for assets/models/.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${VKYOLO_SHARED:-../shared}
run=${VKYOLO_DEMO_RUN:-runs/train/gelan-t-coco128}
epochs=${VKYOLO_DEMO_EPOCHS:-300}
[ -x build/apps/vkyolo ] || { scripts/deps.sh; scripts/build.sh build; }
if [ -f "$run/weights/last.safetensors" ]; then
	exec ./build/apps/vkyolo train --resume "$run/weights/last.safetensors"
fi
exec ./build/apps/vkyolo train --model assets/models/gelan-t.yaml --data "$shared/data/coco128/coco128.yaml" \
	--imgsz 320 --batch 16 --epochs "$epochs" --workers 2 --seed 0 \
	--project "$(dirname "$run")" --name "$(basename "$run")"
