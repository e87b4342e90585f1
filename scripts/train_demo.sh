#!/usr/bin/env bash
# Trains the demo model: gelan-t from scratch on coco128 (../shared/data/coco128) at 320 with the
# official recipe (100 epochs), on the best device present (lavapipe when there is no GPU).
#
# The run lives in runs/train/gelan-t-coco128 (override with VKYOLO_DEMO_RUN=DIR). It is resumable:
# run the script again and it continues from the run's weights/last.safetensors. When the run folder
# has no checkpoint but assets/demo-train/gelan-t-coco128 has one (the state committed at the end
# of a working session, so that the next one, on another machine, goes on), the run starts from a
# copy of that.
#   scripts/train_demo.sh            train (resume when possible)
#   scripts/train_demo.sh --snapshot copy the run's last checkpoint, results.csv and args.yaml into
#                                    assets/demo-train/gelan-t-coco128 (to commit; stop training first)
# When it is done, weights/best.safetensors is the candidate for assets/models/.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${VKYOLO_SHARED:-../shared}
run=${VKYOLO_DEMO_RUN:-runs/train/gelan-t-coco128}
epochs=${VKYOLO_DEMO_EPOCHS:-100}
saved=assets/demo-train/gelan-t-coco128
data="$(cd "$shared/data/coco128" && pwd)/coco128.yaml"

if [ "${1:-}" = --snapshot ]; then
	mkdir -p "$saved/weights"
	cp "$run/weights/last.safetensors" "$saved/weights/last.safetensors.tmp"
	mv "$saved/weights/last.safetensors.tmp" "$saved/weights/last.safetensors"
	cp "$run/results.csv" "$run/args.yaml" "$saved/"
	echo "train_demo: saved $(tail -n 1 "$saved/results.csv" | cut -d, -f1 | tr -d ' ') as the last epoch in $saved"
	exit 0
fi

[ -x build/apps/vkyolo ] || { scripts/deps.sh; scripts/build.sh build; }
if [ ! -f "$run/weights/last.safetensors" ] && [ -f "$saved/weights/last.safetensors" ]; then
	mkdir -p "$run/weights"
	cp "$saved/results.csv" "$saved/args.yaml" "$run/"
	cp "$saved/weights/last.safetensors" "$run/weights/"
	echo "train_demo: continuing the committed run from $saved"
fi
if [ -f "$run/weights/last.safetensors" ]; then
	exec ./build/apps/vkyolo train --resume "$run/weights/last.safetensors" --data "$data"
fi
exec ./build/apps/vkyolo train --model assets/models/gelan-t.yaml --data "$data" \
	--imgsz 320 --batch 16 --epochs "$epochs" --workers 2 --seed 0 \
	--project "$(dirname "$run")" --name "$(basename "$run")"
