package tokenfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// ErrAlreadyRunning means another daemon holds the token file.
var ErrAlreadyRunning = errors.New("another token-refresh-sender is already running")

// ClaimDaemon makes this process the only daemon for the token file at
// path, by holding an exclusive lock on "<path>.pid" (which records its
// pid) for as long as it runs. A second daemon gets ErrAlreadyRunning with
// the first one's pid. The lock is separate from Lock's, so `refresh`,
// `send`, `status` and `login` keep working beside the daemon. The pid file
// is left in place on release: the lock, not the file, is what counts.
func ClaimDaemon(path string) (release func() error, err error) {
	pidPath := resolve(path) + ".pid"
	fl := flock.New(pidPath, flock.SetPermissions(0o600))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("token file %s: cannot lock %s: %s", path, pidPath, reason(err))
	}
	if !ok {
		pid := "unknown pid"
		if b, err := os.ReadFile(pidPath); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				pid = "pid " + strconv.Itoa(n)
			}
		}
		return nil, fmt.Errorf("%w for %s (%s)", ErrAlreadyRunning, path, pid)
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		fl.Unlock()
		return nil, fmt.Errorf("token file %s: write %s: %s", path, pidPath, reason(err))
	}
	return fl.Unlock, nil
}
