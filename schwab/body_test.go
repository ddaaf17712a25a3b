package schwab_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/schwab"
)

// clientFor is a Client for a token endpoint served by h over HTTPS.
func clientFor(tb testing.TB, h http.HandlerFunc) *schwab.Client {
	tb.Helper()
	srv := httptest.NewTLSServer(h)
	tb.Cleanup(srv.Close)
	hc := srv.Client()
	hc.Transport.(*http.Transport).DisableKeepAlives = true
	return &schwab.Client{AppKey: appKey, AppSecret: appSecret, TokenURL: srv.URL + "/v1/oauth/token", HTTPClient: hc}
}

// A body that breaks off is a network failure while reading, not an
// unusable answer.
func TestClient_RefreshBodyCutShort(t *testing.T) {
	c := clientFor(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "500")
		w.Write([]byte(`{"access_token":"I0.`))
	})
	_, err := c.Refresh(t.Context(), "refresh-token-value@")
	se := mustSchwabError(t, err, "refresh-token-value@")
	if se.Kind != schwab.KindTransient || se.StatusCode != 0 || se.Description != "reading response: unexpected EOF" ||
		err.Error() != "network error: reading response: unexpected EOF" {
		t.Errorf("got %q (status %d, kind %v, description %q)", err, se.StatusCode, se.Kind, se.Description)
	}
}

// Our own deadline expiring while the body arrives is reported as the
// deadline, not as a broken answer.
func TestClient_RefreshDeadlineDuringBody(t *testing.T) {
	stalled := make(chan struct{})
	c := clientFor(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "500")
		w.Write([]byte(`{"access_token":"I0.`))
		w.(http.Flusher).Flush()
		<-stalled
	})
	t.Cleanup(func() { close(stalled) }) // before the server closes
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Refresh(ctx, "refresh-token-value@")
	se := mustSchwabError(t, err, "refresh-token-value@")
	if se.Kind != schwab.KindTransient || se.Description != "context deadline exceeded" || se.Err != context.DeadlineExceeded {
		t.Errorf("got %q (kind %v, description %q, Err %v)", err, se.Kind, se.Description, se.Err)
	}
}
