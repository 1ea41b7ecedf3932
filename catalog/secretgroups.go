package catalog

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// SecretGroups is a set of secret groups: which of the catalog's secret
// references a process reads when it loads the catalog (WithSecrets). A
// process holds only the credentials its services use; references of
// other groups are checked exactly as usual (syntax, ${env:NAME} names,
// absolute ${file:/path} paths, no literal credentials) but never read from
// the environment or the disk, and their Secrets are unresolved.
//
// ${env:NAME} references in URLs (base_url, endpoint, auth URLs, token_url)
// are configuration, not secrets: they belong to no group and are always
// resolved.
type SecretGroups uint8

// Secret groups.
const (
	// SecretsRESTUpstreams are the credentials of rest and soap upstreams:
	// upstreams.<name>.headers, upstreams.<name>.auth and
	// upstreams.<name>.soap.ws_security. The rest-worker sends them.
	SecretsRESTUpstreams SecretGroups = 1 << iota
	// SecretsGraphQLUpstreams are upstreams.<name>.headers and
	// upstreams.<name>.auth of graphql upstreams. The graphql-worker sends them.
	SecretsGraphQLUpstreams
	// SecretsGraphQLIntrospection are the headers of graphql upstreams whose
	// schema is introspected (schema.introspect: true), which
	// ResolveGraphQLSchemas sends when it introspects at start-up. They are
	// also in SecretsGraphQLUpstreams.
	SecretsGraphQLIntrospection
	// SecretsServerAuth are the credentials of the top-level auth: section
	// (auth.oauth.introspection.client_id and client_secret), which
	// mcp-front (and the operator console) use to validate MCP callers.
	SecretsServerAuth
	// SecretsWebhooks are sources.<name>.secrets, with which webhook-ingest
	// verifies deliveries.
	SecretsWebhooks

	// SecretsNone resolves no reference (state-updater needs none).
	SecretsNone SecretGroups = 0
	// SecretsUpstreams are the credentials of every upstream.
	SecretsUpstreams = SecretsRESTUpstreams | SecretsGraphQLUpstreams | SecretsGraphQLIntrospection
	// SecretsAll is every group: what Load and Parse resolve by default.
	SecretsAll = SecretsUpstreams | SecretsServerAuth | SecretsWebhooks
)

var secretGroupNames = []struct {
	g    SecretGroups
	name string
}{
	{SecretsRESTUpstreams, "rest-upstreams"},
	{SecretsGraphQLUpstreams, "graphql-upstreams"},
	{SecretsGraphQLIntrospection, "graphql-introspection"},
	{SecretsServerAuth, "server-auth"},
	{SecretsWebhooks, "webhooks"},
}

// String lists the groups, e.g. "rest-upstreams+webhooks"; "none" when empty.
func (g SecretGroups) String() string {
	var names []string
	for _, n := range secretGroupNames {
		if g&n.g != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// Has reports whether g includes any of the groups in h.
func (g SecretGroups) Has(h SecretGroups) bool { return g&h != 0 }

// WithSecrets makes Load and Parse resolve only the references of the
// given groups; the others are checked but not read (see SecretGroups).
// Without it, every reference is resolved (SecretsAll). Hot reload must
// pass the same groups as the start-up load (Catalog.SecretGroups).
func WithSecrets(g SecretGroups) Option {
	return func(o *options) { o.secrets = g }
}

// SecretsFor returns the groups that the services of `toolbus serve
// --services` use (the union over services):
//
//   - mcp-front: SecretsServerAuth (it validates MCP callers) and
//     SecretsGraphQLIntrospection (its tool list needs the introspected
//     schemas). It calls no upstream itself: calls, composite and batch
//     steps go through the bus to the workers.
//   - rest-worker: SecretsRESTUpstreams.
//   - graphql-worker: SecretsGraphQLUpstreams (introspection headers
//     included).
//   - webhook-ingest: SecretsWebhooks.
//   - state-updater: none.
//
// "all" and unknown names give SecretsAll: resolving too much is safe,
// too little is not.
func SecretsFor(services ...string) SecretGroups {
	var g SecretGroups
	for _, s := range services {
		switch strings.TrimSpace(s) {
		case "mcp-front":
			g |= SecretsServerAuth | SecretsGraphQLIntrospection
		case "rest-worker":
			g |= SecretsRESTUpstreams
		case "graphql-worker":
			g |= SecretsGraphQLUpstreams | SecretsGraphQLIntrospection
		case "webhook-ingest":
			g |= SecretsWebhooks
		case "state-updater", "":
		default:
			g |= SecretsAll
		}
	}
	return g
}

// SecretGroups are the groups the catalog was loaded with (WithSecrets):
// a reload must use the same.
func (c *Catalog) SecretGroups() SecretGroups { return c.secrets }

// Secrets are every secret reference of the upstream, resolved or not:
// headers with a reference, auth credentials and WS-Security credentials.
func (u *Upstream) Secrets() []Secret {
	var out []Secret
	for _, h := range u.Headers {
		if h.Value.IsRef() {
			out = append(out, h.Value)
		}
	}
	out = append(out, u.Auth.Secrets()...)
	if u.SOAP != nil && u.SOAP.Security != nil {
		for _, s := range []Secret{u.SOAP.Security.Username, u.SOAP.Security.Password} {
			if s.IsRef() {
				out = append(out, s)
			}
		}
	}
	return out
}

// SecretsErr is nil when every secret of the upstream was resolved, and
// otherwise names the unresolved ones: code that sends them (upstream.New,
// upstream.NewAuth) refuses the upstream instead of sending an empty
// credential.
func (u *Upstream) SecretsErr() error {
	var errs []error
	for _, s := range u.Secrets() {
		if err := s.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("upstream %s: %w", u.Name, errors.Join(errs...))
}

// upstreamSecretGroups is the group of an upstream's credentials, from its
// kind as written (the kind is checked elsewhere).
func upstreamSecretGroups(ms members) SecretGroups {
	if k := ms.get("kind"); k != nil && k.Kind == yaml.ScalarNode && Kind(k.Value) == KindGraphQL {
		return SecretsGraphQLUpstreams
	}
	return SecretsRESTUpstreams
}

// introspected reports an upstream whose schema says introspect: true: its
// headers are sent when introspecting (ResolveGraphQLSchemas).
func introspected(ms members) bool {
	sn := deref(ms.get("schema"))
	if sn == nil || sn.Kind != yaml.MappingNode {
		return false
	}
	in := deref(lookup(sn, "introspect"))
	return in != nil && in.Kind == yaml.ScalarNode && in.ShortTag() == "!!bool" && strings.EqualFold(in.Value, "true")
}

// at names where a reference is written, for UnresolvedSecretError.
func (p *parser) at(n *yaml.Node, field string) string {
	return p.pos(n).String() + ": " + field
}
