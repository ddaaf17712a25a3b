package tokenfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// PermissionWarnings checks who else could read or change the token file
// at path and returns one line per problem, each naming the path and the
// fix, for the caller to log as a WARNING: the file readable by others or
// writable by group or others, and its directory writable by group or
// others (someone could replace the file). A file or directory that cannot
// be inspected gives no warning (the commands report that themselves).
func PermissionWarnings(path string) []string {
	var warns []string
	if fi, err := os.Stat(path); err == nil {
		if m := fi.Mode().Perm(); m&0o026 != 0 {
			warns = append(warns, fmt.Sprintf(
				"Token file %s has mode %04o: other users can read or change it; run chmod 600 %s (or 640 to let the group read it)",
				path, m, path))
		}
	}
	dir := filepath.Dir(resolve(path))
	if fi, err := os.Stat(dir); err == nil {
		if m := fi.Mode().Perm(); m&0o022 != 0 {
			warns = append(warns, fmt.Sprintf(
				"Directory %s of token file %s has mode %04o: other users can replace the token file; run chmod go-w %s or move the token file to a private directory",
				dir, path, m, dir))
		}
	}
	return warns
}
