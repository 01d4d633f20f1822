#!/usr/bin/env bash
# Served throughput with and without lanes (BatchSchedulerOptions.Lanes; `serve --lanes`): the same loopback runs as
# bench/server/run.sh's throughput part (1/16/64 concurrent streamed chats, greedy, 64 tokens each), once with each step
# as one forward (--lanes 1) and once with automatic lanes (--lanes 0: on a small model, a lane per thread, each lane's
# forward on its own thread), alternating for ROUNDS rounds (this VM's speed drifts by 20-30%).
#   bench/server/lanes.sh [MODEL] [ROUNDS]     defaults: models/sharpseek-mini 2; STREAMS=1,16,64 THREADS=2 PORT=18091
#   SERVE_ARGS="..." (default none): more `serve` options for both servers, e.g. "--dtype f32"
#   CLIENT_ROUNDS=N (default 3): rounds of S requests per stream count S in each server's run (a single stream's ~0.1 s
#   of 3 requests moves 30% between runs on a small model; more rounds steady it)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${1:-$root/models/sharpseek-mini}; rounds=${2:-2}
streams=${STREAMS:-1,16,64}; threads=${THREADS:-2}; port=${PORT:-18091}; client_rounds=${CLIENT_ROUNDS:-3}
cli="$root/src/SharpSeek.Cli/bin/Release/net10.0/sharpseek"
client="$root/bench/SharpSeek.ServerBench/bin/Release/net10.0/SharpSeek.ServerBench"
dotnet build "$root/src/SharpSeek.Cli" -c Release -v q -nologo >/dev/null
dotnet build "$root/bench/SharpSeek.ServerBench" -c Release -v q -nologo >/dev/null
log=$(mktemp); pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$log"' EXIT
echo "model $model, threads $threads, streams $streams, $rounds alternating rounds; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  for lanes in 1 0; do
    "$cli" serve --model "$model" --port "$port" --threads "$threads" --parallel 64 --max-queue 1024 --lanes "$lanes" ${SERVE_ARGS:-} > "$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.3; done
    echo "## round $r, --lanes $lanes"
    "$client" throughput --streams "$streams" --rounds "$client_rounds" --max-tokens 64 --prompt-words 24 --url "http://127.0.0.1:$port"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
