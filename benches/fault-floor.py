#!/usr/bin/env python3
# The floor of the fault benchmark (docs/performance.md, "Promoting under
# injected faults"): a Monte Carlo of the faulted example's chain of
# dependent rounds as counted from its traces (the rounds in `run` below):
# 25% of requests refused, half 429 (Retry-After 1 s, honoured,
# backoff not advanced), half 503 (our backoff: 200 ms doubling, jitter up
# to as much again); 6 attempts (a request that fails all 6 is counted as
# its 6 waits). Request service time ~3 ms.
import random, statistics
P, SVC = 0.25, 0.003
def req():
    t, k = 0.0, 0
    for attempt in range(6):
        t += SVC
        r = random.random()
        if r >= P: return t
        if r < P/2: t += 1.0          # 429: Retry-After 1 s
        else:
            base = 0.2 * 2**k; t += base + random.random()*base; k += 1
    return t
def rnd(n): return max(req() for _ in range(n)) if n else 0.0
def readiness(rollout=0.3, interval=0.25, need=2):
    # checks: first reads 2 requests, later ones 1; next check due
    # `interval` after the previous one started.
    t, streak, first = 0.0, 0, True
    while True:
        start = t
        d = rnd(2 if first else 1); first = False
        t = start + d
        if start >= rollout: streak += 1
        else: streak = 0
        if streak >= need: return t
        t = max(t, start + interval)
def run(ideal=False):
    r = (lambda n: rnd(1)) if ideal else rnd
    plan = r(1) + r(1) + max(r(5) + r(4), r(32))
    lock = r(1)
    copy = max(r(1) + r(7) + r(2) + r(1) + r(1) for _ in range(4))
    under = max(r(15), copy, r(2))
    writes = r(3) + r(1) + r(3) + r(5)
    ready = max(readiness() for _ in range(2))  # domain waits for api and web
    tail = r(1) + r(1) + r(1)                    # domain, record, unlock
    return plan + lock + under + writes + ready + tail
random.seed(1)
for ideal in (False, True):
    xs = [run(ideal) for _ in range(20000)]
    xs.sort()
    print(("one request per round" if ideal else "the chain as it is"),
          "mean %.2f median %.2f p10 %.2f p90 %.2f" % (statistics.mean(xs), xs[len(xs)//2], xs[len(xs)//10], xs[9*len(xs)//10]))
