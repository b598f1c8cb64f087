#!/usr/bin/env bash
# Issue 15's experiments: where DSD pays. Each runs scripts/results.py --paired (5 paired
# seeds) and writes its table to docs/results/NAME.md; finished runs are cached in
# build/experiments/cache.json, so an interrupted queue resumes where it stopped.
#   scripts/experiments.sh [NAME...]   (default: all, in the order below)
# Learning rates are the ones chosen on the validation split earlier (docs/results.md: CNN 0.03,
# LSTM 0.1); the sparse and re-dense rates of the protocol are the paper's ÷10 and ÷100.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/release/experiments
mkdir -p docs/results build/experiments
paired() {
  local name=$1
  shift
  python3 scripts/results.py --cache build/experiments/cache.json \
    --baselines build/experiments/baselines --out "docs/results/$name.md" --paired "$@"
}
run() {
  case $1 in
    cnn-protocol)  # 1. the paper's protocol vs its control, LeNet-5, full data
      paired cnn-protocol dsd-extra,dense-extra --exe $exe/fashion_cnn --seeds 5 --epochs 8,4,4 \
        --lrs 0.03,0.003,0.0003 --title "LeNet-5: the paper's protocol (8 dense epochs, then 4 sparse at lr/10 and 4 re-dense at lr/100) vs the same epochs without pruning" ;;
    noise-cnn)     # 4. 20 % label noise on 5 k images, short re-dense, equal epochs
      paired noise-cnn dsd,dense --exe $exe/fashion_cnn --seeds 5 --epochs 20,20,5 --lr 0.03 \
        --train-limit 5000 --label-noise 0.2 --title "LeNet-5, 5 000 images with 20 % label noise: DSD 20+20+5 vs dense 45 epochs (equal epochs)" ;;
    lstm-protocol) # 1. the paper's protocol vs its control, row LSTM, full data
      paired lstm-protocol dsd-extra,dense-extra --exe $exe/fashion_lstm --seeds 5 --epochs 6,3,3 \
        --lrs 0.1,0.01,0.001 --title "Row LSTM: the paper's protocol (6 dense epochs, then 3 sparse at lr/10 and 3 re-dense at lr/100) vs the same epochs without pruning" ;;
    big-fc-50|big-fc-80)  # 3. LeNet-5 with a large FC layer on 5 k images, conv1 kept dense
      local s=0.${1#big-fc-}
      paired "$1" dsd,dense --exe $exe/fashion_cnn --seeds 5 --epochs 15,15,15 --lr 0.03 --sparsity "$s" \
        --train-limit 5000 --title "LeNet 20-50-500-10 (Caffe's widths; conv1 padded) on 5 000 images, no augmentation, sparsity $s (conv1 dense), weight decay 5e-4: DSD 15+15+15 vs dense 45 epochs (equal epochs)" \
        -- --widths 20,50,500 --weight-decay 5e-4 --exclude conv1 ;;
    lstm256-50|lstm256-80)  # 2. an over-parameterised row LSTM on 10 k images, clipped gradients
      local s=0.${1#lstm256-}
      paired "$1" dsd,dense --exe $exe/fashion_lstm --seeds 5 --epochs 15,15,15 --lr 0.1 --sparsity "$s" \
        --train-limit 10000 --title "Row LSTM, hidden 256, on 10 000 images, input and recurrent weights at sparsity $s (classifier dense), gradient norm clipped at 5: DSD 15+15+15 vs dense 45 epochs (equal epochs)" \
        -- --hidden 256 --exclude fc1 --clip-norm 5 ;;
    lstm-ds1)  # 5. DeepSpeech 1's recipe shape (two rounds, 50 % then 25 %), equal epochs (issue 22)
      paired lstm-ds1 dsd,dense --exe $exe/fashion_lstm --seeds 5 \
        --recipe experiments/recipes/deepspeech1-shape-row-lstm.json --scale-epochs 0.16 --train-limit 10000 \
        --title "Row LSTM (hidden 128), every layer pruned, on 10 000 images: DeepSpeech 1's recipe (D → S 50 % → D → S 25 % → D, DS1's rates scaled to lr 0.1, Nesterov), 8 epochs a phase, vs the same five phases and rates without pruning (equal epochs)" \
        -- --exclude "" ;;
    *) echo "unknown experiment $1" >&2; exit 2 ;;
  esac
}
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(cnn-protocol noise-cnn lstm-protocol big-fc-50 lstm256-50 big-fc-80 lstm256-80 lstm-ds1)
for n in "${names[@]}"; do run "$n"; done
