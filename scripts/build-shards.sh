#!/usr/bin/env bash
# Tokenises each corpus file into a token shard (NAME.txt -> NAME.tokens; format in src/SharpSeek.Data/TokenShard.cs),
# every document followed by <｜end▁of▁sentence｜>, and prints token counts and bytes per token.
# Training shards: austen-train, brown, fortunes, kjv; validation shard: persuasion.
#
#   scripts/build-shards.sh [CORPUS_DIR] [OUT_DIR] [TOKENIZER_JSON]
#   defaults: data/corpus, data/shards, models/sharpseek-mini/tokenizer.json
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$root/data/corpus}
out=${2:-$root/data/shards}
tokenizer=${3:-$root/models/sharpseek-mini/tokenizer.json}
dotnet run --project "$root/tools/SharpSeek.DataTool" -c Release -- shard --tokenizer "$tokenizer" --corpus "$corpus" --out "$out"
