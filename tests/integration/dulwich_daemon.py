"""Dulwich's git:// server for the integration tests (harness.DulwichDaemon).

Usage: /usr/bin/python3 dulwich_daemon.py ROOT PORT

Serves every repository under ROOT on 127.0.0.1:PORT with dulwich.server's
TCPGitServer (protocol v0, upload-pack only). Not `dulwich daemon`: Dulwich
0.21's FileSystemBackend joins the request path ("/name.git", with its
leading slash) onto the base path, which yields "/name.git" itself, so it
serves repositories from the file system root. This backend strips the slash
and refuses paths that leave ROOT.
"""

import os
import sys

from dulwich.errors import NotGitRepository
from dulwich.repo import Repo
from dulwich.server import Backend, TCPGitServer


class RootBackend(Backend):
    """Repositories below one root directory, opened afresh for every request."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def open_repository(self, path):
        full = os.path.realpath(os.path.join(self.root, os.fsdecode(path).lstrip("/")))
        if os.path.commonpath([self.root, full]) != self.root:
            raise NotGitRepository(f"{path!r} is not below {self.root}")
        return Repo(full)


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    server = TCPGitServer(RootBackend(root), "127.0.0.1", port)
    server.serve_forever()


if __name__ == "__main__":
    main()
