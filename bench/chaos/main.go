// Command chaos measures how well token-refresh-sender keeps a bot supplied
// with a valid access token while Schwab misbehaves, on compressed time:
// 8-second access tokens refreshed every 5 seconds (the proportions of 25
// of 30 minutes), with faults injected into a quarter of the token
// requests (5xx, connection resets, the CDN's HTML 403, 429 with
// Retry-After, truncated JSON). It runs the real refresh loop and, beside
// it through the same harness, the seed's behaviour (after a failure, wait
// for the next cycle), and prints the fraction of time the receiving bot
// held an unexpired token in each.
//
//	go run ./bench/chaos [-duration 100s]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/receiver"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

const (
	tokenLifetime = 8 * time.Second
	interval      = 5 * time.Second
	faultEvery    = 4 // 25% of token requests
)

func main() {
	duration := flag.Duration("duration", 100*time.Second, "how long each run lasts (100s: every fault kind comes up at least once)")
	verbose := flag.Bool("v", false, "print the daemon's log lines")
	flag.Parse()

	fmt.Printf("chaos: %v per run, %v access tokens refreshed every %v, faults in 1 of %d token requests\n\n",
		*duration, tokenLifetime, interval, faultEvery)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i, mode := range []string{"token-refresh-sender", "seed behaviour"} {
		wg.Go(func() {
			r, err := run(mode, *duration, *verbose)
			if err != nil {
				fmt.Fprintf(os.Stderr, "chaos: %s: %v\n", mode, err)
				os.Exit(1)
			}
			results[i] = r
		})
	}
	wg.Wait()
	fmt.Printf("%-22s %9s %9s %9s %7s  %s\n", "mode", "coverage", "lapsed", "refreshes", "faults", "faults by kind")
	for _, r := range results {
		fmt.Printf("%-22s %8.2f%% %9s %9d %7d  %s\n", r.mode, r.coverage*100, r.lapsed.Round(10*time.Millisecond), r.refreshes, r.faults, r.kinds)
	}
}

type result struct {
	mode      string
	coverage  float64
	lapsed    time.Duration
	refreshes int
	faults    int
	kinds     string
}

// held records each token the bot receives.
type held struct {
	mu        sync.Mutex
	intervals [][2]time.Time // [received, expires)
}

func (h *held) add(t receiver.Token) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.intervals = append(h.intervals, [2]time.Time{time.Now(), t.ExpiresAt})
}

// coverage is the fraction of [from, to) during which some received token
// was unexpired, and the total time without one.
func (h *held) coverage(from, to time.Time) (float64, time.Duration) {
	h.mu.Lock()
	iv := slices.Clone(h.intervals)
	h.mu.Unlock()
	sort.Slice(iv, func(i, j int) bool { return iv[i][0].Before(iv[j][0]) })
	var covered time.Duration
	cursor := from
	for _, v := range iv {
		start, end := v[0], v[1]
		if start.Before(cursor) {
			start = cursor
		}
		if end.After(to) {
			end = to
		}
		if end.After(start) {
			covered += end.Sub(start)
			cursor = end
		}
	}
	total := to.Sub(from)
	return float64(covered) / float64(total), total - covered
}

func run(mode string, duration time.Duration, verbose bool) (result, error) {
	dir, err := os.MkdirTemp("", "chaos")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)

	fake := fakeschwab.New(fakeschwab.Config{AppKey: "chaos-key", AppSecret: "chaos-secret", CallbackURL: "https://127.0.0.1:8182", AccessTokenLifetime: tokenLifetime})
	fake.SetFaultEvery(faultEvery,
		fakeschwab.Fault5xx(503), fakeschwab.FaultReset(), fakeschwab.FaultHTML403(),
		fakeschwab.FaultRateLimit(time.Second), fakeschwab.FaultTruncatedJSON())
	srv, err := fakeschwab.StartTLS(fake)
	if err != nil {
		return result{}, err
	}
	defer srv.Close()
	tokenFile := filepath.Join(dir, "schwab_tokens.json")
	if err := tokenfile.Write(tokenFile, tokenfile.New(fake.Login(), time.Now())); err != nil {
		return result{}, err
	}

	var h held
	sock := filepath.Join(dir, "bot.sock")
	bot := &receiver.Receiver{Addr: sock, OnToken: h.add}
	if err := bot.Listen(); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	botDone := make(chan error, 1)
	go func() { botDone <- bot.Serve(context.Background()) }()
	defer func() { bot.Close(); <-botDone }()

	out := os.Stdout
	if !verbose {
		out, _ = os.Open(os.DevNull)
	}
	log := slog.New(logging.NewTextHandler(prefixed{out, "[" + mode + "] "}, slog.LevelInfo))
	client := &schwab.Client{AppKey: "chaos-key", AppSecret: "chaos-secret", TokenURL: srv.TokenURL, HTTPClient: schwab.NewHTTPClient(srv.RootCAs)}
	sender := &delivery.Sender{Targets: []delivery.Address{{Network: "unix", Addr: sock}}, Logger: log}
	store := &tokenfile.Store{Path: tokenFile}

	start := time.Now()
	if mode == "seed behaviour" {
		seedLoop(ctx, client, store, sender, log)
	} else {
		d := &daemon.Daemon{
			Refresher: client, Store: store, Logger: log, Interval: interval,
			Deliverer: sender,
			Backoff:   daemon.Backoff{Min: 200 * time.Millisecond, Max: time.Second},
			Classify:  schwab.RetryAdvice,
		}
		if err := d.Run(ctx); err != nil {
			return result{}, err
		}
	}
	end := time.Now()
	h.mu.Lock()
	first := start
	if len(h.intervals) > 0 {
		first = h.intervals[0][0]
	}
	h.mu.Unlock()
	cov, lapsed := h.coverage(first, end)
	st := fake.Stats()
	var kinds []string
	faults := 0
	for k, n := range st.FaultsInjected {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		faults += n
	}
	sort.Strings(kinds)
	return result{mode: mode, coverage: cov, lapsed: lapsed, refreshes: st.Refreshes, faults: faults, kinds: strings.Join(kinds, ", ")}, nil
}

// seedLoop is the seed's behaviour: refresh, deliver, sleep one interval,
// whatever happened.
func seedLoop(ctx context.Context, client *schwab.Client, store *tokenfile.Store, sender *delivery.Sender, log *slog.Logger) {
	for ctx.Err() == nil {
		tok, err := store.Update(ctx, func(cur tokensender.Token) (tokensender.Token, error) {
			tok, err := client.Refresh(ctx, cur.RefreshToken)
			tok.RefreshTokenIssuedAt = cur.RefreshTokenIssuedAt
			return tok, err
		})
		switch {
		case tok.AccessToken != "":
			sender.Send(ctx, tok.Message())
		case err != nil:
			log.Error("Token refresh failed: " + err.Error())
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// prefixed writes each line with a prefix after the timestamp's bracket.
type prefixed struct {
	w      *os.File
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	_, err := p.w.Write(append([]byte(p.prefix), b...))
	return len(b), err
}
