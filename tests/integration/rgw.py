"""Ceph's RADOS Gateway as a second, real S3 server for the integration tests.

`RgwCluster` builds a throw-away single-node Ceph cluster on 127.0.0.1 from
Debian's packages (ceph-mon ceph-osd ceph-mgr radosgw ceph-common): one mon,
one mgr, one memstore OSD (objects in RAM), radosgw with the beast frontend,
`auth none` with crc messenger modes, pools of size 1, and every file (config,
data, sockets, pid files, logs) under one temporary directory. It comes up in
about 15 s (FIELD-NOTES: "A real S3 server: Ceph RGW"), so a test process
starts it once (`rgw_service()`); stop() kills every daemon, by process group,
and removes the directory.

radosgw is configured with the testing KMS backend (key `KMS_KEY_ID`), SSE
accepted over plain HTTP, an S3 user with the s3harness keys, so that
`RgwService` can put s3harness's StrictSigV4Front in front of it: the same
request log, fault injection and duplicate-header checks as for moto, and
radosgw checks every signature again itself.

`restart_gateway()` stops radosgw alone and starts it again (memstore keeps
the data in the OSD), as a rolling deploy of a gateway would.
"""

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import s3harness

KMS_KEY_ID = "snapshotter-test-key"
KMS_KEY = base64.b64encode(bytes(range(32))).decode()
DAEMONS = ("ceph-mon", "ceph-mgr", "ceph-osd", "radosgw")
START_TIMEOUT_S = 120


def missing_tools():
    """The Ceph commands this harness needs that are not installed."""
    return [t for t in DAEMONS + ("ceph", "monmaptool", "radosgw-admin") if shutil.which(t) is None]


class RgwCluster:
    """One mon, one mgr, one memstore OSD and radosgw, all under `self.root`."""

    def __init__(self):
        self.root = None
        self.procs = {}
        self.mon_port = s3harness.free_port()
        self.port = s3harness.free_port()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def config(self):
        r = self.root
        return "\n".join([
            "[global]",
            "fsid = %s" % self.fsid,
            "mon host = v2:127.0.0.1:%d" % self.mon_port,
            "mon initial members = a",
            "auth cluster required = none",
            "auth service required = none",
            "auth client required = none",
            # radosgw's default `secure` mode cannot be had with auth none: it
            # hangs for 300 s, then exits (FIELD-NOTES).
            "ms mon client mode = crc",
            "ms client mode = crc",
            "ms bind msgr1 = false",
            "osd pool default size = 1",
            "osd pool default min size = 1",
            "osd pool default pg num = 8",
            "osd pool default pgp num = 8",
            "osd pool default pg autoscale mode = off",
            "mon allow pool size one = true",
            "mon allow pool delete = true",
            "mon warn on pool no redundancy = false",
            "osd crush chooseleaf type = 0",
            "osd objectstore = memstore",
            "memstore device bytes = %d" % (6 << 30),
            "run dir = %s/run" % r,
            "pid file = %s/run/$name.pid" % r,
            "admin socket = %s/run/$name.asok" % r,
            "log file = %s/log/$name.log" % r,
            "keyring = %s/keyring" % r,
            "mon data = %s/mon/$cluster-$id" % r,
            "mgr data = %s/mgr/$cluster-$id" % r,
            "osd data = %s/osd/$cluster-$id" % r,
            "crash dir = %s/crash" % r,
            "exporter sock dir = %s/run" % r,
            "mgr initial modules = ",
            "",
            "[client.rgw.a]",
            "rgw frontends = beast endpoint=127.0.0.1:%d" % self.port,
            "rgw data = %s/rgw" % r,
            "rgw crypt require ssl = false",
            "rgw crypt s3 kms backend = testing",
            "rgw crypt s3 kms encryption keys = %s=%s" % (KMS_KEY_ID, KMS_KEY),
            "rgw thread pool size = 64",
            "",
        ])

    def _run(self, *argv, timeout=60):
        result = subprocess.run(["/usr/bin/" + argv[0] if os.path.exists("/usr/bin/" + argv[0]) else argv[0],
                                 "-c", self.path("ceph.conf"), *argv[1:]],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=timeout, start_new_session=True)
        if result.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                                       result.stderr.decode(errors="replace")[-2000:]))
        return result.stdout.decode()

    def _spawn(self, name, *argv):
        log = open(self.path("log", name + ".out"), "ab")
        try:
            self.procs[name] = subprocess.Popen([argv[0], "-c", self.path("ceph.conf"), *argv[1:]],
                                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                start_new_session=True)
        finally:
            log.close()

    def start(self):
        if missing_tools():
            raise RuntimeError("Ceph is not installed: missing %s" % ", ".join(missing_tools()))
        self.root = tempfile.mkdtemp(prefix="rgw-")
        self.fsid = str(uuid.uuid4())
        try:
            for d in ("run", "log", "mon/ceph-a", "mgr/ceph-x", "osd/ceph-0", "rgw", "crash"):
                os.makedirs(self.path(d), exist_ok=True)
            with open(self.path("ceph.conf"), "w") as f:
                f.write(self.config())
            # The mon.
            subprocess.run(["monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                            "[v2:127.0.0.1:%d]" % self.mon_port, self.path("monmap")],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
            self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", self.path("monmap"))
            self._spawn("mon", "ceph-mon", "-f", "-i", "a")
            self._run("ceph", "mon", "enable-msgr2", timeout=60)
            # The mgr, and the OSD: registered, formatted, started.
            self._spawn("mgr", "ceph-mgr", "-f", "-i", "x")
            osd_uuid = str(uuid.uuid4())
            osd_id = self._run("ceph", "osd", "new", osd_uuid).strip()
            self._run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid, timeout=60)
            self._spawn("osd", "ceph-osd", "-f", "-i", osd_id)
            self.wait_osd_up()
            self.start_gateway()
        except BaseException:
            self.stop()
            raise

    def wait_osd_up(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if '"num_up_osds":1' in self._run("ceph", "osd", "stat", "-f", "json").replace(" ", ""):
                return
            self._check_alive("osd")
            time.sleep(0.3)
        raise RuntimeError("the OSD did not come up:\n" + self.log_tail("ceph-osd.0"))

    def start_gateway(self):
        self._spawn("rgw", "radosgw", "-f", "-n", "client.rgw.a")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive("rgw")
            if s3harness.wait_for_port(self.port, timeout=0.5):
                return
        raise RuntimeError("radosgw did not listen on port %d:\n%s" % (self.port, self.log_tail("client.rgw.a")))

    def stop_gateway(self):
        self._kill("rgw")

    def restart_gateway(self):
        self.stop_gateway()
        self.start_gateway()

    def _check_alive(self, name):
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s:\n%s" % (name, proc.returncode, self.log_tail(name + ".out")))

    def log_tail(self, name, lines=40):
        try:
            with open(self.path("log", name if name.endswith(".out") else name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return str(e)

    def _kill(self, name):
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def admin(self, *args):
        """radosgw-admin with this cluster's configuration; its stdout."""
        return self._run("radosgw-admin", "-n", "client.rgw.a", *args)

    def stop(self):
        for name in ("rgw", "osd", "mgr", "mon"):
            self._kill(name)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


class RgwService:
    """RgwCluster behind s3harness's StrictSigV4Front: the interface of
    s3harness.S3Harness (endpoint, front, boto3_client, stop)."""

    kind = "rgw"

    def __init__(self):
        self.cluster = RgwCluster()
        self.front = None

    @property
    def endpoint(self):
        return self.front.endpoint

    @property
    def direct_endpoint(self):
        return self.cluster.endpoint

    def start(self):
        self.cluster.start()
        try:
            self.cluster.admin("user", "create", "--uid=test", "--display-name=test",
                               "--access-key=" + s3harness.ACCESS_KEY, "--secret-key=" + s3harness.SECRET_KEY)
            self.front = s3harness.StrictSigV4Front(self.cluster.port)
            self.front.start()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.front is not None:
            self.front.stop()
            self.front = None
        self.cluster.stop()

    def boto3_client(self, direct=False):
        """A boto3 S3 client through the strict front (or straight to radosgw)."""
        return s3harness.boto3_client(self.direct_endpoint if direct else self.endpoint)


if __name__ == "__main__":  # python3 rgw.py: start, show the endpoint, stop on Enter
    service = RgwService()
    started = time.monotonic()
    service.start()
    print("RGW up in %.1f s at %s (front %s)" % (time.monotonic() - started, service.direct_endpoint,
                                                 service.endpoint))
    try:
        input()
    finally:
        service.stop()
