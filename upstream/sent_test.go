package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// TestErrorAnswersNeverQuoteSentCredentials: an upstream that refuses a
// request quoting everything it was sent (body and a header) gets its
// quotes of the credential, static or obtained at run time, replaced in
// the Response; a successful answer is returned as sent.
func TestErrorAnswersNeverQuoteSentCredentials(t *testing.T) {
	te := newTokenEndpoint(t)
	caller := &toolbusv1.Caller{Subject: "alice", Token: "caller-token-alice"}
	tests := []struct{ name, give string }{
		{"api key in header", `{type: api_key, name: X-Api-Key, value: "${env:API_KEY}"}`},
		{"api key in query", `{type: api_key, in: query, name: api_key, value: "${env:API_KEY}"}`},
		{"bearer", `{type: bearer, token: "${env:BEARER}"}`},
		{"basic", `{type: basic, username: "${env:BASIC_USER}", password: "${env:BASIC_PASS}"}`},
		{"client credentials", `{type: oauth2_client_credentials, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}"}`},
		{"refresh token", `{type: oauth2_refresh_token, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}", refresh_token: "${env:REFRESH}"}`},
		{"forward", `{type: forward}`},
		{"token exchange", `{type: token_exchange, token_url: "` + te.srv.URL + `/token", client_id: "${env:CLIENT_ID}", client_secret: "${env:CLIENT_SECRET}"}`},
	}
	for _, tt := range tests {
		for _, status := range []int{http.StatusForbidden, http.StatusOK} {
			t.Run(fmt.Sprintf("%s %d", tt.name, status), func(t *testing.T) {
				var mu sync.Mutex
				var sent []string // the credential as the upstream received it
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					a, k, q := r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.URL.Query().Get("api_key")
					mu.Lock()
					for _, v := range []string{strings.TrimPrefix(strings.TrimPrefix(a, "Bearer "), "Basic "), k, q} {
						if v != "" {
							sent = append(sent, v)
						}
					}
					mu.Unlock()
					w.Header().Set("X-Echo", a+k+q)
					w.WriteHeader(status)
					fmt.Fprintf(w, `{"message":"refused %q %q %q %q"}`, a, k, q, url.QueryEscape(q))
				}))
				t.Cleanup(srv.Close)
				c := newClient(t, authUpstream(t, srv.URL, tt.give), Options{})
				resp, err := doAuth(t, c, WithCaller(context.Background(), caller), srv.URL+"/x")
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(sent) == 0 {
					t.Fatal("the upstream received no credential")
				}
				for _, v := range sent {
					quoted := strings.Contains(string(resp.Body), v) || strings.Contains(resp.Header.Get("X-Echo"), v)
					if status >= 400 && quoted {
						t.Errorf("error answer quotes %q: %s / %s", v, resp.Body, resp.Header.Get("X-Echo"))
					}
					if status < 400 && !quoted {
						t.Errorf("successful answer changed: %s", resp.Body)
					}
				}
				if status >= 400 && !strings.Contains(string(resp.Body), "[redacted]") {
					t.Errorf("body %s", resp.Body)
				}
			})
		}
	}
}
