// Package tokenfile reads and writes the token file (configs/schwab_tokens.json)
// in the layout schwab-py uses:
//
//	{
//	    "creation_timestamp": 1762983055,
//	    "refresh_token_issued_at": 1762983055,
//	    "token": {
//	        "expires_in": 1800,
//	        "token_type": "Bearer",
//	        "scope": "api",
//	        "refresh_token": "...",
//	        "access_token": "...",
//	        "id_token": "...",
//	        "expires_at": 1762984855
//	    }
//	}
//
// A [Document] keeps every key it does not know, at the top level and inside
// "token", in the order the file had them, so other tools' data survives a
// refresh. [Write] replaces the file atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory) with mode 0600 or the
// chosen 0640, never the old file's looser mode, never through a symlink to
// another user's file, and never leaves a half written file. Reads retry a
// file caught in the middle of another program's in-place write.
//
// [Store] is what the commands use: Load, and Update, which runs one
// read-modify-write cycle under an flock on "<path>.lock". [Instance] is the
// daemon's claim on the file (an flock on "<path>.pid", which records its
// pid) with its start-up housekeeping and the watcher. Lock and pid files
// are created 0600 and opened without following symlinks; one that is not a
// private regular file of this user (or root) is refused. Every wait for a
// lock is bounded and, when it runs out, names the pid holding it.
//
// Errors are single lines that name the file, say what is wrong and how to
// fix it. No error ever contains a token value.
package tokenfile
