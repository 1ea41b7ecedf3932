package catalog

import (
	"encoding/json"
	"log/slog"
)

// Secret is a configuration value that may come from a secret reference
// (${env:NAME} or ${file:/path}). A value read from a reference never prints:
// String, GoString, MarshalJSON and LogValue show the reference instead.
// Literal values (no reference) print as they are.
type Secret struct {
	value string
	// ref is the reference text, e.g. "${env:CRM_API_KEY}"; empty for literals.
	ref string
}

// Literal returns a Secret holding a non-secret literal value.
func Literal(v string) Secret { return Secret{value: v} }

// FromRef returns a Secret read from the reference ref.
func FromRef(ref, value string) Secret { return Secret{value: value, ref: ref} }

// Reveal returns the value, to be placed on the wire and nowhere else.
func (s Secret) Reveal() string { return s.value }

// IsRef reports whether the value came from a secret reference.
func (s Secret) IsRef() bool { return s.ref != "" }

// String never shows a referenced value.
func (s Secret) String() string {
	if s.ref != "" {
		return s.ref
	}
	return s.value
}

// GoString keeps %#v from revealing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON renders the reference, never the referenced value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

var (
	_ slog.LogValuer = Secret{}
	_ json.Marshaler = Secret{}
)
