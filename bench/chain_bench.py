"""Stored bytes per ordinary night over a chain, against the minimal bundle (issue 21).

Generates a 272-ref repository with incremental_bench.generate() (3,400
commits on main, 60 branches, 210 tags, an orphan gh-pages; --commits to
change), serves it with `git daemon` on 127.0.0.1, takes one full snapshot
with --engine (default stream), then runs --nights ordinary nights in a row
(each incremental_bench.night(): 8 new commits on main, 3 on branch-01,
branch-02 reset by 3 commits). Each night, every binary (the candidate --bin and the
baseline --old, interleaved night by night, each into its own file:// store)
snapshots the same server state, and the bench sums every byte the night
added under the store's repos/ (bundle, manifest, new tables, the change in
size of latest.json), split by kind. The minimal bundle of the night is
`git bundle create --all --not <previous tips>` in a mirror that keeps every
old object. full_every is set above --nights so that every night is an
ordinary incremental (a full bundle every 30 nights, the default, is a
full snapshot's cost and not an ordinary night's).

Prints per-night figures and, for each binary, the amortised ratio (the sum
of the nights' bytes over the sum of the minimal bundles). It never fails on
bytes.

Then, to choose the writer's rule for tables by measurement, it replays the
candidate's chain (the sets each snapshot read back from its store) through
other rules, encoding every table as the binary does (canonical JSON, gzip
level 9), and prints the table bytes each rule would have stored and how many
tables a read costs at most: "chain D/R" (a delta against the parent's table,
a full table past D deltas or past R times the full table's stored bytes)
and "star R" (a delta of everything since the full table, against it, a
full table once the delta passes R times the full table's bytes).

    python3 bench/chain_bench.py --bin build/snapshotter --old /tmp/snapshotter-main [--nights 40]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402
from incremental_bench import generate, night  # noqa: E402

KINDS = ("bundles", "manifests", "tables", "other")


def kind_of(rel: str) -> str:
    for kind in KINDS[:-1]:
        if f"/{kind}/" in rel:
            return kind
    return "other"


def sizes(ws: harness.Workspace) -> dict[str, int]:
    root = ws.storage_dir / "repos"
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def added(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Bytes added by kind: new files whole, rewritten files by their change in size."""
    out = dict.fromkeys(KINDS, 0)
    for rel, size in after.items():
        out[kind_of(rel)] += size - before.get(rel, 0)
    return out


def snapshot(binary: str, ws: harness.Workspace, repo: dict, nights: int, engine: str = "stream") -> dict:
    payload = ws.snapshot_payload([repo], {"engine": engine, "full_every": nights + 10})
    proc = subprocess.run([binary, "--log-level", "warn"], env=ws.env({"SNAPSHOTTER_JOB_JSON": json.dumps(payload)}),
                          stdin=subprocess.DEVNULL, capture_output=True)
    out = json.loads(proc.stdout or b"{}")
    if proc.returncode != 0 or not out.get("ok"):
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"{binary}: snapshot failed: {proc.stdout[-2000:]!r}")
    return out["result"]["repositories"][0]


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encoded(obj, count: int) -> tuple[dict, int]:
    """(reference, stored bytes) of a table, as the binary encodes it."""
    raw = canonical(obj)
    size = len(gzip.compress(raw, compresslevel=9, mtime=0))
    return {"count": count, "raw_size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "size": size}, size


def full_table(sets: dict) -> dict:
    out = {"refs": sets["refs"], "bundles": sets["bundles"], "preserved": sets.get("preserved", {})}
    if sets.get("shallow"):
        out["shallow"] = sets["shallow"]
    return out


def delta_table(base: dict, base_ref: dict, depth: int, sets: dict) -> dict:
    """What manifest.cpp's delta_table_json() writes."""
    refs_set = {k: v for k, v in sets["refs"].items() if base["refs"].get(k) != v}
    refs_removed = [k for k in base["refs"] if k not in sets["refs"]]
    kept = 0
    while kept < min(len(base["bundles"]), len(sets["bundles"])) and base["bundles"][kept] == sets["bundles"][kept]:
        kept += 1
    tips, old_tips = sets.get("preserved", {}), base.get("preserved", {})
    out = {"base": base_ref, "depth": depth, "bundles_kept": kept}
    for key, value in (("refs_set", refs_set), ("refs_removed", refs_removed),
                       ("bundles_added", sets["bundles"][kept:]),
                       ("preserved_set", {k: v for k, v in tips.items() if old_tips.get(k) != v}),
                       ("preserved_removed", [k for k in old_tips if k not in tips])):
        if value:
            out[key] = value
    if sets.get("shallow", []) != base.get("shallow", []):
        out["shallow"] = sets.get("shallow", [])
    return out


def replay(nights: list[dict], rule: str, depth_max: int, ratio: float) -> tuple[int, int]:
    """(table bytes stored over nights[1:], most tables one read needs) under `rule`."""
    ref, size = encoded(full_table(nights[0]), len(nights[0]["refs"]))
    chain = [(ref, size, nights[0])]  # top first, the full table last
    total, deepest = 0, 1
    for sets in nights[1:]:
        top_sets = chain[0][2]
        if sets == top_sets:
            continue
        if rule == "chain":
            delta, dsize = encoded(delta_table(top_sets, chain[0][0], len(chain), sets), len(sets["refs"]))
            use = len(chain) <= depth_max and sum(c[1] for c in chain[:-1]) + dsize <= ratio * chain[-1][1]
        else:  # star: everything since the full table, against it
            full_ref, full_size, full_sets = chain[-1]
            delta, dsize = encoded(delta_table(full_sets, full_ref, 1, sets), len(sets["refs"]))
            use = dsize <= ratio * full_size
            if use:
                chain = [chain[-1]]
        if use:
            chain.insert(0, (delta, dsize, sets))
            total += dsize
        else:
            ref, size = encoded(full_table(sets), len(sets["refs"]))
            chain = [(ref, size, sets)]
            total += size
        deepest = max(deepest, len(chain))
    return total, deepest


def simulate(ws: harness.Workspace, minimal_total: int, other_bytes: int) -> None:
    """Replay the chain of `ws` through other rules for tables; `other_bytes`
    is what the binary stored besides tables (bundles, manifests, latest.json)."""
    keys = sorted(k for k in ws.store.keys("repos/") if "/manifests/" in k)
    nights = []
    for key in keys:
        m = ws.store.manifest(key)
        nights.append({k: m[k] for k in ("refs", "bundles", "preserved", "shallow") if k in m})
    n = len(nights) - 1
    stored = [k for k in ws.store.keys("repos/") if "/tables/" in k]
    same = 0
    for key in stored:
        data = ws.store.read(key)
        raw = gzip.decompress(data)
        same += canonical(json.loads(raw)) == raw and len(gzip.compress(raw, compresslevel=9, mtime=0)) == len(data)
    print(f"the replay encodes {same} of the {len(stored)} stored tables to the binary's bytes and sizes")
    print(f"rules for tables replayed over the candidate's {n} nights (its bundles, manifests and latest.json: "
          f"{other_bytes:,} B; tables as each rule would store them):")
    rules = [("chain", 16, 1.0), ("chain", 32, 2.0), ("chain", 48, 3.0), ("chain", 64, 4.0),
             ("star", 0, 0.25), ("star", 0, 0.5), ("star", 0, 1.0)]
    for rule, depth_max, ratio in rules:
        tables, deepest = replay(nights, rule, depth_max, ratio)
        name = f"chain {depth_max}/{ratio:g}" if rule == "chain" else f"star {ratio:g}"
        print(f"  {name:12}: tables {tables:,} B ({tables / n:,.0f} B a night), at most {deepest} tables a read; "
              f"amortised {(other_bytes + tables) / minimal_total:.3f}x minimal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the candidate snapshotter")
    parser.add_argument("--old", help="the baseline snapshotter (an earlier build, such as main's)")
    parser.add_argument("--nights", type=int, default=40)
    parser.add_argument("--commits", type=int, default=3_400, help="commits on main in the generated history")
    parser.add_argument("--shape", choices=["text", "libgit2"], default="text",
                        help="incremental_bench.generate()'s shape (text: the round-28 figures)")
    parser.add_argument("--server-repack", action="store_true",
                        help="git repack -adb on the server after each night (without it, the night's objects "
                        "stay loose beside a bitmapped pack, and git 2.39 then sends them whole: see bench/README)")
    parser.add_argument("--server-threads", type=int, default=0,
                        help="the server's pack.threads (0: git's default, one per core). git splits its delta "
                        "search between threads and steals work between them, so on some nights a tree loses "
                        "its base (see bench/README, round 31); 1 makes the server's packs the same every run")
    parser.add_argument("--engine", choices=("stream", "cli"), default="stream")
    args = parser.parse_args()
    os.environ["SNAPSHOTTER_BIN"] = str(Path(args.bin).resolve())
    harness.setup_module()
    try:
        run(args)
    finally:
        harness.teardown_module()


def run(args) -> None:
    binaries = {"candidate": str(Path(args.bin).resolve())}
    if args.old:
        binaries["baseline"] = str(Path(args.old).resolve())
    root = harness.mkdtemp("chain-bench-")
    serve = root / "serve"
    serve.mkdir()
    bare = serve / "lib.git"
    generate(bare, args.commits, 60, 210, 30, args.shape)
    if args.server_threads:
        harness.git("config", "pack.threads", str(args.server_threads), git_dir=bare)
    refs = len(harness.git("for-each-ref", git_dir=bare).splitlines())
    daemon = harness.GitDaemon(serve)
    url = daemon.url_for("lib.git")
    repo = {"url": url, "name": "bench/lib"}
    spaces = {name: harness.Workspace(f"chain-{name}-") for name in binaries}
    for name, binary in binaries.items():
        r = snapshot(binary, spaces[name], repo, args.nights, args.engine)
        print(f"{name}: full snapshot, kind={r.get('kind')}, {sum(sizes(spaces[name]).values()):,} B under repos/")
    mirror = root / "mirror.git"
    harness.git("clone", "-q", "--mirror", url, str(mirror))
    totals = {name: dict.fromkeys(KINDS, 0) for name in binaries}
    minimal_total = 0
    worst = dict.fromkeys(binaries, 0.0)
    print(f"repository: {refs} refs; {args.nights} ordinary nights (8 commits on main, 3 on branch-01, "
          f"branch-02 reset by 3), {args.engine} engine, file:// stores"
          f"{', server repacked each night' if args.server_repack else ''}"
          f"{f', server pack.threads={args.server_threads}' if args.server_threads else ''}")
    for n in range(1, args.nights + 1):
        night(bare, n)
        if args.server_repack:  # a host's housekeeping after the push: new objects deltified on disk
            harness.git("repack", "-adbq", git_dir=bare)
        minimal = harness.minimal_bundle(mirror, url, root)
        minimal_total += minimal
        line = [f"night {n:3}: minimal {minimal:,} B"]
        for name, binary in binaries.items():  # interleaved, night by night
            before = sizes(spaces[name])
            r = snapshot(binary, spaces[name], repo, args.nights, args.engine)
            if r.get("kind") != "incremental":
                raise SystemExit(f"{name} night {n}: kind {r.get('kind')}, expected incremental")
            got = added(before, sizes(spaces[name]))
            for kind, value in got.items():
                totals[name][kind] += value
            night_total = sum(got.values())
            worst[name] = max(worst[name], night_total / minimal)
            line.append(f"{name} {night_total:,} B = {night_total / minimal:.2f}x "
                        f"(bundle {got['bundles']:,}, manifest {got['manifests']:,}, tables {got['tables']:,}, "
                        f"other {got['other']:+,})")
        print("; ".join(line), flush=True)
    daemon.stop()
    print(f"over {args.nights} nights, minimal bundles {minimal_total:,} B (mean {minimal_total / args.nights:,.0f} B):")
    for name in binaries:
        t = totals[name]
        total = sum(t.values())
        print(f"  {name:9}: {total:,} B (mean {total / args.nights:,.0f} B a night: bundle "
              f"{t['bundles'] / args.nights:,.0f}, manifest {t['manifests'] / args.nights:,.0f}, tables "
              f"{t['tables'] / args.nights:,.0f}, other {t['other'] / args.nights:+,.0f}); amortised "
              f"{total / minimal_total:.3f}x minimal (target <= 1.5x: "
              f"{'met' if total <= 1.5 * minimal_total else 'NOT met'}); worst night {worst[name]:.2f}x")
        print(f"             of which bundles {t['bundles'] / minimal_total:.3f}x minimal, everything else "
              f"(manifests, tables, latest.json) {(total - t['bundles']) / minimal_total:.3f}x minimal")
    t = totals["candidate"]
    simulate(spaces["candidate"], minimal_total, t["bundles"] + t["manifests"] + t["other"])


if __name__ == "__main__":
    main()
