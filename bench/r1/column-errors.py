#!/usr/bin/env python3
"""Where a columns-trace model goes wrong (eval-tasks --samples of a model trained with `tasks --trace columns`).

For every "P op Q: columns gives R" of every completion: a column whose written sum or difference is wrong
(arithmetic), a column whose digits are not P's and Q's at that place with the right carry or borrow (reading), and
an R that is not what the written columns spell (assembly); the same for every one-digit product "P * d: columns
gives R", and the one-digit table facts. The first error of a wrong completion is counted once under its kind; what
none of these checks finds (signs, copying a number to the next line, the order of operations) is "elsewhere".

usage: column-errors.py SAMPLES.jsonl
"""
import json
import re
import sys
from collections import Counter

SEG = re.compile(r"(\d+) ([+-]) (\d+): ([0-9+=, -]+?) gives (\d+)")
PROD = re.compile(r"(\d+) \* (\d): ([0-9*+=, ]+?) gives (\d+)")
FACT = re.compile(r"(?<![\d*] )(?<!\d)(\d) \* (\d) = (\d+)")


def column_errors(p, op, q, cols, r):
    """(kind, detail) of the first error in one segment, or None."""
    carry = 0
    digits = []
    place = 1
    for i, c in enumerate(cols):
        if "=" in c:
            lhs, val = c.split("=", 1)
        else:
            lhs, val = c, c
        try:
            val = int(val)
            terms = [int(t) for t in re.split(r"[+-]", lhs)]
        except ValueError:
            return ("format", c)
        dp, dq = p // place % 10, q // place % 10
        if op == "+":
            if sum(terms) != val:
                return ("column arithmetic", c)
            want = ([dp] if place <= p else []) + ([dq] if place <= q else []) + ([1] if carry else [])
            if terms != want:
                return ("column reading", c)
            carry = val // 10
            digits.insert(0, str(val) if i == len(cols) - 1 else str(val % 10))
        else:
            d = dp - (dq if place <= q else 0) - carry
            borrow = 1 if d < 0 else 0
            if terms[0] - sum(terms[1:]) != val:
                return ("column arithmetic", c)
            want = [dp + 10 * borrow] + ([dq] if place <= q else []) + ([1] if carry else [])
            if terms != want:
                return ("column reading", c)
            carry = borrow
            digits.insert(0, str(val))
        place *= 10
    if place <= max(p, q):
        return ("column count", f"{len(cols)} columns for {p} {op} {q}")
    if int("".join(digits)) != r:
        return ("assembly", f"columns spell {int(''.join(digits))}, wrote {r}")
    return None


def main(path):
    samples = [json.loads(line) for line in open(path, encoding="utf-8")]
    kinds = Counter()
    wrong = 0
    segs = seg_bad = 0
    for s in samples:
        if s.get("correct"):
            continue
        wrong += 1
        text = s["completion"].split("</think>")[0]
        first = None
        for m in PROD.finditer(text):
            big, d, r = int(m.group(1)), int(m.group(2)), int(m.group(4))
            carry, digits, place, err = 0, [], 1, None
            cols = m.group(3).split(", ")
            for i, c in enumerate(cols):
                lhs, _, val = c.partition("=")
                try:
                    val = int(val)
                    a, rest = lhs.split("*", 1)
                    dd, _, cc = rest.partition("+")
                    a, dd, cc = int(a), int(dd), int(cc or 0)
                except ValueError:
                    err = ("format", c)
                    break
                if a * dd + cc != val:
                    err = ("product column arithmetic", c)
                    break
                if a != big // place % 10 or dd != d or cc != carry:
                    err = ("product column reading", c)
                    break
                carry = val // 10
                digits.insert(0, str(val) if i == len(cols) - 1 else str(val % 10))
                place *= 10
            if not err and int("".join(digits)) != r:
                err = ("product assembly", f"columns spell {''.join(digits)}, wrote {r}")
            if err and not (first and first[0] < m.start()):
                first = (m.start(), err[0], f"{m.group(0)[:60]}: {err[1]}")
        for m in FACT.finditer(text):
            if int(m.group(1)) * int(m.group(2)) != int(m.group(3)) and not (first and first[0] < m.start()):
                first = (m.start(), "table fact", m.group(0))
        for m in SEG.finditer(text):
            segs += 1
            e = column_errors(int(m.group(1)), m.group(2), int(m.group(3)), m.group(4).split(", "), int(m.group(5)))
            if e:
                seg_bad += 1
                first = first if first and first[0] < m.start() else (m.start(), e[0], f"{m.group(0)[:60]}: {e[1]}")
        kinds[first[1] if first else "elsewhere (signs, copying, order)"] += 1
    print(f"{len(samples)} completions, {wrong} wrong")
    for k, n in kinds.most_common():
        print(f"  {k:34s} {n:5d}  {100 * n / max(1, wrong):5.1f}% of the wrong")


if __name__ == "__main__":
    main(sys.argv[1])
