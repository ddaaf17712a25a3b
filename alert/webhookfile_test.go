package alert

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const testWebhook = "https://hooks.slack.com/services/T000/B000/XXXXwebhooksecretXXXX"

// writeFile creates path with data and exactly mode perm.
func writeFile(tb testing.TB, path, data string, perm os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		tb.Fatal(err)
	}
}

func TestReadWebhookFile(t *testing.T) {
	dir := t.TempDir()
	me := os.Geteuid()
	tests := []struct {
		name    string
		setup   func(path string)
		uid     int
		want    string
		wantErr string // the error after "--notify-webhook-file PATH: "
	}{
		{name: "0600 with newline", setup: func(p string) { writeFile(t, p, testWebhook+"\n", 0o600) }, uid: me, want: testWebhook},
		{name: "0400, blank around", setup: func(p string) { writeFile(t, p, "\n  "+testWebhook+" \r\n\n", 0o400) }, uid: me, want: testWebhook},
		{name: "missing", setup: func(string) {}, uid: me,
			wantErr: "no such file; write the webhook URL into it (chmod 600) or leave the flag out"},
		{name: "0640", setup: func(p string) { writeFile(t, p, testWebhook, 0o640) }, uid: me,
			wantErr: "mode 0640 lets others read or change the webhook URL; run: chmod 600 "},
		{name: "0644", setup: func(p string) { writeFile(t, p, testWebhook, 0o644) }, uid: me,
			wantErr: "mode 0644 lets others read or change the webhook URL; run: chmod 600 "},
		{name: "0700", setup: func(p string) { writeFile(t, p, testWebhook, 0o700) }, uid: me,
			wantErr: "mode 0700 lets others read or change the webhook URL; run: chmod 600 "},
		{name: "0602", setup: func(p string) { writeFile(t, p, testWebhook, 0o602) }, uid: me,
			wantErr: "mode 0602 lets others read or change the webhook URL; run: chmod 600 "},
		{name: "another user's file", setup: func(p string) { writeFile(t, p, testWebhook, 0o600) }, uid: me + 1,
			wantErr: "not by this user"},
		{name: "empty", setup: func(p string) { writeFile(t, p, " \n", 0o600) }, uid: me,
			wantErr: "empty; write the webhook URL into it, such as https://hooks.slack.com/services/T000/B000/XXXX"},
		{name: "two lines", setup: func(p string) { writeFile(t, p, testWebhook+"\nhttps://example.com/x\n", 0o600) }, uid: me,
			wantErr: "holds more than one line; put only the webhook URL in the file"},
		{name: "carriage return inside", setup: func(p string) { writeFile(t, p, testWebhook+"\rx", 0o600) }, uid: me,
			wantErr: "holds more than one line; put only the webhook URL in the file"},
		{name: "too large", setup: func(p string) { writeFile(t, p, strings.Repeat("a", maxWebhookFile+1), 0o600) }, uid: me,
			wantErr: "larger than 4096 bytes, so not a webhook URL; put only the URL in the file"},
		{name: "largest allowed", setup: func(p string) { writeFile(t, p, strings.Repeat("a", maxWebhookFile), 0o600) }, uid: me,
			want: strings.Repeat("a", maxWebhookFile)},
		{name: "directory", setup: func(p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, uid: me, wantErr: "not a regular file; put the webhook URL in a plain file (chmod 600)"},
		{name: "fifo", setup: func(p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, uid: me, wantErr: "not a regular file; put the webhook URL in a plain file (chmod 600)"},
		{name: "symlink to a good file", setup: func(p string) {
			target := p + ".target"
			writeFile(t, target, testWebhook, 0o600)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}, uid: me, wantErr: "it must be a regular file of yours, not a symlink"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "hook"+string(rune('a'+i)))
			tt.setup(path)
			got, err := readWebhookFile(path, tt.uid)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("readWebhookFile = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("readWebhookFile = %q, nil; want an error containing %q", got, tt.wantErr)
			}
			prefix := "--notify-webhook-file " + path + ": "
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.wantErr) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line %q...%q", msg, prefix, tt.wantErr)
			}
			if strings.Contains(err.Error(), "webhooksecret") {
				t.Errorf("error shows the webhook URL: %v", err)
			}
		})
	}
}

// TestReadWebhookFile_ownerMessage pins the whole ownership line.
func TestReadWebhookFile_ownerMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hook")
	writeFile(t, path, testWebhook, 0o600)
	me := os.Geteuid()
	_, err := readWebhookFile(path, me+7)
	want := "--notify-webhook-file " + path + ": owned by uid " + strconv.Itoa(me) + ", not by this user (uid " + strconv.Itoa(me+7) +
		"); the file must be yours: create it as this user and chmod 600"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestReadWebhookFile_otherUID acts it out for real where we may chown: a
// 0600 file owned by another user (uid 65534) is refused by ReadWebhookFile.
func TestReadWebhookFile_otherUID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hook")
	writeFile(t, path, testWebhook, 0o600)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Skipf("cannot chown to another uid without root: %v (the unit form above covers the rule)", err)
	}
	if got, err := ReadWebhookFile(path); err == nil || !strings.Contains(err.Error(), "owned by uid 65534, not by this user") {
		t.Fatalf("ReadWebhookFile = %q, %v; want it refused as another user's file", got, err)
	}
	if err := os.Chown(path, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadWebhookFile(path); err != nil || got != testWebhook {
		t.Fatalf("own file: ReadWebhookFile = %q, %v", got, err)
	}
}
