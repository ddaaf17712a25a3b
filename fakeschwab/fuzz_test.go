package fakeschwab_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
)

// FuzzServer_Token checks that whatever a client sends, the token endpoint
// answers with JSON, never 5xx, and only issues tokens for a valid request.
func FuzzServer_Token(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=abc", true)
	f.Add("application/x-www-form-urlencoded", "grant_type=authorization_code&code=C0.x%40&redirect_uri=https%3A%2F%2F127.0.0.1%3A8182", true)
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "grant_type=%zz", true)
	f.Add("application/json", `{"grant_type":"refresh_token"}`, true)
	f.Add("", "", false)
	f.Fuzz(func(t *testing.T, contentType, body string, auth bool) {
		clock := newFakeClock()
		s := fakeschwab.New(fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: callback, Now: clock.Now})
		rt := s.Login().RefreshToken
		body = strings.ReplaceAll(body, "RT", rt)
		req := httptest.NewRequest(http.MethodPost, fakeschwab.TokenPath, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if auth {
			req.SetBasicAuth(appKey, appSecret)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer %d %q", w.Code, w.Body)
		}
		if w.Code == 200 && (!auth || s.Stats().Refreshes != 1) {
			t.Fatalf("issued a token for %q (auth %v)", body, auth)
		}
	})
}
