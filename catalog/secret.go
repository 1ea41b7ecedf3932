package catalog

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret is a configuration value that may come from a secret reference
// (${env:NAME} or ${file:/path}). A value read from a reference never prints:
// String, GoString, MarshalJSON and LogValue show the reference instead.
// Literal values (no reference) print as they are.
//
// A reference in a secret group the catalog was loaded without (WithSecrets)
// is checked but not read: the Secret is unresolved. Reveal panics on it
// rather than hand out an empty credential; Err says why it cannot be used.
type Secret struct {
	value string
	// ref is the reference text, e.g. "${env:CRM_API_KEY}"; empty for literals.
	ref string
	// groups are the secret groups of an unresolved reference.
	groups SecretGroups
	// unresolved is set when the reference was not read (see WithSecrets).
	unresolved bool
	// at is where the reference is written: file:line:col and field.
	at string
}

// Literal returns a Secret holding a non-secret literal value.
func Literal(v string) Secret { return Secret{value: v} }

// FromRef returns a Secret read from the reference ref.
func FromRef(ref, value string) Secret { return Secret{value: value, ref: ref} }

// unresolvedRef returns the Secret of a reference that was checked but not
// read, because its groups were not asked for.
func unresolvedRef(ref string, groups SecretGroups, at string) Secret {
	return Secret{ref: ref, groups: groups, unresolved: true, at: at}
}

// Reveal returns the value, to be placed on the wire and nowhere else.
// It panics when the secret was not resolved (Resolved is false): an
// unresolved secret has no value, and an empty credential must never be
// sent. Code that may see catalogs loaded without some groups checks Err
// first; services refuse such catalogs when they start.
func (s Secret) Reveal() string {
	if s.unresolved {
		panic(s.Err().Error())
	}
	return s.value
}

// Resolved reports whether the value is known: true for literals and for
// references that were read, false for references of groups the catalog
// was loaded without.
func (s Secret) Resolved() bool { return !s.unresolved }

// Err is nil when the secret can be revealed, and otherwise an
// *UnresolvedSecretError naming the reference, where it is written and its
// groups (never a value: there is none).
func (s Secret) Err() error {
	if !s.unresolved {
		return nil
	}
	return &UnresolvedSecretError{Ref: s.ref, At: s.at, Groups: s.groups}
}

// Groups are the secret groups of an unresolved reference, which the
// catalog was loaded without; zero for resolved secrets and literals.
func (s Secret) Groups() SecretGroups { return s.groups }

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

// UnresolvedSecretError is the use of a secret whose reference was not read
// because the catalog was loaded without its groups (WithSecrets).
type UnresolvedSecretError struct {
	Ref    string       // the reference, e.g. ${file:/etc/toolbus/secrets/upstream/crm-api-key}
	At     string       // file:line:col and field of the reference
	Groups SecretGroups // the groups it belongs to
}

func (e *UnresolvedSecretError) Error() string {
	return fmt.Sprintf("catalog: %s: secret %s was not resolved: this process loaded the catalog without the %s secrets", e.At, e.Ref, e.Groups)
}
