package openapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// MaxNameLen is the longest tool name MCP clients accept everywhere.
const MaxNameLen = 64

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// ValidName reports whether s can be a tool name as it is.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// SanitizeName turns an operationId (or method and path) into a tool name:
// characters outside [a-zA-Z0-9_-] become '_', runs of '_' collapse, and a
// name longer than 64 characters keeps its start and gets a short hash of
// the whole, so two long names that share a prefix stay distinct.
func SanitizeName(s string) string {
	var b strings.Builder
	lastUnderscore := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			c = '_'
		}
		if c == '_' && lastUnderscore {
			continue
		}
		lastUnderscore = c == '_'
		b.WriteByte(c)
	}
	out := strings.Trim(b.String(), "_")
	if out == "" {
		out = "operation"
	}
	if len(out) > MaxNameLen {
		sum := sha256.Sum256([]byte(s))
		out = strings.TrimRight(out[:MaxNameLen-9], "_-") + "_" + hex.EncodeToString(sum[:])[:8]
	}
	return out
}

// operationName is the name of an operation without an operationId:
// get_customers_id for GET /customers/{id}.
func operationName(method, path string) string {
	return SanitizeName(strings.ToLower(method) + "_" + strings.NewReplacer("{", "", "}", "").Replace(path))
}

// namer hands out unique names. Names compare without case: some clients
// and file systems (widget templates, logs) fold case.
type namer struct {
	taken map[string]bool
}

func newNamer() *namer {
	return &namer{taken: map[string]bool{}}
}

func (n *namer) has(name string) bool { return n.taken[strings.ToLower(name)] }

func (n *namer) take(name string) { n.taken[strings.ToLower(name)] = true }

// unique returns name, or name_2, name_3, … (shortened to fit) when it is
// taken, and takes it.
func (n *namer) unique(name string, reserved func(string) bool) string {
	free := func(s string) bool { return !n.has(s) && (reserved == nil || !reserved(s)) }
	out := name
	for i := 2; !free(out); i++ {
		suffix := fmt.Sprintf("_%d", i)
		base := name
		if len(base)+len(suffix) > MaxNameLen {
			base = base[:MaxNameLen-len(suffix)]
		}
		out = base + suffix
	}
	n.take(out)
	return out
}

// placeholderName makes a path parameter name usable as a {placeholder}:
// [a-zA-Z_][a-zA-Z0-9_]*.
func placeholderName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "p_" + out
	}
	return out
}
