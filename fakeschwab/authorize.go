package fakeschwab

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

var consentPage = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Schwab (fake) - Authorize</title></head>
<body>
<h1>Schwab (fake) - Authorize</h1>
<p>The application <b id="client">{{.ClientID}}</b> asks for access to your accounts.
You will be sent back to <code id="callback">{{.RedirectURI}}</code>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<button id="allow" name="decision" value="allow">Allow</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Schwab (fake) - Error</title></head>
<body>
<h1>Schwab (fake) - Error</h1>
<p id="error">{{.}}</p>
</body>
</html>
`))

// Messages of the authorize error page.
const (
	msgClientID     = "Invalid client_id: it must be the app key of a registered app."
	msgRedirectURI  = "Invalid redirect_uri: it must match the app's registered callback URL exactly."
	msgResponseType = "Unsupported response_type: only \"code\" is supported."
	msgDecision     = "Invalid decision: choose Allow or Deny."
)

// serveAuthorize renders the consent page after checking the app.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if msg := s.checkApp(q); msg != "" {
		renderError(w, msg)
		return
	}
	if rt := q.Get("response_type"); rt != "" && rt != "code" {
		renderError(w, msgResponseType)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentPage.Execute(w, struct{ Action, ClientID, RedirectURI, State string }{
		Action: r.URL.Path, ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"),
	})
}

// serveConsent handles the consent form: Allow redirects with a new code,
// Deny with error=access_denied.
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderError(w, "Malformed form.")
		return
	}
	f := r.PostForm
	if msg := s.checkApp(f); msg != "" {
		renderError(w, msg)
		return
	}
	var params []string
	switch f.Get("decision") {
	case "allow":
		s.mu.Lock()
		code := s.codeLocked(s.cfg.Now())
		s.mu.Unlock()
		params = append(params, "code="+url.QueryEscape(code), "session="+newUUID())
	case "deny":
		params = append(params, "error=access_denied")
	default:
		renderError(w, msgDecision)
		return
	}
	if st := f.Get("state"); st != "" {
		params = append(params, "state="+url.QueryEscape(st))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", redirectTo(s.cfg.CallbackURL, strings.Join(params, "&")))
	w.WriteHeader(http.StatusFound)
}

// checkApp validates client_id and redirect_uri; it returns the error
// message to show, or "".
func (s *Server) checkApp(v url.Values) string {
	if v.Get("client_id") != s.cfg.AppKey || s.cfg.AppKey == "" {
		return msgClientID
	}
	if v.Get("redirect_uri") != s.cfg.CallbackURL || s.cfg.CallbackURL == "" {
		return msgRedirectURI
	}
	return ""
}

// redirectTo appends query to the callback URL the way Schwab does:
// "https://127.0.0.1:8182" becomes "https://127.0.0.1:8182/?code=...".
func redirectTo(callback, query string) string {
	u, err := url.Parse(callback)
	if err != nil {
		return callback + "?" + query
	}
	if u.Path == "" && u.Opaque == "" {
		u.Path = "/"
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + query
	} else {
		u.RawQuery = query
	}
	u.Fragment = ""
	return u.String()
}

func renderError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = errorPage.Execute(w, msg)
}
