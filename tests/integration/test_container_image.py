"""The container image: checked statically always, built when asked.

The Dockerfile is parsed and its two stages are checked (base images from
build arguments, no `# syntax=` line that would make BuildKit pull a frontend,
no locked cache mount (Debian 12's buildah can leave the lock held), every RUN
calls only the install scripts, cmake, or groupadd + useradd of a named uid
and gid 10001; a non-root USER; the binary as ENTRYPOINT; nothing secret or
from the build context in the runtime stage), and the scripts its stages run
are run on this host (they are idempotent). Then every shared library the
built binary needs (ldd) must come from a package the runtime script installs
or one of their dependencies (dpkg -S, dpkg-query), so a runtime package
missing from the script fails here instead of in production.

A real build takes minutes (a debootstrap base image, then a compile), more
than the suite's time budget allows: with SNAPSHOTTER_IMAGE_TEST=1 and a
usable engine (podman, buildah + podman to run, or docker with its daemon),
BuiltImage builds it with scripts/build-image.sh and runs, as uid 10001, a
snapshot of a local repository and the restore of docs/AWS_RUNBOOK.md
(SNAPSHOTTER_IMAGE=name tests an image built already instead).
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import unittest
from pathlib import Path

import harness

ROOT = harness.SOURCE_ROOT
SCRIPTS = {"build": "install-build-deps.sh", "runtime": "install-runtime-deps.sh"}
BUILD_TOOLS = re.compile(r"^(g\+\+|gcc|clang.*|cmake|ninja-build|make|pkg-config|.*-dev)$")


# --------------------------------------------------------------------------
# A small Dockerfile reader
# --------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments and blank lines dropped,
    backslash continuations joined."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    if pending:
        raise AssertionError(f"Dockerfile ends inside a continued line: {pending!r}")
    return out


def global_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """The ARGs before the first FROM, name -> default ("" without one)."""
    out = {}
    for instr, args in instructions:
        if instr == "FROM":
            break
        if instr != "ARG":
            raise AssertionError(f"{instr} before the first FROM")
        name, _, default = args.partition("=")
        out[name] = default
    return out


def stages(instructions: list[tuple[str, str]]) -> list[dict]:
    """The stages: {"from": image, "name": alias or None, "body": [(instr, args)]};
    a FROM's ${ARG} is replaced by the ARG's default."""
    out: list[dict] = []
    defaults = global_args(instructions)
    for instr, args in instructions:
        if instr == "ARG" and not out:
            continue
        if instr == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], args).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            if len(words) not in (1, 3) or (len(words) == 3 and name is None):
                raise AssertionError(f"unexpected FROM {args!r}")
            out.append({"from": words[0], "name": name, "body": []})
        elif not out:
            raise AssertionError(f"{instr} before the first FROM")
        else:
            out[-1]["body"].append((instr, args))
    return out


def run_mounts_and_command(args: str) -> tuple[list[dict], str]:
    """A RUN's --mount options (as dicts) and its shell command."""
    mounts, rest = [], args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, _, value = flag[2:].partition("=")
        if name != "mount":
            raise AssertionError(f"unexpected RUN option {flag!r}")
        mounts.append(dict(item.partition("=")[::2] for item in value.split(",")))
    return mounts, rest


def shell_commands(command: str) -> list[list[str]]:
    """The commands of a `a && b && c` chain, each split into words; any other
    shell syntax (pipes, ;, ||, redirections, substitutions) is refused."""
    if re.search(r"[;|<>`$&]", command.replace("&&", " ")):
        raise AssertionError(f"RUN uses shell syntax beyond '&&': {command!r}")
    return [shlex.split(part) for part in command.split("&&")]


# --------------------------------------------------------------------------
# Packages and libraries on this host
# --------------------------------------------------------------------------

def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, **kw)


def script_packages(script: str, *args: str) -> list[str]:
    p = run(["bash", str(ROOT / "scripts" / script), *args, "--print-packages"])
    if p.returncode != 0:
        raise AssertionError(f"{script} --print-packages failed: {p.stderr}")
    return p.stdout.split()


def installed_packages() -> dict[str, list[str]]:
    """Every installed package -> the names it depends on (Depends and
    Pre-Depends, every alternative), from one dpkg-query call."""
    p = run(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\t${Depends}, ${Pre-Depends}\n"])
    if p.returncode != 0:
        raise AssertionError(f"dpkg-query -W failed: {p.stderr}")
    out = {}
    for line in p.stdout.splitlines():
        package, status, depends = line.split("\t")
        if not status.startswith("ii"):
            continue
        names = [alt.strip().split(" ")[0].split(":")[0] for clause in depends.split(",")
                 for alt in clause.split("|")]
        out[package] = [n for n in names if n]
    return out


def installed_dependencies(packages: list[str]) -> set[str]:
    """`packages` and everything they depend on, as installed on this host; of
    alternatives, the installed ones count."""
    graph = installed_packages()
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        package = todo.pop()
        if package in seen or package not in graph:
            continue  # not installed (or a virtual name): provides nothing here
        seen.add(package)
        todo.extend(graph[package])
    return seen


def library_paths(binary: str) -> dict[str, str]:
    """soname -> resolved path of every shared library `binary` loads (ldd)."""
    p = run(["ldd", binary])
    if p.returncode != 0:
        raise AssertionError(f"ldd {binary} failed: {p.stderr}")
    libs = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+) \(0x", line)
        if m:
            libs[m.group(1)] = m.group(2)
        elif "not found" in line:
            raise AssertionError(f"ldd: a library of {binary} is not found here: {line.strip()}")
    return libs


def path_spellings(path: str) -> list[str]:
    """`path` as given, resolved, and with or without the /usr prefix (Debian 12
    is merged-/usr and dpkg knows only the spelling the package shipped)."""
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):
        candidates.append(c[4:] if c.startswith("/usr/") else "/usr" + c)
    return list(dict.fromkeys(candidates))


def owning_packages(paths: list[str]) -> dict[str, str]:
    """path -> the package that ships it, for each of `paths` dpkg knows (one
    dpkg-query -S call for all their spellings)."""
    spellings = {s: path for path in paths for s in path_spellings(path)}
    p = run(["dpkg-query", "-S", *spellings])  # exits 1 when some spelling is unknown
    owners = {}
    for line in p.stdout.splitlines():
        packages, _, owned = line.partition(": ")
        if owned in spellings:
            owners[spellings[owned]] = packages.split(",")[0].split(":")[0].strip()
    return owners


def unprovided_libraries(binary: str, packages: list[str]) -> dict[str, str]:
    """soname -> owning package, for every library of `binary` that neither
    `packages` nor their dependencies provide."""
    provided = installed_dependencies(packages)
    libraries = library_paths(binary)
    owners = owning_packages(list(libraries.values()))
    return {soname: owners.get(path, f"no package owns {path}") for soname, path in libraries.items()
            if owners.get(path) not in provided}


class ContainerImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = (ROOT / "Dockerfile").read_text()
        cls.stages = stages(dockerfile_instructions(cls.text))

    def stage(self, name: str) -> dict:
        found = [s for s in self.stages if s["name"] == name]
        self.assertEqual(len(found), 1, f"one stage named {name}")
        return found[0]

    def cmake_commands(self) -> list[list[str]]:
        """The cmake commands of the build stage's RUNs after the first."""
        return [c for _, cs in self.runs(self.stage("build"))[1:] for c in cs]

    def install_prefix(self) -> str:
        install = [c for c in self.cmake_commands() if c[1:2] == ["--install"]]
        self.assertEqual(len(install), 1, "one cmake --install")
        return install[0][install[0].index("--prefix") + 1]

    def runs(self, stage: dict) -> list[tuple[list[dict], list[list[str]]]]:
        out = []
        for instr, args in stage["body"]:
            if instr == "RUN":
                mounts, command = run_mounts_and_command(args)
                out.append((mounts, shell_commands(command)))
        return out

    def check_script_run(self, mounts: list[dict], words: list[str], script: str) -> None:
        """`bash <mounted scripts dir>/<script>` with the scripts bind-mounted, not copied."""
        binds = [m for m in mounts if m.get("type") == "bind"]
        self.assertEqual(len(binds), 1, f"{words}: the scripts come from one bind mount")
        self.assertEqual(binds[0].get("source"), "scripts")
        self.assertEqual(words, ["bash", f"{binds[0]['target']}/{script}"])
        self.assertTrue((ROOT / "scripts" / script).is_file())

    def test_two_stages_on_debian_12(self):
        self.assertEqual([(s["from"], s["name"]) for s in self.stages],
                         [("debian:12", "build"), ("debian:12-slim", "runtime")])
        self.assertEqual(global_args(dockerfile_instructions(self.text)),
                         {"BUILD_IMAGE": "debian:12", "BASE_IMAGE": "debian:12-slim"})
        self.assertIn("FROM ${BASE_IMAGE} AS runtime", self.text, "the runtime base is a build argument")
        # Docker 23+ has RUN --mount built in; `# syntax=` makes BuildKit pull a frontend image.
        self.assertNotRegex(self.text, r"(?im)^#\s*syntax\s*=", "no frontend pull")

    def test_cache_mounts_work_with_debian_12_buildah(self):
        for stage in self.stages:
            for mounts, _ in self.runs(stage):
                caches = [m for m in mounts if m.get("type") == "cache"]
                # buildah 1.28 (Debian 12) can leave a locked cache's lock held: the next RUN that
                # mounts that cache hangs for ever (reported with two per RUN, seen once with one).
                self.assertEqual([m for m in caches if m.get("sharing") == "locked"], [], mounts)
                # docker-clean in the base image deletes downloaded packages: such a cache holds nothing.
                self.assertNotIn("/var/cache/apt", [m.get("target") for m in caches], mounts)

    def test_build_stage_runs_only_the_build_script_and_cmake(self):
        runs = self.runs(self.stage("build"))
        self.assertGreaterEqual(len(runs), 2)
        mounts, commands = runs[0]
        self.assertEqual(len(commands), 1)
        self.check_script_run(mounts, commands[0], SCRIPTS["build"])
        cmake = self.cmake_commands()
        for words in cmake:
            self.assertEqual(words[0], "cmake", f"a build-stage RUN does something else: {words}")
        steps = [w[1] for w in cmake]
        self.assertEqual(steps, ["-S", "--build", "--install"], cmake)
        configure = cmake[0]
        self.assertIn("-DSNAPSHOTTER_TESTS=OFF", configure)
        self.assertIn("Ninja", configure)
        build_dir = configure[configure.index("-B") + 1]
        self.assertEqual(cmake[1][2], build_dir)
        self.assertEqual(cmake[2][2], build_dir)
        self.assertTrue(self.install_prefix().startswith("/"))
        # The build stage takes only what the build needs from the context.
        copies = [args for instr, args in self.stage("build")["body"] if instr in ("COPY", "ADD")]
        self.assertEqual(copies, ["CMakeLists.txt ./", "src ./src"])

    def test_runtime_stage_installs_with_the_runtime_script_and_runs_as_non_root(self):
        stage = self.stage("runtime")
        runs = self.runs(stage)
        self.assertEqual(len(runs), 2, "the runtime script, then the group and the user")
        mounts, commands = runs[0]
        self.assertEqual(len(commands), 1)
        self.check_script_run(mounts, commands[0], SCRIPTS["runtime"])
        (groupadd, useradd), = [cs for _, cs in runs[1:]]
        self.assertEqual(groupadd[0], "groupadd", groupadd)
        self.assertEqual(useradd[0], "useradd", useradd)
        uid = useradd[useradd.index("--uid") + 1]
        gid = groupadd[groupadd.index("--gid") + 1]
        self.assertEqual((uid, gid), ("10001", "10001"))
        self.assertEqual(useradd[useradd.index("--gid") + 1], gid, "the user's primary group is the named group")
        self.assertNotIn("--user-group", useradd, "a group of its own would get a system gid, not 10001")
        self.assertEqual(groupadd[-1], useradd[-1], "the group is named after the user")
        users = [args for instr, args in stage["body"] if instr == "USER"]
        self.assertEqual(users, [f"{uid}:{gid}"], "USER is the created user and group, by number")
        # Nothing from the build context: only the binary, from the build stage.
        copies = [args.split() for instr, args in stage["body"] if instr in ("COPY", "ADD")]
        self.assertEqual(len(copies), 1, copies)
        frm, source, dest = copies[0]
        self.assertEqual(frm, "--from=build")
        self.assertEqual(source, f"{self.install_prefix()}/bin/snapshotter", "the path cmake --install writes")
        entrypoint = [args for instr, args in stage["body"] if instr == "ENTRYPOINT"]
        self.assertEqual(entrypoint, [json.dumps([dest])], "exec-form ENTRYPOINT of the copied binary")
        self.assertEqual([i for i, _ in stage["body"]][-1], "ENTRYPOINT")

    def test_no_secrets_in_any_layer(self):
        for stage in self.stages:
            for instr, args in stage["body"]:
                if instr in ("ENV", "ARG", "LABEL"):
                    self.assertNotRegex(args.upper(), r"TOKEN|SECRET|PASSWORD|PASSWD|AWS_|KEY",
                                        f"{instr} {args}: secrets belong in the task's environment")
                self.assertNotEqual(instr, "ADD", "ADD can fetch URLs; use COPY")
        ignore = (ROOT / ".dockerignore").read_text().split()
        self.assertEqual(ignore[ignore.index("*")], "*", ".dockerignore starts from excluding everything")
        allowed = {line for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
        self.assertEqual(allowed, {"!CMakeLists.txt", "!src/", "!scripts/"})

    def test_runtime_script_installs_no_build_tools(self):
        runtime = script_packages(SCRIPTS["runtime"])
        self.assertTrue({"git", "ca-certificates", "openssh-client"} <= set(runtime), runtime)
        self.assertEqual([p for p in runtime if BUILD_TOOLS.match(p)], [])
        build = script_packages(SCRIPTS["build"])
        self.assertTrue({"g++", "cmake", "ninja-build"} <= set(build), build)
        self.assertTrue(set(build) < set(script_packages(SCRIPTS["build"], "--dev")))


@unittest.skipUnless(shutil.which("dpkg-query") and shutil.which("ldd") and shutil.which("apt-get"),
                     "needs a Debian host (dpkg-query, ldd, apt-get)")
class RuntimePackagesOnThisHost(unittest.TestCase):
    def test_install_scripts_run_here_and_are_idempotent(self):
        for script in (SCRIPTS["runtime"], SCRIPTS["build"]):
            for attempt in (1, 2):
                p = run(["bash", str(ROOT / "scripts" / script)])
                self.assertEqual(p.returncode, 0, f"{script} (run {attempt}): {p.stderr}")
            self.assertIn("already installed", p.stderr, f"{script}: the second run installs nothing")

    def test_runtime_packages_provide_every_library_of_the_binary(self):
        p = run(["bash", str(ROOT / "scripts" / SCRIPTS["runtime"])])
        self.assertEqual(p.returncode, 0, p.stderr)
        binary = harness.snapshotter_bin()
        packages = script_packages(SCRIPTS["runtime"])
        libraries = library_paths(binary)
        sanitizers = harness.sanitizer_runtimes(binary)
        if sanitizers:
            # scripts/sanitize.sh runs the suite on an instrumented build; the image ships a plain one.
            self.skipTest(f"the binary under test is a sanitizer build ({', '.join(sanitizers)})")
        self.assertLessEqual({"libcurl.so.4", "libspdlog.so.1.10", "libfmt.so.9", "libdeflate.so.0"}, set(libraries))
        self.assertEqual(unprovided_libraries(binary, packages), {})
        # The check can fail: without the spdlog and fmt packages their libraries are unprovided.
        reduced = [p for p in packages if p not in ("libspdlog1.10", "libfmt9")]
        self.assertLessEqual({"libspdlog.so.1.10", "libfmt.so.9"}, set(unprovided_libraries(binary, reduced)))

    def test_git_and_ssh_come_from_runtime_packages(self):
        provided = installed_dependencies(script_packages(SCRIPTS["runtime"]))
        for tool in ("git", "ssh"):
            path = shutil.which(tool)
            self.assertIsNotNone(path, f"{tool} on PATH after the runtime script")
            self.assertIn(owning_packages([path]).get(path), provided, tool)


# --------------------------------------------------------------------------
# The real image (SNAPSHOTTER_IMAGE_TEST=1)
# --------------------------------------------------------------------------

def picked_engine(purpose: str) -> str | None:
    """The engine scripts/lib/engine.sh picks (honouring $ENGINE), or None."""
    p = run(["bash", "-c", f"source scripts/lib/engine.sh && engine_pick {purpose} && echo $ENGINE"], cwd=ROOT)
    return (p.stdout.strip() or None) if p.returncode == 0 else None


class ImageRunner:
    """Runs the image with podman or docker, or, with ISOLATION=chroot (a
    machine whose OCI runtime cannot start containers), with buildah run."""

    def __init__(self, engine: str, image: str):
        self.engine, self.image = engine, image

    def user(self) -> str:
        if self.engine == "buildah":
            p = run(["buildah", "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", self.image])
        else:
            p = run([self.engine, "image", "inspect", "--format", "{{.Config.User}}", self.image])
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def __call__(self, command: list[str], volumes=(), env=None, user=None, entrypoint=None,
                 read_only=False) -> subprocess.CompletedProcess:
        env = env or {}
        if self.engine == "buildah":
            assert not read_only, "buildah run has no read-only root"
            ctr = run(["buildah", "from", "--pull-never", self.image])
            assert ctr.returncode == 0, ctr.stderr
            name = ctr.stdout.strip()
            try:
                argv = ["buildah", "run", "--isolation", "chroot"]
                argv += [f"--volume={v}" for v in volumes] + [f"--env={k}={v}" for k, v in env.items()]
                argv += [f"--user={user}"] if user else []
                return run(argv + [name, "--", entrypoint or "/usr/local/bin/snapshotter", *command])
            finally:
                run(["buildah", "rm", name])
        argv = [self.engine, "run", "--rm"] + (["--read-only"] if read_only else [])
        argv += [f"--volume={v}" for v in volumes] + [f"--env={k}={v}" for k, v in env.items()]
        argv += [f"--user={user}"] if user else []
        argv += [f"--entrypoint={entrypoint}"] if entrypoint else []
        return run(argv + [self.image, *command])


@unittest.skipUnless(os.environ.get("SNAPSHOTTER_IMAGE_TEST") == "1",
                     "the real image build takes minutes: set SNAPSHOTTER_IMAGE_TEST=1 (and ENGINE, ISOLATION)")
class BuiltImage(unittest.TestCase):
    IMAGE = "snapshotter:itest"

    @classmethod
    def setUpClass(cls):
        harness.setup_module()
        engine = picked_engine("build")
        if engine is None:
            raise unittest.SkipTest("no usable container engine (podman, buildah, docker with its daemon)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: the files the image's uid 10001 writes are chowned here")
        if os.environ.get("SNAPSHOTTER_IMAGE"):
            cls.IMAGE = os.environ["SNAPSHOTTER_IMAGE"]  # built already: test it as it is
        else:
            p = subprocess.run(["bash", "scripts/build-image.sh"], cwd=ROOT, stdin=subprocess.DEVNULL,
                               env={**os.environ, "IMAGE": cls.IMAGE, "ENGINE": engine}, timeout=3600)
            if p.returncode != 0:
                raise AssertionError(f"scripts/build-image.sh failed with {p.returncode}")
        runner = "buildah" if os.environ.get("ISOLATION") == "chroot" else picked_engine("run")
        if runner is None:
            raise unittest.SkipTest("built, but nothing here runs containers (podman or docker)")
        cls.run_image = ImageRunner(runner, cls.IMAGE)
        os.chmod(harness.tmp_root(), 0o755)
        cls.root = harness.mkdtemp("image-")
        os.chmod(cls.root, 0o755)
        cls.upstream = harness.build_rich(cls.root, "app")
        cls.storage = cls.root / "snapshots"
        cls.storage.mkdir()
        subprocess.run(["chown", "-R", "10001:10001", str(cls.upstream.bare), str(cls.storage)], check=True)

    @classmethod
    def tearDownClass(cls):
        harness.teardown_module()

    def snapshotter(self, payload: dict, extra_volumes=(), **kw) -> tuple[subprocess.CompletedProcess, dict]:
        volumes = [f"{self.upstream.bare}:/src/app.git", f"{self.storage}:/snapshots", *extra_volumes]
        p = self.run_image([], volumes=volumes,
                           env={"SNAPSHOTTER_JOB_JSON": json.dumps(payload)}, **kw)
        try:
            return p, json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"not one JSON line (rc {p.returncode}): {p.stdout!r}\n{p.stderr[-3000:]}")

    def test_runs_as_the_named_uid_and_gid_10001(self):
        self.assertEqual(self.run_image.user(), "10001:10001")
        p = self.run_image(["-c", "id -un; id -u; id -gn; id -g; stat -c %u:%g \"$HOME\""], entrypoint="/bin/sh")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["snapshotter", "10001", "snapshotter", "10001", "10001:10001"])

    def test_snapshot_then_the_runbooks_restore(self):
        storage = {"url": "file:///snapshots"}
        p, out = self.snapshotter({"version": 1, "action": "snapshot", "storage": storage,
                                   "repositories": [{"url": "/src/app.git", "name": "org/app"}]})
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        snapshot_id = out["result"]["repositories"][0]["snapshot_id"]
        # docs/AWS_RUNBOOK.md section 6, step 3: as the operator, --user "$(id -u):$(id -g)".
        restore = harness.mkdtemp("restore-")
        payload = {"version": 1, "action": "restore", "storage": storage,
                   "restore": {"repository": "org/app", "snapshot": snapshot_id, "target": "/restore/org-app.git"}}
        p = self.run_image([], volumes=[f"{self.storage}:/snapshots", f"{restore}:/restore"],
                           env={"SNAPSHOTTER_JOB_JSON": json.dumps(payload)}, user=f"{os.getuid()}:{os.getgid()}")
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        restored = restore / "org-app.git"
        self.assertEqual(harness.refs_of(restored), self.upstream.refs())
        # Steps 4 and 5 on the host.
        harness.git("-C", str(restored), "log", "--oneline", "-5", "main")
        remote = harness.mkdtemp("remote-") / "app.git"
        harness.git("init", "-q", "--bare", str(remote))
        harness.git("-C", str(restored), "push", "-q", "--mirror", str(remote))
        self.assertEqual(harness.refs_of(remote), self.upstream.refs())

    def test_read_only_root_without_cache_dir_names_the_key(self):
        payload = {"version": 1, "action": "snapshot", "storage": {"url": "file:///snapshots"},
                   "repositories": [{"url": "/src/app.git", "name": "org/ro"}],
                   "options": {"engine": "cli", "retries": 0}}
        if self.run_image.engine == "buildah":  # no read-only root there: a read-only HOME instead
            home = harness.mkdtemp("ro-home-")
            os.chmod(home, 0o755)
            p, out = self.snapshotter(payload, extra_volumes=[f"{home}:/home/snapshotter:ro"])
        else:
            p, out = self.snapshotter(payload, read_only=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("options.cache_dir", json.dumps(out))


if __name__ == "__main__":
    unittest.main()
