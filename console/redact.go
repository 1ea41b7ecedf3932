package console

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"unicode/utf8"
)

// Redacted replaces every value the console will not show.
const Redacted = "[redacted]"

// maxShown bounds a payload rendered on a page.
const maxShown = 64 << 10

// sensitiveWords mark keys (JSON fields, headers) whose values are hidden.
// Keys are compared lower-case with '-' and '_' removed.
var sensitiveWords = []string{
	"password", "passwd", "secret", "token", "apikey", "authorization", "cookie",
	"signature", "credential", "privatekey", "accesskey", "sessionid", "hmac", "cardnumber", "cvc", "cvv",
}

func sensitiveKey(k string) bool {
	k = strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(k))
	for _, w := range sensitiveWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// redactJSON pretty-prints a JSON document with the values of sensitive
// keys replaced, at any depth. Text that is not JSON is shown as is when
// it is valid UTF-8 and short enough, else summarised.
func redactJSON(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return shownText(raw)
	}
	out, err := json.MarshalIndent(redactValue(v), "", "  ")
	if err != nil {
		return shownText(raw)
	}
	return shownText(out)
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if sensitiveKey(k) {
				x[k] = Redacted
				continue
			}
			x[k] = redactValue(val)
		}
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
	}
	return v
}

func shownText(b []byte) string {
	if !utf8.Valid(b) {
		return "(" + itoa(len(b)) + " bytes of binary data)"
	}
	if len(b) > maxShown {
		return string(b[:maxShown]) + "\n… (" + itoa(len(b)-maxShown) + " more bytes)"
	}
	return string(b)
}

// kv is one header or field shown in a table.
type kv struct{ Key, Value string }

// redactHeaders sorts headers and hides sensitive ones.
func redactHeaders(h map[string]string) []kv {
	out := make([]kv, 0, len(h))
	for k, v := range h {
		if sensitiveKey(k) {
			v = Redacted
		}
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
