package schwab_test

import (
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// tokenBody is a 200 token answer with fields replaced or added by kv
// (raw JSON values).
func tokenBody(kv ...string) string {
	fields := map[string]string{
		"access_token": `"I0.access@"`, "refresh_token": `"refresh@"`, "id_token": `"a.b.c"`,
		"expires_in": `1800`, "token_type": `"Bearer"`, "scope": `"api"`,
	}
	order := []string{"access_token", "refresh_token", "id_token", "expires_in", "token_type", "scope"}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := fields[kv[i]]; !ok {
			order = append(order, kv[i])
		}
		fields[kv[i]] = kv[i+1]
	}
	var b strings.Builder
	b.WriteString("{")
	for i, k := range order {
		if fields[k] == "" {
			continue // removed
		}
		if i > 0 && b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(`"` + k + `":` + fields[k])
	}
	b.WriteString("}")
	return b.String()
}

func TestClient_TokenBounds(t *testing.T) {
	long := strings.Repeat("A", schwab.MaxTokenLen+1)
	atLimit := `"` + strings.Repeat("A", schwab.MaxTokenLen) + `"`
	tests := []struct {
		name     string
		body     string
		exchange bool
		want     string // "" accepted; else the Description
	}{
		{"typical", tokenBody(), false, ""},
		{"tokens at 4 KiB", tokenBody("access_token", atLimit, "refresh_token", atLimit, "id_token", atLimit), false, ""},
		{"every printable character", tokenBody("access_token", `"!~azAZ09\"\\/"`), false, ""},
		{"scope with spaces", tokenBody("scope", `"api read"`), false, ""},
		{"expires_in 1", tokenBody("expires_in", "1"), false, ""},
		{"expires_in 24h", tokenBody("expires_in", "86400"), false, ""},
		{"expires_in as a string", tokenBody("expires_in", `"1800"`), false, ""},
		{"long access_token", tokenBody("access_token", `"`+long+`"`), false, "access_token is 4097 bytes, longer than the 4096 allowed"},
		{"long refresh_token", tokenBody("refresh_token", `"`+long+`"`), false, "refresh_token is 4097 bytes, longer than the 4096 allowed"},
		{"long id_token", tokenBody("id_token", `"`+long+`"`), false, "id_token is 4097 bytes, longer than the 4096 allowed"},
		{"long token_type", tokenBody("token_type", `"`+long+`"`), false, "token_type is 4097 bytes, longer than the 4096 allowed"},
		{"long scope", tokenBody("scope", `"`+long+`"`), false, "scope is 4097 bytes, longer than the 4096 allowed"},
		{"space in access_token", tokenBody("access_token", `"I0.a b@"`), false, "access_token has a character that is not printable ASCII at byte 4"},
		{"control in refresh_token", tokenBody("refresh_token", `"r\u0001@"`), false, "refresh_token has a character that is not printable ASCII at byte 1"},
		{"DEL in id_token", tokenBody("id_token", `"a.b\u007f"`), false, "id_token has a character that is not printable ASCII at byte 3"},
		{"non-ASCII in access_token", tokenBody("access_token", `"I0.é@"`), false, "access_token has a character that is not printable ASCII at byte 3"},
		{"invalid UTF-8 in access_token", tokenBody("access_token", "\"I0.\xff@\""), false, "access_token has a character that is not printable ASCII at byte 3"},
		{"newline in token_type", tokenBody("token_type", `"Bearer\n"`), false, "token_type has a character that is not printable ASCII at byte 6"},
		{"tab in scope", tokenBody("scope", `"api\tread"`), false, "scope has a character that is not printable ASCII at byte 3"},
		{"expires_in missing", tokenBody("expires_in", ""), false, "expires_in must be a whole number of seconds from 1 to 86400, got 0"},
		{"expires_in 0", tokenBody("expires_in", "0"), false, "expires_in must be a whole number of seconds from 1 to 86400, got 0"},
		{"expires_in negative", tokenBody("expires_in", "-1"), false, "expires_in must be a whole number of seconds from 1 to 86400, got -1"},
		{"expires_in over 24h", tokenBody("expires_in", "86401"), false, "expires_in must be a whole number of seconds from 1 to 86400, got 86401"},
		{"expires_in huge", tokenBody("expires_in", "99999999999"), false, "expires_in must be a whole number of seconds from 1 to 86400, got 2147483647"},
		{"expires_in fractional", tokenBody("expires_in", "1800.5"), false, "expires_in is not a whole number of seconds"},
		{"exchange", tokenBody(), true, ""},
		{"exchange with a long access_token", tokenBody("access_token", `"`+long+`"`), true, "access_token is 4097 bytes, longer than the 4096 allowed"},
		{"exchange with expires_in over 24h", tokenBody("expires_in", "90000"), true, "expires_in must be a whole number of seconds from 1 to 86400, got 90000"},
		{"exchange without refresh_token", tokenBody("refresh_token", ""), true, "no refresh_token in the answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t)
			login := e.fake.Login()
			var grant string
			var err error
			if tt.exchange {
				grant = e.mustCode(t)
				e.fake.Inject(fakeschwab.FaultStatus(200, "application/json", tt.body, nil))
				_, err = e.client.Exchange(t.Context(), grant, callback)
			} else {
				grant = login.RefreshToken
				e.fake.Inject(fakeschwab.FaultStatus(200, "application/json", tt.body, nil))
				_, err = e.client.Refresh(t.Context(), grant)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused a good answer: %v", err)
				}
				return
			}
			op := schwab.OpRefresh
			if tt.exchange {
				op = schwab.OpExchange
			}
			checkErr(t, err, op, wantErr{200, "", tt.want, schwab.KindTransient, 0, "invalid token response: " + tt.want},
				grant, strings.Repeat("A", 16))
		})
	}
}
