// Package console provides Toolbus's operator console: a small web
// application, served by Toolbus itself under /console/, that shows tool
// calls as they happen (pushed to the browser with server-sent events),
// the catalog with per-tool and per-upstream rates, error rates, latency
// percentiles, backlog and circuit state, the dead letters (inspect,
// replay, discard), recent webhook deliveries and the projections' state
// with each entity's history.
//
// Pages are rendered on the server with html/template; about 130 lines
// of vanilla JavaScript add live updates and filtering. Every asset is
// embedded, and the Content-Security-Policy forbids the page from reaching
// anything but its own origin.
//
// The console is an admin surface: every page and API needs a credential
// carrying the admin scope (an API key or OAuth access token checked by
// package mcpauth), unless Options.Open is set, which only `toolbus demo`
// does. It must not call upstreams or write projections itself: replays go
// through the bus (packages deadletter and webhookcli), and it reads state
// through package projection.
package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/events"
	"github.com/toolbus/toolbus/mcpauth"
	"github.com/toolbus/toolbus/projection"
)

// BasePath is where the console is mounted.
const BasePath = "/console"

// DefaultAdminScope is the scope a credential needs to use the console.
const DefaultAdminScope = "toolbus.admin"

// Defaults.
const (
	DefaultWindow     = 5 * time.Minute
	DefaultSessionTTL = 8 * time.Hour
	// recentCalls and recentWebhooks bound the summaries kept in memory.
	recentCalls    = 1000
	recentWebhooks = 1000
)

// Verifier checks a bearer credential; *mcpauth.Authenticator is one.
type Verifier interface {
	Verify(ctx context.Context, token string) (*mcpauth.Identity, error)
}

var _ Verifier = (*mcpauth.Authenticator)(nil)

// Options configure a Console.
type Options struct {
	Catalog *catalog.Catalog
	NC      *nats.Conn
	JS      jetstream.JetStream
	Logger  *slog.Logger
	// JaegerURL is the Jaeger UI's base URL (http://127.0.0.1:16686);
	// when set, calls with a trace id link to their trace.
	JaegerURL string
	// Auth verifies credentials. Required unless Open.
	Auth Verifier
	// AdminScope is the scope a credential must carry (DefaultAdminScope).
	// An API key granted "*" carries every scope.
	AdminScope string
	// Open serves the console without authentication: for `toolbus demo`
	// on a loopback address only.
	Open bool
	// Window is the sliding window of rates and percentiles (DefaultWindow).
	Window time.Duration
	// SessionTTL bounds a browser session (DefaultSessionTTL); a session
	// never outlives the credential it was opened with.
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure even on plain HTTP
	// (behind a TLS-terminating proxy). Requests over TLS always get it.
	SecureCookies bool
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Console serves the operator console. Create it with New, mount Handler at
// BasePath+"/", call Start to follow the event feed and Shutdown to stop.
type Console struct {
	opts Options
	log  *slog.Logger
	// reload guards reloadState.
	reload      sync.Mutex
	reloadState reloadStatus
	// cat is the catalog served now; Reload swaps it.
	cat    atomic.Pointer[catalog.Catalog]
	nc     *nats.Conn
	js     jetstream.JetStream
	reader *projection.Reader
	pages  map[string]*template.Template
	static http.Handler
	mux    *http.ServeMux
	feed   *feed
	auth   *authn

	mu     sync.Mutex
	sub    *nats.Subscription
	closed bool
}

// New prepares the console. It has no side effects: Start subscribes.
func New(opts Options) (*Console, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("console: no catalog")
	case opts.NC == nil || opts.JS == nil:
		return nil, errors.New("console: no NATS connection")
	case opts.Auth == nil && !opts.Open:
		return nil, errors.New("console: no authentication configured (set Auth, or Open for a local demo)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AdminScope == "" {
		opts.AdminScope = DefaultAdminScope
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.JaegerURL = strings.TrimSuffix(opts.JaegerURL, "/")
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c := &Console{
		opts:   opts,
		log:    opts.Logger,
		nc:     opts.NC,
		js:     opts.JS,
		reader: projection.NewReader(opts.JS, opts.Catalog),
		pages:  pages,
		static: staticHandler(sub),
		feed:   newFeed(opts.Window, opts.Now),
	}
	c.cat.Store(opts.Catalog)
	c.auth = newAuthn(opts)
	c.routes()
	return c, nil
}

// catalog is the catalog the console shows now.
func (c *Console) catalog() *catalog.Catalog { return c.cat.Load() }

// reloadStatus is what the console knows of hot reloads in its process.
type reloadStatus struct {
	// Reloaded is when the catalog shown was swapped in; zero for the
	// start catalog.
	Reloaded time.Time
	// Refused is the last applied catalog this process refused, if any.
	Refused *refusal
}

type refusal struct {
	Revision uint64
	At       time.Time
	Error    string
}

// CatalogRefused records a catalog the process refused (revision 0: an
// edit of the all-in-one's catalog file), for the Tools page. The
// hot-reload loop calls it; the error names each problem with its
// file:line, never a secret value.
func (c *Console) CatalogRefused(revision uint64, err error) {
	c.reload.Lock()
	defer c.reload.Unlock()
	c.reloadState.Refused = &refusal{Revision: revision, At: c.opts.Now(), Error: err.Error()}
}

func (c *Console) reloadStatus() reloadStatus {
	c.reload.Lock()
	defer c.reload.Unlock()
	return c.reloadState
}

// Reload shows cat from now on (a hot reload): its tools, upstreams,
// webhook sources and projections. Credentials follow the Verifier's own
// reload.
func (c *Console) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("console: reload: no catalog")
	}
	c.cat.Store(cat)
	c.reader.SetCatalog(cat)
	c.reload.Lock()
	c.reloadState.Reloaded = c.opts.Now()
	c.reload.Unlock()
	c.log.Info("console shows the reloaded catalog", "digest", cat.Digest)
	return nil
}

// Handler serves the console; mount it at BasePath + "/".
func (c *Console) Handler() http.Handler { return c.mux }

// Start follows the event feed (core NATS, toolbus.events.>).
func (c *Console) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("console: shut down")
	}
	if c.sub != nil {
		return nil
	}
	if !c.opts.Open {
		// Sessions live on the bus, so that every replica knows them.
		kv, err := c.js.KeyValue(ctx, bus.BucketConsoleSessions)
		if err != nil {
			return fmt.Errorf("console: open the session bucket %s (bus.Topology.Ensure creates it): %w", bus.BucketConsoleSessions, err)
		}
		c.auth.sessions.Store(&kv)
	}
	sub, err := c.nc.Subscribe(events.SubjectAll, func(m *nats.Msg) { c.feed.receive(m.Subject, m.Data) })
	if err != nil {
		return fmt.Errorf("console: subscribe to %s: %w", events.SubjectAll, err)
	}
	// A console that falls behind drops events rather than slowing NATS.
	_ = sub.SetPendingLimits(65536, 64<<20)
	c.sub = sub
	c.log.Info("operator console ready", "path", BasePath+"/", "open", c.opts.Open)
	return nil
}

// Shutdown stops following the feed and ends every live stream, so that
// the HTTP server's own shutdown is not held up by open event streams.
func (c *Console) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	sub := c.sub
	c.sub = nil
	c.mu.Unlock()
	c.feed.close()
	if sub != nil {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("console: %w", err)
		}
	}
	return nil
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// staticHandler serves the embedded assets, without directory listings.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.StripPrefix(BasePath+"/static/", http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}
