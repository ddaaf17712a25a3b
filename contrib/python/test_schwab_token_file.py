"""Tests for schwab_token_file, run with Debian's python3 and no packages.

    python3 -m unittest -v test_schwab_token_file

TestAuthlibSession needs Debian's python3-authlib and python3-httpx (what
schwab-py's client is made of; schwab-py itself is not packaged) and is
skipped without them. The tests in TestWithRealBinary need a token file written by the real
token-refresh-sender and the binary itself: `go test ./contrib/python` builds
the binary, refreshes a token against the fake Schwab, and runs this file with
TRS_BINARY and TRS_TOKEN_FILE set. Without them those tests are skipped.
"""

import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import schwab_token_file as stf

ACCESS = "I0.python-test-ACCESS-0123456789abcdef@"
REFRESH = "python-test-REFRESH-0123456789abcdef@"
ID_TOKEN = "eyJ.python-test-ID.sig"
NOW = 1762983055


def token_doc(**token_changes):
    token = {
        "expires_in": 1800,
        "token_type": "Bearer",
        "scope": "api",
        "refresh_token": REFRESH,
        "access_token": ACCESS,
        "id_token": ID_TOKEN,
        "expires_at": NOW + 1500,
    }
    token.update(token_changes)
    return {"creation_timestamp": NOW - 300, "refresh_token_issued_at": NOW - 86400, "token": token}


class Sleeps:
    """A sleep function that records its calls and may run an action."""

    def __init__(self, action=None):
        self.calls = []
        self.action = action

    def __call__(self, seconds):
        self.calls.append(seconds)
        if self.action:
            self.action(len(self.calls))


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="stf")
        self.addCleanup(shutil.rmtree, self.dir)
        self.path = os.path.join(self.dir, "schwab_tokens.json")

    def write(self, content):
        with open(self.path, "w" if isinstance(content, str) else "wb") as f:
            f.write(content)

    def assertNoSecret(self, text):
        for secret in (ACCESS, REFRESH, ID_TOKEN):
            self.assertNotIn(secret, text)


class TestReadToken(TempDirTest):
    def test_whole_file(self):
        self.write(json.dumps(token_doc(), indent=4))
        sleeps = Sleeps()
        self.assertEqual(stf.read_token(self.path, sleep=sleeps), token_doc())
        self.assertEqual(sleeps.calls, [])

    def test_bad_files_are_retried_then_reported(self):
        whole = json.dumps(token_doc(), indent=4)
        cases = {
            "empty": ("", "is empty"),
            "blank": ("  \n", "is empty"),
            "cut off": (whole[: len(whole) // 2], "malformed JSON (line "),
            "not UTF-8": (b"\xff\xfe{}", "malformed JSON"),
            "an array": ("[]", "top level must be a JSON object"),
            "no token": ('{"creation_timestamp": 1}', "the token object is missing"),
            "token not an object": ('{"token": "x"}', "the token object is missing"),
            "no access token": (json.dumps(token_doc(access_token="")), "token.access_token is missing or empty"),
            "access token not a string": (json.dumps(token_doc(access_token=5)), "token.access_token is missing"),
            "no expires_at": (json.dumps(token_doc(expires_at=None)), "token.expires_at is missing or not a number"),
            "expires_at a boolean": (json.dumps(token_doc(expires_at=True)), "token.expires_at is missing"),
            "expires_at a string": (json.dumps(token_doc(expires_at="soon")), "token.expires_at is missing"),
            "too large": (" " * (stf.MAX_FILE_SIZE + 1), "larger than 1 MiB"),
        }
        for name, (content, want) in cases.items():
            with self.subTest(name):
                self.write(content)
                sleeps = Sleeps()
                with self.assertRaises(stf.TokenFileError) as cm:
                    stf.read_token(self.path, sleep=sleeps)
                msg = str(cm.exception)
                self.assertIn(self.path, msg)
                self.assertIn(want, msg)
                self.assertIn("still after 6 reads", msg)
                self.assertNotIn("\n", msg)
                self.assertNoSecret(msg)
                self.assertEqual(sleeps.calls, [stf.PAUSE] * (stf.TRIES - 1))

    def test_retry_budget_is_about_100ms(self):
        self.assertAlmostEqual((stf.TRIES - 1) * stf.PAUSE, 0.1, delta=0.03)

    def test_a_torn_read_is_read_again(self):
        # The file is empty until the second pause, when the writer finishes.
        whole = json.dumps(token_doc(), indent=4)
        self.write("")

        def finish(n):
            if n == 2:
                self.write(whole)

        sleeps = Sleeps(finish)
        self.assertEqual(stf.read_token(self.path, sleep=sleeps), token_doc())
        self.assertEqual(len(sleeps.calls), 2)

    def test_tries_and_pause(self):
        self.write("{")
        sleeps = Sleeps()
        with self.assertRaises(stf.TokenFileError) as cm:
            stf.read_token(self.path, tries=2, pause=0.5, sleep=sleeps)
        self.assertIn("still after 2 reads", str(cm.exception))
        self.assertEqual(sleeps.calls, [0.5])

    def test_missing_file_is_not_retried(self):
        sleeps = Sleeps()
        with self.assertRaises(stf.TokenFileError) as cm:
            stf.read_token(self.path, sleep=sleeps)
        self.assertEqual(
            str(cm.exception),
            "token file %s: not found; run token-refresh-sender login to create it" % self.path,
        )
        self.assertIsNone(cm.exception.__cause__)
        self.assertEqual(sleeps.calls, [])

    def test_unreadable_file_is_not_retried(self):
        sleeps = Sleeps()
        with self.assertRaises(stf.TokenFileError) as cm:
            stf.read_token(self.dir, sleep=sleeps)  # a directory
        self.assertIn("token file %s: cannot read: " % self.dir, str(cm.exception))
        self.assertEqual(sleeps.calls, [])


class TestAccessToken(TempDirTest):
    def test_valid(self):
        self.write(json.dumps(token_doc()))
        self.assertEqual(stf.access_token(self.path, now=lambda: NOW), ACCESS)
        # exactly min_valid left is enough
        self.assertEqual(stf.access_token(self.path, min_valid=1500, now=lambda: NOW), ACCESS)

    def test_expiring_or_expired(self):
        self.write(json.dumps(token_doc()))
        for now, min_valid, want in [
            (NOW, 1501, "expires in 1500 s (want at least 1501 s)"),
            (NOW + 1480, 60, "expires in 20 s"),
            (NOW + 1500, 0, "expired 0 s ago"),
            (NOW + 1600, 60, "expired 100 s ago"),
        ]:
            with self.subTest(now=now, min_valid=min_valid):
                with self.assertRaises(stf.TokenFileError) as cm:
                    stf.access_token(self.path, min_valid=min_valid, now=lambda: now)
                self.assertIn(want, str(cm.exception))
                self.assertIn("token-refresh-sender status", str(cm.exception))
                self.assertNoSecret(str(cm.exception))

    def test_read_options_are_passed_on(self):
        self.write("")
        sleeps = Sleeps()
        with self.assertRaises(stf.TokenFileError):
            stf.access_token(self.path, tries=3, sleep=sleeps)
        self.assertEqual(len(sleeps.calls), 2)


class TestSchwabPyFunctions(TempDirTest):
    def test_token_read_func_leaves_out_the_refresh_token(self):
        self.write(json.dumps(token_doc()))
        read = stf.token_read_func(self.path)
        got = read()
        want = dict(token_doc()["token"])
        del want["refresh_token"]
        self.assertEqual(got, {"creation_timestamp": NOW - 300, "token": want})
        self.assertNotIn(REFRESH, json.dumps(got))

    def test_token_read_func_reads_each_call(self):
        read = stf.token_read_func(self.path)
        self.write(json.dumps(token_doc()))
        self.assertEqual(read()["token"]["access_token"], ACCESS)
        self.write(json.dumps(token_doc(access_token="I0.newer")))
        self.assertEqual(read()["token"]["access_token"], "I0.newer")

    def test_token_read_func_float_timestamp(self):
        doc = token_doc()
        doc["creation_timestamp"] = 1762983055.75
        self.write(json.dumps(doc))
        self.assertEqual(stf.token_read_func(self.path)()["creation_timestamp"], 1762983055)

    def test_token_read_func_needs_creation_timestamp(self):
        for value in (None, "yesterday", True):
            with self.subTest(value=value):
                doc = token_doc()
                if value is None:
                    del doc["creation_timestamp"]
                else:
                    doc["creation_timestamp"] = value
                self.write(json.dumps(doc))
                with self.assertRaises(stf.TokenFileError) as cm:
                    stf.token_read_func(self.path)()
                self.assertIn("creation_timestamp is missing or not a number", str(cm.exception))

    def test_token_read_func_passes_read_options(self):
        self.write("")
        sleeps = Sleeps()
        with self.assertRaises(stf.TokenFileError):
            stf.token_read_func(self.path, tries=2, sleep=sleeps)()
        self.assertEqual(len(sleeps.calls), 1)

    def test_ignore_token_write_writes_nothing(self):
        self.write(json.dumps(token_doc()))
        before = os.stat(self.path)
        self.assertIsNone(stf.ignore_token_write({"access_token": "x"}, refresh_token="y"))
        after = os.stat(self.path)
        self.assertEqual((before.st_mtime_ns, before.st_size, before.st_ino), (after.st_mtime_ns, after.st_size, after.st_ino))
        self.assertEqual(os.listdir(self.dir), ["schwab_tokens.json"])


def has_module(name):
    return importlib.util.find_spec(name) is not None


@unittest.skipUnless(has_module("authlib") and has_module("httpx"), "needs python3-authlib and python3-httpx")
class TestAuthlibSession(TempDirTest):
    """The README's schwab-py snippet on the session class schwab-py uses.

    schwab.auth.client_from_access_functions wraps
    authlib.integrations.httpx_client.OAuth2Client(api_key, client_secret=...,
    token=..., token_endpoint=..., update_token=..., leeway=300); the client
    is schwab-py's, the requests and refreshes are this session's.
    """

    def setUp(self):
        super().setUp()
        from authlib.integrations.httpx_client import OAuth2Client

        self.requests = []  # (method, path, Authorization header)
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(("GET", self.path, self.headers.get("Authorization")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"[]")

            def do_POST(self):
                requests.append(("POST", self.path, None))
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.base = "http://127.0.0.1:%d" % server.server_port

        self.write_token("I0.first", 1500)
        self.read = stf.token_read_func(self.path)
        self.session = OAuth2Client(
            "app-key", client_secret="app-secret", token=self.read()["token"],
            token_endpoint=self.base + "/v1/oauth/token", update_token=stf.ignore_token_write, leeway=300,
        )
        self.addCleanup(self.session.close)
        self.session.leeway = 60  # what the README tells schwab-py users to do

    def write_token(self, access, left):
        doc = token_doc(access_token=access, expires_at=int(time.time()) + left)
        self.write(json.dumps(doc))
        return doc

    def test_each_newer_token_is_sent(self):
        self.session.get(self.base + "/trader/v1/accounts/accountNumbers")
        self.write_token("I0.second", 1500)
        self.session.token = self.read()["token"]
        self.session.get(self.base + "/trader/v1/accounts/accountNumbers")
        self.assertEqual(
            [r[2] for r in self.requests], ["Bearer I0.first", "Bearer I0.second"],
        )

    def test_an_expired_token_is_never_refreshed(self):
        from authlib.integrations.base_client import InvalidTokenError

        before = self.write_token("I0.stale", -5)
        self.session.token = self.read()["token"]
        with self.assertRaises(InvalidTokenError):
            self.session.get(self.base + "/trader/v1/accounts/accountNumbers")
        self.assertEqual(self.requests, [], "the session called the token endpoint or sent an expired token")
        with open(self.path) as f:
            self.assertEqual(json.load(f), before)


# A writer that rewrites the file in place the way schwab-py does
# (open(path, "w") truncates, then json.dump writes), in two chunks so that
# readers can catch it empty or cut off. It runs until the stop file exists.
WRITER = r"""
import os, random, sys, time
path, stop = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    data = f.read()
half = len(data) // 2
writes = 0
while not os.path.exists(stop):
    with open(path, "wb") as f:
        f.write(data[:half])
        f.flush()
        time.sleep(0.0002)
        f.write(data[half:])
    writes += 1
    time.sleep(random.uniform(0.001, 0.005))
print(writes)
"""


@unittest.skipUnless(
    os.environ.get("TRS_BINARY") and os.environ.get("TRS_TOKEN_FILE"),
    "needs TRS_BINARY and TRS_TOKEN_FILE: run go test ./contrib/python",
)
class TestWithRealBinary(unittest.TestCase):
    """Against a file token-refresh-sender wrote after a refresh."""

    def setUp(self):
        self.binary = os.environ["TRS_BINARY"]
        self.path = os.environ["TRS_TOKEN_FILE"]
        with open(self.path, "rb") as f:
            self.raw = json.load(f)

    def token_command(self, *args):
        return subprocess.run(
            [self.binary, "token", "--token-file", self.path] + list(args),
            capture_output=True, text=True, timeout=30,
        )

    def test_read_token_matches_the_file_and_the_token_command(self):
        doc = stf.read_token(self.path)
        self.assertEqual(doc, self.raw)
        self.assertIsInstance(doc["refresh_token_issued_at"], int)
        self.assertIsInstance(doc["creation_timestamp"], int)
        out = self.token_command()
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        self.assertEqual(out.stdout, stf.access_token(self.path) + "\n")
        self.assertEqual(out.stdout, doc["token"]["access_token"] + "\n")

    def test_token_read_func_on_the_daemons_file(self):
        got = stf.token_read_func(self.path)()
        self.assertEqual(got["creation_timestamp"], self.raw["creation_timestamp"])
        self.assertEqual(got["token"]["access_token"], self.raw["token"]["access_token"])
        self.assertEqual(got["token"]["expires_at"], self.raw["token"]["expires_at"])
        self.assertEqual(got["token"]["token_type"], "Bearer")
        self.assertNotIn("refresh_token", got["token"])
        self.assertNotIn(self.raw["token"]["refresh_token"], json.dumps(got))

    def test_torn_read_race_with_an_in_place_writer(self):
        tmp = tempfile.mkdtemp(prefix="stf-race")
        self.addCleanup(shutil.rmtree, tmp)
        path = os.path.join(tmp, "schwab_tokens.json")
        shutil.copyfile(self.path, path)
        stop = os.path.join(tmp, "stop")
        writer = subprocess.Popen([sys.executable, "-c", WRITER, path, stop], stdout=subprocess.PIPE, text=True)

        def stop_writer():
            open(stop, "w").close()
            try:
                return int(writer.communicate(timeout=30)[0])
            finally:
                if writer.poll() is None:
                    writer.kill()
                    writer.wait()

        self.addCleanup(lambda: writer.poll() is None and stop_writer())

        # Without retries the race shows: some single reads fail. The limit
        # is a safety net, not a timing assertion.
        torn, single_reads, deadline = 0, 0, time.monotonic() + 20
        while torn == 0 and time.monotonic() < deadline:
            single_reads += 1
            try:
                stf.read_token(path, tries=1)
            except stf.TokenFileError:
                torn += 1
        self.assertGreater(torn, 0, "the writer never produced a torn read in %d reads" % single_reads)

        # With the default retries every read gets the whole file, and so
        # does the token command.
        retried = Sleeps(lambda n: time.sleep(stf.PAUSE))
        for _ in range(200):
            self.assertEqual(stf.read_token(path, sleep=retried), self.raw)
        for _ in range(10):
            out = self.token_command_on(path)
            self.assertEqual((out.returncode, out.stderr), (0, ""))
            self.assertEqual(out.stdout, self.raw["token"]["access_token"] + "\n")
        writes = stop_writer()
        self.assertGreater(writes, 0)
        with open(path, "rb") as f:
            self.assertEqual(json.load(f), self.raw)

    def token_command_on(self, path):
        return subprocess.run(
            [self.binary, "token", "--token-file", path],
            capture_output=True, text=True, timeout=30,
        )


if __name__ == "__main__":
    unittest.main()
