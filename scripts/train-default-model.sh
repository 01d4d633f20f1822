#!/usr/bin/env bash
# Reproduces models/sharpseek-mini from nothing: corpus (checked against corpus/SHA256SUMS), token shards with the
# committed tokenizer, pre-training with models/sharpseek-mini/train/train.json (resumes from the newest checkpoint
# in runs/sharpseek-mini/ckpt if interrupted), export of the final checkpoint as a bf16 Hugging Face checkpoint into
# OUT_DIR together with the tokenizer, and the validation bits per byte on Persuasion.
#
#   scripts/train-default-model.sh [OUT_DIR]     default OUT_DIR: runs/sharpseek-mini/model
#
# Copy OUT_DIR/{config.json,generation_config.json,model.safetensors} into models/sharpseek-mini to ship it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/runs/sharpseek-mini/model}
cd "$root"
[ -f data/corpus/persuasion.txt ] || scripts/build-corpus.sh
[ -f data/shards/kjv.tokens ] || scripts/build-shards.sh
dotnet build src/SharpSeek.Cli -c Release -v q -nologo
./sharpseek train --config models/sharpseek-mini/train/train.json
last=$(ls -d runs/sharpseek-mini/ckpt/step-* | sort | tail -1)
./sharpseek export --model "$last" --out "$out" --tokenizer models/sharpseek-mini
./sharpseek eval --model "$out" --text-file data/corpus/persuasion.txt --json
