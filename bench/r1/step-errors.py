#!/usr/bin/env python3
# Error rate of every single arithmetic step in arith completions (eval-tasks --samples FILE): each "a op b = c" the
# model wrote (a product's partial sums included, not its "= x * p + y * q" decomposition) checked against the true
# value, grouped by operator and operand digit counts, most frequent first.
#   bench/r1/step-errors.py runs/.../eval-samples.jsonl [ROWS]
import collections, json, re, sys

step = re.compile(r'(-?\d+) ([-+*]) (-?\d+) = (-?\d+)(?![ ]*[*+]|\d)')
stats = collections.defaultdict(lambda: [0, 0])
for line in open(sys.argv[1], encoding='utf-8'):
    text = json.loads(line).get('completion', '')
    for m in step.finditer(text):
        a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        true = a + b if op == '+' else a - b if op == '-' else a * b
        key = (op, len(str(abs(a))), len(str(abs(b))))
        stats[key][0] += 1
        stats[key][1] += true != c
steps = sum(n for n, _ in stats.values()); wrong = sum(e for _, e in stats.values())
print(f"{steps} steps, {wrong} wrong ({wrong / max(steps, 1):.1%})")
print("op  digits  steps  wrong  rate")
for (op, da, db), (n, e) in sorted(stats.items(), key=lambda kv: -kv[1][0])[:int(sys.argv[2]) if len(sys.argv) > 2 else 20]:
    print(f"{op:>2}  {da} x {db}  {n:6d} {e:6d}  {e / n:5.1%}")
