#!/usr/bin/env python3
"""Writes the seed corpora and dictionaries of the fuzz targets from the shipped dialogues.

Run from anywhere: python3 fuzz/seeds/make_seeds.py (needs Python 3.11+ for tomllib). The
seeds go to fuzz/corpus/<target>/seed-*; `cargo fuzz cmin` keeps those that add coverage.
"""
import glob
import hashlib
import os
import re
import tomllib

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIALOGUES = os.path.join(FUZZ, "..", "dialogues")


def rel_files():
    names = ["gymtriage.toml", "ui.toml"]
    for sub in ["flows", "outcomes"]:
        names += [sub + "/" + f for f in os.listdir(os.path.join(DIALOGUES, sub)) if f.endswith(".toml")]
    # Same order as the BTreeMap<PathBuf, _> of gymtriage::dialogue::read_files.
    return sorted(names, key=lambda n: n.split("/"))


def write(target, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def dict_entry(s):
    b = s.encode() if isinstance(s, str) else s
    out = "".join(chr(c) if 32 <= c < 127 and chr(c) not in '"\\' else "\\x%02x" % c for c in b)
    return '"' + out + '"'


def write_dict(name, entries):
    os.makedirs(os.path.join(FUZZ, "dicts"), exist_ok=True)
    with open(os.path.join(FUZZ, "dicts", name + ".dict"), "w") as f:
        for e in sorted(set(entries), key=lambda e: (str(type(e)), e)):
            f.write(dict_entry(e) + "\n")


def main():
    names = rel_files()
    contents = [open(os.path.join(DIALOGUES, n), "rb").read() for n in names]

    # load_dialogues: every shipped file as a replacement (mode 0), a few splices (mode 1),
    # removals (mode 2) and an added empty flow (mode 3).
    for i, c in enumerate(contents):
        write("load_dialogues", bytes([i]) + c)
        write("load_dialogues", bytes([0x80 | i]))
        for needle in [b"next = ", b"urgency = ", b"match = ", b"[[question"]:
            at = c.find(needle)
            if at >= 0:
                write("load_dialogues", bytes([0x40 | i]) + (at + len(needle)).to_bytes(2, "little") + bytes([4]) + b'"x"')
    write("load_dialogues", bytes([0xC0]) + b'flow = "x"\nbody = "none"\n')
    keys = set()
    for c in contents:
        text = c.decode()
        keys.update(re.findall(r"^\s*\[\[?[a-z_.]+\]\]?", text, re.M))
        keys.update(k + " = " for k in re.findall(r"\b([a-z_]+)\s*=", text))
    write_dict("load_dialogues", [k.strip() for k in keys] + ["emergency", "urgent", "see_professional", "self_care", "{ en = ", ", es = ", " }", '"""', "'''", "\\u00e9", "\n"])

    # free_text: phrases of every `match` list and word list, option ids and labels.
    phrases, ids, labels = set(), set(), set()
    for n, c in zip(names, contents):
        d = tomllib.loads(c.decode())
        for q in d.get("question", []):
            ids.add(q["id"])
            for o in q.get("option", []):
                ids.add(o["id"])
                for ls in o.get("match", {}).values():
                    phrases.update(ls)
                labels.update(o.get("label", {}).values())
        for ws in d.get("words", {}).values():
            for ls in ws.values():
                phrases.update(ls)
    TEXT, CHOICE, BACK, RESTART = 0x80, 0x60, 0xC0, 0xE0
    def text(s):
        return bytes([TEXT]) + s.encode() + b"\0"
    for lang in [0, 1]:
        for k in range(8):
            write("free_text", bytes([lang] + [k * 3 % 32 + (k % 3) * 32 for _ in range(16)]))
        write("free_text", bytes([lang, 1, 2, BACK, 3, RESTART, 0, 0, BACK, BACK, BACK]))
    for p in sorted(phrases):
        write("free_text", bytes([0]) + text(p) + bytes([0, 1, BACK]))
    for l in sorted(labels)[:40]:
        write("free_text", bytes([1]) + text(l) + text("2") + text("yes") + text("no"))
    for i in sorted(ids)[:30]:
        write("free_text", bytes([0, CHOICE]) + i.encode() + b"\0" + bytes([0]))
    for s in ["my lower back hurts after deadlifts but no numbness", "me duele la rodilla desde ayer, sin hinchazón",
              "I can't hold my pee", "not sharp, dull and stiff", "99", "0", "", " ", "\u0130\u0131 \u00df \ufb01",
              "x" * 1001, "back", "restart", "sí"]:
        write("free_text", bytes([0]) + text(s) + bytes([0]))
    write_dict("free_text", sorted(phrases) + sorted(ids) + ["*", "+", ",", ".", " but ", " pero ", " no ", " sin ", b"\x80", b"\x00", b"\x60", b"\xc0", b"\xe0"])

    # callback_data
    for s in ["2a.1f3a9c.3.lower_back", "ffffffffffffffff.ffffffff.ffffffff.aaaaaaaaaaaaaaaaaaaaaaaa",
              "1.1.1.<", "1.1.1.!", "0.0.0.yes", "L.es", "L.en", "g123_1f", "gm100123_ab",
              "g-5_0", "gm9223372036854775807_ffffffff", "1.1.1.yes;drop", "L.../etc",
              "O.1f.7", "O.0.0", "U.1.2.improving", "U.ffffffff.0.yes", "X.ffffffffffffffff", "X.2a"]:
        write("callback_data", s.encode())
    write_dict("callback_data", [".", "L.", "<", "!", "g", "gm", "_", "-", "+", "ffffffff", "7fffffffffffffff", "yes", "lower_back", "O.", "U.", "X."])


main()
