package mcpauth

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// Ways a caller authenticated, as recorded in Identity.Method.
const (
	MethodJWT           = "jwt"
	MethodIntrospection = "introspection"
	MethodAPIKey        = "api_key"
)

// Identity is an authenticated caller. It never prints its token: String,
// GoString and LogValue leave it out.
type Identity struct {
	Subject string
	Tenant  string
	// Scopes granted to the caller, in token order.
	Scopes []string
	// Method is how the caller authenticated (MethodJWT...).
	Method string
	// ClientID is the OAuth client the token was issued to, when known.
	ClientID string
	// Expiry of the credential; zero for API keys.
	Expiry time.Time

	// allScopes is an API key granted "*".
	allScopes bool
	token     string
}

// Token is the caller's bearer token, for upstreams that forward or
// exchange it. It must go nowhere else.
func (id *Identity) Token() string { return id.token }

// Missing returns the scopes of required that id lacks.
func (id *Identity) Missing(required []string) []string {
	if id.allScopes {
		return nil
	}
	var out []string
	for _, s := range required {
		if !slices.Contains(id.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// Has reports whether id holds every scope of required.
func (id *Identity) Has(required []string) bool { return len(id.Missing(required)) == 0 }

// String names the caller without its token.
func (id *Identity) String() string {
	s := id.Method + ":" + id.Subject
	if id.Tenant != "" {
		s += "@" + id.Tenant
	}
	return s
}

// GoString keeps %#v from printing the token.
func (id *Identity) GoString() string { return "mcpauth.Identity{" + id.String() + "}" }

// LogValue is the caller as logged: never the token.
func (id *Identity) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("subject", id.Subject), slog.String("method", id.Method)}
	if id.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", id.Tenant))
	}
	if id.ClientID != "" {
		attrs = append(attrs, slog.String("client_id", id.ClientID))
	}
	if len(id.Scopes) > 0 {
		attrs = append(attrs, slog.String("scopes", strings.Join(id.Scopes, " ")))
	}
	return slog.GroupValue(attrs...)
}

// Proto is the caller as carried by a ToolCall. The token is included only
// when withToken is set: for tools whose upstream forwards or exchanges it.
func (id *Identity) Proto(withToken bool) *toolbusv1.Caller {
	c := &toolbusv1.Caller{Subject: id.Subject, Tenant: id.Tenant, Scopes: id.Scopes}
	if withToken {
		c.Token = id.token
	}
	return c
}

var _ slog.LogValuer = (*Identity)(nil)

type identityKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the caller of a gRPC call or an HTTP request that
// passed the middleware.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}

// identityExtra is the auth.TokenInfo.Extra key holding the Identity: the
// go-sdk hands TokenInfo to tool handlers (CallToolRequest.Extra), which is
// how an MCP call learns its caller.
const identityExtra = "toolbus/identity"

// FromTokenInfo returns the Identity the middleware stored in ti.
func FromTokenInfo(ti *auth.TokenInfo) (*Identity, bool) {
	if ti == nil {
		return nil, false
	}
	id, ok := ti.Extra[identityExtra].(*Identity)
	return id, ok && id != nil
}

func (id *Identity) tokenInfo() *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     id.Scopes,
		Expiration: id.Expiry,
		// The SDK binds a session to UserID, so another caller cannot
		// take over a session whose id it learnt.
		UserID: id.Method + ":" + id.Tenant + ":" + id.Subject,
		Extra:  map[string]any{identityExtra: id},
	}
}
