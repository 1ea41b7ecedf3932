package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "sk_live_supersecret"

func newUpstream(t *testing.T, h http.Handler, limit int64) (*catalog.Upstream, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL + "/api/v1")
	if err != nil {
		t.Fatal(err)
	}
	return &catalog.Upstream{
		Name: "crm", Kind: catalog.KindREST, BaseURL: base, Timeout: 5 * time.Second, Concurrency: 4,
		MaxResponseBytes: limit,
		Headers:          []catalog.Header{{Name: "X-Api-Key", Value: catalog.FromRef("${env:CRM_KEY}", secret)}},
	}, srv
}

func newClient(t *testing.T, u *catalog.Upstream, opts Options) *Client {
	t.Helper()
	c, err := New(u, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t *testing.T, c *Client, rawURL string) (*Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(req)
}

func TestCatalogHeadersWinOverRequestHeaders(t *testing.T) {
	var got http.Header
	u, srv := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		fmt.Fprint(w, `{"ok":true}`)
	}), 1<<20)
	c := newClient(t, u, Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/x", nil)
	req.Header.Set("X-Api-Key", "from-argument")
	req.Header.Set("X-Trace", "t1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"X-Api-Key": secret, "X-Trace": "t1"}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("upstream saw %s = %q, want %q", k, got.Get(k), v)
		}
	}
	if req.Header.Get("X-Api-Key") != "from-argument" {
		t.Error("the caller's request was modified")
	}
	if diff := cmp.Diff(&Response{Status: 200, Body: []byte(`{"ok":true}`), Attempts: 1}, resp,
		cmp.FilterPath(func(p cmp.Path) bool { n := p.Last().String(); return n == ".Header" || n == ".Elapsed" }, cmp.Ignore())); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	if resp.Elapsed <= 0 {
		t.Errorf("Elapsed = %v, want > 0", resp.Elapsed)
	}
}

func TestRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other host was called: %s", r.URL)
	}))
	defer other.Close()
	var hops int
	var mu sync.Mutex
	u, _ := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hops++
		mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/v1/chain/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/v1/chain/"))
			if n == 0 {
				fmt.Fprint(w, "end")
				return
			}
			http.Redirect(w, r, "/api/v1/chain/"+strconv.Itoa(n-1), http.StatusFound)
		case r.URL.Path == "/api/v1/away":
			http.Redirect(w, r, other.URL+"/steal?token=abc", http.StatusFound)
		case r.URL.Path == "/api/v1/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
		case r.URL.Path == "/api/v1/scheme":
			http.Redirect(w, r, "https://"+r.Host+"/api/v1/chain/0", http.StatusMovedPermanently)
		}
	}), 1<<20)
	c := newClient(t, u, Options{})
	base := u.BaseURL.String()

	tests := []struct {
		give       string
		wantBody   string
		wantReason string
	}{
		{give: "/chain/5", wantBody: "end"},
		{give: "/chain/6", wantReason: "more than 5 redirects"},
		{give: "/away", wantReason: "to " + other.URL + ", outside the upstream's scheme, host and port"},
		{give: "/metadata", wantReason: "to a link-local address, outside the upstream's scheme, host and port"},
		{give: "/scheme", wantReason: "to https://" + u.BaseURL.Host + ", outside the upstream's scheme, host and port"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			resp, err := get(t, c, base+tt.give)
			var re *RedirectError
			switch {
			case tt.wantReason == "" && err != nil:
				t.Fatalf("Do: %v", err)
			case tt.wantReason == "":
				if string(resp.Body) != tt.wantBody || resp.Attempts != 1 {
					t.Errorf("body %q attempts %d, want %q and 1", resp.Body, resp.Attempts, tt.wantBody)
				}
			case !errors.As(err, &re):
				t.Fatalf("Do error = %v, want a *RedirectError", err)
			case re.Reason != tt.wantReason:
				t.Errorf("reason = %q, want %q", re.Reason, tt.wantReason)
			}
			if err != nil {
				te := Classify("get_x", "crm", time.Second, err)
				if te.Class != toolbusv1.ErrorClass_ERROR_CLASS_BAD_UPSTREAM_RESPONSE || te.Code != toolerr.CodeRedirectRefused {
					t.Errorf("Classify = %v", te)
				}
				if strings.Contains(te.Message, "token=abc") || strings.Contains(err.Error(), "token=abc") {
					t.Errorf("redirect target query leaked: %q / %q", te.Message, err)
				}
			}
		})
	}
}

func TestResponseSizeLimit(t *testing.T) {
	const limit = 1000
	u, _ := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		w.Write([]byte(strings.Repeat("x", n)))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}), limit)
	c := newClient(t, u, Options{})
	tests := []struct {
		give     string
		wantLen  int
		wantSize int64 // -1: unknown; 0: no error
	}{
		{give: "n=1000", wantLen: 1000},
		{give: "n=1000&chunked=1", wantLen: 1000},
		{give: "n=1001", wantSize: 1001},
		{give: "n=5000000", wantSize: 5000000},
		{give: "n=1001&chunked=1", wantSize: -1},
		{give: "n=0", wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			resp, err := get(t, c, u.BaseURL.String()+"/big?"+tt.give)
			if tt.wantSize == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.Body) != tt.wantLen {
					t.Errorf("body length %d, want %d", len(resp.Body), tt.wantLen)
				}
				return
			}
			var tl *TooLargeError
			if !errors.As(err, &tl) || !errors.Is(err, ErrResponseTooLarge) {
				t.Fatalf("err = %v, want *TooLargeError", err)
			}
			if diff := cmp.Diff(&TooLargeError{Size: tt.wantSize, Limit: limit}, tl); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if te := Classify("export", "crm", time.Second, err); te.Class != toolbusv1.ErrorClass_ERROR_CLASS_RESPONSE_TOO_LARGE {
				t.Errorf("Classify = %v", te)
			}
		})
	}
}

func TestTransportErrorsAreClassifiedAndRedacted(t *testing.T) {
	// A port nobody listens on: bind, note the port, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)

	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}))
	defer reset.Close()

	tests := []struct {
		name      string
		giveBase  string
		giveWait  time.Duration
		wantClass toolbusv1.ErrorClass
		wantCode  string
	}{
		{"refused", "http://" + deadAddr, time.Second, toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE, toolerr.CodeUnreachable},
		{"deadline", slow.URL, 100 * time.Millisecond, toolbusv1.ErrorClass_ERROR_CLASS_TIMEOUT, toolerr.CodeTimeout},
		{"reset", reset.URL, time.Second, toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_UNREACHABLE, toolerr.CodeConnectionLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, _ := url.Parse(tt.giveBase)
			c := newClient(t, &catalog.Upstream{Name: "crm", BaseURL: base, Timeout: time.Second, Concurrency: 2, MaxResponseBytes: 100}, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), tt.giveWait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tt.giveBase+"/x?api_key="+secret, strings.NewReader("{}"))
			_, err := c.Do(req)
			if err == nil {
				t.Fatal("Do succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the query: %v", err)
			}
			te := Classify("create_customer", "crm", tt.giveWait, err)
			if te.Class != tt.wantClass || te.Code != tt.wantCode {
				t.Errorf("Classify(%v) = %v, want class %v code %s", err, te, tt.wantClass, tt.wantCode)
			}
			if strings.Contains(te.Message, secret) || !strings.Contains(te.Message, "crm") {
				t.Errorf("message %q", te.Message)
			}
		})
	}
}

func TestRefusesForeignOrigin(t *testing.T) {
	u, _ := newUpstream(t, http.NotFoundHandler(), 100)
	c := newClient(t, u, Options{})
	_, err := get(t, c, "http://example.invalid/api/v1/x?key="+secret)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Do = %v, want a redacted refusal", err)
	}
}

func TestRefuseLinkLocal(t *testing.T) {
	tests := []struct {
		give string
		want error
	}{
		{"169.254.169.254:80", ErrLinkLocal},
		{"[fe80::1]:80", ErrLinkLocal},
		{"[fd00:ec2::254]:80", ErrLinkLocal},
		{"[::ffff:169.254.1.1]:443", ErrLinkLocal},
		{"127.0.0.1:80", nil},
		{"10.0.0.1:80", nil},
		{"[::1]:80", nil},
	}
	for _, tt := range tests {
		if got := refuseLinkLocal("tcp", tt.give, nil); !errors.Is(got, tt.want) {
			t.Errorf("refuseLinkLocal(%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// recorder is a Middleware that notes its name and what the request looked
// like when it passed.
func recorder(name string, log *[]string) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			*log = append(*log, name+" key="+r.Header.Get("X-Api-Key"))
			return next.RoundTrip(r)
		})
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestLayersRunInTheDocumentedOrder(t *testing.T) {
	var log []string
	u, _ := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), 100)
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		log = append(log, "base key="+r.Header.Get("X-Api-Key"))
		return http.DefaultTransport.RoundTrip(r)
	})
	c := newClient(t, u, Options{Transport: base, Layers: Layers{
		Tracing: recorder("tracing", &log), Retry: recorder("retry", &log),
		Quota: recorder("quota", &log), Auth: recorder("auth", &log),
	}})
	if _, err := get(t, c, u.BaseURL.String()+"/x"); err != nil {
		t.Fatal(err)
	}
	want := []string{"tracing key=", "retry key=", "quota key=", "auth key=", "base key=" + secret}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("layer order (-want +got):\n%s", diff)
	}
}
