#!/usr/bin/env python3
"""crosscheck.py — core/sigv4 (through build/sigv4-tool) against two other
parties, since no local S3 emulator checks presigned signatures:

1. botocore, an independent SigV4 implementation (the AWS SDK's): for the
   same inputs and the same instant, its presigned URLs must equal ours
   parameter for parameter, our verifier must accept its URLs and its POST
   forms and refuse them once tampered with.
2. moto_server, started privately on a free 127.0.0.1 port and stopped at
   the end: our presigned PUT and GET (path style) and our POST form must
   store and return the bytes.  moto 5 does not check presigned signatures
   (without auth it accepts any; with INITIAL_NO_AUTH_ACTION_COUNT=0 it
   fails every query-signed request with a 500, KeyError 'Authorization'),
   so this part checks URL shape and routing, and the script says what the
   auth mode answered rather than counting it as a verification.

Usage: python3 tests/s3/crosscheck.py build/sigv4-tool   (make sigv4-crosscheck)
Exit status 0 when every check passed.
"""
import datetime
import http.client
import os
import re
import subprocess
import sys
import urllib.parse
import uuid
from unittest import mock

import botocore.auth
import botocore.session
import botocore.signers
from botocore.config import Config

TOOL = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/sigv4-tool")
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FIXED = datetime.datetime(2026, 1, 1, 12, 30, 5)
FIXED_S = int(FIXED.replace(tzinfo=datetime.timezone.utc).timestamp())
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def tool(*args, stdin=None):
    p = subprocess.run([TOOL, *map(str, args)], input=stdin, capture_output=True, text=True)
    if p.stderr:
        print(p.stderr, file=sys.stderr)
    return p.returncode, p.stdout.rstrip("\n")


def client(endpoint, region="us-east-1", token=None):
    s = botocore.session.get_session()
    return s.create_client("s3", endpoint_url=endpoint, region_name=region,
                           aws_access_key_id=AK, aws_secret_access_key=SK,
                           aws_session_token=token,
                           config=Config(signature_version="s3v4",
                                         s3={"addressing_style": "path"}))


def split(url):
    u = urllib.parse.urlsplit(url)
    return u.netloc, u.path, sorted(urllib.parse.parse_qsl(u.query, keep_blank_values=True)), u.query


def fixed_time():
    """botocore reads the clock in two places; both see FIXED."""
    return mock.patch.multiple(botocore.auth, get_current_datetime=lambda *a, **k: FIXED), \
        mock.patch.multiple(botocore.signers, get_current_datetime=lambda *a, **k: FIXED)


# ---------------------------------------------------------------- botocore

KEYS = ["test.txt", "a b/c+d=e&f.bin", "\u00fcn\u00ef/c\u00f6d\u00e9/\U0001F4F7.jpg",
        "x~y_z-.!*'()$@:,;", "deep/path/with spaces/%41.txt"]


def botocore_urls():
    endpoint = "http://127.0.0.1:9000"
    for region in ("us-east-1", "eu-west-3"):
        for token in (None, "FQoGZXIvYXdzE/tok+en=="):
            c = client(endpoint, region, token)
            for key in KEYS:
                for op, method, extra in (("get_object", "GET", {}),
                                          ("put_object", "PUT", {}),
                                          ("get_object", "GET", {"ResponseContentDisposition":
                                                                 'attachment; filename="a b.pdf"'})):
                    p1, p2 = fixed_time()
                    with p1, p2:
                        theirs = c.generate_presigned_url(
                            op, Params={"Bucket": "assets", "Key": key, **extra}, ExpiresIn=300)
                    args = ["url", method, endpoint, "assets", key, FIXED_S, 300, AK, SK, region,
                            token or "-"]
                    if extra:
                        args.append("response-content-disposition=" +
                                    extra["ResponseContentDisposition"])
                    rc, ours = tool(*args)
                    what = f"{method} {key!r} {region} token={bool(token)} extra={bool(extra)}"
                    same = rc == 0 and split(ours)[:3] == split(theirs)[:3]
                    check(same, "URL equals botocore's: " + what)
                    if not same:
                        print("  ours:   ", ours, "\n  theirs: ", theirs)
                    host, path, _, query = split(theirs)
                    vargs = ["verify-url", method, host, urllib.parse.unquote(path), FIXED_S + 10,
                             AK, SK, region, token or "-"]
                    rc, st = tool(*vargs, stdin=query)
                    check(rc == 0, f"botocore's URL verifies ({st}): " + what)
                    bad = re.sub(r"X-Amz-Signature=(.)", lambda m: "X-Amz-Signature=" +
                                 ("0" if m.group(1) != "0" else "1"), query)
                    rc, st = tool(*vargs, stdin=bad)
                    check(st == "signature_mismatch", f"tampered botocore URL refused ({st}): " + what)
                    rc, st = tool(*vargs[:4], FIXED_S + 301, *vargs[5:], stdin=query)
                    check(st == "expired", f"botocore URL expires after 300 s ({st}): " + what)


def botocore_posts():
    for token in (None, "tok/en+=="):
        c = client("http://127.0.0.1:9000", "eu-west-1", token)
        key = "uploads/\u00e9t\u00e9 1.jpg"
        p1, p2 = fixed_time()
        with p1, p2:
            post = c.generate_presigned_post(
                "assets", key, Fields={"Content-Type": "image/jpeg"},
                Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1234, 1234]],
                ExpiresIn=60)
        fields = "".join(f"{k}\t{v}\n" for k, v in post["fields"].items())
        args = ["verify-post", "assets", 1234, FIXED_S + 5, AK, SK, "eu-west-1", token or "-"]
        rc, st = tool(*args, stdin=fields)
        check(rc == 0, f"botocore's POST form verifies ({st}) token={bool(token)}")
        rc, st = tool(*args[:2], 1235, *args[3:], stdin=fields)
        check(st == "size_out_of_range", f"botocore's POST form, wrong size refused ({st})")
        rc, st = tool(*args[:3], FIXED_S + 61, *args[4:], stdin=fields)
        check(st == "expired", f"botocore's POST form, expired refused ({st})")
        rc, st = tool(*args, stdin=fields.replace("uploads/", "uploadz/"))
        check(st == "policy_condition_failed", f"botocore's POST form, other key refused ({st})")


# ---------------------------------------------------------------- moto

class Moto:
    """moto_server on 127.0.0.1, port 0: the port is read from its log line."""

    def __init__(self, env=None):
        self.p = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", "0"],
                                  env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self.p.stdout:
            m = re.search(r"Running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self.endpoint = f"http://127.0.0.1:{self.port}"
                return
        raise RuntimeError("moto_server exited before listening")

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)


def send(method, url, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    target = u.path + ("?" + u.query if u.query else "")
    conn.request(method, target, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def multipart(fields, filename, content):
    boundary = uuid.uuid4().hex
    out = b""
    for k, v in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def moto_transfers():
    import time
    m = Moto()
    try:
        c = client(m.endpoint)
        c.create_bucket(Bucket="assets")
        now = int(time.time())
        body = os.urandom(4096)
        key = "o/ab c/\u00e9t\u00e9+1.bin"
        rc, put = tool("url", "PUT", m.endpoint, "assets", key, now, 60, AK, SK, "us-east-1", "-")
        st, _, _ = send("PUT", put, body)
        check(st == 200, f"moto: our presigned PUT stores the object ({st})")
        got = c.get_object(Bucket="assets", Key=key)["Body"].read()
        check(got == body, "moto: the object is under the raw key, bytes intact")
        rc, get = tool("url", "GET", m.endpoint, "assets", key, now, 60, AK, SK, "us-east-1", "-",
                       'response-content-disposition=attachment; filename="x y.bin"')
        st, hdrs, data = send("GET", get)
        check(st == 200 and data == body, f"moto: our presigned GET returns the bytes ({st})")
        # moto ignores response-content-disposition; the botocore part checks how it is signed.
        rc, form = tool("post", "assets", "posted/f 1.bin", len(body), "application/octet-stream",
                        now, 60, AK, SK, "us-east-1", "-")
        fields = [tuple(l.split("\t", 1)) for l in form.splitlines()]
        payload, ctype = multipart(fields, "f 1.bin", body)
        st, _, resp = send("POST", m.endpoint + "/assets", payload, {"Content-Type": ctype})
        check(st in (200, 201, 204), f"moto: our POST form uploads ({st})")
        got = c.get_object(Bucket="assets", Key="posted/f 1.bin")["Body"].read() if st < 300 else None
        check(got == body, "moto: the POSTed object has the bytes")
        bad = re.sub(r"X-Amz-Signature=[0-9a-f]", "X-Amz-Signature=g", put)
        st, _, _ = send("PUT", bad, body)
        print(f"note moto without auth answers {st} to a tampered presigned PUT "
              "(it does not check presigned signatures)")
    finally:
        m.stop()
    m = Moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        rc, put = tool("url", "PUT", m.endpoint, "assets", "k", int(time.time()), 60, AK, SK,
                       "us-east-1", "-")
        st, _, _ = send("PUT", put, b"x")
        print(f"note moto with INITIAL_NO_AUTH_ACTION_COUNT=0 answers {st} to a presigned PUT "
              "(500: its IAM check reads only the Authorization header)")
    finally:
        m.stop()


botocore_urls()
botocore_posts()
moto_transfers()
print(f"crosscheck: {failures} failed")
sys.exit(1 if failures else 0)
