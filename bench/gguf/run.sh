#!/usr/bin/env bash
# Side-by-side GGUF benchmark: SharpSeek vs llama.cpp (LLamaSharp 0.30.0) on the same files, same thread count.
#   bench/gguf/run.sh [threads] [prompt] [gen]      (synthesizes and converts the ~1B benchmark model under /tmp once)
# threads may be a list ("2 1"): one table per thread count.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-2}; P=${2:-256}; G=${3:-64}
dotnet build -c Release src/SharpSeek.Cli -v q -nologo >/dev/null
dotnet build -c Release bench/gguf -v q -nologo >/dev/null
CLI="dotnet src/SharpSeek.Cli/bin/Release/net10.0/sharpseek.dll"
BENCH="dotnet bench/gguf/bin/Release/net10.0/SharpSeek.GgufBench.dll"
[ -f /tmp/m1b/config.json ] || $CLI synth --config bench/configs/v2-lite-1b.json --out /tmp/m1b
[ -f /tmp/m1b-gguf/m1b-q4_k_m.gguf ] || $BENCH prepare --model /tmp/m1b --out /tmp/m1b-gguf --types bf16,q8_0,q4_k_m
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; .NET $(dotnet --version)"
for T in $THREADS; do
  echo
  echo "threads $T, prompt $P tokens, generate $G tokens"
  echo
  echo "| type | file MB | SharpSeek prefill tok/s | llama.cpp prefill tok/s | ratio | SharpSeek decode tok/s | llama.cpp decode tok/s | ratio | load avg (1 min) before |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for t in bf16 q8_0 q4_k_m; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    row=$($BENCH run --gguf /tmp/m1b-gguf/m1b-$t.gguf --threads "$T" --prompt "$P" --gen "$G" 2>/dev/null)
    echo "$row $load |"
  done
done
echo
echo "load avg after: $(cut -d' ' -f1-3 /proc/loadavg)"
