#!/usr/bin/env python3
"""Rewrites load_dialogues corpus inputs that replace a whole file (mode 0) as the equivalent
splice (mode 1: the changed bytes only), so the committed corpus stays small. The file the
target loads is byte for byte the same, so coverage is unchanged. Run before `cargo fuzz cmin`.
The seed-* files (the shipped files as they are) are kept whole for future fuzzing runs.
"""
import hashlib
import os

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIALOGUES = os.path.join(FUZZ, "..", "dialogues")
CORPUS = os.path.join(FUZZ, "corpus", "load_dialogues")


def rel_files():
    names = ["gymtriage.toml", "ui.toml"]
    for sub in ["flows", "outcomes"]:
        names += [sub + "/" + f for f in os.listdir(os.path.join(DIALOGUES, sub)) if f.endswith(".toml")]
    return sorted(names, key=lambda n: n.split("/"))


def main():
    names = rel_files()
    originals = [open(os.path.join(DIALOGUES, n), "rb").read() for n in names]
    rewritten = 0
    for entry in sorted(os.listdir(CORPUS)):
        path = os.path.join(CORPUS, entry)
        data = open(path, "rb").read()
        if entry.startswith("seed-") or not data or data[0] >> 6 != 0:
            continue
        sel, new = data[0], data[1:]
        old = originals[(sel & 0x3F) % len(names)]
        p = 0
        while p < min(len(old), len(new)) and old[p] == new[p]:
            p += 1
        s = 0
        while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
            s += 1
        delete = len(old) - p - s
        if delete > 255 or p >= 1 << 16:
            continue
        splice = bytes([0x40 | (sel & 0x3F)]) + p.to_bytes(2, "little") + bytes([delete]) + new[p : len(new) - s]
        if len(splice) >= len(data):
            continue
        os.remove(path)
        with open(os.path.join(CORPUS, hashlib.sha1(splice).hexdigest()), "wb") as f:
            f.write(splice)
        rewritten += 1
    print(f"rewrote {rewritten} whole-file inputs as splices")


main()
