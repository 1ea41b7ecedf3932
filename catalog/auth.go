package catalog

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// This file holds both sides of authentication in the catalog:
//
//   - the top-level auth: section, how MCP clients authenticate to Toolbus
//     (ServerAuth). It lives in the catalog, not in flags, because every
//     mcp-front replica must enforce the same policy as the tools it
//     serves, and the per-tool scopes already live here;
//   - tools[].scopes, the scopes a caller needs to call one tool;
//   - upstreams.<name>.auth, how Toolbus authenticates to an upstream
//     (UpstreamAuth).
//
// Credentials are accepted only as ${env:NAME} or ${file:/path} references
// and are held in Secret values, which print as their reference.

// Defaults and limits of server authentication.
const (
	DefaultClockSkew = 30 * time.Second
	MaxClockSkew     = 5 * time.Minute
)

// Default scopes a tool requires when it declares none and auth.default_scopes
// does not say otherwise: read-only tools need DefaultReadScope, every other
// tool DefaultWriteScope.
const (
	DefaultReadScope  = "tools.read"
	DefaultWriteScope = "tools.write"
)

// DefaultAlgorithms are the JWS algorithms accepted when auth.oauth.algorithms
// is not set: asymmetric only. HMAC algorithms are never accepted (the key
// would be the issuer's public key, which anyone can read) and neither is
// "none".
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// ServerAuth is the catalog's auth: section. A catalog without it has a nil
// Catalog.Auth, which `toolbus serve` accepts only on loopback listeners.
type ServerAuth struct {
	// None is auth: none: no authentication at all, for local use.
	None bool
	// Resource is the canonical URL of the MCP endpoint (RFC 8707/9728),
	// e.g. https://mcp.example.com/mcp. Tokens must name it as audience.
	Resource string
	// ResourceName is shown to users by some clients (RFC 9728 resource_name).
	ResourceName string
	// ResourceDocumentation is a URL for humans (RFC 9728).
	ResourceDocumentation string
	OAuth                 *OAuthServer
	APIKeys               []APIKey
	// DefaultScopes are required by tools that declare no scopes:
	// ReadOnly for read-only tools, Write for every other tool.
	DefaultScopes DefaultScopes
	// FilterToolsList hides from tools/list the tools the caller lacks
	// scopes for (default true).
	FilterToolsList bool
	CORS            CORS
	Pos             Pos
}

// OAuthServer validates bearer tokens issued by one authorization server.
type OAuthServer struct {
	// Issuer is the expected iss claim and where metadata is discovered.
	Issuer string
	// AuthorizationServers are announced in the protected-resource metadata
	// (default: [Issuer]).
	AuthorizationServers []string
	// JWKSURL is where signing keys are fetched; empty means discovered
	// from the issuer's metadata.
	JWKSURL string
	// Audiences accepted in the aud claim (default: [Resource]).
	Audiences []string
	// Algorithms accepted in the JWS header (default: DefaultAlgorithms).
	Algorithms []string
	// ClockSkew tolerated on exp, nbf and iat.
	ClockSkew time.Duration
	// TenantClaim names the claim that carries the caller's tenant; empty
	// means tokens carry none.
	TenantClaim string
	// Introspection, when set, validates opaque (non-JWT) tokens with
	// RFC 7662 token introspection.
	Introspection *Introspection
}

// Introspection is an RFC 7662 introspection endpoint and the credentials
// Toolbus authenticates to it with (HTTP Basic).
type Introspection struct {
	URL          string
	ClientID     Secret
	ClientSecret Secret
	// CacheTTL bounds how long an active answer is reused (never past the
	// token's exp); default 1m.
	CacheTTL time.Duration
}

// APIKey is a static key for service callers, sent as a bearer token. Only
// its SHA-256 is in the catalog.
type APIKey struct {
	Name    string
	SHA256  [32]byte
	Subject string
	Tenant  string
	// Scopes granted to the key; "*" grants every scope.
	Scopes []string
	Pos    Pos
}

// DefaultScopes are the scopes of tools that declare none.
type DefaultScopes struct {
	ReadOnly []string
	Write    []string
}

// CORS lets browser-based MCP clients on the listed origins call /mcp.
// Empty means no CORS headers at all (browsers then refuse cross-origin
// calls).
type CORS struct {
	AllowedOrigins []string
	MaxAge         time.Duration
}

// Enabled reports whether callers must authenticate.
func (a *ServerAuth) Enabled() bool { return a != nil && !a.None }

// ToolScopes are the scopes a caller needs to call t: the tool's own
// scopes, or the default for its annotation.
func (a *ServerAuth) ToolScopes(t *Tool) []string {
	if t.Scopes != nil {
		return t.Scopes
	}
	if t.Annotations.ReadOnly != nil && *t.Annotations.ReadOnly {
		return a.DefaultScopes.ReadOnly
	}
	return a.DefaultScopes.Write
}

// ProjectionScopes are the scopes a caller needs to read projection p: its
// own scopes, or the read-only default (its tools are read-only).
func (a *ServerAuth) ProjectionScopes(p *Projection) []string {
	if p.Scopes != nil {
		return p.Scopes
	}
	return a.DefaultScopes.ReadOnly
}

// Same reports whether two auth sections say the same, wherever they are
// written in their files (nil sections are the same as each other only).
func (a *ServerAuth) Same(b *ServerAuth) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Pos, y.Pos = Pos{}, Pos{}
	x.APIKeys, y.APIKeys = keysWithoutPos(x.APIKeys), keysWithoutPos(y.APIKeys)
	return reflect.DeepEqual(x, y)
}

func keysWithoutPos(keys []APIKey) []APIKey {
	out := slices.Clone(keys)
	for i := range out {
		out[i].Pos = Pos{}
	}
	return out
}

// Secrets are the referenced credentials of the section.
func (a *ServerAuth) Secrets() []Secret {
	if a == nil || a.OAuth == nil || a.OAuth.Introspection == nil {
		return nil
	}
	return []Secret{a.OAuth.Introspection.ClientID, a.OAuth.Introspection.ClientSecret}
}

// AuthType is an upstream authentication scheme.
type AuthType string

// Upstream authentication schemes.
const (
	AuthNone              AuthType = "none"
	AuthAPIKey            AuthType = "api_key"
	AuthBearer            AuthType = "bearer"
	AuthBasic             AuthType = "basic"
	AuthClientCredentials AuthType = "oauth2_client_credentials"
	AuthRefreshToken      AuthType = "oauth2_refresh_token"
	AuthForward           AuthType = "forward"
	AuthTokenExchange     AuthType = "token_exchange"
)

var authTypes = []AuthType{AuthNone, AuthAPIKey, AuthBearer, AuthBasic, AuthClientCredentials, AuthRefreshToken, AuthForward, AuthTokenExchange}

// UpstreamAuth is an upstream's auth: how Toolbus authenticates to it. Only
// the fields of Type are set.
type UpstreamAuth struct {
	Type AuthType
	// In is "header" or "query" (api_key).
	In string
	// Name is the header or query parameter name (api_key).
	Name string
	// Value is the API key (api_key) or the token (bearer).
	Value Secret
	// Username and Password (basic).
	Username Secret
	Password Secret
	// TokenURL is the token endpoint (oauth2_*, token_exchange).
	TokenURL     *url.URL
	ClientID     Secret
	ClientSecret Secret
	// RefreshToken (oauth2_refresh_token).
	RefreshToken Secret
	Scopes       []string
	// Audience and Resource are sent to the token endpoint when set.
	Audience string
	Resource string
	// AuthStyle is how client credentials reach the token endpoint:
	// "header" (HTTP Basic, the default) or "params" (form fields).
	AuthStyle string
	// SubjectTokenType and RequestedTokenType (token_exchange; default
	// urn:ietf:params:oauth:token-type:access_token).
	SubjectTokenType   string
	RequestedTokenType string
	Pos                Pos
}

// NeedsCallerToken reports whether calls need the MCP caller's own token:
// only then does mcp-front put it on the bus.
func (a *UpstreamAuth) NeedsCallerToken() bool {
	return a != nil && (a.Type == AuthForward || a.Type == AuthTokenExchange)
}

// Secrets are the referenced credentials, for scrubbing error messages.
func (a *UpstreamAuth) Secrets() []Secret {
	if a == nil {
		return nil
	}
	var out []Secret
	for _, s := range []Secret{a.Value, a.Username, a.Password, a.ClientID, a.ClientSecret, a.RefreshToken} {
		if s.IsRef() {
			out = append(out, s)
		}
	}
	return out
}

// TokenTypeAccessToken is RFC 8693's access token type identifier.
const TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

var (
	serverAuthFields    = []string{"mode", "resource", "resource_name", "resource_documentation", "oauth", "api_keys", "default_scopes", "filter_tools_list", "cors"}
	oauthFields         = []string{"issuer", "authorization_servers", "jwks_url", "audiences", "algorithms", "clock_skew", "tenant_claim", "introspection"}
	introspectionFields = []string{"url", "client_id", "client_secret", "cache_ttl"}
	apiKeyFields        = []string{"name", "sha256", "subject", "tenant", "scopes"}
	defaultScopeFields  = []string{"read_only", "write"}
	corsFields          = []string{"allowed_origins", "max_age"}

	upstreamAuthFields = map[AuthType][]string{
		AuthNone:              {"type"},
		AuthAPIKey:            {"type", "in", "name", "value"},
		AuthBearer:            {"type", "token"},
		AuthBasic:             {"type", "username", "password"},
		AuthClientCredentials: {"type", "token_url", "client_id", "client_secret", "scopes", "audience", "resource", "auth_style"},
		AuthRefreshToken:      {"type", "token_url", "client_id", "client_secret", "refresh_token", "scopes", "auth_style"},
		AuthForward:           {"type"},
		AuthTokenExchange:     {"type", "token_url", "client_id", "client_secret", "scopes", "audience", "resource", "auth_style", "subject_token_type", "requested_token_type"},
	}
	// upstreamAuthRequired lists the fields each type cannot do without.
	upstreamAuthRequired = map[AuthType][]string{
		AuthAPIKey:            {"name", "value"},
		AuthBearer:            {"token"},
		AuthBasic:             {"username", "password"},
		AuthClientCredentials: {"token_url", "client_id", "client_secret"},
		AuthRefreshToken:      {"token_url", "client_id", "refresh_token"},
		AuthTokenExchange:     {"token_url"},
	}
)

// wholeRefRE is one whole secret reference.
var wholeRefRE = regexp.MustCompile(`^\$\{(env|file):[^}]*\}$`)

// scopeTokenRE is an RFC 6749 scope-token.
var scopeTokenRE = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+$`)

var claimNameRE = regexp.MustCompile(`^[A-Za-z0-9_:./-]{1,128}$`)

// serverAuth parses the top-level auth: section.
func (p *parser) serverAuth(n *yaml.Node) *ServerAuth {
	a := &ServerAuth{
		Pos:             p.pos(n),
		FilterToolsList: true,
		DefaultScopes:   DefaultScopes{ReadOnly: []string{DefaultReadScope}, Write: []string{DefaultWriteScope}},
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if n.Value != "none" {
			p.errorf(n, "auth", "must be none or a mapping with oauth and/or api_keys, got %q", n.Value)
			return nil
		}
		a.None = true
		return a
	}
	before := len(p.problems)
	ms, ok := p.mapping(n, "auth", serverAuthFields)
	if !ok {
		return nil
	}
	for _, f := range ms {
		ff := "auth." + f.name
		switch f.name {
		case "mode":
			if s, ok := p.str(f.val, ff); ok {
				switch s {
				case "none":
					a.None = true
				case "required":
				default:
					p.errorf(f.val, ff, "unknown mode %q: want required or none", s)
				}
			}
		case "resource":
			a.Resource = p.authURL(f.val, ff, false)
		case "resource_name":
			a.ResourceName, _ = p.str(f.val, ff)
		case "resource_documentation":
			a.ResourceDocumentation = p.authURL(f.val, ff, true)
		case "oauth":
			a.OAuth = p.oauthServer(f.val, ff)
		case "api_keys":
			a.APIKeys = p.apiKeys(f.val, ff)
		case "default_scopes":
			if ds, ok := p.mapping(f.val, ff, defaultScopeFields); ok {
				for _, d := range ds {
					sc := p.scopeList(d.val, ff+"."+d.name)
					if d.name == "read_only" {
						a.DefaultScopes.ReadOnly = sc
					} else {
						a.DefaultScopes.Write = sc
					}
				}
			}
		case "filter_tools_list":
			if b, ok := p.boolean(f.val, ff); ok {
				a.FilterToolsList = b
			}
		case "cors":
			a.CORS = p.cors(f.val, ff)
		}
	}
	if !a.None {
		if ms.get("resource") == nil {
			p.errorf(n, "auth.resource", "required field is missing; set it to the public URL of the MCP endpoint, such as https://mcp.example.com/mcp (tokens must name it as audience)")
		}
		if a.OAuth == nil && len(a.APIKeys) == 0 && ms.get("oauth") == nil && ms.get("api_keys") == nil {
			p.errorf(n, "auth", "configure oauth, api_keys or both, or write auth: none to run without authentication (local use only)")
		}
	}
	if a.OAuth != nil && len(a.OAuth.Audiences) == 0 && a.Resource != "" {
		a.OAuth.Audiences = []string{a.Resource}
	}
	if len(p.problems) > before {
		return nil
	}
	return a
}

// authURL reads an absolute http(s) URL. Plain http is accepted only for
// loopback hosts unless anyHTTP.
func (p *parser) authURL(n *yaml.Node, field string, anyHTTP bool) string {
	s, ok := p.str(n, field)
	if !ok {
		return ""
	}
	v, _, _, ok := p.interpolate(s, refEnvOnly, 0, func(format string, args ...any) { p.errorf(n, field, format, args...) })
	if !ok {
		return ""
	}
	u, err := url.Parse(v)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		p.errorf(n, field, "must be an absolute https URL")
	case u.User != nil:
		p.errorf(n, field, "must not contain user info")
	case u.Fragment != "":
		p.errorf(n, field, "must not have a fragment")
	case u.Scheme == "https":
		return v
	case u.Scheme == "http" && (anyHTTP || isLoopbackHost(u.Hostname())):
		return v
	case u.Scheme == "http":
		p.errorf(n, field, "must use https (plain http is accepted only for loopback hosts)")
	default:
		p.errorf(n, field, "scheme %q is not supported: want https", u.Scheme)
	}
	return ""
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (p *parser) oauthServer(n *yaml.Node, field string) *OAuthServer {
	ms, ok := p.mapping(n, field, oauthFields)
	if !ok {
		return nil
	}
	o := &OAuthServer{ClockSkew: DefaultClockSkew, Algorithms: DefaultAlgorithms}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "issuer":
			// The issuer is compared byte for byte with iss: no rewriting.
			o.Issuer = p.authURL(f.val, ff, false)
		case "authorization_servers":
			for i, it := range p.authStrings(f.val, ff) {
				if u := p.authURL(it.n, fmt.Sprintf("%s[%d]", ff, i), false); u != "" {
					o.AuthorizationServers = append(o.AuthorizationServers, u)
				}
			}
		case "jwks_url":
			o.JWKSURL = p.authURL(f.val, ff, false)
		case "audiences":
			for _, it := range p.authStrings(f.val, ff) {
				o.Audiences = append(o.Audiences, it.s)
			}
		case "algorithms":
			o.Algorithms = nil
			for i, it := range p.authStrings(f.val, ff) {
				fi := fmt.Sprintf("%s[%d]", ff, i)
				switch {
				case strings.EqualFold(it.s, "none"):
					p.errorf(it.n, fi, "alg none accepts unsigned tokens and is never allowed")
				case strings.HasPrefix(strings.ToUpper(it.s), "HS"):
					p.errorf(it.n, fi, "HMAC algorithms are not allowed: the key would be shared with every client (want one of %s)", strings.Join(DefaultAlgorithms, ", "))
				case !slices.Contains(DefaultAlgorithms, it.s):
					p.errorf(it.n, fi, "unknown algorithm %q (want one of %s)", it.s, strings.Join(DefaultAlgorithms, ", "))
				default:
					o.Algorithms = append(o.Algorithms, it.s)
				}
			}
		case "clock_skew":
			if d, ok := p.authDuration(f.val, ff); ok {
				if d > MaxClockSkew {
					p.errorf(f.val, ff, "must be at most 5m, got %s", f.val.Value)
				}
				o.ClockSkew = d
			}
		case "tenant_claim":
			if s, ok := p.str(f.val, ff); ok {
				if !claimNameRE.MatchString(s) {
					p.errorf(f.val, ff, "%q is not a claim name", s)
				}
				o.TenantClaim = s
			}
		case "introspection":
			o.Introspection = p.introspection(f.val, ff)
		}
	}
	if ms.get("issuer") == nil {
		p.errorf(n, field+".issuer", "required field is missing; set it to the authorization server's issuer URL (the iss claim of its tokens)")
	}
	if len(o.AuthorizationServers) == 0 && o.Issuer != "" {
		o.AuthorizationServers = []string{o.Issuer}
	}
	return o
}

// authDuration accepts zero, unlike catalog timeouts.
func (p *parser) authDuration(n *yaml.Node, field string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, field, "must be a duration such as 30s, got %s", kindName(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d < 0 {
		p.errorf(n, field, "invalid duration %q: want a value such as 30s", n.Value)
		return 0, false
	}
	return d, true
}

func (p *parser) introspection(n *yaml.Node, field string) *Introspection {
	ms, ok := p.mapping(n, field, introspectionFields)
	if !ok {
		return nil
	}
	in := &Introspection{CacheTTL: time.Minute}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "url":
			in.URL = p.authURL(f.val, ff, false)
		case "client_id":
			in.ClientID = p.authValue(f.val, ff, false, SecretsServerAuth)
		case "client_secret":
			in.ClientSecret = p.authValue(f.val, ff, true, SecretsServerAuth)
		case "cache_ttl":
			in.CacheTTL, _ = p.authDuration(f.val, ff)
		}
	}
	for _, req := range introspectionFields[:3] {
		if ms.get(req) == nil {
			p.errorf(n, field+"."+req, "required field is missing")
		}
	}
	return in
}

func (p *parser) apiKeys(n *yaml.Node, field string) []APIKey {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list, got %s", kindName(n))
		return nil
	}
	var out []APIKey
	names, hashes := map[string]int{}, map[[32]byte]int{}
	for i, item := range n.Content {
		item = deref(item)
		fi := fmt.Sprintf("%s[%d]", field, i)
		ms, ok := p.mapping(item, fi, apiKeyFields)
		if !ok {
			continue
		}
		k := APIKey{Pos: p.pos(item)}
		for _, f := range ms {
			ff := fi + "." + f.name
			switch f.name {
			case "name":
				if s, ok := p.str(f.val, ff); ok {
					if line, dup := names[s]; dup {
						p.errorf(f.val, ff, "duplicate API key name %q (first at line %d)", s, line)
					}
					names[s] = f.val.Line
					k.Name = s
				}
			case "sha256":
				s, ok := p.str(f.val, ff)
				if !ok {
					break
				}
				b, err := hex.DecodeString(s)
				if err != nil || len(b) != 32 {
					p.errorf(f.val, ff, "must be the key's SHA-256 as 64 hex digits (printf %%s \"$KEY\" | sha256sum); never the key itself")
					break
				}
				copy(k.SHA256[:], b)
				if line, dup := hashes[k.SHA256]; dup {
					p.errorf(f.val, ff, "the same key is declared twice (first at line %d)", line)
				}
				hashes[k.SHA256] = f.val.Line
			case "subject":
				k.Subject, _ = p.str(f.val, ff)
			case "tenant":
				k.Tenant, _ = p.str(f.val, ff)
			case "scopes":
				k.Scopes = p.scopeList(f.val, ff)
				if slices.Contains(k.Scopes, "*") && len(k.Scopes) > 1 {
					p.errorf(f.val, ff, "* already grants every scope; list nothing else")
				}
			}
		}
		for _, req := range []string{"name", "sha256", "scopes"} {
			if ms.get(req) == nil {
				p.errorf(item, fi+"."+req, "required field is missing")
			}
		}
		if k.Subject == "" {
			k.Subject = "apikey:" + k.Name
		}
		out = append(out, k)
	}
	return out
}

func (p *parser) cors(n *yaml.Node, field string) CORS {
	var c CORS
	ms, ok := p.mapping(n, field, corsFields)
	if !ok {
		return c
	}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "allowed_origins":
			for i, it := range p.authStrings(f.val, ff) {
				fi := fmt.Sprintf("%s[%d]", ff, i)
				u, err := url.Parse(it.s)
				switch {
				case it.s == "*":
					p.errorf(it.n, fi, "* is not allowed: list the origins of the browser clients, such as https://app.example.com")
				case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
					p.errorf(it.n, fi, "%q is not an origin: want scheme://host[:port], such as https://app.example.com", it.s)
				default:
					c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimSuffix(it.s, "/"))
				}
			}
		case "max_age":
			c.MaxAge, _ = p.authDuration(f.val, ff)
		}
	}
	return c
}

// scopeList reads a list of scope tokens; an empty list is kept non-nil
// (it means "no scope needed").
func (p *parser) scopeList(n *yaml.Node, field string) []string {
	out := []string{}
	for i, it := range p.authStrings(n, field) {
		if it.s != "*" && !scopeTokenRE.MatchString(it.s) {
			p.errorf(it.n, fmt.Sprintf("%s[%d]", field, i), "%q is not a valid scope (no spaces, quotes or backslashes)", it.s)
			continue
		}
		if !slices.Contains(out, it.s) {
			out = append(out, it.s)
		}
	}
	return out
}

type authItem struct {
	s string
	n *yaml.Node
}

func (p *parser) authStrings(n *yaml.Node, field string) []authItem {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list, got %s", kindName(n))
		return nil
	}
	var out []authItem
	for i, item := range n.Content {
		item = deref(item)
		if s, ok := p.str(item, fmt.Sprintf("%s[%d]", field, i)); ok {
			out = append(out, authItem{s, item})
		}
	}
	return out
}

// authValue reads a credential field. A secret must be one whole
// ${env:NAME} or ${file:/path} reference; other values may also be
// literals. A reference is read only when the catalog is loaded with one
// of groups (WithSecrets).
func (p *parser) authValue(n *yaml.Node, field string, secret bool, groups SecretGroups) Secret {
	s, ok := p.str(n, field)
	if !ok {
		return Secret{}
	}
	if secret && !wholeRefRE.MatchString(s) {
		// Never quote the value: it is probably a credential.
		p.errorf(n, field, "a credential must be one ${env:NAME} or ${file:/path} reference, not a literal value")
		return Secret{}
	}
	report := func(format string, args ...any) { p.errorf(n, field, format, args...) }
	v, hasRef, resolved, ok := p.interpolate(s, refAny, groups, report)
	switch {
	case !ok:
		return Secret{}
	case !resolved:
		return unresolvedRef(s, groups, p.at(n, field))
	case v == "":
		p.errorf(n, field, "must not be empty")
		return Secret{}
	case !validHeaderValue(v):
		p.errorf(n, field, "the value contains characters not allowed in a header (such as a newline)")
		return Secret{}
	case hasRef:
		return FromRef(s, v)
	}
	return Literal(v)
}

// toolScopes parses tools[i].scopes.
// requiredScopes parses the scopes a tool or a projection requires.
func (p *parser) requiredScopes(n *yaml.Node, field string) []string {
	scopes := p.scopeList(n, field)
	if slices.Contains(scopes, "*") {
		p.errorf(n, field, "* is not a scope a tool can require")
	}
	return scopes
}

// upstreamAuth parses upstreams.<name>.auth.
func (p *parser) upstreamAuth(n *yaml.Node, field string) *UpstreamAuth {
	if n.Kind == yaml.ScalarNode && n.Value == string(AuthNone) {
		return &UpstreamAuth{Type: AuthNone, Pos: p.pos(n)}
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping with a type, got %s", kindName(n))
		return nil
	}
	tn := lookup(n, "type")
	if tn == nil {
		p.errorf(n, field+".type", "required field is missing (want one of %s)", joinAuthTypes())
		return nil
	}
	ts, ok := p.str(tn, field+".type")
	if !ok {
		return nil
	}
	typ := AuthType(ts)
	if !slices.Contains(authTypes, typ) {
		p.errorf(tn, field+".type", "unknown type %q (want one of %s)", ts, joinAuthTypes())
		return nil
	}
	before := len(p.problems)
	ms, ok := p.mapping(n, field, upstreamAuthFields[typ])
	if !ok {
		return nil
	}
	a := &UpstreamAuth{Type: typ, Pos: p.pos(n)}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "in":
			if s, ok := p.str(f.val, ff); ok {
				if s != "header" && s != "query" {
					p.errorf(f.val, ff, "must be header or query, got %q", s)
				}
				a.In = s
			}
		case "name":
			if s, ok := p.str(f.val, ff); ok {
				a.Name = s
			}
		case "value", "token":
			a.Value = p.authValue(f.val, ff, true, p.upstreamGroups)
		case "username", "client_id":
			v := p.authValue(f.val, ff, false, p.upstreamGroups)
			if f.name == "username" {
				a.Username = v
			} else {
				a.ClientID = v
			}
		case "password":
			a.Password = p.authValue(f.val, ff, true, p.upstreamGroups)
		case "client_secret":
			a.ClientSecret = p.authValue(f.val, ff, true, p.upstreamGroups)
		case "refresh_token":
			a.RefreshToken = p.authValue(f.val, ff, true, p.upstreamGroups)
		case "token_url":
			if s := p.authURL(f.val, ff, false); s != "" {
				a.TokenURL, _ = url.Parse(s)
			}
		case "scopes":
			a.Scopes = p.scopeList(f.val, ff)
		case "audience":
			a.Audience, _ = p.str(f.val, ff)
		case "resource":
			a.Resource = p.authURL(f.val, ff, true)
		case "auth_style":
			if s, ok := p.str(f.val, ff); ok {
				if s != "header" && s != "params" {
					p.errorf(f.val, ff, "must be header (HTTP Basic) or params (form fields), got %q", s)
				}
				a.AuthStyle = s
			}
		case "subject_token_type", "requested_token_type":
			if s, ok := p.str(f.val, ff); ok {
				if !strings.HasPrefix(s, "urn:") {
					p.errorf(f.val, ff, "must be a token type URI such as %s", TokenTypeAccessToken)
				}
				if f.name == "subject_token_type" {
					a.SubjectTokenType = s
				} else {
					a.RequestedTokenType = s
				}
			}
		}
	}
	for _, req := range upstreamAuthRequired[typ] {
		if ms.get(req) == nil {
			p.errorf(n, field+"."+req, "required field is missing for type %s", typ)
		}
	}
	if typ == AuthAPIKey {
		if a.In == "" {
			a.In = "header"
		}
		if a.Name != "" {
			if a.In == "header" {
				p.headerName(ms.key("name"), field+".name", a.Name, argumentHeaders)
			} else if strings.ContainsAny(a.Name, "&=#? ") {
				p.errorf(ms.get("name"), field+".name", "%q is not a valid query parameter name", a.Name)
			}
		}
	}
	if a.AuthStyle == "" {
		a.AuthStyle = "header"
	}
	if typ == AuthTokenExchange {
		if a.SubjectTokenType == "" {
			a.SubjectTokenType = TokenTypeAccessToken
		}
		if a.RequestedTokenType == "" {
			a.RequestedTokenType = TokenTypeAccessToken
		}
	}
	if len(p.problems) > before {
		return nil
	}
	return a
}

// checkUpstreamAuth refuses a catalog header that would overwrite the
// credential the auth scheme sets (catalog headers are applied last).
func (p *parser) checkUpstreamAuth(u *Upstream, ms members, field string) {
	if u.Auth == nil {
		return
	}
	var name string
	switch u.Auth.Type {
	case AuthAPIKey:
		if u.Auth.In == "header" {
			name = u.Auth.Name
		}
	case AuthNone:
	default:
		name = "Authorization"
	}
	if name == "" {
		return
	}
	for _, h := range u.Headers {
		if strings.EqualFold(h.Name, name) {
			p.errorf(ms.key("headers"), field+".headers", "header %s is set by auth (type %s); remove it from headers", h.Name, u.Auth.Type)
		}
	}
}

func joinAuthTypes() string {
	s := make([]string, len(authTypes))
	for i, t := range authTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
