package fakeschwab_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
)

func TestServer_Inject(t *testing.T) {
	tests := []struct {
		name        string
		fault       fakeschwab.Fault
		status      int
		contentType string
		body        string
		header      map[string]string
	}{
		{"status", fakeschwab.FaultStatus(418, "text/plain", "teapot", http.Header{"X-Test": {"1"}}), 418, "text/plain", "teapot", map[string]string{"X-Test": "1"}},
		{"html 403", fakeschwab.FaultHTML403(), 403, "text/html", fakeschwab.BodyAccessDenied, nil},
		{"rate limit", fakeschwab.FaultRateLimit(1500 * time.Millisecond), 429, "application/json", fakeschwab.BodyRateLimit, map[string]string{"Retry-After": "2"}},
		{"rate limit no retry-after", fakeschwab.FaultRateLimit(0), 429, "application/json", fakeschwab.BodyRateLimit, map[string]string{"Retry-After": ""}},
		{"503", fakeschwab.Fault5xx(503), 503, "", "", nil},
		{"500", fakeschwab.Fault5xx(500), 500, "", "", nil},
		{"truncated json", fakeschwab.FaultTruncatedJSON(), 200, "application/json", `{"access_token": "I0.xx`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t)
			tok := e.s.Login()
			e.s.Inject(tt.fault)
			r := e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken))
			wantReply(t, r, tt.status, tt.body)
			if tt.contentType != "" {
				if ct := r.header.Get("Content-Type"); ct != tt.contentType {
					t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
				}
			}
			for k, v := range tt.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.fault.Kind() == fakeschwab.FaultKindTruncated && json.Valid([]byte(r.body)) {
				t.Error("truncated body is valid JSON")
			}
			// The fault was used up: the next request is answered normally.
			mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
			st := e.s.Stats()
			if st.FaultsInjected[tt.fault.Kind()] != 1 || st.TokenRequests != 2 || st.Refreshes != 1 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

func TestServer_InjectReset(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	// Warm the connection up, so the reset hits a reused one as in production.
	mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
	e.s.Inject(fakeschwab.FaultReset())
	_, err := e.postErr(t.Context(), appKey, appSecret, "application/x-www-form-urlencoded", refreshForm(tok.RefreshToken).Encode())
	if err == nil {
		t.Fatal("request over a reset connection succeeded")
	}
	mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
	if got := e.s.Stats().FaultsInjected[fakeschwab.FaultKindReset]; got != 1 {
		t.Errorf("FaultsInjected[reset] = %d, want 1", got)
	}
}

func TestServer_InjectLatency(t *testing.T) {
	t.Run("client gives up", func(t *testing.T) {
		e := mustStart(t)
		tok := e.s.Login()
		e.s.Inject(fakeschwab.FaultLatency(time.Hour))
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := e.postErr(ctx, appKey, appSecret, "application/x-www-form-urlencoded", refreshForm(tok.RefreshToken).Encode())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if st := e.s.Stats(); st.Refreshes != 0 {
			t.Errorf("a request the client abandoned was answered: %+v", st)
		}
	})
	t.Run("then answers normally", func(t *testing.T) {
		e := mustStart(t)
		tok := e.s.Login()
		e.s.Inject(fakeschwab.FaultLatency(time.Millisecond))
		mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
		if got := e.s.Stats().FaultsInjected[fakeschwab.FaultKindLatency]; got != 1 {
			t.Errorf("FaultsInjected[latency] = %d", got)
		}
	})
}

func TestServer_InjectFIFO(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	e.s.Inject(fakeschwab.Fault5xx(500))
	e.s.Inject(fakeschwab.Fault5xx(502))
	e.s.Inject(fakeschwab.FaultHTML403())
	var got []int
	for range 4 {
		got = append(got, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)).status)
	}
	if want := []int{500, 502, 403, 200}; !equalInts(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
}

func TestServer_InjectBeforeAuth(t *testing.T) {
	// A fault stands in for the CDN in front of Schwab: it answers even a
	// request with bad credentials.
	e := mustStart(t)
	e.s.Inject(fakeschwab.Fault5xx(503))
	if r := e.post(t, "", "", refreshForm("x")); r.status != 503 {
		t.Errorf("status %d, want 503", r.status)
	}
}

func TestServer_SetFaultEvery(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	e.s.SetFaultEvery(3, fakeschwab.Fault5xx(500), fakeschwab.FaultHTML403())
	var got []int
	for range 9 {
		got = append(got, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)).status)
	}
	if want := []int{200, 200, 500, 200, 200, 403, 200, 200, 500}; !equalInts(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	// Exchanges do not count towards the cycle.
	code := e.mustAuthorize(t)
	r := e.post(t, appKey, appSecret, codeForm(code, callback))
	mustTokenBody(t, r)
	st := e.s.Stats()
	if st.FaultsInjected[fakeschwab.FaultKind5xx] != 2 || st.FaultsInjected[fakeschwab.FaultKindHTML403] != 1 {
		t.Errorf("FaultsInjected = %v", st.FaultsInjected)
	}
	e.s.SetFaultEvery(0)
	var b tokenBody
	_ = json.Unmarshal([]byte(r.body), &b)
	for range 3 {
		mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(b.RefreshToken)))
	}
}

func TestBodySuperseded(t *testing.T) {
	// The constant must decode like Schwab's real answer: an outer
	// unsupported_token_type whose description embeds a JSON string that
	// holds the real error object.
	var outer struct{ Error, ErrorDescription string }
	if err := json.Unmarshal([]byte(fakeschwab.BodySuperseded), &struct {
		E *string `json:"error"`
		D *string `json:"error_description"`
	}{&outer.Error, &outer.ErrorDescription}); err != nil {
		t.Fatal(err)
	}
	prefix := "400 Bad Request: "
	if outer.Error != "unsupported_token_type" || !strings.HasPrefix(outer.ErrorDescription, prefix) {
		t.Fatalf("outer = %+v", outer)
	}
	var innerJSON string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(outer.ErrorDescription, prefix)), &innerJSON); err != nil {
		t.Fatal(err)
	}
	want := `{"error_description":"Failed refresh token authentication","error":"refresh_token_authentication_error"}`
	if innerJSON != want {
		t.Errorf("inner = %s, want %s", innerJSON, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
