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
// directory, fsync, rename, fsync of the directory) and never leaves a half
// written file; [Lock] and [Update] serialise read-modify-write cycles across
// processes with an flock on "<path>.lock".
//
// Errors are single lines that name the file, say what is wrong and how to
// fix it. No error ever contains a token value.
package tokenfile
