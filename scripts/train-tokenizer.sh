#!/usr/bin/env bash
# Trains the byte-level BPE tokenizer (4096 tokens, DeepSeek-V3 pre-tokenizer and special tokens) on the
# corpus training files (never persuasion.txt) and writes tokenizer.json + tokenizer_config.json.
# Training is deterministic: on the verified corpus this reproduces models/sharpseek-mini byte for byte.
#
#   scripts/train-tokenizer.sh [CORPUS_DIR] [OUT_DIR]   defaults: data/corpus, models/sharpseek-mini
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/data/corpus}
out=${2:-$root/models/sharpseek-mini}
dotnet run --project "$root/tools/SharpSeek.DataTool" -c Release -- train-tokenizer --corpus "$corpus" --out "$out" --vocab-size 4096
