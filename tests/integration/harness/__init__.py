"""Shared helpers for the integration suite.

The tests run the real `snapshotter` binary (path in $SNAPSHOTTER_BIN) against
real git repositories served on 127.0.0.1 by `git daemon` and by lighttpd
running `git http-backend` with basic auth. Nothing here mocks git.

Every process the harness starts runs in its own session and is killed (the
whole process group) at teardown and, as a safety net, at interpreter exit.
Every file lives under one tempfile.mkdtemp() root that is removed at exit.

Typical use in a test module:

    import harness

    def setUpModule():
        harness.setup_module()

    def tearDownModule():
        harness.teardown_module()

The package holds one module per idea, and every name is re-exported here so
that `harness.X` (and `from harness import X`) works for every X:

    processes   the temp root, the process registry and its cleanup, free_port, wait_for_port
    servers     git daemon, lighttpd + git http-backend, JGit and Dulwich daemons, GitFaultProxy
    upstreams   the harness's own git, ref readers, Upstream and its builders
    runner      the binary: its path, environment, output checks, Run, run_snapshotter
    stores      storage layout keys, the S3 services, Store / FileStore / S3Store
    workspace   Workspace: a storage, cache, HOME and TMPDIR with payload builders
    assertions  tree states, secret searches, and the Assertions mixin
"""

from pathlib import Path  # noqa: F401 (tests use harness.Path, as when the harness was one module)

from .processes import (  # noqa: F401
    HERE,
    SOURCE_ROOT,
    _lock,
    _on_sigterm,
    _register,
    cleanup_all,
    descendants,
    free_port,
    kill_process_group,
    mkdtemp,
    setup_module,
    teardown_module,
    tmp_root,
    wait_for_port,
)
from .servers import (  # noqa: F401
    DULWICH_PYTHON,
    DulwichDaemon,
    GIT_HTTP_BACKEND,
    GitAndHttp,
    GitDaemon,
    GitFaultProxy,
    JAVA_DIR,
    JGIT,
    JGIT_DEPENDENCIES,
    JGitDaemon,
    LIGHTTPD,
    SmartHttp,
    SmartHttpLogged,
    SmartHttpRoutes,
    _Server,
    drop_bitmaps,
    jgit_classpath,
)
from .upstreams import (  # noqa: F401
    BIG_FILE_SIZE,
    NESTED_BRANCH,
    UNICODE_BRANCH,
    UNICODE_TAG,
    Upstream,
    big_file,
    build_bigfile,
    build_empty,
    build_random_blob,
    build_rich,
    build_sha256,
    build_unicode,
    fsck,
    git,
    git_env,
    git_version,
    head_symref,
    minimal_bundle,
    new_upstream,
    object_format,
    ref_map,
    refs_and_head,
    refs_of,
    shallow_clone,
)
from .runner import (  # noqa: F401
    DEFAULT_RUN_TIMEOUT_S,
    OutputError,
    Run,
    check_stdout,
    is_minified_json_text,
    run_snapshotter,
    sanitizer_runtimes,
    snapshotter_bin,
    snapshotter_env,
)
from .stores import (  # noqa: F401
    FileStore,
    RFC3339_UTC_RE,
    S3Store,
    S3_BUCKET,
    S3_LOCK_BUCKET,
    S3_SERVERS,
    SNAPSHOT_ID_RE,
    Store,
    bundle_key,
    latest_key,
    make_store,
    manifest_key,
    repo_key,
    s3_servers,
    s3_service,
    stop_s3_service,
)
from .workspace import (  # noqa: F401
    Workspace,
)
from .assertions import (  # noqa: F401
    Assertions,
    SNAPSHOT_SUMMARY_KEYS,
    diff_states,
    find_bytes_in_tree,
    secret_forms,
    sha256_file,
    snapshot_summary,
    tree_digest,
    tree_state,
)
