"""Git LFS (issue 19): snapshots that hold the large files, not only their pointers.

Upstreams are made with the real git-lfs client, which pushes over smart HTTP
(lighttpd + git http-backend) and uploads the large files to the harness's
LFS server (harness/lfs_server.py) behind the same lighttpd, so the LFS URL
derived from the clone URL works. Restores are checked with the real client
too: `git clone` of the restored repository, `git lfs pull` through its local
file transfer, `git lfs fsck`.

LfsServerTest pins the test server to the parts of the public specification
it claims to follow (its docstring), so that the snapshot tests stand on a
server that behaves like the documented one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unittest
import urllib.error
import urllib.request

import harness
from harness import Assertions
from harness.lfs_server import LFS_MEDIA_TYPE, LfsServer, lfs_oid

USER, PASSWORD = "lfs-user", "lfs-pass-7d3c1e"


def setUpModule():
    harness.setup_module()


def tearDownModule():
    harness.teardown_module()


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(url: str, method: str = "GET", body: bytes | dict | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def batch(server: LfsServer, operation: str, objects: list[dict], repo: str = "git/r.git",
          authorization: str | None = None, **fields) -> tuple[int, dict]:
    headers = {"Accept": LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE,
               "Authorization": authorization or basic()}
    body = {"operation": operation, "transfers": ["basic"], "objects": objects, **fields}
    status, _, answer = request(f"{server.url_for(repo)}/objects/batch", "POST", body, headers)
    return status, json.loads(answer)


class LfsServerTest(unittest.TestCase):
    """The test server against the specification (no snapshotter involved)."""

    def setUp(self):
        self.server = LfsServer({USER: PASSWORD}, expires_in=120)
        self.addCleanup(self.server.stop)
        self.data = os.urandom(1000)
        self.oid = lfs_oid(self.data)

    def test_batch_needs_credentials_and_the_lfs_media_type(self):
        status, headers, _ = request(f"{self.server.url_for('git/r.git')}/objects/batch", "POST",
                                     {"operation": "download", "objects": []}, {"Accept": LFS_MEDIA_TYPE})
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("LFS-Authenticate"), 'Basic realm="Git LFS"')
        self.assertEqual(batch(self.server, "download", [], authorization=basic(password="wrong"))[0], 401)
        status, _, _ = request(f"{self.server.url_for('git/r.git')}/objects/batch", "POST",
                               {"operation": "download", "objects": []}, {"Authorization": basic()})
        self.assertEqual(status, 406)
        self.assertEqual(batch(self.server, "download", [], hash_algo="sha1")[0], 409)
        self.assertEqual(batch(self.server, "fetch", [])[0], 422)

    def test_upload_verify_download_and_a_missing_object(self):
        status, answer = batch(self.server, "upload", [{"oid": self.oid, "size": len(self.data)}])
        self.assertEqual((status, answer["transfer"], answer["hash_algo"]), (200, "basic", "sha256"))
        actions = answer["objects"][0]["actions"]
        self.assertEqual(actions["upload"]["expires_in"], 120)
        self.assertEqual(actions["upload"]["header"], {"Authorization": basic()})
        put = lambda body: request(actions["upload"]["href"], "PUT", body, actions["upload"]["header"])[0]
        self.assertEqual(put(self.data[:-1] + b"!"), 422, "a body that is not the oid's is refused")
        verify = lambda: request(actions["verify"]["href"], "POST", {"oid": self.oid, "size": len(self.data)},
                                 {"Authorization": basic(), "Accept": LFS_MEDIA_TYPE})[0]
        self.assertEqual(verify(), 404)
        self.assertEqual(put(self.data), 200)
        self.assertEqual(verify(), 200)
        # Stored now: an upload batch answers no actions for it.
        self.assertNotIn("actions", batch(self.server, "upload", [{"oid": self.oid, "size": 1000}])[1]["objects"][0])

        missing = hashlib.sha256(b"never stored").hexdigest()
        status, answer = batch(self.server, "download", [{"oid": self.oid, "size": 1000},
                                                         {"oid": missing, "size": 12}, {"oid": "xyz", "size": 1}])
        self.assertEqual(status, 200)
        first, second, third = answer["objects"]
        self.assertEqual(second["error"]["code"], 404)
        self.assertEqual(third["error"]["code"], 422)
        download = first["actions"]["download"]
        self.assertEqual(request(download["href"], headers=download["header"])[2], self.data)
        self.assertEqual(request(download["href"])[0], 401, "objects need the credentials too")
        self.assertEqual(self.server.stats["bytes_downloaded"], 1000)

        # A purge: the next batch reports 404 for the object; a corrupted one keeps its size.
        self.server.corrupt(self.oid)
        corrupted = request(download["href"], headers=download["header"])[2]
        self.assertEqual(len(corrupted), 1000)
        self.assertNotEqual(lfs_oid(corrupted), self.oid)
        self.server.purge("git/r.git", self.oid)
        self.assertEqual(batch(self.server, "download", [{"oid": self.oid, "size": 1000}])[1]["objects"][0]
                         ["error"]["code"], 404)

    def test_the_object_host_takes_only_its_token(self):
        server = LfsServer({USER: PASSWORD}, object_host=True)
        self.addCleanup(server.stop)
        server.put("git/r.git", self.data)
        answer = batch(server, "download", [{"oid": self.oid, "size": 1000}])[1]
        download = answer["objects"][0]["actions"]["download"]
        self.assertTrue(download["href"].startswith(f"http://127.0.0.1:{server.object_port}/"))
        self.assertTrue(download["header"]["Authorization"].startswith("Bearer "))
        self.assertEqual(request(download["href"], headers={"Authorization": basic()})[0], 401)
        self.assertEqual(request(download["href"], headers=download["header"])[2], self.data)
        self.assertEqual(server.object_host_authorizations, [basic(), download["header"]["Authorization"]])


if __name__ == "__main__":
    unittest.main()
