package tokenfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/renameio/v2"
	tokensender "github.com/schwabtools/token-refresh-sender"
)

func testDoc(tb testing.TB) *Document {
	tb.Helper()
	now := time.Unix(1762990000, 0)
	return New(tokensender.Token{AccessToken: "SECRET-A", RefreshToken: "SECRET-R", ExpiresIn: 1800,
		ExpiresAt: now.Add(30 * time.Minute)}, now)
}

func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite_Mode(t *testing.T) {
	tests := []struct {
		name     string
		existing os.FileMode // 0: no file yet
		want     os.FileMode
	}{
		{"new file is 0600", 0, 0o600},
		{"existing 0600 kept", 0o600, 0o600},
		{"existing 0640 made 0600", 0o640, 0o600},
		{"existing 0644 made 0600", 0o644, 0o600},
		{"existing 0400 in a writable directory replaced", 0o400, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tokens.json")
			if tt.existing != 0 {
				mustWriteFile(t, path, validDoc, tt.existing)
			}
			d := testDoc(t)
			if err := Write(path, d); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode = %04o, want %04o", got, tt.want)
			}
			if got := string(mustReadFile(t, path)); got != string(d.Marshal()) {
				t.Errorf("content =\n%s\nwant\n%s", got, d.Marshal())
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"tokens.json"}) {
				t.Errorf("directory holds %v, want only tokens.json", names)
			}
		})
	}
}

func TestWrite_FailureKeepsOldFile(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	tests := []struct {
		name    string
		ops     func(ops writeOps) writeOps
		wantErr string
	}{
		{
			name: "write fails half way",
			ops: func(ops writeOps) writeOps {
				ops.write = func(f *renameio.PendingFile, data []byte) error {
					if _, err := f.Write(data[:len(data)/2]); err != nil {
						return err
					}
					return enospc
				}
				return ops
			},
			wantErr: "token file %s: cannot write: no space left on device; the file on disk was not changed",
		},
		{
			name: "rename fails",
			ops: func(ops writeOps) writeOps {
				ops.replace = func(f *renameio.PendingFile) error {
					if err := f.Sync(); err != nil {
						return err
					}
					return &os.LinkError{Op: "rename", Old: f.Name(), New: "x", Err: syscall.EXDEV}
				}
				return ops
			},
			wantErr: "token file %s: cannot write: invalid cross-device link; the file on disk was not changed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tokens.json")
			mustWriteFile(t, path, validDoc, 0o640)
			err := writeFile(path, testDoc(t).Marshal(), 0o600, tt.ops(defaultWriteOps()))
			want := strings.Replace(tt.wantErr, "%s", path, 1)
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if got := string(mustReadFile(t, path)); got != validDoc {
				t.Errorf("old file changed:\n%s", got)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
				t.Errorf("old file mode changed to %04o", fi.Mode().Perm())
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"tokens.json"}) {
				t.Errorf("temporary file left behind: %v", names)
			}
		})
	}
}

func TestWrite_MissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "tokens.json")
	err := Write(path, testDoc(t))
	want := "token file " + path + ": cannot write: no such file or directory; the file on disk was not changed"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestWrite_DirSyncFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	ops := defaultWriteOps()
	var synced string
	ops.syncDir = func(d string) error {
		synced = d
		return &os.PathError{Op: "sync", Path: d, Err: syscall.EIO}
	}
	d := testDoc(t)
	err := writeFile(path, d.Marshal(), 0o600, ops)
	if err == nil || !strings.Contains(err.Error(), "written, but syncing directory "+dir+" failed: input/output error") {
		t.Fatalf("err = %v", err)
	}
	if synced != dir {
		t.Errorf("synced directory %q, want %q", synced, dir)
	}
	if got := string(mustReadFile(t, path)); got != string(d.Marshal()) {
		t.Errorf("file not written before the directory sync")
	}
}

func TestWrite_SymlinkKept(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "tokens.json")
	if err := os.Mkdir(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	mustWriteFile(t, real, validDoc, 0o600)
	link := filepath.Join(dir, "tokens.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	d := testDoc(t)
	if err := Write(link, d); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced by a %v", fi.Mode())
	}
	if got := string(mustReadFile(t, real)); got != string(d.Marshal()) {
		t.Errorf("link target not updated:\n%s", got)
	}
}

func TestWrite_KeepsOwnerAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give files to another user")
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)
	if err := os.Chown(path, 4321, 4322); err != nil {
		t.Skipf("chown not supported here: %v", err)
	}
	if err := Write(path, testDoc(t)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4321 || st.Gid != 4322 {
		t.Errorf("owner = %d:%d, want 4321:4322", st.Uid, st.Gid)
	}
}

func TestCleanStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)

	// A real temporary file name from Write, left behind as by a crash
	// between creating it and the rename.
	var crashTemp string
	ops := defaultWriteOps()
	ops.write = func(f *renameio.PendingFile, data []byte) error {
		crashTemp = f.Name()
		if err := os.Link(f.Name(), f.Name()+".copy"); err != nil {
			return err
		}
		return errors.New("simulated crash")
	}
	if err := writeFile(path, testDoc(t).Marshal(), 0o600, ops); err == nil {
		t.Fatal("simulated crash: writeFile succeeded")
	}
	if err := os.Rename(crashTemp+".copy", crashTemp); err != nil {
		t.Fatal(err)
	}

	keep := []string{
		"tokens.json", "tokens.json.lock", ".tokens.json", ".tokens.jsonabc", ".tokens.json12.bak",
		".other.json123", "tokens.json123", ".tokens.json12345678901234567890",
	}
	for _, name := range keep[1:] {
		mustWriteFile(t, filepath.Join(dir, name), "x", 0o600)
	}
	if err := os.Mkdir(filepath.Join(dir, ".tokens.json456"), 0o700); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, ".tokens.json456")
	mustWriteFile(t, filepath.Join(dir, ".tokens.json789"), "x", 0o600)
	mustWriteFile(t, filepath.Join(dir, ".tokens.json1234567890123456789"), "x", 0o600) // 19 digits: the longest

	removed, err := CleanStaleTemps(path)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{crashTemp, filepath.Join(dir, ".tokens.json789"), filepath.Join(dir, ".tokens.json1234567890123456789")}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	got := dirNames(t, dir)
	slices.Sort(keep)
	if !slices.Equal(got, keep) {
		t.Errorf("left %v, want %v", got, keep)
	}
}

func TestCleanStaleTemps_MissingDirectory(t *testing.T) {
	_, err := CleanStaleTemps(filepath.Join(t.TempDir(), "gone", "tokens.json"))
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("err = %v", err)
	}
}
