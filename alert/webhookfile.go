package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxWebhookFile bounds what ReadWebhookFile reads: a webhook URL is a few
// hundred bytes.
const maxWebhookFile = 4096

// ReadWebhookFile reads the webhook URL from path (--notify-webhook-file):
// a regular file owned by this user with mode 0600 or 0400, holding the URL
// on one line (surrounding blank space and a final newline are fine).
// Anything else is refused with one line naming the file and the fix; the
// URL itself never appears in an error.
func ReadWebhookFile(path string) (string, error) {
	return readWebhookFile(path, os.Geteuid())
}

// readWebhookFile is ReadWebhookFile for the user uid.
func readWebhookFile(path string, uid int) (string, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("--notify-webhook-file %s: %s", path, fmt.Sprintf(format, args...))
	}
	f, err := openNoFollow(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", fail("no such file; write the webhook URL into it (chmod 600) or leave the flag out")
		}
		return "", fail("cannot open (%v); it must be a regular file of yours, not a symlink", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fail("cannot read: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fail("not a regular file; put the webhook URL in a plain file (chmod 600)")
	}
	if owner, ok := fileOwner(fi); ok && owner != uid {
		return "", fail("owned by uid %d, not by this user (uid %d); the file must be yours: create it as this user and chmod 600", owner, uid)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 && perm != 0o400 {
		return "", fail("mode %04o lets others read or change the webhook URL; run: chmod 600 %s", perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxWebhookFile+1))
	if err != nil {
		return "", fail("cannot read: %v", err)
	}
	if len(data) > maxWebhookFile {
		return "", fail("larger than %d bytes, so not a webhook URL; put only the URL in the file", maxWebhookFile)
	}
	line := string(bytes.TrimSpace(data))
	switch {
	case line == "":
		return "", fail("empty; write the webhook URL into it, such as https://hooks.slack.com/services/T000/B000/XXXX")
	case strings.ContainsAny(line, "\r\n"):
		return "", fail("holds more than one line; put only the webhook URL in the file")
	}
	return line, nil
}
