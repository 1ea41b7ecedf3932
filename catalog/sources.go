package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/toolbus/toolbus/signature"
)

// Defaults and limits of webhook sources.
const (
	// DefaultMaxBodyBytes bounds a webhook body unless the source sets its
	// own: providers send a few KB; a megabyte leaves room for large
	// objects without letting a sender fill memory.
	DefaultMaxBodyBytes = 1 << 20
	// MaxMaxBodyBytes stays below the embedded NATS server's 8 MiB payload
	// limit, with room for the envelope and headers.
	MaxMaxBodyBytes = 4 << 20
)

// Source is a webhook provider that posts to /webhooks/<name>.
type Source struct {
	Name string
	// Scheme is the signature scheme name (signature.Schemes).
	Scheme string
	// Secrets are the active secrets as written (references), current first.
	// They print as their references, never as values.
	Secrets []Secret
	// Signature is the resolved configuration for signature.New; its
	// secrets print redacted. When the secrets were not resolved
	// (WithSecrets without SecretsWebhooks) it holds none.
	Signature signature.Config
	// MaxBodyBytes refuses larger bodies with 413.
	MaxBodyBytes int64
	Pos          Pos
}

// Verifier builds the source's signature scheme. The catalog already
// validated the configuration, so an error here is a programming mistake,
// or a catalog loaded without SecretsWebhooks (WithSecrets): then the
// error names the unresolved references.
func (s *Source) Verifier() (signature.Scheme, error) {
	var errs []error
	for _, sec := range s.Secrets {
		if err := sec.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("source %s: %w", s.Name, errors.Join(errs...))
	}
	return signature.New(s.Signature)
}

var sourceNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)

var sourceFields = []string{
	"scheme", "secrets", "tolerance", "max_body_bytes",
	"header", "algorithm", "encoding", "prefix", "signed_payload",
	"timestamp_header", "id_header", "type_header", "id_json_path", "type_json_path",
}

// secretRefRE is one whole reference: a secret must not be written into
// the catalog, not even in part.
var secretRefRE = regexp.MustCompile(`^\$\{(env|file):[^}]*\}$`)

// sources parses the sources mapping. declared also holds the names of
// sources with problems, so that projections do not report them again.
func (p *parser) sources(n *yaml.Node) (out map[string]*Source, declared map[string]bool) {
	out, declared = map[string]*Source{}, map[string]bool{}
	if isNull(n) {
		return out, declared
	}
	ms, _ := p.mapping(n, "sources", nil)
	for _, m := range ms {
		declared[m.name] = true
		if s := p.source(m); s != nil {
			out[m.name] = s
		}
	}
	return out, declared
}

func (p *parser) source(m member) *Source {
	field := joinField("sources", m.name)
	before := len(p.problems)
	if !sourceNameRE.MatchString(m.name) {
		p.errorf(m.key, field, "source name must match [a-zA-Z0-9_-]{1,32}")
	}
	ms, ok := p.mapping(m.val, field, sourceFields)
	if !ok {
		return nil
	}
	s := &Source{Name: m.name, MaxBodyBytes: DefaultMaxBodyBytes, Pos: p.pos(m.key)}
	cfg := &s.Signature
	strField := map[string]*string{
		"header": &cfg.Header, "algorithm": &cfg.Algorithm, "encoding": &cfg.Encoding,
		"prefix": &cfg.Prefix, "signed_payload": &cfg.SignedPayload,
		"timestamp_header": &cfg.TimestampHeader, "id_header": &cfg.IDHeader,
		"type_header": &cfg.TypeHeader, "id_json_path": &cfg.IDJSONPath,
		"type_json_path": &cfg.TypeJSONPath,
	}
	var schemeNode *yaml.Node
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "scheme":
			schemeNode = f.val
			if v, ok := p.str(f.val, ff); ok {
				if !slices.Contains(signature.Schemes(), v) {
					p.errorf(f.val, ff, "unknown scheme %q: want one of %s", v, strings.Join(signature.Schemes(), ", "))
				}
				s.Scheme = v
			}
		case "secrets":
			s.Secrets = p.sourceSecrets(f.val, ff)
		case "tolerance":
			if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!str" {
				p.errorf(f.val, ff, "must be a duration such as 5m, got %s", kindName(f.val))
				continue
			}
			d, err := time.ParseDuration(f.val.Value)
			if err != nil {
				p.errorf(f.val, ff, "invalid duration %q: want a value such as 300s or 5m", f.val.Value)
				continue
			}
			cfg.Tolerance = d
		case "max_body_bytes":
			if n, ok := p.byteSize(f.val, ff); ok {
				if n > MaxMaxBodyBytes {
					p.errorf(f.val, ff, "must be at most 4MiB, got %s", f.val.Value)
				}
				s.MaxBodyBytes = n
			}
		default:
			if v, ok := p.str(f.val, ff); ok {
				*strField[f.name] = v
			}
		}
	}
	if ms.get("scheme") == nil {
		p.errorf(m.key, field+".scheme", "required field is missing; want one of %s", strings.Join(signature.Schemes(), ", "))
	}
	if ms.get("secrets") == nil {
		p.errorf(m.key, field+".secrets", "required field is missing; list ${env:NAME} or ${file:/path} references, current secret first")
	}
	if len(p.problems) > before {
		return nil
	}
	resolved := true
	for _, sec := range s.Secrets {
		if !sec.Resolved() {
			resolved = false
			// A stand-in, only to check the rest of the configuration:
			// it is dropped below and never verifies anything.
			cfg.Secrets = append(cfg.Secrets, "unresolved")
			continue
		}
		cfg.Secrets = append(cfg.Secrets, sec.Reveal())
	}
	cfg.Scheme = s.Scheme
	// The signature package owns the per-scheme rules (which fields apply,
	// tolerance range, template syntax); report its verdict at the scheme.
	err := cfg.Validate()
	if !resolved {
		// Signature carries no secret at all, and Verifier refuses.
		cfg.Secrets = nil
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, signature.ErrInvalidConfig) {
			msg = strings.TrimSuffix(msg, ": "+signature.ErrInvalidConfig.Error())
		}
		p.errorf(schemeNode, field, "invalid %s configuration: %s", s.Scheme, msg)
		return nil
	}
	return s
}

func (p *parser) sourceSecrets(n *yaml.Node, field string) []Secret {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list of ${env:NAME} or ${file:/path} references, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errorf(n, field, "must list at least one secret")
		return nil
	}
	var out []Secret
	for i, item := range n.Content {
		item = deref(item)
		ff := fmt.Sprintf("%s[%d]", field, i)
		v, ok := p.str(item, ff)
		if !ok {
			continue
		}
		// Never quote the value: it may be a secret pasted by mistake.
		if !secretRefRE.MatchString(v) {
			p.errorf(item, ff, "a secret must be one ${env:NAME} or ${file:/path} reference, not a literal value")
			continue
		}
		report := func(format string, args ...any) { p.errorf(item, ff, format, args...) }
		val, _, resolved, ok := p.interpolate(v, refAny, SecretsWebhooks, report)
		if !ok {
			continue
		}
		if !resolved {
			// Checked, not read: this process verifies no deliveries.
			out = append(out, unresolvedRef(v, SecretsWebhooks, p.at(item, ff)))
			continue
		}
		if val == "" {
			p.errorf(item, ff, "%s is empty", v)
			continue
		}
		out = append(out, FromRef(v, val))
	}
	return out
}
