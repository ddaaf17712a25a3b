"""Read the Schwab token file that token-refresh-sender keeps fresh.

Standard library only; copy this one file next to your dashboard or script.

token-refresh-sender is the one process that refreshes the token. Everything
else reads the file and never writes it:

    from schwab_token_file import read_token, access_token
    doc = read_token("configs/schwab_tokens.json")      # the whole file, a dict
    bearer = access_token("configs/schwab_tokens.json")  # str, valid >= 60 s

With schwab-py, pass token_read_func(path) and ignore_token_write to
schwab.auth.client_from_access_functions (see README.md next to this file).

The daemon replaces the file by an atomic rename, so a read normally sees a
whole file. Another program (schwab-py itself) may rewrite it in place, and a
read can then catch it empty or cut off: read_token re-reads such a file a few
times over about 100 ms before it gives up with TokenFileError. No error
message contains a token.
"""

import json
import time

__all__ = [
    "TokenFileError",
    "read_token",
    "access_token",
    "token_read_func",
    "ignore_token_write",
]

# A read that finds the file empty or malformed is retried TRIES times in all,
# PAUSE seconds apart: about 100 ms before it counts as a bad file.
TRIES = 6
PAUSE = 0.02

# A token file is well under 4 KiB; anything above this is the wrong file.
MAX_FILE_SIZE = 1 << 20


class TokenFileError(Exception):
    """The token file is missing, unreadable, or not a usable token file.

    The message is one line naming the file, what is wrong and how to fix it.
    It never contains a token.
    """


def _load_once(path):
    """Read and parse path once. Returns (doc, None) or (None, problem)."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_SIZE + 1)
    if len(data) > MAX_FILE_SIZE:
        return None, "larger than 1 MiB, so not a token file; check the path"
    if not data.strip():
        return None, "is empty"
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        # str(err) names the position, never the document's text.
        return None, "malformed JSON (%s)" % _position(err)
    if not isinstance(doc, dict):
        return None, "top level must be a JSON object"
    token = doc.get("token")
    if not isinstance(token, dict):
        return None, "the token object is missing"
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        return None, "token.access_token is missing or empty"
    expires_at = token.get("expires_at")
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        return None, "token.expires_at is missing or not a number"
    return doc, None


def _position(err):
    if isinstance(err, json.JSONDecodeError):
        return "line %d, column %d: %s" % (err.lineno, err.colno, err.msg)
    return "not UTF-8"


def read_token(path, *, tries=TRIES, pause=PAUSE, sleep=time.sleep):
    """Return the token file at path as a dict (the schwab-py layout).

    An empty, cut-off or otherwise unusable file is read again, up to `tries`
    reads `pause` seconds apart (about 100 ms by default), since another
    program may be in the middle of rewriting it in place. A missing or
    unreadable file is reported at once. Raises TokenFileError.
    """
    problem = None
    for attempt in range(1, tries + 1):
        try:
            doc, problem = _load_once(path)
        except FileNotFoundError:
            raise TokenFileError(
                "token file %s: not found; run token-refresh-sender login to create it" % path
            ) from None
        except OSError as err:
            raise TokenFileError(
                "token file %s: cannot read: %s" % (path, err.strerror or err)
            ) from None
        if problem is None:
            return doc
        if attempt < tries:
            sleep(pause)
    raise TokenFileError(
        "token file %s: %s (still after %d reads); is token-refresh-sender running? "
        "check it with token-refresh-sender status" % (path, problem, tries)
    )


def access_token(path, min_valid=60.0, *, now=time.time, **read_options):
    """Return the access token from the file at path as a string.

    Raises TokenFileError when the file is unusable, or when the token expires
    within min_valid seconds (the daemon refreshes it 5 minutes before
    expiry, so that means the daemon is not doing its job).
    """
    token = read_token(path, **read_options)["token"]
    left = token["expires_at"] - now()
    if left <= 0 or left < min_valid:
        state = "expired %d s ago" % -left if left <= 0 else "expires in %d s" % left
        raise TokenFileError(
            "token file %s: the access token %s (want at least %g s); is token-refresh-sender "
            "running? check it with token-refresh-sender status" % (path, state, min_valid)
        )
    return token["access_token"]


def token_read_func(path, **read_options):
    """Return a function for schwab-py's client_from_access_functions.

    Each call reads the file (see read_token) and returns what schwab-py
    expects, {"creation_timestamp": ..., "token": {...}}, with the refresh
    token left out: a client that does not hold it cannot refresh, so it can
    never race the daemon or write a token of its own. Pair it with
    ignore_token_write.
    """

    def read():
        doc = read_token(path, **read_options)
        token = {k: v for k, v in doc["token"].items() if k != "refresh_token"}
        created = doc.get("creation_timestamp")
        if isinstance(created, bool) or not isinstance(created, (int, float)):
            # schwab-py refuses a token without it; the daemon always writes it.
            raise TokenFileError(
                "token file %s: creation_timestamp is missing or not a number; "
                "run token-refresh-sender refresh to rewrite the file" % path
            )
        return {"creation_timestamp": int(created), "token": token}

    return read


def ignore_token_write(token, *args, **kwargs):
    """A token_write_func that writes nothing: the daemon owns the file."""
    return None

