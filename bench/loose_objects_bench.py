"""A kept mirror's nights with many loose objects (issue 21, rounds 30-31).

Nothing packs the cli engine's kept mirror by git's own accord (gc.auto is
0). Up to round 30 an ordinary night's fetch left its few dozen objects
loose, so loose objects piled up, and every night walks the object store
twice to bound what `git fetch` added (`options.max_pack_bytes`); since
round 31 a fetch keeps its pack and the snapshotter repacks geometrically
past 16 packs or 256 loose objects (git/object_store.hpp). For each count
given, this makes a full snapshot of bench/cli_bench.py's libgit2-sized
repository (kept by `cli_bench.py --repos DIR`), writes that many loose
objects of 200 random bytes into the mirror (unreachable, as a year of
nights' objects would be loose but reachable: the walks and git's lookups
see loose files alike; with --settle written back to disk, as a year-old
mirror's are), and times --nights ordinary nights, printing each night's
wall time, repack time (the manifest's timings_ms, null when none) and
bundle size, and the objects left (`git count-objects`).

    python3 bench/loose_objects_bench.py --bin build/snapshotter \
        --repos /tmp/cli-bench-repos 0 16000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cli_bench as cb  # noqa: E402
from cli_bench import harness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="build/snapshotter")
    parser.add_argument("--repos", required=True, help="cli_bench.py's --repos directory (lib-3300c-7m.git)")
    parser.add_argument("--nights", type=int, default=5)
    parser.add_argument("--settle", action="store_true",
                        help="`sync` after writing the loose objects, so they are on disk as a year-old "
                             "mirror's are (unlinking them then costs a discard each on a disk mounted "
                             "with -o discard)")
    parser.add_argument("counts", type=int, nargs="+", help="loose objects to add to the mirror")
    args = parser.parse_args()
    binary = str(Path(args.bin).resolve())
    os.environ["SNAPSHOTTER_BIN"] = binary
    harness.setup_module()
    try:
        for count in args.counts:
            serve = harness.mkdtemp("loose-")
            shutil.copytree(Path(args.repos) / "lib-3300c-7m.git", serve / "lib.git", symlinks=True)
            with harness.GitDaemon(serve) as daemon:
                snap = cb.Snapshotter("bench/lib", daemon.url_for("lib.git"), binary=binary)
                snap.snapshot()
                mirror = next(p for p in (snap.ws.root / "cache" / "mirrors").glob("*.git"))
                junk = harness.mkdtemp("junk-")
                paths = []
                for i in range(count):
                    (junk / str(i)).write_bytes(os.urandom(200))
                    paths.append(str(junk / str(i)))
                if paths:
                    subprocess.run(["git", "hash-object", "-w", "--stdin-paths"], cwd=mirror, env=harness.git_env(),
                                   input="\n".join(paths).encode(), check=True, stdout=subprocess.DEVNULL)
                if args.settle:
                    subprocess.run(["sync"], check=True)
                times, sizes, repacks = [], [], []
                for night in range(1, args.nights + 1):
                    cb.night(serve / "lib.git", night)
                    secs, res = snap.snapshot()
                    times.append(secs)
                    sizes.append(res.get("bundle", {}).get("size"))
                    timings = snap.ws.manifest(snap.repo["name"], res["snapshot_id"]).get("timings_ms", {})
                    repacks.append(timings.get("repack"))
                left = " ".join(harness.git("count-objects", "-v", git_dir=mirror).split("\n")).strip()
                print(f"{count} loose objects added: nights {' '.join(f'{t:.3f}' for t in times)} s, "
                      f"median {statistics.median(times):.3f} s; repack ms {repacks}; bundles {sizes} B; "
                      f"after: {left}; "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        harness.cleanup_all()


if __name__ == "__main__":
    main()
