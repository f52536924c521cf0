#!/usr/bin/env bash
# Issue 19's transfer measurement, step 2: the four ways to train exits on a small target task, as
# studies of 3 seeds each, on the backbone pretrain_backbone.py wrote (Fashion-MNIST classes 0-4) and
# the target task it wrote (classes 5-9, PER_CLASS training images per class, 200 test images per class).
#   bash scripts/transfer/run_transfer.sh /tmp/transfer 20    # then 100
# Every study prints per-exit top-1 mean +- sample standard deviation over the seeds.
set -euo pipefail
dir=$1 per_class=$2
runs=$dir/runs-$per_class
common=(--dataset "$dir/fashion5-9" --limit-train $((5 * per_class)) --validation 0 --no-augment
  --limit-test 1000 --epochs 10 --batch 20 --lr 0.05 --seeds 3 --seed 0 --out "$runs")
study() { echo "== $1 ($per_class per class)"; shift; /usr/bin/time -f '%e s wall, %M KiB peak RSS' node bin/mw-studio.js study "${common[@]}" "$@"; }
study 'from scratch (untrained resnet18, multi-way, everything at lr)' \
  --backbone "$dir/resnet18-untrained.onnx" --methods multiway --backbone-lr-scale 1
study 'IC-only (frozen backbone, heads only, cached features)' \
  --backbone "$dir/resnet18-fashion0-4.onnx" --methods joint --gamma 0 --freeze-backbone
study 'Elastic (equal weights, dropout heads, backbone frozen 5 epochs, then all)' \
  --backbone "$dir/resnet18-fashion0-4.onnx" --methods joint --gamma 0 --head elastic --freeze-epochs 5
study 'multi-way (the paper rule, backbone at lr x 0.1)' \
  --backbone "$dir/resnet18-fashion0-4.onnx" --methods multiway
