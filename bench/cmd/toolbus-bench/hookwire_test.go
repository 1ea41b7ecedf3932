package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The raw webhook client speaks HTTP/1.1 to a real net/http server:
// statuses and bodies come back, connections are kept alive and reused,
// and a server that closes the connection gets a new one.
func TestWirePoster(t *testing.T) {
	var conns atomic.Int64
	var bodies []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+r.Header.Get("Stripe-Signature")+" "+string(b))
		switch string(b) {
		case "bad":
			http.Error(w, "bad signature", http.StatusBadRequest)
		case "close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	p, err := newWirePoster(srv.URL + "/webhooks/stripe")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	h := http.Header{"Stripe-Signature": {"t=1,v1=ab"}, "Content-Type": {"application/json"}}
	for i, tc := range []struct {
		body   string
		status int
		text   string
	}{
		{"one", 202, ""}, {"two", 202, ""}, {"bad", 400, "bad signature"}, {"close", 202, ""}, {"three", 202, ""},
	} {
		status, text, err := p.post(p.wire(h, []byte(tc.body)), 5*time.Second)
		if err != nil || status != tc.status || strings.TrimSpace(text) != tc.text {
			t.Errorf("post %d (%s): status %d, body %q, err %v; want %d %q", i, tc.body, status, text, err, tc.status, tc.text)
		}
	}
	if want := "POST /webhooks/stripe t=1,v1=ab one"; len(bodies) != 5 || bodies[0] != want {
		t.Errorf("server saw %q, want first %q", bodies, want)
	}
	// one connection until the server closed it, then a second one.
	if got := conns.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
	if _, err := newWirePoster("https://example.invalid/x"); err == nil {
		t.Error("an https URL was accepted")
	}
}
