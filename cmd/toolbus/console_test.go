package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/mcpauth"
)

// TestConsoleIsNeverOpenByDefault pins when serve and demo run the
// operator console, and whether it asks for a credential.
func TestConsoleIsNeverOpenByDefault(t *testing.T) {
	sum := sha256.Sum256([]byte("some-admin-key"))
	upstreams := `
upstreams:
  crm: {kind: rest, base_url: "http://127.0.0.1:1/"}
`
	authNone := "version: 1\nauth: none\n" + upstreams
	withAdmin := `version: 1
auth:
  resource: http://127.0.0.1:8080/mcp
  api_keys:
    - {name: ops, sha256: ` + hex.EncodeToString(sum[:]) + `, scopes: [toolbus.admin]}
` + upstreams
	withoutAdmin := `version: 1
auth:
  resource: http://127.0.0.1:8080/mcp
  api_keys:
    - {name: app, sha256: ` + hex.EncodeToString(sum[:]) + `, scopes: [tools.read]}
` + upstreams
	on, off := true, false
	tests := []struct {
		name     string
		catalog  string
		demo     bool
		enabled  *bool
		httpAddr string
		want     string // off, open, auth or error
	}{
		{name: "serve, auth none: off", catalog: authNone, want: "off"},
		{name: "serve, API key without admin scope: off", catalog: withoutAdmin, want: "off"},
		{name: "serve, admin API key: on, signed in", catalog: withAdmin, want: "auth"},
		{name: "serve, admin API key, --console=false: off", catalog: withAdmin, enabled: &off, want: "off"},
		{name: "serve, auth none, --console on loopback: open", catalog: authNone, enabled: &on, want: "open"},
		{name: "serve, auth none, --console beyond loopback: refused", catalog: authNone, enabled: &on, httpAddr: "0.0.0.0:8080", want: "error"},
		{name: "demo, auth none: open", catalog: authNone, demo: true, want: "open"},
		{name: "demo, auth none beyond loopback: refused", catalog: authNone, demo: true, httpAddr: "0.0.0.0:8080", want: "error"},
		{name: "demo, admin API key: signed in", catalog: withAdmin, demo: true, want: "auth"},
		{name: "demo, --console=false: off", catalog: authNone, demo: true, enabled: &off, want: "off"},
	}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat, err := catalog.Parse("c.yaml", []byte(tt.catalog))
			if err != nil {
				t.Fatal(err)
			}
			cfg := serveConfig{httpAddr: "127.0.0.1:8080", grpcAddr: "none"}
			if tt.httpAddr != "" {
				cfg.httpAddr = tt.httpAddr
			}
			cfg.console = consoleConfig{enabled: tt.enabled, demo: tt.demo, adminScope: "toolbus.admin"}
			authn, err := mcpauth.New(cat, mcpauth.Options{Logger: bustest.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			cons, err := newConsole(cfg, cat, nc, js, authn, bustest.Logger())
			got := "off"
			var ue usageError
			switch {
			case errors.As(err, &ue):
				got = "error"
			case err != nil:
				t.Fatal(err)
			case cons == nil:
			default:
				// Open serves the page; otherwise it sends the browser to sign in.
				rec := httptest.NewRecorder()
				cons.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/console/calls", nil))
				got = map[int]string{http.StatusOK: "open", http.StatusSeeOther: "auth"}[rec.Code]
			}
			if got != tt.want {
				t.Errorf("console %s, want %s", got, tt.want)
			}
		})
	}
}
