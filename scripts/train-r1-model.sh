#!/usr/bin/env bash
# The reasoning model of issue 17, end to end: task data, a base model pre-trained with arithmetic text at sequence
# length 512, R1-Zero (GRPO straight from the base), R1 (SFT on worked solutions, then GRPO), held-out accuracy of
# each stage on the 3,000-problem arith test split, and Persuasion bits per byte. Every stage resumes from its newest
# checkpoint if interrupted; every command is printed before it runs and timed.
#
#   scripts/train-r1-model.sh            the real run: configs in models/recipes/sharpseek-r1, output in runs/sharpseek-r1
#   scripts/train-r1-model.sh --dry-run  the same pipeline at toy scale (configs in models/recipes/sharpseek-r1/dry, output
#                                        in runs/sharpseek-r1-dry, no corpus needed): checks that every stage runs
#
# The real run needs the corpus shards (scripts/build-corpus.sh, scripts/build-shards.sh). To ship the result as the
# default model, copy runs/sharpseek-r1/r1-model/* into models/sharpseek-r1 (its README then needs the new numbers).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
recipe=models/recipes/sharpseek-r1
run=runs/sharpseek-r1
train=10000; validation=100; test=1000; limit=3000; max_tokens=1024; fresh1=100000; fresh2=200000
# GRPO over the shipped columns model: its grpo-columns step, the checkpoints of the mining runs averaged (3d)
gc_step=50; mine_avg="20 30 40 50 60 70"; greedy_avg="10 20 30 40 50 60 70 80"
# the same SFT and GRPO on the trace in the operands' order (3e): the checkpoints averaged into the default model
ordered_avg="5 10 15 20 25"
if [ "${1:-}" = --dry-run ]; then
  recipe=$recipe/dry; run=runs/sharpseek-r1-dry
  train=40; validation=4; test=4; limit=12; max_tokens=64; fresh1=60; fresh2=60
  gc_step=2; mine_avg="1 2"; greedy_avg="1 2"; ordered_avg="1 2"
else
  [ -f data/shards/kjv.tokens ] || { [ -f data/corpus/persuasion.txt ] || scripts/build-corpus.sh; scripts/build-shards.sh; }
fi
mkdir -p "$run/data" "$run/eval"
dotnet build src/SharpSeek.Cli -c Release -v q -nologo >/dev/null
step() { echo "+ $*" >&2; local t0=$SECONDS; "$@"; echo "  ($((SECONDS - t0)) s)" >&2; }
latest() { echo "$1/$(cat "$1/latest")"; }
checkpoint() { echo "$1/$(printf step-%08d "$2")"; } # RUN_DIR STEP
average() { # OUT RUN_DIR "STEPS" [RUN_DIR "STEPS" ...]: the mean of those checkpoints (export --average)
  local out=$1 models=() s; shift
  while [ $# -gt 0 ]; do for s in $2; do models+=("$(checkpoint "$1" "$s")"); done; shift 2; done
  step ./sharpseek export --model "${models[0]}" --average "${models[@]:1}" --out "$out"
}

# 1. tasks: train / validation / test splits (deduplicated), and the train splits as pre-training text
for family in arith word; do
  step ./sharpseek tasks --family $family --out "$run/data" --train $train --validation $validation --test $test --seed 17 \
    --text "$run/data/$family.txt" --shard "$run/data/$family.tokens" --tokenizer models/sharpseek-mini
done

# 2. base model: corpus + arithmetic text, sequence length 512
step ./sharpseek train --config $recipe/pretrain.json
step ./sharpseek export --model "$(latest $run/pretrain)" --out $run/base --tokenizer models/sharpseek-mini

evaluate() { # NAME MODEL
  step ./sharpseek eval-tasks --model "$2" --tasks "$run/data/arith-test.jsonl" --limit $limit --max-tokens $max_tokens \
    --threads 2 --json --samples "$run/eval/$1-samples.jsonl" > "$run/eval/$1.json"
  grep -E '^  "(accuracy|format_ok|mean_completion_tokens|tokens_per_s)"' "$run/eval/$1.json" >&2
}
evaluate base $run/base

# 3. R1: SFT on worked solutions, then GRPO (first: its result becomes the default model)
step ./sharpseek sft --config $recipe/sft.json
step ./sharpseek export --model "$(latest $run/sft)" --out $run/sft-model
evaluate sft $run/sft-model
# 3b. more SFT on fresh problems (the model is data-limited: single steps were wrong 1 in 5 after the first SFT).
#     fresh1: seed 17 again with 10x the problems (its first 10,000 per level are the ones above, the test split the
#     same); fresh2: seed 18, kept apart from seed 17's test and validation splits
step ./sharpseek tasks --out "$run/data-fresh1" --train $fresh1 --validation $validation --test $test --seed 17
step ./sharpseek sft --config $recipe/sft-fresh1.json
step ./sharpseek export --model "$(latest $run/sft-fresh1)" --out $run/sft-fresh1-model
evaluate sft-fresh1 $run/sft-fresh1-model
step ./sharpseek tasks --out "$run/data-fresh2" --train $fresh2 --validation $validation --test $test --seed 18 \
  --exclude "$run/data/arith-test.jsonl" --exclude "$run/data/arith-validation.jsonl"
step ./sharpseek sft --config $recipe/sft-fresh2.json
step ./sharpseek export --model "$(latest $run/sft-fresh2)" --out $run/sft-fresh2-model
evaluate sft-fresh2 $run/sft-fresh2-model
step ./sharpseek grpo --config $recipe/grpo.json
step ./sharpseek export --model "$(latest $run/grpo)" --out $run/r1-compact-model
evaluate r1-compact $run/r1-compact-model
# 3c. columns: every digit its own token (the tokenizer's digit merges dropped) and worked solutions that add, subtract
#     and multiply digit by digit with carries and borrows (single steps were wrong 1 in 7 in one go); SFT from the
#     model above on 600,000 fresh problems (seed 19, kept apart from seed 17's test and validation), then GRPO
step ./sharpseek export --model $run/r1-compact-model --out $run/columns-init --split-digits
step ./sharpseek tasks --out "$run/data-columns" --train $fresh2 --validation $validation --test $validation --seed 19 \
  --trace columns --exclude "$run/data/arith-test.jsonl" --exclude "$run/data/arith-validation.jsonl"
step ./sharpseek sft --config $recipe/sft-columns.json
step ./sharpseek export --model "$(latest $run/sft-columns)" --out $run/sft-columns-model
evaluate sft-columns $run/sft-columns-model
step ./sharpseek grpo --config $recipe/grpo-columns.json
step ./sharpseek export --model "$(checkpoint $run/grpo-columns $gc_step)" --out $run/r1-grpo50-model
evaluate r1-grpo50 $run/r1-grpo50-model
# 3d. GRPO on the greedy policy's own slips (eleventh and twelfth sessions; bench/results/r1-pipeline.md): each step
#     decodes 1,024 fresh problems greedily, samples groups for the ones answered wrong and trains only on groups
#     resampled from where a wrong reply left a right one (greedy_mining, branch_sampling); lr 1e-5 for 20 steps, then
#     3e-5 to step 70; from its step 60, the greedy replies themselves as branch sources (branch_from_greedy) for 80
#     steps; the model is the mean of the checkpoints of both runs from step 20 on (export --average)
step ./sharpseek tasks --out "$run/data-val23" --train 0 --validation $((4 * validation)) --test 0 --seed 23 --trace columns \
  --exclude "$run/data/arith-test.jsonl" --exclude "$run/data-columns/arith-train.jsonl"
step ./sharpseek grpo --config $recipe/grpo-mine.json
step ./sharpseek grpo --config $recipe/grpo-mine-b.json
step ./sharpseek grpo --config $recipe/grpo-greedy.json
average $run/r1-columns-model $run/grpo-mine "$mine_avg" $run/grpo-greedy "$greedy_avg"
evaluate r1-columns $run/r1-columns-model
# 3e. the columns trace in the operands' order (tasks --trace columns-ordered: a one-digit first factor's swap said,
#     "9 * 96 = 96 * 9; 96 * 9: ..."; a third of 3d's failures copied such a factor wrong): the same problems and the
#     same SFT from columns-init, then 3d's greedy-branch GRPO from that SFT for 25 steps; the model is the mean of its
#     checkpoints every 5 steps (thirteenth session)
step ./sharpseek tasks --out "$run/data-ordered" --train $fresh2 --validation $validation --test $validation --seed 19 \
  --trace columns-ordered --exclude "$run/data/arith-test.jsonl" --exclude "$run/data/arith-validation.jsonl"
step ./sharpseek sft --config $recipe/sft-ordered.json
step ./sharpseek export --model "$(latest $run/sft-ordered)" --out $run/sft-ordered-model
evaluate sft-ordered $run/sft-ordered-model
step ./sharpseek grpo --config $recipe/grpo-ordered.json
average $run/r1-model $run/grpo-ordered "$ordered_avg"
evaluate r1 $run/r1-model

# 4. R1-Zero: GRPO straight from the base model, no SFT
step ./sharpseek grpo --config $recipe/grpo-zero.json
step ./sharpseek export --model "$(latest $run/grpo-zero)" --out $run/r1-zero-model
evaluate r1-zero $run/r1-zero-model

# 5. language modelling cost of the post-training
if [ -f data/corpus/persuasion.txt ]; then
  step ./sharpseek eval --model $run/base --text-file data/corpus/persuasion.txt --json > "$run/eval/base-persuasion.json"
  step ./sharpseek eval --model $run/r1-model --text-file data/corpus/persuasion.txt --json > "$run/eval/r1-persuasion.json"
fi
echo "done: $run/r1-model (evaluations in $run/eval)" >&2
