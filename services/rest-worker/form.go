package restworker

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/toolbus/toolbus/catalog"
)

// Form bodies and deepObject query parameters use bracket notation, the
// way Stripe documents its API and Rails-style servers parse it:
//
//	metadata[order_id]=6735        object member
//	items[0][price]=price_1        array element (indexed, as Stripe's SDKs send)
//	expand[0]=customer             array of scalars
//
// Object members go in key order so that the same arguments always make
// the same body (idempotent retries, caching). An empty string and null
// are sent as an empty value (Stripe's way to unset a field); an empty
// object or array sends nothing.

// formEncoder collects key=value pairs in order.
type formEncoder struct {
	r *route
	b strings.Builder
}

func (e *formEncoder) add(k, v string) {
	if e.b.Len() > 0 {
		e.b.WriteByte('&')
	}
	e.b.WriteString(url.QueryEscape(k))
	e.b.WriteByte('=')
	e.b.WriteString(url.QueryEscape(v))
}

// value encodes v under key; arg names the argument for error messages.
func (e *formEncoder) value(arg, key string, v any, depth int) error {
	if depth > catalog.MaxArgumentDepth {
		return e.r.invalid(arg, "is nested too deeply to be form-encoded")
	}
	switch v := v.(type) {
	case nil:
		e.add(key, "")
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := e.value(arg, key+"["+k+"]", v[k], depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, item := range v {
			if err := e.value(arg, key+"["+strconv.Itoa(i)+"]", item, depth+1); err != nil {
				return err
			}
		}
	default:
		s, err := e.r.scalar(arg, v)
		if err != nil {
			return err
		}
		e.add(key, s)
	}
	return nil
}

// buildFormBody encodes the body arguments as
// application/x-www-form-urlencoded. Like JSON bodies, POST, PUT and PATCH
// always carry one (possibly empty); other methods only when an argument
// is present.
func (r *route) buildFormBody(args map[string]any) ([]byte, error) {
	e := formEncoder{r: r}
	present := false
	for _, p := range r.body {
		v, ok := args[p.Name]
		if !ok {
			continue
		}
		present = true
		if err := e.value(p.Name, p.WireName, v, 1); err != nil {
			return nil, err
		}
	}
	switch r.tool.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		if !present {
			return nil, nil
		}
	}
	return []byte(e.b.String()), nil
}

// contentType is the Content-Type of the tool's request bodies.
func (r *route) contentType() string {
	if r.tool.BodyEncoding == catalog.BodyForm {
		return "application/x-www-form-urlencoded"
	}
	return "application/json"
}

// appendDeepQuery adds a deepObject query argument to a query string.
func (r *route) appendDeepQuery(q *strings.Builder, p catalog.Param, v any) error {
	e := formEncoder{r: r}
	if err := e.value(p.Name, p.WireName, v, 1); err != nil {
		return err
	}
	if e.b.Len() > 0 {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(e.b.String())
	}
	return nil
}

// withFixed returns the arguments with the tool's fixed (hidden) ones set,
// replacing anything the caller sent under those names.
func (r *route) withFixed(args map[string]any) map[string]any {
	if len(r.tool.Fixed) == 0 {
		return args
	}
	out := make(map[string]any, len(args)+len(r.tool.Fixed))
	for k, v := range args {
		out[k] = v
	}
	for k, v := range r.tool.Fixed {
		out[k] = v
	}
	return out
}

// cookieHeader builds the Cookie header from cookie arguments, or "".
func (r *route) cookieHeader(args map[string]any) (string, error) {
	var parts []string
	for _, p := range r.tool.Params {
		if p.In != catalog.InCookie {
			continue
		}
		v, ok := args[p.Name]
		if !ok || v == nil {
			continue
		}
		s, err := r.scalar(p.Name, v)
		if err != nil {
			return "", err
		}
		// Cookie values are sent escaped: RFC 6265 forbids ';', ',',
		// spaces and quotes in them.
		parts = append(parts, p.WireName+"="+url.QueryEscape(s))
	}
	return strings.Join(parts, "; "), nil
}
