#!/usr/bin/env python3
"""Write tests/unit/data/refnames.tsv: generated ref names with git's verdict.

Each line is "<1 if `git check-ref-format NAME` accepts it, else 0><TAB><name
as hex>". test_git_refname.cpp compares git::is_valid_refname() with every
line. Regenerate (a few minutes: one git process per name) after changing the
generator:  python3 tests/tools/refname_fixture.py > tests/unit/data/refnames.tsv
"""
import concurrent.futures
import random
import subprocess
import sys

# Bytes that matter to git's rules, weighted towards the interesting ones.
ALPHABET = ["a", "b", "z", "0", "-", "_", "/", "/", ".", ".", "@", "{", "}", "~", "^", ":",
            "?", "*", "[", "]", "\\", " ", ";", "lock", ".lock", "é", "\u4e2d", "\x01", "\x1f",
            "\x7f", "\t", "!", "#", "%", "+", ","]
PREFIXES = ["", "refs/heads/", "refs/tags/", "refs/", "refs/heads/x/", "/"]


def names(count, seed=15):
    rng = random.Random(seed)
    out = {"@", "refs", "refs/heads/@", "refs/heads/.", "refs/heads/a.", "refs/heads/a..b",
           "refs/heads/a@{b", "refs/heads/@{", "refs/heads/a.lock", "refs/heads/a.lock/b",
           "refs/heads//a", "refs/heads/a/", "refs/heads/.a", "refs/heads/a/.b", "a/b",
           "refs/heads/a:b", "refs/heads/ä", "HEAD", "refs/heads/a b", "refs/heads/@"}
    while len(out) < count:
        body = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8)))
        out.add(rng.choice(PREFIXES) + body)
    return sorted(n for n in out if n and "\0" not in n)


def git_accepts(name):
    return subprocess.run(["git", "check-ref-format", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def main():
    todo = names(int(sys.argv[1]) if len(sys.argv) > 1 else 2500)
    # Each git process costs ~2 ms of CPU; a few at once hide start-up latency.
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        for name, ok in zip(todo, pool.map(git_accepts, todo)):
            print(f"{1 if ok else 0}\t{name.encode('utf-8').hex()}")


if __name__ == "__main__":
    main()
