//go:build cluster

package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// recordStore is the etcd record as the leader's refresh loop sees it (a
// daemon.Store), in memory.
type recordStore struct {
	mu  sync.Mutex
	tok tokensender.Token
}

var _ daemon.Store = (*recordStore)(nil)

func (s *recordStore) Load(context.Context) (tokensender.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *recordStore) Update(_ context.Context, fn func(tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, err := fn(s.tok)
	if err != nil {
		return tokensender.Token{}, err
	}
	s.tok = tok
	return tok, nil
}

// timedSchwab records when each refresh was asked for and answers with a
// token of the given lifetime.
type timedSchwab struct {
	mu       sync.Mutex
	lifetime time.Duration
	at       []time.Time
}

func (f *timedSchwab) Refresh(_ context.Context, rt string) (tokensender.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at = append(f.at, time.Now())
	return tokensender.Token{AccessToken: "new-access-token", RefreshToken: rt, ExpiresIn: int64(f.lifetime / time.Second)}, nil
}

func (f *timedSchwab) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A new leader continues from the record: it refreshes at once only when
// the record's token is due (its usual refresh time has passed, or it
// expired, or its lifetime is unknown); otherwise it waits until the time
// the previous leader would have refreshed. SIGUSR1 still refreshes at
// once. The loop of a term prints no banner. (Fake clock: testing/synctest.)
func TestClusterBuild_newLeaderRefreshesOnlyWhenDue(t *testing.T) {
	const lifetime = 20 * time.Second
	const interval = 8 * time.Second
	for _, tc := range []struct {
		name string
		// age is how long ago the record's token was issued; unknown
		// leaves expires_in out.
		age      time.Duration
		unknown  bool
		signal   bool
		pending  bool          // a request left over from an earlier term
		wantWait time.Duration // until the first refresh
		wantLog  string
	}{
		{name: "fresh token waits for its usual time", age: 3 * time.Second, wantWait: 5 * time.Second, wantLog: "its next refresh is due at"},
		{name: "just issued", age: 0, wantWait: interval, wantLog: "its next refresh is due at"},
		{name: "due", age: interval, wantWait: 0, wantLog: "due for a refresh"},
		{name: "overdue", age: 12 * time.Second, wantWait: 0, wantLog: "due for a refresh"},
		{name: "expired", age: time.Minute, wantWait: 0, wantLog: "due for a refresh"},
		{name: "unknown lifetime", age: 3 * time.Second, unknown: true, wantWait: 0, wantLog: "due for a refresh"},
		{name: "SIGUSR1 while fresh", age: 3 * time.Second, signal: true, wantWait: time.Second, wantLog: "Refresh requested (SIGUSR1)"},
		{name: "request left from an earlier term", age: 3 * time.Second, pending: true, wantWait: 5 * time.Second, wantLog: "its next refresh is due at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				issued := start.Add(-tc.age)
				tok := tokensender.Token{AccessToken: "record-access-token", RefreshToken: "record-refresh-token",
					ExpiresIn: int64(lifetime / time.Second), ExpiresAt: issued.Add(lifetime)}
				if tc.unknown {
					tok.ExpiresIn = 0
				}
				var out lockedBuffer
				m := &Main{
					Flags: Globals{Interval: interval, RetryMin: time.Second, RetryMax: 10 * time.Second},
					Log:   slog.New(logging.NewTextHandler(&out, slog.LevelInfo)),
					Now:   time.Now,
				}
				schwab := &timedSchwab{lifetime: lifetime}
				refreshNow := make(chan struct{}, 1)
				if tc.pending {
					refreshNow <- struct{}{}
				}
				ctx, cancel := context.WithCancel(t.Context())
				d := m.leaderLoop(ctx, &recordStore{tok: tok}, refreshNow, nil)
				d.Refresher = schwab
				d.Alarm = daemon.PollAlarm(time.Now)
				done := make(chan error, 1)
				go func() { done <- d.Run(ctx) }()
				if tc.signal {
					time.Sleep(time.Second)
					refreshNow <- struct{}{}
				}
				time.Sleep(interval + lifetime)
				synctest.Wait()
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				at := schwab.times()
				if len(at) == 0 {
					t.Fatalf("no refresh; log:\n%s", out.String())
				}
				if got := at[0].Sub(start); got != tc.wantWait {
					t.Errorf("first refresh %v after taking over, want %v; log:\n%s", got, tc.wantWait, out.String())
				}
				log := out.String()
				if !strings.Contains(log, tc.wantLog) {
					t.Errorf("log lacks %q:\n%s", tc.wantLog, log)
				}
				if strings.Contains(log, logging.Banner) || strings.Contains(log, "Token Refresh Sender") {
					t.Errorf("a term of leadership printed the start banner:\n%s", log)
				}
				if strings.Contains(log, "record-access-token") || strings.Contains(log, "record-refresh-token") {
					t.Errorf("log holds a token:\n%s", log)
				}
			})
		})
	}
}

// firstRefresh follows the record's own schedule: one interval after the
// token was issued, capped at the expiry margin before it expires.
func TestClusterBuild_firstRefresh(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tok := func(age, lifetime time.Duration) tokensender.Token {
		return tokensender.Token{ExpiresIn: int64(lifetime / time.Second), ExpiresAt: now.Add(-age).Add(lifetime)}
	}
	for _, tc := range []struct {
		name     string
		tok      tokensender.Token
		interval time.Duration
		want     time.Time
	}{
		{"interval decides", tok(10*time.Minute, 30*time.Minute), 25 * time.Minute, now.Add(15 * time.Minute)},
		{"expiry margin decides", tok(10*time.Minute, 30*time.Minute), time.Hour, now.Add(15 * time.Minute)},
		{"interval shorter than margin", tok(10*time.Minute, 30*time.Minute), 20 * time.Minute, now.Add(10 * time.Minute)},
		{"due exactly now", tok(25*time.Minute, 30*time.Minute), 25 * time.Minute, now},
		{"one second before due", tok(25*time.Minute-time.Second, 30*time.Minute), 25 * time.Minute, now.Add(time.Second)},
		{"past due", tok(26*time.Minute, 30*time.Minute), 25 * time.Minute, now},
		{"no expires_in", tokensender.Token{ExpiresAt: now.Add(time.Hour)}, 25 * time.Minute, now},
		{"no expiry", tokensender.Token{ExpiresIn: 1800}, 25 * time.Minute, now},
	} {
		if got := firstRefresh(tc.tok, tc.interval, now); !got.Equal(tc.want) {
			t.Errorf("%s: firstRefresh = %v, want %v", tc.name, got.Sub(now), tc.want.Sub(now))
		}
	}
}

// A refresh token in the local file that no record brought is stored in
// etcd only when it is a login not older than the cluster's whose access
// token still works.
func TestClusterBuild_localLogin(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clusterLogin := now.Add(-24 * time.Hour)
	held := tokensender.Token{RefreshToken: "cluster-rt", RefreshTokenIssuedAt: clusterLogin, ExpiresAt: now.Add(10 * time.Minute)}
	login := func(at time.Time, expires time.Time) tokensender.Token {
		return tokensender.Token{RefreshToken: "local-rt", RefreshTokenIssuedAt: at, ExpiresAt: expires}
	}
	for _, tc := range []struct {
		name string
		tok  tokensender.Token
		held tokensender.Token
		want string // "" publishes
	}{
		{"newer login", login(now.Add(-time.Minute), now.Add(29*time.Minute)), held, ""},
		{"newer than a record of unknown login time", login(now.Add(-time.Minute), now.Add(29*time.Minute)), tokensender.Token{RefreshToken: "cluster-rt"}, ""},
		{"expired", login(now.Add(-time.Minute), now), held, "its access token expired"},
		{"unknown login time", login(time.Time{}, now.Add(29*time.Minute)), held, "its login time is unknown"},
		{"same second as the cluster's login", login(clusterLogin, now.Add(29*time.Minute)), held, ""},
		{"older login", login(clusterLogin.Add(-time.Second), now.Add(29*time.Minute)), held, "is older than the cluster's"},
	} {
		got := localLogin(tc.tok, tc.held, now)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: localLogin = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// recentTokens remembers the last recentKept refresh tokens, once each.
func TestClusterBuild_recentTokens(t *testing.T) {
	r := &recentTokens{}
	if r.has("rt-0") {
		t.Fatal("an empty list has a token")
	}
	for i := range recentKept {
		r.add("rt-" + string(rune('a'+i)))
		r.add("rt-" + string(rune('a'+i))) // twice: kept once
	}
	if !r.has("rt-a") || !r.has("rt-"+string(rune('a'+recentKept-1))) {
		t.Fatalf("lost a token among the last %d: %v", recentKept, r.list)
	}
	r.add("rt-z")
	if r.has("rt-a") || !r.has("rt-b") || !r.has("rt-z") || len(r.list) != recentKept {
		t.Errorf("after one more: %v, want the oldest dropped and %d kept", r.list, recentKept)
	}
}

// Applying a record keeps a newer login found in the token file (made on
// this host without --etcd-endpoints, not in etcd yet) and asks for it to
// be stored in etcd; any other token in the file is replaced by the
// record's.
func TestClusterBuild_applyRecordKeepsANewerLocalLogin(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	clusterLogin := now.Add(-48 * time.Hour)
	rec := cluster.Record{Token: tokensender.Token{AccessToken: "record-access", RefreshToken: "record-refresh", ExpiresIn: 1800,
		ExpiresAt: now.Add(30 * time.Minute), RefreshTokenIssuedAt: clusterLogin}}
	file := func(rt string, login time.Time) tokensender.Token {
		return tokensender.Token{AccessToken: "file-access", RefreshToken: rt, ExpiresIn: 1800, ExpiresAt: now.Add(29 * time.Minute), RefreshTokenIssuedAt: login}
	}
	for _, tc := range []struct {
		name    string
		file    tokensender.Token
		applied []string // refresh tokens of records applied before
		noCheck bool     // applyRecord without a localFile
		keep    bool
	}{
		{name: "newer login", file: file("local-refresh", now.Add(-time.Minute)), keep: true},
		{name: "older login", file: file("local-refresh", clusterLogin.Add(-time.Hour))},
		{name: "a record's token", file: file("earlier-record-refresh", now.Add(-time.Minute)), applied: []string{"earlier-record-refresh"}},
		{name: "same refresh token", file: file("record-refresh", now.Add(-time.Minute))},
		{name: "no check asked", file: file("local-refresh", now.Add(-time.Minute)), noCheck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "schwab_tokens.json")
			if err := tokenfile.Write(path, tokenfile.New(tc.file, now)); err != nil {
				t.Fatal(err)
			}
			var out lockedBuffer
			log := slog.New(logging.NewTextHandler(&out, slog.LevelInfo))
			m := &Main{Flags: Globals{TokenFile: path}, Log: log, Now: time.Now,
				Store: &tokenfile.Store{Path: path, Logger: log}, Sender: &delivery.Sender{Logger: log}}
			var local *localFile
			if !tc.noCheck {
				local = &localFile{recheck: make(chan struct{}, 1)}
				for _, rt := range tc.applied {
					local.recent.add(rt)
				}
				local.recent.add(rec.Token.RefreshToken)
			}
			if err := m.applyRecord(t.Context(), rec, local); err != nil {
				t.Fatal(err)
			}
			doc, err := tokenfile.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			kept := doc.Token().RefreshToken == tc.file.RefreshToken && tc.file.RefreshToken != rec.Token.RefreshToken
			if kept != tc.keep {
				t.Errorf("file kept its token: %v, want %v; log:\n%s", kept, tc.keep, out.String())
			}
			asked := false
			if local != nil {
				select {
				case <-local.recheck:
					asked = true
				default:
				}
			}
			if asked != tc.keep {
				t.Errorf("asked to store the file's login in etcd: %v, want %v", asked, tc.keep)
			}
			if tc.keep && !strings.Contains(out.String(), "holds a newer login than the token from etcd; keeping it") {
				t.Errorf("log does not say the login is kept:\n%s", out.String())
			}
		})
	}
}
