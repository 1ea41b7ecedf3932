// Package projection provides the state that webhook events project into:
// the entity record kept in one NATS KV bucket per catalog projection, the
// rules that apply an event to it (idempotent and monotonic, safe from many
// replicas through revision compare-and-set), the Reader that gets, lists
// and watches entities, and the MCP surface (resources, read-only tools,
// change notifications) built on the Reader.
//
// It must not consume streams, acknowledge messages or dead-letter events:
// the state-updater and the replay command own delivery and call Apply. It
// must not write to a bucket except through Apply.
package projection

import (
	"errors"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/toolbus/toolbus/catalog"
)

// BucketPrefix starts the KV bucket name of every projection.
const BucketPrefix = "toolbus_state_"

// Bucket is the KV bucket of a projection.
func Bucket(projection string) string { return BucketPrefix + projection }

// URIPrefix starts every projection resource URI.
const URIPrefix = catalog.ProjectionURIPrefix

// ListURI is the resource listing a projection's entities.
func ListURI(projection string) string { return URIPrefix + projection }

// EntityURI is the resource of one entity. The key is path-escaped, so keys
// with slashes or '#' stay one URI segment.
func EntityURI(projection, key string) string {
	return URIPrefix + projection + "/" + url.PathEscape(key)
}

// ParseURI splits a resource URI into projection and entity key; key is
// empty for the listing URI.
func ParseURI(uri string) (projection, key string, err error) {
	rest, ok := strings.CutPrefix(uri, URIPrefix)
	if !ok || rest == "" {
		return "", "", errors.New("not a toolbus://state/ URI")
	}
	projection, esc, hasKey := strings.Cut(rest, "/")
	if !hasKey {
		return projection, "", nil
	}
	key, err = url.PathUnescape(esc)
	if err != nil || key == "" {
		return "", "", errors.New("malformed entity key in URI")
	}
	return projection, key, nil
}

// Entity is the state of one entity of a projection, stored as JSON under
// its encoded key.
type Entity struct {
	// Key is the rendered entity key, e.g. "cus_123" or "acme/app#42".
	Key string `json:"key"`
	// Value holds the projection's fields (or the whole body); nil once
	// deleted.
	Value any `json:"value,omitempty"`
	// Version is the ordering value of the last applied event: the
	// provider's timestamp or sequence, or the stream sequence.
	Version string `json:"version"`
	// EventID, EventType, Source and Sequence identify the last applied event.
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Source    string `json:"source"`
	Sequence  uint64 `json:"sequence"`
	// Deleted marks a tombstone: kept, so that an older update arriving
	// late cannot bring the entity back.
	Deleted bool `json:"deleted,omitempty"`
	// ReceivedAt is when webhook-ingest received the last applied event.
	ReceivedAt time.Time `json:"received_at"`
	// History lists the entity's most recent events (applied or superseded)
	// in order, oldest first, up to the projection's history length.
	History []HistoryEntry `json:"history,omitempty"`
	// Trace is the W3C trace context of the apply span that wrote this
	// record (absent when that write was not traced), so that whoever
	// watches the bucket can continue the event's trace: KV entries carry
	// no headers. It identifies a span, nothing more; it is not part of
	// the entity's state and not shown to MCP clients.
	Trace *TraceContext `json:"trace,omitempty"`
	// Revision is the KV revision the entity was read at.
	Revision uint64 `json:"-"`
}

// TraceContext is a W3C trace context (the traceparent and tracestate
// headers' values).
type TraceContext struct {
	Traceparent string `json:"traceparent"`
	Tracestate  string `json:"tracestate,omitempty"`
}

// HistoryEntry is one event seen for an entity.
type HistoryEntry struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	Version  string `json:"version"`
	Sequence uint64 `json:"sequence"`
	Deleted  bool   `json:"deleted,omitempty"`
}

// EncodeKey maps an entity key to a valid KV key: bytes outside
// [A-Za-z0-9_-] become =XX (hex). The mapping is reversible and keeps
// ordinary ids (cus_123) readable in the NATS CLI.
func EncodeKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// DecodeKey reverses EncodeKey.
func DecodeKey(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape in key")
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", errors.New("bad escape in key")
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// CompareVersions orders two versions: numerically when both are numbers
// (Unix timestamps, sequences), by time when both are RFC 3339 timestamps,
// otherwise as text. It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	if ra, ok := new(big.Rat).SetString(a); ok {
		if rb, ok := new(big.Rat).SetString(b); ok {
			return ra.Cmp(rb)
		}
	}
	if ta, err := time.Parse(time.RFC3339Nano, a); err == nil {
		if tb, err := time.Parse(time.RFC3339Nano, b); err == nil {
			return ta.Compare(tb)
		}
	}
	return strings.Compare(a, b)
}

// before reports whether event (va, sa) is ordered before (vb, sb): by
// version, then by stream sequence so that ties resolve the same way on
// every replay.
func before(va string, sa uint64, vb string, sb uint64) bool {
	if c := CompareVersions(va, vb); c != 0 {
		return c < 0
	}
	return sa < sb
}
