#!/usr/bin/env python3
"""Sorts the samples of a `perf script` dump of a bot into where the time goes.

    perf script -i DIR/sqlite.perf.data -F comm,tid,ip,sym --no-inline > sqlite.txt
    python3 examples/load_support/perf_summary.py sqlite.txt            # categories
    python3 examples/load_support/perf_summary.py sqlite.txt 'store::'  # + inclusive shares

Each sample goes to the first category whose pattern matches a frame of its stack (so a
SQLite call made from a handler counts as SQLite, not as handler code). Threads of tokio's
blocking pool that are not running a store call are counted as pool overhead (idle waits,
wake-ups, thread start and exit). Shares are of the bot's CPU samples.
"""

import collections
import re
import sys

RULES = [
    ("store: waiting for the connection mutex", r"Mutex>::lock_contended"),
    ("store: SQLite/Redis calls (queries, state JSON, WAL writes)",
     r"store::(sqlite|redis)|rusqlite|sqlite3|redis::"),
    ("spawn_blocking hand-off (runtime side, thread creation)", r"spawn_blocking|Spawner::spawn"),
    ("HTTP client to the Bot API (reqwest, hyper, request JSON)",
     r"reqwest|hyper|execute_json|request_json|teloxide_core::net"),
    ("Throttle adaptor", r"[Tt]hrottle"),
    ("update polling and update JSON", r"polling|PollingStream|UpdateKind|teloxide_core::types::update"),
    ("gymtriage handler code (conversation, render, engine)", r"gymtriage::(bot|engine|dialogue)"),
    ("teloxide dispatcher and dptree", r"dispatching::dispatcher|dptree"),
    ("tokio scheduler and parking", r"tokio::runtime"),
]
POOL = "blocking pool threads: idle waits, wake-ups, thread start/exit"


def samples(path):
    cur = None
    for line in open(path, errors="replace"):
        if not line.strip():
            if cur is not None:
                yield cur
            cur = None
        elif not line.startswith("\t"):
            cur = []
        elif cur is not None:
            parts = line.strip().split(" ", 1)
            cur.append(parts[1] if len(parts) > 1 else "?")
    if cur is not None:
        yield cur


def main():
    all_samples = list(samples(sys.argv[1]))
    n = len(all_samples) or 1
    cats = collections.Counter()
    inclusive = collections.Counter()
    for frames in all_samples:
        joined = "\n".join(frames)
        if ("blocking::pool::Inner::run" in joined and "multi_thread::worker" not in joined
                and not re.search(r"store::|rusqlite|sqlite3|redis::|lock_contended", joined)):
            cat = POOL
        else:
            cat = next((name for name, pat in RULES if re.search(pat, joined)), "other")
        cats[cat] += 1
        for f in set(re.sub(r"::\{\{closure\}\}", "", f)[:160] for f in frames):
            inclusive[f] += 1
    print(f"{len(all_samples)} samples")
    for name, count in cats.most_common():
        print(f"{100 * count / n:5.1f}%  {name}")
    if len(sys.argv) > 2:
        print("\ninclusive shares of frames matching", sys.argv[2])
        for f, count in inclusive.most_common():
            if re.search(sys.argv[2], f) and count * 200 >= n:
                print(f"{100 * count / n:5.1f}%  {f}")


if __name__ == "__main__":
    main()
