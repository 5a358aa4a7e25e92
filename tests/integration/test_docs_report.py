"""docs/IMPLEMENTATION_REPORT.md and the Makefile stay true.

Every `make <target>` the report names is a Makefile target, every file path
it names exists, every payload key it names (`options.x`, `storage.x`) is in
docs/job.schema.json. `make help` (the default goal) lists every target with
one line each, and plain `make` runs no apt-get. No servers, a second.
"""

import json
import re
import subprocess
import unittest

import harness

ROOT = harness.SOURCE_ROOT
REPORT = ROOT / "docs" / "IMPLEMENTATION_REPORT.md"


def makefile_targets() -> set[str]:
    return set(re.findall(r"(?m)^([a-z][a-z-]*):", (ROOT / "Makefile").read_text()))


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def schema_keys(section: str) -> set[str]:
    schema = json.loads((ROOT / "docs" / "job.schema.json").read_text())
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and section in props:
                sub = props[section]
                sub = schema.get("$defs", {}).get(sub["$ref"].rsplit("/", 1)[1], sub) if "$ref" in sub else sub
                found.update(sub.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


class ImplementationReport(unittest.TestCase):
    text = REPORT.read_text()

    def test_every_make_target_it_names_exists(self):
        named = set()
        for span in backticked(self.text):
            for m in re.finditer(r"\bmake ([a-z][a-z-]*)", span):
                named.add(m.group(1))
        self.assertGreaterEqual(len(named), 10, named)
        self.assertEqual(named - makefile_targets(), set())

    def test_every_path_it_names_exists(self):
        paths = [s for s in backticked(self.text)
                 if re.fullmatch(r"[\w.-]+(/[\w.-]+)+/?|[\w-]+\.(md|py|sh|hpp|cpp|json|yml)|Dockerfile|Makefile|"
                                 r"\.clang-(format|tidy)", s)]
        self.assertGreaterEqual(len(paths), 15, paths)
        missing = [p for p in paths if not (ROOT / p).exists()]
        self.assertEqual(missing, [])

    def test_every_payload_key_it_names_is_in_the_schema(self):
        keys = {(m.group(1), m.group(2)) for s in backticked(self.text)
                for m in re.finditer(r"\b(options|storage)\.(\w+)", s)}
        self.assertIn(("options", "cache_dir"), keys)
        unknown = {f"{a}.{b}" for a, b in keys if b not in schema_keys(a)}
        self.assertEqual(unknown, set())

    def test_the_checks_fail_on_a_wrong_name(self):
        self.assertNotIn("no-such-target", makefile_targets())
        self.assertNotIn("no_such_key", schema_keys("options"))
        self.assertIn("cache_dir", schema_keys("options"))


class Makefile(unittest.TestCase):
    def make(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_help_is_the_default_and_lists_every_target_once(self):
        plain, helped = self.make(), self.make("help")
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(plain.stdout, helped.stdout)
        listed = re.findall(r"(?m)^  ([a-z][a-z-]*) +\S", plain.stdout)
        self.assertEqual(sorted(listed), sorted(makefile_targets()))
        self.assertEqual(len(listed), len(set(listed)))
        for target in ("init", "build", "fmt", "fmt-check", "lint", "type", "test", "run", "docker-build",
                       "docker-run", "bench", "fuzz", "sanitize", "install", "clean"):
            self.assertIn(target, listed)

    def test_plain_make_runs_no_apt_get(self):
        dry = self.make("-n")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertNotIn("apt-get", dry.stdout)
        self.assertNotIn("install-deps", dry.stdout)

    def test_type_never_builds(self):
        dry = self.make("-n", "type", "lint")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertNotIn("cmake --build", dry.stdout)


if __name__ == "__main__":
    unittest.main()
