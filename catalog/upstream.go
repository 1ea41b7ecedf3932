package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults and limits of upstream and tool settings.
const (
	DefaultTimeout          = 30 * time.Second
	MaxTimeout              = 10 * time.Minute
	DefaultConcurrency      = 16
	MaxConcurrency          = 10000
	DefaultMaxResponseBytes = 4 << 20
	MaxMaxResponseBytes     = 1 << 30
)

var upstreamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)

var upstreamFields = []string{"kind", "base_url", "timeout", "concurrency", "max_response_bytes", "idempotency_header", "headers", "retry", "rate_limit", "circuit_breaker", "auth", "endpoint", "schema", "openapi", "soap"}

func (p *parser) upstream(m member) *Upstream {
	field := joinField("upstreams", m.name)
	before := len(p.problems)
	if !upstreamNameRE.MatchString(m.name) {
		p.errorf(m.key, field, "upstream name must match [a-zA-Z0-9_-]{1,32}")
	}
	ms, ok := p.mapping(m.val, field, upstreamFields)
	if !ok {
		return nil
	}
	// The groups of the upstream's secret references: its kind decides
	// which worker sends them (secretgroups.go).
	p.upstreamGroups = upstreamSecretGroups(ms)
	defer func() { p.upstreamGroups = 0 }()
	headerGroups := p.upstreamGroups
	if headerGroups == SecretsGraphQLUpstreams && introspected(ms) {
		headerGroups |= SecretsGraphQLIntrospection
	}
	u := &Upstream{
		Name:             m.name,
		Kind:             KindREST,
		Timeout:          DefaultTimeout,
		Concurrency:      DefaultConcurrency,
		MaxResponseBytes: DefaultMaxResponseBytes,
		Reliability:      defaultReliability(),
		Pos:              p.pos(m.key),
	}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "kind":
			if s, ok := p.str(f.val, ff); ok {
				switch k := Kind(s); k {
				case KindREST, KindGraphQL, KindSOAP:
					u.Kind = k
				default:
					p.errorf(f.val, ff, "unknown kind %q: want rest, graphql or soap", s)
				}
			}
		case "base_url", "endpoint": // endpoint: the graphql name (graphql.go)
			u.BaseURL = p.baseURL(f.val, ff)
		case "schema", "soap": // graphqlUpstream and soapUpstream read them once the kind is known
		case "timeout":
			if d, ok := p.duration(f.val, ff); ok {
				u.Timeout = d
			}
		case "concurrency":
			if n, ok := p.integer(f.val, ff); ok {
				if n < 1 || n > MaxConcurrency {
					p.errorf(f.val, ff, "must be between 1 and %d, got %d", MaxConcurrency, n)
				}
				u.Concurrency = int(n)
			}
		case "max_response_bytes":
			if n, ok := p.byteSize(f.val, ff); ok {
				u.MaxResponseBytes = n
			}
		case "idempotency_header":
			if s, ok := p.str(f.val, ff); ok && p.headerName(f.val, ff, s, clientHeaders) {
				u.IdempotencyHeader = s
			}
		case "headers":
			u.Headers = p.headers(f.val, ff, headerGroups)
		case "auth":
			u.Auth = p.upstreamAuth(f.val, ff)
		case "openapi":
			u.OpenAPI = p.openapiSource(f.val, ff)
		default:
			p.reliabilityField(u, f, ff)
		}
	}
	p.checkUpstreamAuth(u, ms, field)
	p.graphqlUpstream(u, ms, m.key, field)
	p.soapUpstream(u, ms, m.key, field)
	switch {
	case ms.get("base_url") != nil || ((u.Kind == KindGraphQL || u.Kind == KindSOAP) && ms.get("endpoint") != nil):
	case p.openapiBaseURL(u, ms, m.key, field): // the document's servers (openapi.go)
	case p.soapBaseURL(u, m.key, field): // the WSDL's port address (soap.go)
	case u.Kind == KindGraphQL || u.Kind == KindSOAP:
		p.errorf(m.key, field+".endpoint", "required field is missing")
	default:
		p.errorf(m.key, field+".base_url", "required field is missing")
	}
	if len(p.problems) > before {
		return nil
	}
	return u
}

func (p *parser) baseURL(n *yaml.Node, field string) *url.URL {
	s, ok := p.str(n, field)
	if !ok {
		return nil
	}
	report := func(format string, args ...any) { p.errorf(n, field, format, args...) }
	v, _, _, ok := p.interpolate(s, refEnvOnly, 0, report)
	if !ok {
		return nil
	}
	// Messages never quote the URL: it may hold credentials by mistake.
	u, err := url.Parse(v)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		report("invalid URL: %v", err)
		return nil
	}
	switch {
	case !u.IsAbs() || u.Host == "":
		report("must be an absolute http or https URL such as https://api.example.com/v1")
	case u.Scheme != "http" && u.Scheme != "https":
		report("scheme %q is not supported: want http or https", u.Scheme)
	case u.User != nil:
		report("must not contain user info; send credentials in headers with ${env:NAME} or ${file:/path}")
	case u.RawQuery != "" || u.ForceQuery:
		report("must not have a query; declare query parameters in the tools' input_schema")
	case u.Fragment != "" || strings.Contains(v, "#"):
		report("must not have a fragment")
	default:
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = strings.TrimRight(u.RawPath, "/")
		return u
	}
	return nil
}

func (p *parser) duration(n *yaml.Node, field string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, field, "must be a duration such as 10s or 1m30s, got %s", kindName(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		p.errorf(n, field, "invalid duration %q: want a value such as 10s or 1m30s", n.Value)
	case d <= 0:
		p.errorf(n, field, "must be greater than 0, got %s", n.Value)
	case d > MaxTimeout:
		p.errorf(n, field, "must be at most 10m, got %s", n.Value)
	default:
		return d, true
	}
	return 0, false
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1000, "mb": 1000 * 1000, "gb": 1000 * 1000 * 1000,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([a-zA-Z]*)$`)

// byteSize reads an integer number of bytes or a string such as "4MiB" or
// "512KB" (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024).
func (p *parser) byteSize(n *yaml.Node, field string) (int64, bool) {
	var size int64
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
		v, ok := p.integer(n, field)
		if !ok {
			return 0, false
		}
		size = v
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
		unit, known := int64(0), false
		if m != nil {
			unit, known = sizeUnits[strings.ToLower(m[2])]
		}
		if !known {
			p.errorf(n, field, "invalid size %q: want bytes or a size such as 512KB or 4MiB", n.Value)
			return 0, false
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v > MaxMaxResponseBytes/unit+1 {
			v = MaxMaxResponseBytes + 1 // reported below
		} else {
			v *= unit
		}
		size = v
	default:
		p.errorf(n, field, "must be a size such as 1048576 or 4MiB, got %s", kindName(n))
		return 0, false
	}
	if size < 1 || size > MaxMaxResponseBytes {
		p.errorf(n, field, "must be between 1 byte and 1GiB, got %s", n.Value)
		return 0, false
	}
	return size, true
}

// clientHeaders are set by the HTTP client or are hop-by-hop; the catalog
// cannot set them on upstream requests.
var clientHeaders = map[string]bool{
	"host": true, "content-length": true, "connection": true, "keep-alive": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// argumentHeaders are refused as destinations of tool arguments: the
// client's headers plus the proxy hop-by-hop ones.
var argumentHeaders = map[string]bool{
	"host": true, "content-length": true, "connection": true, "keep-alive": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"proxy-authenticate": true, "proxy-authorization": true,
}

func (p *parser) headerName(n *yaml.Node, field, name string, forbidden map[string]bool) bool {
	switch {
	case !isToken(name):
		p.errorf(n, field, "%q is not a valid header name", name)
	case forbidden[strings.ToLower(name)]:
		p.errorf(n, field, "header %s is managed by the HTTP client and cannot be set", name)
	default:
		return true
	}
	return false
}

// headers reads upstream headers; their references belong to groups.
func (p *parser) headers(n *yaml.Node, field string, groups SecretGroups) []Header {
	if isNull(n) {
		return nil
	}
	ms, _ := p.mapping(n, field, nil)
	seen := map[string]string{}
	var hs []Header
	for _, m := range ms {
		ff := joinField(field, m.name)
		if !p.headerName(m.key, ff, m.name, clientHeaders) {
			continue
		}
		if first, dup := seen[strings.ToLower(m.name)]; dup {
			p.errorf(m.key, ff, "header %s is set twice (also as %s)", m.name, first)
			continue
		}
		seen[strings.ToLower(m.name)] = m.name
		s, ok := p.str(m.val, ff)
		if !ok {
			continue
		}
		report := func(format string, args ...any) { p.errorf(m.val, ff, format, args...) }
		v, hasRef, resolved, ok := p.interpolate(s, refAny, groups, report)
		if !ok {
			continue
		}
		if !hasRef && sensitiveHeader(m.name) {
			// The value itself is never repeated: it is probably a credential.
			report("header %s carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}", m.name)
			continue
		}
		if !resolved {
			// Checked, not read: this process does not send it.
			hs = append(hs, Header{Name: m.name, Value: unresolvedRef(s, groups, p.at(m.val, ff))})
			continue
		}
		if !validHeaderValue(v) {
			if hasRef {
				report("the value of %s contains characters not allowed in a header (such as a newline)", s)
			} else {
				report("the value contains characters not allowed in a header (such as a newline)")
			}
			continue
		}
		h := Header{Name: m.name, Value: Literal(v)}
		if hasRef {
			h.Value = FromRef(s, v)
		}
		hs = append(hs, h)
	}
	return hs
}

// sensitiveHeader reports header names that usually carry credentials.
func sensitiveHeader(name string) bool {
	l := strings.ToLower(name)
	for _, w := range []string{"authorization", "key", "token", "secret", "password", "auth"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 token (a valid header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// describeNames lists names for "want one of" messages.
func describeNames(names []string) string {
	if len(names) == 0 {
		return "none declared"
	}
	return fmt.Sprintf("declared: %s", strings.Join(names, ", "))
}
