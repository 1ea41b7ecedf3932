package mcpauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/toolbus/toolbus/catalog"
)

// Options tune an Authenticator. The zero value is ready for production.
type Options struct {
	Logger *slog.Logger
	// HTTPClient fetches issuer metadata, signing keys and introspection
	// answers; default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// JWKSRefreshInterval is the minimum time between two key fetches
	// caused by tokens naming an unknown key id (default 30 s), so forged
	// key ids cannot make Toolbus hammer the issuer.
	JWKSRefreshInterval time.Duration
	// JWKSMaxAge is how long fetched keys are used before they are fetched
	// again (default 1 h).
	JWKSMaxAge time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Defaults.
const (
	DefaultJWKSRefreshInterval = 30 * time.Second
	DefaultJWKSMaxAge          = time.Hour
	// maxTokenLen refuses absurd tokens before any parsing.
	maxTokenLen = 16 << 10
	httpTimeout = 10 * time.Second
)

// ErrInvalidToken matches every refused credential; it wraps the go-sdk's
// auth.ErrInvalidToken so the SDK answers 401.
var ErrInvalidToken = fmt.Errorf("%w", auth.ErrInvalidToken)

// Authenticator enforces the catalog's auth section.
type Authenticator struct {
	// cfg is the section read at start; what a reload can change (API
	// keys, default scopes, tools/list filtering) is in the scope table.
	cfg   *catalog.ServerAuth
	log   *slog.Logger
	now   func() time.Time
	jwks  *keySet
	intro *introspector

	// tools is the scope table of the catalog being served; Reload swaps
	// it when the catalog is hot-reloaded.
	tools atomic.Pointer[scopeTable]

	resourcePath        string
	resourceMetadataURL string
}

// New prepares the catalog's auth section. A catalog without one, or with
// auth: none, gives an Authenticator that lets every call through (and
// logs a warning once, here). New makes no network calls.
func New(cat *catalog.Catalog, opts Options) (*Authenticator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: httpTimeout}
	}
	if opts.JWKSRefreshInterval <= 0 {
		opts.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = DefaultJWKSMaxAge
	}
	a := &Authenticator{cfg: cat.Auth, log: opts.Logger, now: opts.Now}
	a.tools.Store(&scopeTable{auth: &catalog.ServerAuth{None: true}, byTool: map[string][]string{}, byProjection: map[string][]string{}})
	if !cat.Auth.Enabled() {
		a.log.Warn("MCP authentication is OFF (catalog auth: none): anyone who can reach /mcp or the gRPC port can call every tool; use it only on a trusted machine")
		return a, nil
	}
	cfg := cat.Auth
	a.tools.Store(newScopeTable(cfg, cat, nil))

	ru, err := url.Parse(cfg.Resource)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: resource: %w", err)
	}
	a.resourcePath = strings.TrimSuffix(ru.EscapedPath(), "/")
	a.resourceMetadataURL = ru.Scheme + "://" + ru.Host + wellKnownPath + a.resourcePath

	if o := cfg.OAuth; o != nil {
		a.jwks = newKeySet(o, opts)
		if o.Introspection != nil {
			// A catalog loaded without catalog.SecretsServerAuth has no
			// client credentials to send: refuse it at start.
			for _, s := range cfg.Secrets() {
				if err := s.Err(); err != nil {
					return nil, fmt.Errorf("mcpauth: introspection: %w", err)
				}
			}
			a.intro = newIntrospector(o, opts)
		}
	}
	return a, nil
}

// Enabled reports whether callers must authenticate.
func (a *Authenticator) Enabled() bool { return a != nil && a.cfg.Enabled() }

// scopeTable is what each tool and projection of the served catalog
// requires, and the parts of the auth section a reload changes with them.
type scopeTable struct {
	// auth is the auth section in force: the one read at start, with the
	// API keys, default scopes and tools/list filtering of the last
	// reload.
	auth *catalog.ServerAuth
	// byTool are the scopes each tool needs, by tool name: the catalog's
	// tools and the get_/list_ tools of its projections.
	byTool map[string][]string
	// byProjection are the scopes reading each projection's resources
	// needs, by projection name.
	byProjection map[string][]string
	// all is the union of every tool's scopes and the default scopes,
	// sorted.
	all []string
}

// newScopeTable builds the table of the tools and projections of cat
// under cfg. Entries of prev for tools and projections no longer listed
// are kept: one removed by a reload may still be registered for a moment,
// and must not become callable without its scopes meanwhile (a tool the
// table does not know is left to the SDK).
func newScopeTable(cfg *catalog.ServerAuth, cat *catalog.Catalog, prev *scopeTable) *scopeTable {
	t := &scopeTable{
		auth:   cfg,
		byTool: make(map[string][]string, len(cat.Tools)), byProjection: map[string][]string{},
	}
	if prev != nil {
		maps.Copy(t.byTool, prev.byTool)
		maps.Copy(t.byProjection, prev.byProjection)
	}
	for _, tool := range cat.Tools {
		t.byTool[tool.Name] = cfg.ToolScopes(tool)
	}
	for name, p := range cat.Projections {
		need := cfg.ProjectionScopes(p)
		t.byProjection[name] = need
		// The tools projection.Register adds for it.
		t.byTool["get_"+name] = need
		t.byTool["list_"+name] = need
	}
	seen := map[string]bool{}
	add := func(scopes []string) {
		for _, sc := range scopes {
			if !seen[sc] {
				seen[sc] = true
				t.all = append(t.all, sc)
			}
		}
	}
	for _, s := range t.byTool {
		add(s)
	}
	add(cfg.DefaultScopes.ReadOnly)
	add(cfg.DefaultScopes.Write)
	sort.Strings(t.all)
	return t
}

// table is the scope table in force.
func (a *Authenticator) table() *scopeTable { return a.tools.Load() }

// Reload takes the tools, projections and auth section of a hot-reloaded
// catalog: a tool or projection added or changed requires its scopes
// (declared, or the defaults) from the moment it can be called, so call it
// before the new tools are served. Of the auth section, the API keys
// (added, revoked, re-scoped: a revoked key is refused from its next
// request on), default_scopes and filter_tools_list apply at once. The
// rest (resource, oauth, cors) and turning authentication off are read at
// start: a reload that changes them is logged and they wait for a restart.
func (a *Authenticator) Reload(cat *catalog.Catalog) {
	if !a.Enabled() || cat == nil {
		return
	}
	cur := a.table()
	sec := *cur.auth
	if next := cat.Auth; !next.Enabled() {
		a.log.Warn("catalog reload: the catalog turns MCP authentication off; that applies only after a restart, and the auth section in force stays")
	} else {
		if !startOnly(next).Same(startOnly(a.cfg)) {
			a.log.Warn("catalog reload: resource, oauth or cors changed in the auth section; they apply after a restart (API keys, default scopes and filter_tools_list are reloaded now)")
		}
		added, removed := keyChanges(sec.APIKeys, next.APIKeys)
		if len(added)+len(removed) > 0 {
			a.log.Info("catalog reload: API keys changed", "added", added, "removed", removed)
		}
		sec.APIKeys, sec.DefaultScopes, sec.FilterToolsList = next.APIKeys, next.DefaultScopes, next.FilterToolsList
	}
	a.tools.Store(newScopeTable(&sec, cat, cur))
}

// startOnly is the part of an auth section read at start only.
func startOnly(s *catalog.ServerAuth) *catalog.ServerAuth {
	c := *s
	c.APIKeys, c.DefaultScopes, c.FilterToolsList = nil, catalog.DefaultScopes{}, false
	return &c
}

// keyChanges names the API keys added and removed (or changed: same name,
// other hash, subject, tenant or scopes count as both). Names are labels,
// never secrets.
func keyChanges(old, next []catalog.APIKey) (added, removed []string) {
	differs := func(k catalog.APIKey, in []catalog.APIKey) bool {
		k.Pos = catalog.Pos{}
		for _, o := range in {
			o.Pos = catalog.Pos{}
			if reflect.DeepEqual(k, o) {
				return false
			}
		}
		return true
	}
	for _, k := range next {
		if differs(k, old) {
			added = append(added, k.Name)
		}
	}
	for _, k := range old {
		if differs(k, next) {
			removed = append(removed, k.Name)
		}
	}
	return added, removed
}

// ToolScopes are the scopes a caller needs to call the named tool.
func (a *Authenticator) ToolScopes(tool string) []string { return a.table().byTool[tool] }

// Allowed reports whether id may call the named tool. With auth off,
// everything is allowed.
func (a *Authenticator) Allowed(id *Identity, tool string) bool {
	if !a.Enabled() {
		return true
	}
	return id != nil && id.Has(a.table().byTool[tool])
}

// ResourceMetadataURL is where the RFC 9728 metadata is served (the
// path-suffixed form, which MCP clients try first).
func (a *Authenticator) ResourceMetadataURL() string { return a.resourceMetadataURL }

// Verify checks a bearer credential and returns the caller. A refused
// credential gives an error matching ErrInvalidToken whose text is safe to
// show the client; other errors mean the credential could not be checked
// (the issuer is unreachable).
func (a *Authenticator) Verify(ctx context.Context, token string) (*Identity, error) {
	if !a.Enabled() {
		return nil, errors.New("mcpauth: authentication is off")
	}
	switch {
	case token == "":
		return nil, invalid("no bearer token")
	case len(token) > maxTokenLen:
		return nil, invalid("token too long")
	}
	if id := a.apiKey(token); id != nil {
		return id, nil
	}
	switch {
	case a.jwks != nil && looksLikeJWT(token):
		return a.jwks.verify(ctx, token)
	case a.intro != nil:
		return a.intro.verify(ctx, token)
	}
	return nil, invalid("unknown credential")
}

// apiKey compares the key's hash with every configured hash in constant
// time, without stopping at a match, so timing reveals nothing.
func (a *Authenticator) apiKey(token string) *Identity {
	if len(a.table().auth.APIKeys) == 0 {
		return nil
	}
	id := a.APIKeyIdentity(sha256.Sum256([]byte(token)))
	if id != nil {
		id.token = token
	}
	return id
}

// APIKeyIdentity is the caller an API key stands for, found by the key's
// SHA-256 among the keys in force now (a hot reload may have revoked or
// re-scoped it); nil when no key has that hash. The console checks its
// sessions with it. Every hash is compared, in constant time.
func (a *Authenticator) APIKeyIdentity(sum [sha256.Size]byte) *Identity {
	if !a.Enabled() {
		return nil
	}
	keys := a.table().auth.APIKeys
	found := -1
	for i := range keys {
		if subtle.ConstantTimeCompare(sum[:], keys[i].SHA256[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil
	}
	k := keys[found]
	return &Identity{
		Subject:   k.Subject,
		Tenant:    k.Tenant,
		Scopes:    k.Scopes,
		Method:    MethodAPIKey,
		allScopes: slices.Contains(k.Scopes, "*"),
	}
}

func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// bearer extracts the token of an Authorization header value.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
