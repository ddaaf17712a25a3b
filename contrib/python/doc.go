// Package python holds the Python helper for dashboards and scripts:
// schwab_token_file.py (standard library only) reads the token file that
// token-refresh-sender keeps fresh and plugs into schwab-py's
// client_from_access_functions. The package has no Go API; its test builds
// the real binary, lets it refresh a token against the fake Schwab, and runs
// the Python unittest suite on the file it wrote.
package python
