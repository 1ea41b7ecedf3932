package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"gopkg.in/yaml.v3"
)

// Limits of response shaping and caching.
const (
	// MinResponseCap and MaxResponseCap bound response.max_bytes (and
	// max_tokens × BytesPerToken).
	MinResponseCap = 256
	MaxResponseCap = 16 << 20
	// BytesPerToken is the rough size of one model token in JSON text,
	// used to turn max_tokens into bytes.
	BytesPerToken = 4
	// MaxCacheTTL bounds cache.ttl: cached answers are a convenience,
	// never a replacement for the upstream.
	MaxCacheTTL = 10 * time.Minute
	// ContinueSuffix names the tool generated for every capped tool, which
	// returns the next part of a capped answer.
	ContinueSuffix = "_continue"
)

// ResponseShaping selects, trims and caps what a tool returns to the model
// (catalog field response). The worker applies it to JSON answers, in
// this order: jq, drop, cap.
type ResponseShaping struct {
	// JQ is the compiled expression; JQSource its text. Nil when not set.
	JQ       *gojq.Code
	JQSource string
	// Drop lists paths removed from the answer; each element is an object
	// key, or "*" for every element of an array or value of an object.
	Drop [][]string
	// MaxBytes caps the answer's JSON text (max_bytes, or max_tokens ×
	// BytesPerToken); 0 means no cap. Over it, the first MaxBytes are
	// returned with a continuation handle for the rest.
	MaxBytes int
}

// Shape applies jq and drop to a JSON body and returns the new JSON. The
// cap is not applied here: it needs somewhere to keep the remainder.
func (r *ResponseShaping) Shape(ctx context.Context, body []byte) ([]byte, error) {
	if r == nil || (r.JQ == nil && len(r.Drop) == 0) {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("response is not JSON: %w", err)
	}
	v = NormalizeJSON(v)
	if r.JQ != nil {
		var outs []any
		iter := r.JQ.RunWithContext(ctx, v)
		for {
			x, ok := iter.Next()
			if !ok {
				break
			}
			if err, isErr := x.(error); isErr {
				if herr, ok := err.(*gojq.HaltError); ok && herr.Value() == nil {
					break
				}
				return nil, fmt.Errorf("jq %s: %w", r.JQSource, err)
			}
			outs = append(outs, x)
		}
		switch len(outs) {
		case 0:
			v = nil
		case 1:
			v = outs[0]
		default:
			// Several outputs become one array: a tool returns one value.
			v = outs
		}
	}
	for _, p := range r.Drop {
		v = dropPath(v, p)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode shaped response: %w", err)
	}
	return out, nil
}

func dropPath(v any, path []string) any {
	if len(path) == 0 {
		return v
	}
	key, rest := path[0], path[1:]
	switch x := v.(type) {
	case map[string]any:
		if key == "*" {
			for k, c := range x {
				if len(rest) == 0 {
					delete(x, k)
				} else {
					x[k] = dropPath(c, rest)
				}
			}
			return x
		}
		c, ok := x[key]
		if !ok {
			return x
		}
		if len(rest) == 0 {
			delete(x, key)
		} else {
			x[key] = dropPath(c, rest)
		}
		return x
	case []any:
		if key != "*" {
			return x
		}
		if len(rest) == 0 {
			return []any{}
		}
		for i, c := range x {
			x[i] = dropPath(c, rest)
		}
		return x
	}
	return v
}

// CachePolicy is how a read-only tool's answers are cached (catalog field
// cache).
type CachePolicy struct {
	TTL time.Duration
	// PerCaller keys entries by caller as well: true when the upstream's
	// credentials are the caller's own (forward, token_exchange) unless
	// the catalog says otherwise.
	PerCaller bool
}

var responseFields = []string{"jq", "drop", "max_bytes", "max_tokens"}

// shapingFields parses the tool fields of this file: response, cache and
// result_meta. It runs after annotations, which cache depends on.
func (p *parser) shapingFields(t *Tool, ms members, field string) {
	if t.IsVirtual() && ms.key("response") != nil {
		p.errorf(ms.key("response"), field+".response", "composite and batch tools are not shaped; shape the tools they call")
	}
	if n := ms.get("response"); n != nil && !isNull(n) {
		t.Response = p.response(n, field+".response")
	}
	if n := ms.get("result_meta"); n != nil {
		t.ResultMeta = p.meta(n, field+".result_meta")
	}
	if n := ms.get("cache"); n != nil && !isNull(n) {
		t.Cache = p.cache(t, n, field+".cache")
	}
	if t.Response != nil && t.Response.MaxBytes > 0 && t.Name != "" {
		if name := t.Name + ContinueSuffix; len(name) > MaxToolNameLen {
			p.errorf(ms.key("response"), field+".response", "a capped tool gets a companion tool %s, which is longer than %d characters; shorten the tool's name", name, MaxToolNameLen)
		}
	}
}

func (p *parser) response(n *yaml.Node, field string) *ResponseShaping {
	ms, ok := p.mapping(n, field, responseFields)
	if !ok {
		return nil
	}
	r := &ResponseShaping{}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "jq":
			if s, ok := p.str(f.val, ff); ok {
				r.JQ, r.JQSource = p.compileJQ(f.val, ff, s), s
			}
		case "drop":
			if f.val.Kind != yaml.SequenceNode {
				p.errorf(f.val, ff, "must be a list of paths such as data.*.internal_notes, got %s", kindName(f.val))
				continue
			}
			for i, c := range f.val.Content {
				s, ok := p.str(deref(c), fmt.Sprintf("%s[%d]", ff, i))
				if !ok {
					continue
				}
				parts := strings.Split(strings.TrimPrefix(s, "."), ".")
				for _, part := range parts {
					if part == "" {
						p.errorf(c, fmt.Sprintf("%s[%d]", ff, i), "path %q has an empty segment: write keys separated by dots, * for every element", s)
						parts = nil
						break
					}
				}
				if parts != nil {
					r.Drop = append(r.Drop, parts)
				}
			}
		case "max_bytes":
			if v, ok := p.byteSize(f.val, ff); ok {
				r.MaxBytes = p.capRange(f.val, ff, v, "bytes")
			}
		case "max_tokens":
			if v, ok := p.integer(f.val, ff); ok {
				r.MaxBytes = p.capRange(f.val, ff, v*BytesPerToken, "tokens")
			}
		}
	}
	if ms.get("max_bytes") != nil && ms.get("max_tokens") != nil {
		p.errorf(ms.key("max_tokens"), field+".max_tokens", "give max_bytes or max_tokens, not both")
	}
	return r
}

func (p *parser) capRange(n *yaml.Node, field string, v int64, unit string) int {
	if v < MinResponseCap || v > MaxResponseCap {
		if unit == "tokens" {
			p.errorf(n, field, "must be between %d and %d tokens", MinResponseCap/BytesPerToken, MaxResponseCap/BytesPerToken)
		} else {
			p.errorf(n, field, "must be between %d and %d bytes", MinResponseCap, MaxResponseCap)
		}
		return 0
	}
	return int(v)
}

var cacheFields = []string{"ttl", "per_caller"}

func (p *parser) cache(t *Tool, n *yaml.Node, field string) *CachePolicy {
	ms, ok := p.mapping(n, field, cacheFields)
	if !ok {
		return nil
	}
	c := &CachePolicy{}
	perCaller := "auto"
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "ttl":
			if d, ok := p.duration(f.val, ff); ok {
				if d <= 0 || d > MaxCacheTTL {
					p.errorf(f.val, ff, "must be greater than 0 and at most %s, got %s", MaxCacheTTL, d)
				}
				c.TTL = d
			}
		case "per_caller":
			if f.val.Kind == yaml.ScalarNode && f.val.ShortTag() == "!!bool" {
				b, _ := p.boolean(f.val, ff)
				perCaller = fmt.Sprint(b)
			} else if s, ok := p.str(f.val, ff); ok && s != "auto" {
				p.errorf(f.val, ff, "must be auto, true or false, got %q", s)
			}
		}
	}
	if ms.get("ttl") == nil {
		p.errorf(n, field+".ttl", "required field is missing: how long an answer is reused, such as 30s")
	}
	if t.Annotations.ReadOnly == nil || !*t.Annotations.ReadOnly {
		p.errorf(n, field, "only read-only tools can be cached: a cached answer would skip the tool's effect")
	}
	if t.IsVirtual() {
		p.errorf(n, field, "composite and batch tools are not cached; cache the tools they call")
	}
	if t.GraphQL != nil {
		p.errorf(n, field, "GraphQL tools are not cached yet: only the REST worker writes the cache")
	}
	switch perCaller {
	case "true":
		c.PerCaller = true
	case "auto":
		c.PerCaller = t.Upstream != nil && t.Upstream.Auth.NeedsCallerToken()
	}
	return c
}

// checkContinueNames keeps the generated <tool>_continue tools from
// colliding with declared ones.
func (p *parser) checkContinueNames(cat *Catalog, root *yaml.Node) {
	for _, t := range cat.Tools {
		if t.Response == nil || t.Response.MaxBytes <= 0 {
			continue
		}
		name := t.Name + ContinueSuffix
		if other, ok := cat.toolsByName[name]; ok {
			at := root
			if other.Pos.Line > 0 {
				at = &yaml.Node{Line: other.Pos.Line, Column: other.Pos.Col}
			}
			p.errorf(at, "tool "+name, "%s is the generated companion of the capped tool %s (response.max_bytes); rename one of them", name, t.Name)
		}
	}
}
