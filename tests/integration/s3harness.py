"""A real S3 API on 127.0.0.1 for the integration tests.

`S3Harness` starts `moto_server` WITHOUT signature checking on a free port
and, in front of it, `StrictSigV4Front`: an HTTP proxy (stdlib only) that
recomputes every request's SigV4 signature the way S3 does and answers
403 SignatureDoesNotMatch like S3 when it differs. Only requests that pass
are forwarded to moto. moto's own checker is not used because it rejects the
AWS-correct `%2F` form of a `/` in a query value (see FIELD-NOTES).

S3's canonicalization, as recomputed here: the path and every query name and
value are decoded, then re-encoded with only A-Za-z0-9-._~ unescaped (`/`
kept in the path, `%2F` in query values); the query is sorted by name then
value; header values are trimmed with inner runs of spaces collapsed;
x-amz-content-sha256 must match the body unless it is UNSIGNED-PAYLOAD.
A header that S3 reads as one value (Content-MD5, x-amz-object-lock-*,
x-amz-server-side-encryption*, ...) given twice is refused with 400, as a
real server refuses the signature of the joined copies. The same front also
sits before Ceph RGW (rgw.py).

It checks S3's CRC32 flexible checksums as S3 does, since neither moto nor
RGW 16.2 does: a body whose x-amz-checksum-crc32 differs is BadDigest, and
CompleteMultipartUpload's <ChecksumCRC32> of each part must be the one the
part was stored with (`check_checksums`). `set_answer_header` changes a
header of the server's answer (a checksum the server computed otherwise).

The front also learns the temporary credentials that moto's STS hands out
(AssumeRoleWithWebIdentity passes through it), so requests signed with them
are checked as strictly, session token included.

The front can also misbehave on purpose (`set_chaos`): at a set rate it
answers 500 InternalError or 503 SlowDown, resets the connection in the middle
of the request upload or of the response download (TCP RST), or stalls. The
signature is still checked first, so a fault never hides a signing bug.

Use it as a context manager (or start()/stop()); stop() kills every process
it started, by process group.
"""

CHAOS_KINDS = ("500", "503", "reset_request", "reset_response", "stall")

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import zlib
from datetime import datetime, timezone

import harness
from harness import free_port  # noqa: F401 (also s3harness.free_port for rgw.py)

ACCESS_KEY = "AKIDHARNESSEXAMPLE01"
SECRET_KEY = "harness/Secret+Key=0123456789abcdefEXAMPLE"
REGION = "us-east-1"

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def moto_server_path():
    return shutil.which("moto_server")


def wait_for_port(port, timeout=20.0):
    """Whether 127.0.0.1:`port` accepts connections within `timeout` seconds."""
    try:
        harness.wait_for_port(port, timeout_s=timeout)
        return True
    except RuntimeError:
        return False


def s3_error(code, message, status):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '<RequestId>harness</RequestId></Error>' % (code, message)).encode()
    return status, body


def _encode(data: bytes, keep_slash: bool) -> str:
    return urllib.parse.quote(data, safe="/~" if keep_slash else "~")


def canonical_uri(raw_path: str) -> str:
    return _encode(urllib.parse.unquote_to_bytes(raw_path), True) or "/"


def canonical_query(raw_query: str) -> str:
    pairs = []
    if raw_query:
        for part in raw_query.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            pairs.append((_encode(urllib.parse.unquote_to_bytes(name), False),
                          _encode(urllib.parse.unquote_to_bytes(value), False)))
    return "&".join("%s=%s" % p for p in sorted(pairs))


def canonical_value(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip())


def is_single_valued(name: str) -> bool:
    """Whether S3 reads request header `name` (lowercase) as a single value."""
    return (name in ("content-md5", "content-length", "content-type", "authorization", "x-amz-date",
                     "x-amz-content-sha256", "x-amz-security-token", "if-match", "if-none-match",
                     "x-amz-storage-class")
            or name.startswith("x-amz-object-lock-") or name.startswith("x-amz-server-side-encryption")
            or name.startswith("x-amz-checksum-"))


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class StrictSigV4Front:
    """The checking proxy; runs a ThreadingHTTPServer in a daemon thread."""

    def __init__(self, backend_port):
        self.backend_port = backend_port
        self.keys = {ACCESS_KEY: (SECRET_KEY, None)}  # access key -> (secret, session token)
        self.lock = threading.Lock()
        self.log = []          # (method, path, query, status, signed header names)
        self.faults = []       # [{"method", "query", "status", "code", "count"}]
        self.chaos = None      # see set_chaos
        self.chaos_counts = {}  # fault kind -> how many were injected
        self.delays = []       # [{"method", "query", "seconds", "count"}], see delay_answer
        self.part_crc32 = {}   # (upload id, part number) -> the x-amz-checksum-crc32 of a stored part
        self.crc32_uploads = set()  # upload ids created with x-amz-checksum-algorithm: CRC32
        self.answer_headers = []  # [{"method", "query", "name", "value", "count"}], see set_answer_header
        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def add_key(self, access_key, secret, token=None):
        with self.lock:
            self.keys[access_key] = (secret, token)

    def inject(self, method, status, code, count=1, query=None, after_forward=False, skip=0, path=None):
        """Answer the next `count` requests of `method` (whose raw query contains
        `query`, when given) with `status` and an S3 error document for `code`
        (status 200 gives S3's 200-with-error answer). The request is not
        forwarded, unless `after_forward`: then moto performs it and its answer
        is lost, as when a connection drops after the work was done. The first
        `skip` matching requests pass untouched; `path`, when given, must be
        part of the request's raw path."""
        with self.lock:
            self.faults.append({"method": method, "query": query, "status": status, "code": code, "count": count,
                                "after_forward": after_forward, "skip": skip, "path": path})

    def delay_answer(self, method, seconds, query=None, count=1):
        """Forward the next `count` requests of `method` (whose raw query
        contains `query`, when given), then hold the server's answer for
        `seconds` before sending a byte of it, as S3 does while it assembles a
        large CompleteMultipartUpload."""
        with self.lock:
            self.delays.append({"method": method, "query": query, "seconds": seconds, "count": count})

    def take_delay(self, method, raw_query):
        with self.lock:
            for delay in self.delays:
                if delay["count"] > 0 and delay["method"] == method and (
                        delay["query"] is None or delay["query"] in raw_query):
                    delay["count"] -= 1
                    return delay["seconds"]
        return 0

    def set_answer_header(self, method, name, value, query=None, count=1):
        """In the server's answer to the next `count` requests of `method`
        (whose raw query contains `query`, when given), set header `name` to
        `value`, as a server that computed another checksum would answer."""
        with self.lock:
            self.answer_headers.append({"method": method, "query": query, "name": name, "value": value,
                                        "count": count})

    def rewrite_answer(self, method, raw_query, headers):
        """`headers` (the server's, as pairs) with set_answer_header's changes."""
        with self.lock:
            for change in self.answer_headers:
                if change["count"] > 0 and change["method"] == method and (
                        change["query"] is None or change["query"] in raw_query):
                    change["count"] -= 1
                    name = change["name"].lower()
                    return [(k, v) for k, v in headers if k.lower() != name] + [(change["name"], change["value"])]
        return headers

    def check_checksums(self, method, raw_query, headers, body):
        """None when the request's flexible checksum holds, else (status, body),
        as S3 checks it: a body whose CRC32 differs from x-amz-checksum-crc32
        is BadDigest; CompleteMultipartUpload must list, for each part stored
        with a CRC32, that same CRC32 (else InvalidPart), and for an upload
        created with the CRC32 algorithm, one for every part (else
        InvalidRequest). Other algorithms are not checked here."""
        value = headers.get("x-amz-checksum-crc32")
        if value is not None:
            try:
                declared = base64.b64decode(value, validate=True)
            except ValueError:
                declared = b""
            if len(declared) != 4:
                return s3_error("InvalidRequest", "Value for x-amz-checksum-crc32 header is invalid.", 400)
            if declared != zlib.crc32(body).to_bytes(4, "big"):
                return s3_error("BadDigest", "The CRC32 you specified did not match the calculated checksum.", 400)
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        if method != "POST" or "uploadId" not in query:
            return None
        upload_id = query["uploadId"][0]
        text = body.decode("utf-8", "replace")
        with self.lock:
            for part in re.findall(r"<Part>(.*?)</Part>", text, re.S):
                number = re.search(r"<PartNumber>\s*(\d+)\s*</PartNumber>", part)
                listed = re.search(r"<ChecksumCRC32>([^<]*)</ChecksumCRC32>", part)
                stored = self.part_crc32.get((upload_id, int(number.group(1)))) if number else None
                if stored is not None and listed is not None and listed.group(1) != stored:
                    return s3_error("InvalidPart", "One or more of the specified parts could not be found. The "
                                    "part may not have been uploaded, or the specified entity tag may not have "
                                    "matched the part's entity tag.", 400)
                if listed is None and upload_id in self.crc32_uploads:
                    return s3_error("InvalidRequest", "The upload was created using a crc32 checksum. The "
                                    "complete request must include the checksum for each part. It was missing "
                                    "for part %s in the request." % (number.group(1) if number else "?"), 400)
        return None

    def note_answer(self, method, raw_query, headers, status, data):
        """Remember what check_checksums needs from a request the server
        answered with `status` and `data`: the uploads created with CRC32, the
        CRC32 of each part stored."""
        if status != 200:
            return
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        with self.lock:
            if method == "POST" and "uploads" in query and (
                    headers.get("x-amz-checksum-algorithm", "").upper() == "CRC32"):
                found = re.search(rb"<UploadId>([^<]+)</UploadId>", data)
                if found:
                    self.crc32_uploads.add(found.group(1).decode())
            elif method == "PUT" and "uploadId" in query and "partNumber" in query:
                value = headers.get("x-amz-checksum-crc32")
                if value is not None:
                    self.part_crc32[(query["uploadId"][0], int(query["partNumber"][0]))] = value

    def set_chaos(self, rate, kinds=CHAOS_KINDS, seed=0, methods=None, stall_s=5.0):
        """From now on, each request (of `methods`, when given) meets one of the
        fault `kinds` with probability `rate` (0 to 1), drawn from a generator
        seeded with `seed`: "500" InternalError, "503" SlowDown (S3's XML
        error documents, request not forwarded), "reset_request" (half the
        body is read, then a TCP RST), "reset_response" (moto performs the
        request, half of its answer is sent, then a RST: the work is done but
        the client cannot know) and "stall" (nothing is answered for `stall_s`
        seconds, then a RST). rate 0 or None turns chaos off."""
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError("unknown chaos kinds %s" % sorted(unknown))
        with self.lock:
            self.chaos = None if not rate else {"rate": rate, "kinds": list(kinds), "rng": random.Random(seed),
                                                "methods": set(methods) if methods else None,
                                                "stall_s": stall_s}
            self.chaos_counts = {}

    def draw_chaos(self, method):
        """The fault kind for the next request of `method`, or None."""
        with self.lock:
            chaos = self.chaos
            if chaos is None or (chaos["methods"] is not None and method not in chaos["methods"]):
                return None
            if chaos["rng"].random() >= chaos["rate"]:
                return None
            kind = chaos["rng"].choice(chaos["kinds"])
            self.chaos_counts[kind] = self.chaos_counts.get(kind, 0) + 1
            return kind

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- checking ----------------------------------------------------------

    def verify(self, method, raw_path, raw_query, headers, body):
        """None when the request is signed correctly, else (status, body)."""
        # S3 reads these as one value: a repeated one is signed as "a,b" but
        # checked as one, so S3 (and RGW) refuse it. So do we, rather than
        # join the copies and pass what a real server refuses.
        for name in set(n.lower() for n in headers.keys()):
            if is_single_valued(name) and len(headers.get_all(name) or []) > 1:
                return s3_error("InvalidArgument", "header %s is given %d times; S3 reads it as one value"
                                % (name, len(headers.get_all(name))), 400)
        auth = headers.get("Authorization")
        if auth is None:
            return s3_error("AccessDenied", "Anonymous access is not allowed by the harness", 403)
        m = re.match(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$",
                     auth.strip())
        if not m:
            return s3_error("AuthorizationHeaderMalformed", "The authorization header is malformed", 400)
        credential, signed_names, signature = m.groups()
        access_key, date, region, service, terminator = credential.split("/")
        with self.lock:
            known = self.keys.get(access_key)
        if known is None:
            return s3_error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist", 403)
        secret, token = known
        if token is not None and headers.get("x-amz-security-token") != token:
            return s3_error("InvalidToken", "The provided token is malformed or otherwise invalid", 400)
        names = signed_names.split(";")
        if "host" not in names or names != sorted(names):
            return s3_error("SignatureDoesNotMatch", "host must be signed and SignedHeaders sorted", 403)
        for required in ("x-amz-date", "x-amz-content-sha256"):
            if required not in names:
                return s3_error("AccessDenied", "%s must be signed" % required, 403)
        if headers.get("x-amz-security-token") is not None and "x-amz-security-token" not in names:
            return s3_error("AccessDenied", "x-amz-security-token must be signed", 403)
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return s3_error("AccessDenied", "bad x-amz-date", 403)
        if abs((datetime.now(timezone.utc) - when).total_seconds()) > 900:
            return s3_error("RequestTimeTooSkewed", "The difference between the request time and the current "
                            "time is too large", 403)
        if date != amz_date[:8] or region != REGION or service != "s3" or terminator != "aws4_request":
            return s3_error("SignatureDoesNotMatch", "bad credential scope", 403)
        payload_hash = headers.get("x-amz-content-sha256", "")
        if payload_hash != "UNSIGNED-PAYLOAD":
            if payload_hash != hashlib.sha256(body).hexdigest():
                return s3_error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does "
                                "not match what was computed.", 400)
        lines = []
        for name in names:
            values = headers.get_all(name)
            if values is None:
                return s3_error("SignatureDoesNotMatch", "signed header %s is missing" % name, 403)
            lines.append("%s:%s\n" % (name, ",".join(canonical_value(v) for v in values)))
        canonical_request = "\n".join([method, canonical_uri(raw_path), canonical_query(raw_query),
                                       "".join(lines), signed_names, payload_hash])
        scope = "%s/%s/%s/aws4_request" % (date, region, service)
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                    hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = _hmac(("AWS4" + secret).encode(), date)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                            "signature you provided. Check your key and signing method.", 403)
        return None

    def take_fault(self, method, raw_query, after_forward=False, raw_path=""):
        with self.lock:
            for fault in self.faults:
                if fault["count"] > 0 and fault["method"] == method and fault["after_forward"] == after_forward and (
                        fault["query"] is None or fault["query"] in raw_query) and (
                        fault.get("path") is None or fault["path"] in raw_path):
                    if fault["skip"] > 0:
                        fault["skip"] -= 1
                        continue
                    fault["count"] -= 1
                    return s3_error(fault["code"], "injected by the harness", fault["status"])
        return None

    def learn_sts_credentials(self, body):
        text = body.decode("utf-8", "replace")
        found = {tag: re.search("<%s>([^<]*)</%s>" % (tag, tag), text)
                 for tag in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        if all(found.values()):
            self.add_key(found["AccessKeyId"].group(1), found["SecretAccessKey"].group(1),
                         found["SessionToken"].group(1))

    def _handler_class(self):
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _reply(self, status, body, headers=()):
                self.send_response(status)
                sent = set()
                for name, value in headers:
                    if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                        continue
                    self.send_header(name, value)
                    sent.add(name.lower())
                if "content-type" not in sent and body:
                    self.send_header("Content-Type", "application/xml")
                length = str(len(body))
                if self.command == "HEAD":  # no body: keep the object's length
                    length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _reset(self, partial=b""):
                reset_connection(self, partial)

            def _raw_response(self, status, data, headers):
                lines = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("",))[0])]
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        lines.append("%s: %s" % (name, value))
                lines.append("Content-Length: %d" % len(data))
                return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if self.command == "HEAD" else data)

            def _handle(self):
                raw_path, _, raw_query = self.path.partition("?")
                sts_like = self.command == "POST" and self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded")
                chaos = None if sts_like else front.draw_chaos(self.command)
                if chaos == "reset_request":
                    length = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(length // 2)
                    self._record(raw_path, raw_query, "reset_request")
                    return self._reset()
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    return self._reply(*s3_error("MissingContentLength", "You must provide the Content-Length "
                                                 "HTTP header.", 411))
                length = self.headers.get("Content-Length")
                if length is None and self.command in ("PUT", "POST"):
                    return self._reply(*s3_error("MissingContentLength", "You must provide the Content-Length "
                                                 "HTTP header.", 411))
                body = self.rfile.read(int(length)) if length else b""
                form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
                sts = form and self.command == "POST" and b"Action=AssumeRoleWithWebIdentity" in body
                status = None
                if not sts:
                    refusal = front.verify(self.command, raw_path, raw_query, self.headers, body)
                    if refusal is None:
                        refusal = front.check_checksums(self.command, raw_query, self.headers, body)
                    if refusal is None:
                        refusal = front.take_fault(self.command, raw_query, raw_path=raw_path)
                    if refusal is None and chaos in ("500", "503"):
                        refusal = (s3_error("InternalError", "We encountered an internal error. Please try "
                                            "again.", 500) if chaos == "500" else
                                   s3_error("SlowDown", "Please reduce your request rate.", 503))
                    if refusal is None and chaos == "stall":
                        self._record(raw_path, raw_query, "stall")
                        time.sleep(front.chaos["stall_s"] if front.chaos else 5.0)
                        return self._reset()
                    if refusal is not None:
                        status = refusal[0]
                        self._record(raw_path, raw_query, status)
                        return self._reply(*refusal)
                conn = http.client.HTTPConnection("127.0.0.1", front.backend_port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    if not sts:
                        front.note_answer(self.command, raw_query, self.headers, response.status, data)
                    if sts and response.status == 200:
                        front.learn_sts_credentials(data)
                    lost = None if sts else front.take_fault(self.command, raw_query, after_forward=True,
                                                                    raw_path=raw_path)
                    if lost is not None:
                        self._record(raw_path, raw_query, lost[0])
                        return self._reply(*lost)
                    held = 0 if sts else front.take_delay(self.command, raw_query)
                    if held:
                        time.sleep(held)
                    if chaos == "reset_response":
                        raw = self._raw_response(response.status, data, response.getheaders())
                        self._record(raw_path, raw_query, "reset_response")
                        return self._reset(raw[:len(raw) // 2])
                    self._record(raw_path, raw_query, response.status)
                    self._reply(response.status, data, front.rewrite_answer(self.command, raw_query,
                                                                            response.getheaders()))
                finally:
                    conn.close()

            def _record(self, raw_path, raw_query, status):
                auth = self.headers.get("Authorization", "")
                m = re.search(r"SignedHeaders=([^,\s]+)", auth)
                with front.lock:
                    front.log.append((self.command, raw_path, raw_query, status, m.group(1) if m else ""))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler


def reset_connection(handler, partial=b""):
    """Send `partial` (possibly nothing) on the connection of a BaseHTTPRequestHandler,
    then end it with a TCP RST; the handler must not write anything after this."""
    try:
        if partial:
            handler.wfile.write(partial)
            handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    handler.close_connection = True
    handler.wfile = _Discard()  # finish() must not write anything after the reset
    # Close now (rfile holds a reference to the socket): with a zero linger
    # time the kernel answers with a RST, not a FIN.
    handler.rfile.close()
    handler.connection.close()


class _Discard:
    """A write-only file that drops everything (what a reset connection's handler writes into)."""

    closed = False

    def write(self, data):
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True


class S3Harness:
    """moto_server (no signature checks) behind StrictSigV4Front."""

    def __init__(self):
        self.moto = None
        self.front = None
        self.moto_port = None
        self._log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        return self.front.endpoint

    @property
    def moto_endpoint(self):
        return "http://127.0.0.1:%d" % self.moto_port

    def start(self):
        binary = moto_server_path()
        if binary is None:
            raise RuntimeError("moto_server is not installed")
        self.moto_port = free_port()
        env = dict(os.environ)
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        self._log = open(os.devnull, "wb")
        self.moto = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.moto_port)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     env=env, start_new_session=True)
        try:
            if not wait_for_port(self.moto_port):
                raise RuntimeError("moto_server did not start")
            self.front = StrictSigV4Front(self.moto_port)
            self.front.start()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.front is not None:
            self.front.stop()
            self.front = None
        if self.moto is not None:
            try:
                os.killpg(self.moto.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.moto.pid, signal.SIGKILL)
                self.moto.wait()
            self.moto = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def boto3_client(self, direct=False):
        """A boto3 S3 client through the strict front (or straight to moto)."""
        return boto3_client(self.moto_endpoint if direct else self.endpoint)


def boto3_client(endpoint):
    """A boto3 S3 client for `endpoint` with the harness's keys, path addressing, no retries."""
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        region_name=REGION, config=Config(s3={"addressing_style": "path"},
                                                          retries={"max_attempts": 1}))


class CredentialResponder:
    """A loopback HTTP server playing the ECS container endpoint and EC2 IMDSv2.

    GET /creds (container; checks the Authorization token when set);
    PUT /latest/api/token, GET /latest/meta-data/iam/security-credentials/[ROLE] (IMDSv2).
    """

    ROLE = "snapshotter-role"

    def __init__(self, access_key, secret, token, auth_token=None):
        self.credentials = {"AccessKeyId": access_key, "SecretAccessKey": secret, "Token": token,
                            "Expiration": "2099-01-01T00:00:00Z", "Code": "Success"}
        self.auth_token = auth_token
        self.imds_token = "imds-session-token-0123456789"
        self.requests = []
        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self):
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                responder.requests.append(("PUT", self.path, dict(self.headers)))
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._send(200, responder.imds_token)
                self._send(403, "")

            def do_GET(self):
                responder.requests.append(("GET", self.path, dict(self.headers)))
                if self.path == "/creds":
                    if responder.auth_token and self.headers.get("Authorization") != responder.auth_token:
                        return self._send(401, "")
                    return self._send(200, json.dumps(responder.credentials))
                if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != responder.imds_token:
                        return self._send(401, "")
                    role = self.path[len("/latest/meta-data/iam/security-credentials/"):]
                    if role == "":
                        return self._send(200, responder.ROLE)
                    if role == responder.ROLE:
                        return self._send(200, json.dumps(responder.credentials))
                self._send(404, "")

        return Handler
