#!/usr/bin/env bash
# Loopback benchmark of `sharpseek serve` (continuous batching, prefix reuse, load), driven by the HTTP load client
# bench/SharpSeek.ServerBench. Writes bench/results/server.md (machine, load, commands, numbers).
#   1. throughput: 1/4/16/64 concurrent streamed chats (distinct prompts, greedy, GEN tokens each, ROUNDS rounds) on the
#      ~1B bench model (bench/configs/v2-lite-1b.json, synthesized if missing; sharpseek-mini's tokenizer) and on
#      models/sharpseek-mini: aggregate decode tokens/s, the ratio to one stream, p50/p99 time to first token
#   2. prefix reuse on the 1B model: a 10-turn chat, turn 10's TTFT with its prefix reused and with nothing reusable
#   3. load on sharpseek-mini: REQUESTS requests, 64 concurrent, mixed lengths, 10% of streamed ones cancelled
#      mid-stream; /metrics (resident memory, threads, caches, sequences) at start, middle and end, leak checks
# Usage: bench/server/run.sh            (the issue's settings: REQUESTS=10000 ROUNDS=3 GEN=64)
#        REQUESTS=200 ROUNDS=1 GEN=16 bench/server/run.sh   (a dry run)
# Other knobs: MODEL (1B model directory), STREAMS ("1,4,16,64"), THREADS (2), PORT (18080), OUT (result file).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${MODEL:-/tmp/sharpseek-bench-v2-lite-1b}
mini="$root/models/sharpseek-mini"
requests=${REQUESTS:-10000}
rounds=${ROUNDS:-3}
gen=${GEN:-64}
streams=${STREAMS:-1,4,16,64}
threads=${THREADS:-2}
port=${PORT:-18080}
out=${OUT:-$root/bench/results/server.md}
cli="$root/src/SharpSeek.Cli/bin/Release/net10.0/sharpseek"
client="$root/bench/SharpSeek.ServerBench/bin/Release/net10.0/SharpSeek.ServerBench"
dotnet build "$root/src/SharpSeek.Cli" -c Release -v q -nologo >/dev/null
dotnet build "$root/bench/SharpSeek.ServerBench" -c Release -v q -nologo >/dev/null
for _ in $(seq 1 60); do # a build node may still be writing the apphost after dotnet build returns
  "$client" >/dev/null 2>&1 && break || [ $? -eq 2 ] && break; sleep 0.5
done
if [ ! -f "$model/model.safetensors" ]; then
  "$cli" synth --config "$root/bench/configs/v2-lite-1b.json" --out "$model" --seed 1
fi
[ -f "$model/tokenizer.json" ] || cp "$mini/tokenizer.json" "$mini/tokenizer_config.json" "$model/"

tmp=$(mktemp -d)
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=; fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT
start_server() { # model dir, log name, prefix cache MiB
  "$cli" serve --model "$1" --port "$port" --threads "$threads" --parallel 64 --max-queue 1024 --prefix-cache-mb "$3" > "$tmp/$2.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/$2.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "the server did not start" >&2; exit 1
}
bench() { "$client" "$@" --url "http://127.0.0.1:$port"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

load_start=$(loadavg)
started=$(date -u +%FT%TZ)
echo "== 1B model: throughput" >&2
start_server "$model" serve-1b 256
bench throughput --streams "$streams" --rounds "$rounds" --max-tokens "$gen" --prompt-words 24 > "$tmp/throughput-1b.md"
load_1b=$(loadavg)
echo "== 1B model: prefix reuse" >&2
bench prefix --turns 10 --max-tokens 24 --prompt-words 16 > "$tmp/prefix-1b.md"
stop_server
echo "== sharpseek-mini: throughput" >&2
start_server "$mini" serve-mini 256
bench throughput --streams "$streams" --rounds "$rounds" --max-tokens "$gen" --prompt-words 24 > "$tmp/throughput-mini.md"
load_mini=$(loadavg)
stop_server
echo "== sharpseek-mini: load, $requests requests" >&2
start_server "$mini" serve-load 64 # a small prefix cache fills early: the middle and end show the steady state
load_rc=0
bench load --requests "$requests" --concurrency 64 --max-tokens 48 --cancel-percent 10 > "$tmp/load-mini.md" || load_rc=$?
stop_server
load_end=$(loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo "# Server benchmark: loopback throughput, prefix reuse, load"
  echo
  echo "Machine: $cpu, $(nproc) cores visible, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr), .NET $(dotnet --version)."
  echo "The cores are shared with other work: load average (1/5/15 min) at the start $load_start, after the 1B throughput run"
  echo "$load_1b, after the sharpseek-mini throughput run $load_mini, at the end $load_end (a quiet machine reads about 0-2)."
  echo "Started $started, commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src bench || echo ' (with local changes)')."
  echo
  echo "Command: \`REQUESTS=$requests ROUNDS=$rounds GEN=$gen STREAMS=$streams THREADS=$threads bench/server/run.sh\`; each server is"
  echo "\`sharpseek serve --model M --threads $threads --parallel 64 --max-queue 1024 --prefix-cache-mb 256\` (64 for the load run; bf16"
  echo "weights as stored, f32 latent cache), driven over 127.0.0.1 by \`bench/SharpSeek.ServerBench\` (HttpClient, streamed chat"
  echo "completions, temperature 0). The load client and the server share the machine's cores."
  echo
  echo "## Throughput, ~1B bench model"
  echo
  echo "\`bench/configs/v2-lite-1b.json\` synthesized with \`sharpseek synth --seed 1\` (1.03B parameters, random bf16 weights), with"
  echo "sharpseek-mini's tokenizer. Each round starts S requests at once (distinct prompts of about 24 words), each asking for"
  echo "$gen tokens, after an unmeasured warm-up. Steady decode tok/s = deltas received while all S requests were decoding"
  echo "(from the last first token to the first end of the round; one delta per token) / that window, over $rounds round(s): the"
  echo "batched decode rate the issue's target is about. Overall tok/s = completion tokens / wall time, prefill included."
  echo "TTFT = time to the first non-empty delta as the client sees it (p99 of few samples is their maximum)."
  echo
  cat "$tmp/throughput-1b.md"
  echo
  echo "## Throughput, models/sharpseek-mini"
  echo
  echo "The same requests on the 6-layer, hidden-256 default model."
  echo
  cat "$tmp/throughput-mini.md"
  echo
  echo "## Prefix reuse, ~1B bench model"
  echo
  echo "A 10-turn chat (system prompt, each turn a 16-word question and a reply of up to 24 tokens; each request sends the"
  echo "whole conversation). cached = prompt tokens taken from the prefix cache (\`usage.prompt_tokens_details.cached_tokens\`)."
  echo
  cat "$tmp/prefix-1b.md"
  echo
  echo "## Load, models/sharpseek-mini"
  echo
  echo "Exit code of the load client: $load_rc (0: every check below passed)."
  echo
  cat "$tmp/load-mini.md"
} > "$out"
cat "$out"
exit "$load_rc"
