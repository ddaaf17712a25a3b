package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"golang.org/x/sys/unix"
)

// otherUID makes file p belong to "another user" as this test sees it:
// really (chown, as root) or by pretending we are someone else (returns
// the euid to use).
func otherUID(tb testing.TB, p string) int {
	tb.Helper()
	if os.Geteuid() == 0 {
		if err := os.Lchown(p, 65534, 65534); err != nil {
			tb.Fatal(err)
		}
		return 0
	}
	return os.Geteuid() + 1
}

func testLocker(euid int) locker {
	l := defaultLocker()
	l.euid = euid
	return l
}

func TestLocker_refusesUnsafeFiles(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, name string) (euid int)
		why   string
	}{
		{"symlink to a victim file", func(t *testing.T, name string) int {
			victim := filepath.Join(filepath.Dir(name), "victim")
			mustWriteFile(t, victim, "precious", 0o644)
			if err := os.Symlink(victim, name); err != nil {
				t.Fatal(err)
			}
			return os.Geteuid()
		}, "it is a symbolic link"},
		{"dangling symlink", func(t *testing.T, name string) int {
			if err := os.Symlink(filepath.Join(filepath.Dir(name), "created-by-us"), name); err != nil {
				t.Fatal(err)
			}
			return os.Geteuid()
		}, "it is a symbolic link"},
		{"FIFO", func(t *testing.T, name string) int {
			if err := unix.Mkfifo(name, 0o600); err != nil {
				t.Fatal(err)
			}
			return os.Geteuid()
		}, "it is not a regular file"},
		{"another user's file", func(t *testing.T, name string) int {
			mustWriteFile(t, name, "", 0o600)
			return otherUID(t, name)
		}, "it belongs to uid "},
		{"hard link to a file of ours", func(t *testing.T, name string) int {
			victim := filepath.Join(filepath.Dir(name), "victim")
			mustWriteFile(t, victim, "precious", 0o600)
			if err := os.Link(victim, name); err != nil {
				t.Fatal(err)
			}
			return os.Geteuid()
		}, "it has 2 hard links"},
	}
	for _, tt := range tests {
		for _, kind := range []string{".lock", ".pid"} {
			t.Run(tt.name+" at "+kind, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "tokens.json")
				name := path + kind
				l := testLocker(tt.plant(t, name))
				var err error
				if kind == ".lock" {
					_, err = l.lockFile(context.Background(), path)
				} else {
					_, err = l.claim(path)
				}
				want := "token file " + path + ": refusing " + name + ": " + tt.why
				if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrLock) {
					t.Fatalf("err = %v, want %q...", err, want)
				}
				if !strings.HasSuffix(err.Error(), "remove it (another user may have planted it) and start again") {
					t.Errorf("no fix in %q", err)
				}
				if b, _ := os.ReadFile(filepath.Join(dir, "victim")); len(b) > 0 && string(b) != "precious" {
					t.Errorf("victim file changed to %q", b)
				}
				if _, err := os.Lstat(filepath.Join(dir, "created-by-us")); err == nil {
					t.Errorf("a file was created through the symlink")
				}
			})
		}
	}
}

func TestLocker_makesLooseLockFilePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path+".lock", "", 0o644)
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if fi, _ := os.Stat(path + ".lock"); fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestLocker_rootOwnedFileAccepted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path+".lock", "", 0o600)
	if os.Geteuid() != 0 {
		t.Skip("needs a root-owned file; covered as root in CI")
	}
	unlock, err := testLocker(4242).lockFile(context.Background(), path)
	if err != nil {
		t.Fatalf("root's lock file refused: %v", err)
	}
	unlock()
}

// holdLock takes the flock on path's lock file through another descriptor,
// as another process would.
func holdLock(tb testing.TB, path string) {
	tb.Helper()
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unlock() })
}

func TestLocker_boundedWaitNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	holdLock(t, path)
	start := time.Unix(1762990000, 0)
	now := start
	sleeps := 0
	var asked [2]uint64
	l := testLocker(os.Geteuid())
	l.wait = 2 * time.Second
	l.now = func() time.Time { return now }
	l.sleep = func(_ context.Context, d time.Duration) error { sleeps++; now = now.Add(d); return nil }
	l.holders = func(dev, ino uint64) []int { asked = [2]uint64{dev, ino}; return []int{4321, 4322} }
	var logs strings.Builder
	l.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	_, err := l.lockFile(context.Background(), path)
	if want := "level=INFO msg=\"Token file " + path + ": waiting up to 2s for lock " + path + ".lock, held by pid 4321, 4322\"\n"; logs.String() != want {
		t.Errorf("logged %q, want once %q", logs.String(), want)
	}
	want := "token file " + path + ": gave up after 2s waiting for lock " + path + ".lock, held by pid 4321, 4322; if that is not a token-refresh-sender login or refresh finishing, stop it, then try again"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrLock) {
		t.Errorf("err does not match DeadlineExceeded and ErrLock")
	}
	var lf interface{ LockFailed() bool }
	if !errors.As(err, &lf) || !lf.LockFailed() {
		t.Errorf("err does not say LockFailed")
	}
	if errors.As(invalid("x", "y"), &lf) && lf.LockFailed() {
		t.Errorf("a content error says LockFailed")
	}
	if sleeps != 40 {
		t.Errorf("%d pauses of %v, want 40", sleeps, lockPoll)
	}
	var st unix.Stat_t
	if err := unix.Stat(path+".lock", &st); err != nil {
		t.Fatal(err)
	}
	if asked != [2]uint64{uint64(st.Dev), st.Ino} {
		t.Errorf("holders asked about %v, want the lock file's %v", asked, [2]uint64{uint64(st.Dev), st.Ino})
	}
}

func TestLocker_defaultWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	holdLock(t, path)
	var waited time.Duration
	now := time.Unix(0, 0)
	s := &Store{Path: path, Now: func() time.Time { return now },
		sleep:   func(_ context.Context, d time.Duration) error { waited += d; now = now.Add(d); return nil },
		holders: func(uint64, uint64) []int { return nil }}
	_, err := s.Update(context.Background(), func(tok tokensender.Token) (tokensender.Token, error) { return tok, nil })
	if err == nil || !strings.Contains(err.Error(), "gave up after 30s waiting for lock "+path+".lock, held by a process this user cannot see;") {
		t.Fatalf("err = %v", err)
	}
	if waited != DefaultLockWait {
		t.Errorf("waited %v, want %v", waited, DefaultLockWait)
	}
}

func TestLocker_contextEndsWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	holdLock(t, path)
	l := testLocker(os.Geteuid())
	l.sleep = func(context.Context, time.Duration) error { return context.Canceled }
	l.holders = func(uint64, uint64) []int { return []int{7} }
	_, err := l.lockFile(context.Background(), path)
	want := "token file " + path + ": gave up waiting for lock " + path + ".lock, held by pid 7 (context canceled)"
	if err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestLocker_getsLockWhenFreed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	unlockOther, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	l := testLocker(os.Geteuid())
	l.sleep = func(context.Context, time.Duration) error { return unlockOther() }
	unlock, err := l.lockFile(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after the holder let go: %v", err)
	}
	if err := unlock(); err != nil {
		t.Error(err)
	}
}

func TestProcLockHolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	holdLock(t, path)
	var st unix.Stat_t
	if err := unix.Stat(path+".lock", &st); err != nil {
		t.Fatal(err)
	}
	if got := procLockHolders(uint64(st.Dev), st.Ino); !slices.Equal(got, []int{os.Getpid()}) {
		t.Errorf("holders = %v, want [%d]", got, os.Getpid())
	}
	if got := procLockHolders(uint64(st.Dev), st.Ino+1); len(got) != 0 {
		t.Errorf("holders of another inode = %v", got)
	}
}

func TestParseLockHolders(t *testing.T) {
	dev := unix.Mkdev(0xfe, 0x01)
	locks := strings.Join([]string{
		"1: FLOCK  ADVISORY  WRITE 100 fe:01:77 0 EOF",
		"1: -> FLOCK  ADVISORY  WRITE 101 fe:01:77 0 EOF", // a waiter
		"2: POSIX  ADVISORY  WRITE 102 fe:01:78 0 EOF",    // another file
		"3: FLOCK  ADVISORY  WRITE 103 fe:02:77 0 EOF",    // another device
		"4: FLOCK  ADVISORY  READ  x fe:01:77 0 EOF",      // unreadable pid
		"5: FLOCK  ADVISORY  WRITE 105 fe:01:77 0 EOF",
		"6: FLOCK  ADVISORY  WRITE 106 fe:01:77", // no range: still a holder
		"7: FLOCK  ADVISORY  WRITE 107",
		"short line",
	}, "\n")
	if got := parseLockHolders(strings.NewReader(locks), dev, 77); !slices.Equal(got, []int{100, 105, 106}) {
		t.Errorf("holders = %v, want [100 105 106]", got)
	}
}

func TestClaim_runningPid(t *testing.T) {
	for content, want := range map[string]string{
		"":      "(pid 99)", // no pid recorded yet: /proc/locks
		"0\n":   "(pid 99)",
		"-3\n":  "(pid 99)",
		"abc\n": "(pid 99)",
		"12\n":  "(pid 12)", // the file's word first
	} {
		t.Run(strings.TrimSpace(content), func(t *testing.T) {
			testClaimRunningPid(t, content, want)
		})
	}
}

func testClaimRunningPid(t *testing.T, content, wantPid string) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	name := path + ".pid"
	mustWriteFile(t, name, content, 0o600)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	l := testLocker(os.Geteuid())
	l.holders = func(uint64, uint64) []int { return []int{99} }
	_, err = l.claim(path)
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), wantPid) {
		t.Errorf("err = %v", err)
	}
}

func TestClaim_releaseKeepsAnotherPidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	release, err := ClaimDaemon(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaced the pid file: ours is gone, theirs stays.
	if err := os.Remove(path + ".pid"); err != nil {
		t.Fatal(err)
	}
	mustWriteFile(t, path+".pid", "123\n", 0o600)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if got := string(mustReadFile(t, path+".pid")); got != "123\n" {
		t.Errorf("other pid file changed: %q", got)
	}
}

func TestLock_errorNamesTokenFile(t *testing.T) {
	// Issue 14: a lock error caused by the token file's directory names the
	// token file, not only the lock file.
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	mustWriteFile(t, notDir, "", 0o600)
	path := filepath.Join(notDir, "tokens.json")
	_, err := Lock(context.Background(), path)
	want := "token file " + path + ": cannot open " + path + ".lock: not a directory; check that the token file's directory exists and is writable by this user"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if _, err := ClaimDaemon(path); err == nil || !strings.HasPrefix(err.Error(), "token file "+path+": cannot open "+path+".pid") {
		t.Errorf("claim err = %v", err)
	}
}

func TestWrite_newInodeEachTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)
	var before unix.Stat_t
	if err := unix.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	// A reader holding the old file keeps reading the old content.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := Write(path, testDoc(t)); err != nil {
		t.Fatal(err)
	}
	var after unix.Stat_t
	if err := unix.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino == before.Ino {
		t.Errorf("file rewritten in place (same inode %d)", after.Ino)
	}
	buf := make([]byte, len(validDoc)+10)
	n, _ := old.ReadAt(buf, 0)
	if string(buf[:n]) != validDoc {
		t.Errorf("old inode's content changed")
	}
}

func TestWrite_refusesSpecialFiles(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(t *testing.T, p string)
		what string
	}{
		{"FIFO", func(t *testing.T, p string) {
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "named pipe"},
		{"socket", func(t *testing.T, p string) {
			ln, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { ln.Close() })
		}, "socket"},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "tf")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			path := filepath.Join(dir, "t.json")
			tt.make(t, path)
			before, _ := os.Lstat(path)
			err = Write(path, testDoc(t))
			if err == nil || !strings.Contains(err.Error(), "refusing to replace "+path+": it is not a regular file") {
				t.Fatalf("err = %v", err)
			}
			after, _ := os.Lstat(path)
			if after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Errorf("%s replaced", tt.what)
			}
		})
	}
}

func TestWrite_symlinkToAnotherUsersFileRefused(t *testing.T) {
	for _, what := range []string{"target", "target's directory", "dangling target's directory"} {
		t.Run(what, func(t *testing.T) {
			dir := t.TempDir()
			theirs := filepath.Join(dir, "theirs")
			if err := os.Mkdir(theirs, 0o777); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(theirs, "tokens.json")
			if what != "dangling target's directory" {
				mustWriteFile(t, target, "theirs", 0o666)
			}
			owned := target
			if what != "target" {
				owned = theirs
			}
			ops := defaultWriteOps()
			if euid := otherUID(t, owned); euid != 0 {
				ops.euid = euid
			}
			link := filepath.Join(dir, "link.json")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			err := writeFile(link, testDoc(t).Marshal(), 0o600, ops)
			want := "token file " + link + ": refusing to write through the symbolic link to " + target + ": " + owned + " belongs to uid "
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant %s...", err, want)
			}
			if b, _ := os.ReadFile(target); len(b) > 0 && string(b) != "theirs" {
				t.Errorf("their file now holds %q", b)
			}
			if what == "dangling target's directory" {
				if _, err := os.Lstat(target); err == nil {
					t.Errorf("file created through the link")
				}
			}
		})
	}
}

func TestWrite_danglingSymlinkOfOursCreatesTarget(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("real.json", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "link.json"), testDoc(t)); err != nil {
		t.Fatal(err)
	}
	if got := string(mustReadFile(t, filepath.Join(dir, "real.json"))); got != string(testDoc(t).Marshal()) {
		t.Errorf("target holds %q", got)
	}
}

func TestWrite_syncsDirectoryAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	ops := defaultWriteOps()
	var synced []string
	ops.syncDir = func(d string) error {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("directory synced before the rename: %v", err)
		}
		synced = append(synced, d)
		return nil
	}
	if err := writeFile(path, testDoc(t).Marshal(), 0, ops); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{dir}) {
		t.Errorf("synced %v, want [%s]", synced, dir)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode 0 gave %04o, want 0600", fi.Mode().Perm())
	}
}

func TestSyncDir(t *testing.T) {
	if err := syncDir(t.TempDir()); err != nil {
		t.Error(err)
	}
	if err := syncDir(filepath.Join(t.TempDir(), "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

func TestCheckMode(t *testing.T) {
	for mode, ok := range map[os.FileMode]bool{0o600: true, 0o640: true, 0o644: false, 0o660: false, 0o602: false,
		0o700: false, 0o400: false, 0o604: false, 0o620: false, 0o1600: false} {
		if err := CheckMode(mode); (err == nil) != ok {
			t.Errorf("CheckMode(%04o) = %v", mode, err)
		}
	}
	err := CheckMode(0o644)
	if want := "token file mode 0644 is not allowed: a token file must not be readable or writable by other users or writable by the group; use 0600 (owner only) or 0640 (owner, group may read)"; err.Error() != want {
		t.Errorf("err = %v", err)
	}
}

func TestParseMode(t *testing.T) {
	if m, err := ParseMode("0640"); m != 0o640 || err != nil {
		t.Errorf("ParseMode(0640) = %o, %v", m, err)
	}
	if _, err := ParseMode("0644"); err == nil {
		t.Error("0644 accepted")
	}
	if _, err := ParseMode("rw"); err == nil || err.Error() != `token file mode "rw" is not an octal number; use 0600 or 0640` {
		t.Errorf("err = %v", err)
	}
}

func TestWrite_badModeWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	err := writeFile(path, []byte("{}"), 0o644, defaultWriteOps())
	if err == nil || !strings.HasPrefix(err.Error(), "token file "+path+": not written: token file mode 0644 is not allowed") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("file written")
	}
}

func TestPermissionWarnings(t *testing.T) {
	for _, tt := range []struct {
		file, dir os.FileMode
		want      []string
	}{
		{0o600, 0o700, nil},
		{0o640, 0o750, nil},
		{0o644, 0o700, []string{"Token file %f has mode 0644: other users can read or change it; run chmod 600 %f (or 640 to let the group read it)"}},
		{0o660, 0o700, []string{"Token file %f has mode 0660: other users can read or change it; run chmod 600 %f (or 640 to let the group read it)"}},
		{0o602, 0o700, []string{"Token file %f has mode 0602: other users can read or change it; run chmod 600 %f (or 640 to let the group read it)"}},
		{0o600, 0o770, []string{"Directory %d of token file %f has mode 0770: other users can replace the token file; run chmod go-w %d or move the token file to a private directory"}},
		{0o600, 0o703, []string{"Directory %d of token file %f has mode 0703: other users can replace the token file; run chmod go-w %d or move the token file to a private directory"}},
	} {
		t.Run(fmt.Sprintf("%04o in %04o", tt.file, tt.dir), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "tokens.json")
			mustWriteFile(t, path, validDoc, 0o600)
			if err := os.Chmod(path, tt.file); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.dir); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.NewReplacer("%f", path, "%d", dir).Replace(w))
			}
			if got := PermissionWarnings(path); !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
	if got := PermissionWarnings(filepath.Join(t.TempDir(), "gone", "x")); got != nil {
		t.Errorf("missing file and directory: %q", got)
	}
}

func TestCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan string)
		out := make(chan struct{}, 1)
		go coalesce(events, out)
		reported := func() bool {
			synctest.Wait()
			select {
			case <-out:
				return true
			default:
				return false
			}
		}
		// One event: reported watchSettle later, not before.
		events <- "x"
		time.Sleep(watchSettle - time.Millisecond)
		if reported() {
			t.Fatal("reported before the settle time")
		}
		time.Sleep(time.Millisecond)
		if !reported() {
			t.Fatal("not reported after the settle time")
		}
		// Nothing more without events.
		time.Sleep(time.Second)
		if reported() {
			t.Fatal("reported without an event")
		}
		// Writes every 50 ms for 2 s: the first report comes watchMaxDelay
		// after the first write, and reports keep coming.
		start := time.Now()
		var at []time.Duration
		for range 40 {
			events <- "x"
			time.Sleep(50 * time.Millisecond)
			if reported() {
				at = append(at, time.Since(start))
			}
		}
		if len(at) == 0 || at[0] != watchMaxDelay {
			t.Errorf("reports at %v; want the first at %v", at, watchMaxDelay)
		}
		for i := 1; i < len(at); i++ {
			if gap := at[i] - at[i-1]; gap > time.Second {
				t.Errorf("gap of %v between reports", gap)
			}
		}
		// A settle timer reset by each event would never have fired.
		if len(at) < 5 {
			t.Errorf("only %d reports in 2 s of writes", len(at))
		}
		close(events)
		synctest.Wait()
		if _, ok := <-out; ok {
			if _, ok := <-out; ok {
				t.Error("out not closed after events closed")
			}
		}
	})
}

func TestWatchFile_onlyTheTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := watchFile(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Foreign files first, then the token file: the first event reported
	// must be the token file's.
	mustWriteFile(t, filepath.Join(dir, "other.json"), "{}", 0o600)
	mustWriteFile(t, path+".lock", "", 0o600)
	if err := Write(path, testDoc(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-events:
		if name != path {
			t.Errorf("first event for %s, want %s", name, path)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the token file within 10 s")
	}
	cancel()
	for range events {
	}
}

func TestWatchFile_errors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "tokens.json")
	_, err := Watch(context.Background(), path, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "watch token file "+path+": watch directory "+filepath.Dir(path)+": no such file or directory") {
		t.Errorf("err = %v", err)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// A token path that is another user's symlink into a file (or directory)
// of theirs makes neither a lock nor a pid file where they chose: both are
// refused before anything is created, and the token file's own refusal is
// the error.
func TestLocker_tokenSymlinkToAnotherUsersFileCreatesNothing(t *testing.T) {
	for _, kind := range []string{"lock", "pid"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			theirs := filepath.Join(dir, "theirs")
			if err := os.Mkdir(theirs, 0o777); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(theirs, "evil.json")
			mustWriteFile(t, target, "{}", 0o666)
			euid := otherUID(t, target)
			otherUID(t, theirs)
			path := filepath.Join(dir, "schwab_tokens.json")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			l := testLocker(euid)
			var err error
			if kind == "lock" {
				_, err = l.lockFile(t.Context(), path)
			} else {
				_, err = l.claim(path)
			}
			want := "token file " + path + ": refusing to write through the symbolic link to " + target
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err %v, want %q", err, want)
			}
			if _, err := os.Lstat(target + "." + kind); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s file created next to the other user's file: %v", kind, err)
			}
			if err := CheckWriteTarget(path); os.Geteuid() == 0 && (err == nil || !strings.HasPrefix(err.Error(), want)) {
				t.Errorf("CheckWriteTarget: %v, want %q", err, want)
			}
		})
	}
}

// A lock wait that runs out at start-up is only a WARNING: the holder may
// be a refresh finishing; the daemon starts.
func TestInstance_OpenWarnsWhenLockWaitRunsOut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schwab_tokens.json")
	mustWriteFile(t, path, "{}", 0o600)
	unlock, err := Lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var logs strings.Builder
	inst := &Instance{Store: &Store{Path: path, LockWait: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}}
	if err := inst.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v, want only a warning", err)
	}
	defer inst.Close()
	if !strings.Contains(logs.String(), "level=WARN msg=\"token file "+path+": gave up after") {
		t.Errorf("no warning:\n%s", logs.String())
	}
}

// When the open itself fails (Linux: EACCES for another user's symlink in
// a sticky directory, the case of /tmp), the error still says what was
// planted, so that it reads as a refusal, not as a permission problem.
func TestLocker_openFailureNamesPlantedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schwab_tokens.json")
	name := path + ".lock"
	var euid int
	var why string
	if os.Geteuid() == 0 {
		// Another user's symlink in a sticky world-writable directory.
		if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "victim"), name); err != nil {
			t.Fatal(err)
		}
		euid = otherUID(t, name)
		why = "it is a symbolic link"
	} else {
		// A file we cannot open, of "another user".
		mustWriteFile(t, name, "", 0o000)
		euid = os.Geteuid() + 1
		why = fmt.Sprintf("it belongs to uid %d", os.Geteuid())
	}
	_, err := testLocker(euid).lockFile(t.Context(), path)
	want := "token file " + path + ": refusing " + name + ": " + why
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, errRefused) {
		t.Fatalf("err %v, want a refusal %q", err, want)
	}
	if _, err := os.Lstat(filepath.Join(dir, "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
}

// CheckLockFile refuses what Lock would refuse, creates a missing lock
// file 0600 like Lock, and takes no lock.
func TestCheckLockFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schwab_tokens.json")
	if err := CheckLockFile(path); err != nil {
		t.Fatalf("fresh directory: %v", err)
	}
	fi, err := os.Stat(path + ".lock")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file %v (%v), want 0600", fi, err)
	}
	unlock, err := Lock(t.Context(), path) // not held by CheckLockFile
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	os.Remove(path + ".lock")
	if err := os.Symlink(filepath.Join(dir, "victim"), path+".lock"); err != nil {
		t.Fatal(err)
	}
	err = CheckLockFile(path)
	want := "token file " + path + ": refusing " + path + ".lock: it is a symbolic link"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("planted link: %v, want %q", err, want)
	}
	if _, err := os.Lstat(filepath.Join(dir, "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
}
