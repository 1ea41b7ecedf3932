package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
)

// Event is a webhook event as stored on the WEBHOOKS stream.
type Event struct {
	ID         string
	Source     string
	Type       string
	Body       []byte
	ReceivedAt time.Time
	// Sequence is the event's WEBHOOKS stream sequence: the version when
	// the projection declares none, and the tie-breaker otherwise.
	Sequence uint64
}

// Outcome says what Apply did with an event.
type Outcome int

// Outcomes of Apply.
const (
	// Ignored: the projection does not take this source or event type.
	Ignored Outcome = iota
	// Applied: the event is now the entity's latest state (or tombstone).
	Applied
	// Superseded: a newer event was already applied; only the history changed.
	Superseded
	// Unchanged: a duplicate, or too old to appear even in the history.
	Unchanged
)

func (o Outcome) String() string {
	return [...]string{"ignored", "applied", "superseded", "unchanged"}[o]
}

// ErrPoison is wrapped by errors that no retry can fix (bad JSON, missing
// key or version): the caller dead-letters the event and moves on. Other
// errors from Apply are transient (the bus), and the event is retried.
var ErrPoison = errors.New("poison event")

// maxCASAttempts bounds compare-and-set retries on one entity: each retry
// means another replica wrote the same entity in between, so many in a row
// signal a hot key, and the event is better redelivered later.
const maxCASAttempts = 64

// BucketOptions shape the projection buckets.
type BucketOptions struct {
	// Replicas: 1 on a single server, 3 on a production cluster.
	Replicas int
	Storage  jetstream.StorageType
}

// BucketConfig is the KV configuration of a projection's bucket. Only the
// latest value of each entity is kept: the entity carries its own history.
func BucketConfig(p *catalog.Projection, o BucketOptions) jetstream.KeyValueConfig {
	replicas := o.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	return jetstream.KeyValueConfig{
		Bucket:      Bucket(p.Name),
		Description: "Toolbus projection " + p.Name,
		History:     1,
		Storage:     o.Storage,
		Replicas:    replicas,
	}
}

// EnsureBuckets creates or updates the bucket of every projection. It is
// idempotent and safe from every replica at start-up.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, cat *catalog.Catalog, o BucketOptions) error {
	for _, name := range sortedNames(cat) {
		if err := EnsureBucket(ctx, js, cat.Projections[name], o); err != nil {
			return err
		}
	}
	return nil
}

// EnsureBucket creates or updates the bucket of one projection.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, p *catalog.Projection, o BucketOptions) error {
	if err := bus.Declare(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(p, o))
		return err
	}); err != nil {
		return fmt.Errorf("ensure bucket %s: %w", Bucket(p.Name), err)
	}
	return nil
}

func sortedNames(cat *catalog.Catalog) []string {
	names := make([]string, 0, len(cat.Projections))
	for name := range cat.Projections {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Applier applies events to projection buckets.
type Applier struct {
	js jetstream.JetStream

	mu  sync.Mutex
	kvs map[string]jetstream.KeyValue
}

// NewApplier returns an Applier writing through js. The buckets must exist
// (EnsureBuckets).
func NewApplier(js jetstream.JetStream) *Applier {
	return &Applier{js: js, kvs: map[string]jetstream.KeyValue{}}
}

func (a *Applier) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if kv, ok := a.kvs[name]; ok {
		return kv, nil
	}
	kv, err := a.js.KeyValue(ctx, Bucket(name))
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", Bucket(name), err)
	}
	a.kvs[name] = kv
	return kv, nil
}

// Forget drops cached bucket handles, after buckets were deleted and
// recreated.
func (a *Applier) Forget() {
	a.mu.Lock()
	a.kvs = map[string]jetstream.KeyValue{}
	a.mu.Unlock()
}

// candidate is what one event would make of its entity.
type candidate struct {
	key     string
	value   any
	version string
	deleted bool
}

// Extract computes the entity key, value, version and deletion an event
// carries for p, without touching the bucket. Its errors wrap ErrPoison.
func Extract(p *catalog.Projection, ev Event) (key string, value any, version string, deleted bool, err error) {
	c, err := extract(p, ev)
	return c.key, c.value, c.version, c.deleted, err
}

func extract(p *catalog.Projection, ev Event) (candidate, error) {
	var body any
	dec := json.NewDecoder(bytes.NewReader(ev.Body))
	// Numbers stay as written: ids and sequences may exceed float64.
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return candidate{}, fmt.Errorf("body is not JSON: %v: %w", err, ErrPoison)
	}
	if dec.More() {
		return candidate{}, fmt.Errorf("body holds more than one JSON value: %w", ErrPoison)
	}
	key, err := p.Key.Render(body)
	if err != nil {
		return candidate{}, fmt.Errorf("key %s: %v: %w", p.Key, err, ErrPoison)
	}
	if key == "" {
		return candidate{}, fmt.Errorf("key %s is empty: %w", p.Key, ErrPoison)
	}
	c := candidate{key: key, version: strconv.FormatUint(ev.Sequence, 10)}
	if p.Version != nil {
		v, ok := p.Version.Lookup(body)
		if !ok {
			return candidate{}, fmt.Errorf("version %s is missing: %w", p.Version, ErrPoison)
		}
		s, ok := catalog.ScalarText(v)
		if !ok || s == "" {
			return candidate{}, fmt.Errorf("version %s is not a string or number: %w", p.Version, ErrPoison)
		}
		c.version = s
	}
	c.deleted = p.DeleteWhen.Matches(ev.Type, body)
	if c.deleted {
		return c, nil
	}
	if len(p.Fields) == 0 {
		c.value = body
		return c, nil
	}
	fields := make(map[string]any, len(p.Fields))
	for _, f := range p.Fields {
		// A field the event lacks is null rather than an error: providers
		// omit empty attributes.
		v, _ := f.Path.Lookup(body)
		fields[f.Name] = v
	}
	c.value = fields
	return c, nil
}

// Apply applies ev to its entity in p's bucket: idempotently (an event id
// already in the entity's history changes nothing) and monotonically (an
// event ordered before the current state only joins the history; a
// tombstone is ordinary state, so only a newer event replaces it). Writes
// use the entity's KV revision, so replicas applying events to the same
// entity at once never lose an update.
func (a *Applier) Apply(ctx context.Context, p *catalog.Projection, ev Event) (Outcome, error) {
	r, err := a.ApplyResult(ctx, p, ev)
	return r.Outcome, err
}

// Result is what Apply did with an event, in the detail telemetry wants.
type Result struct {
	Outcome Outcome
	// Key is the entity key; empty when the event was ignored or poison.
	Key string
	// Deleted: the event is a tombstone.
	Deleted bool
	// Duplicate: Unchanged because the entity already holds this event id
	// (otherwise Unchanged means too old even for the history).
	Duplicate bool
}

// ApplyResult is Apply, telling also the entity key and why an event
// changed nothing.
func (a *Applier) ApplyResult(ctx context.Context, p *catalog.Projection, ev Event) (Result, error) {
	if !p.Accepts(ev.Source, ev.Type) {
		return Result{Outcome: Ignored}, nil
	}
	c, err := extract(p, ev)
	if err != nil {
		return Result{Outcome: Ignored}, err
	}
	res := Result{Key: c.key, Deleted: c.deleted}
	outcome, dup, err := a.apply(ctx, p, ev, c)
	res.Outcome, res.Duplicate = outcome, dup
	return res, err
}

func (a *Applier) apply(ctx context.Context, p *catalog.Projection, ev Event, c candidate) (Outcome, bool, error) {
	kv, err := a.bucket(ctx, p.Name)
	if err != nil {
		return Ignored, false, err
	}
	kvKey := EncodeKey(c.key)
	for range maxCASAttempts {
		var cur *Entity
		entry, err := kv.Get(ctx, kvKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return Ignored, false, fmt.Errorf("get %s/%s: %w", p.Name, c.key, err)
		default:
			cur = &Entity{}
			if err := json.Unmarshal(entry.Value(), cur); err != nil {
				// Only Apply writes here; an unreadable entity is replaced
				// rather than blocking the key forever.
				cur = nil
			}
		}
		next, outcome := merge(cur, c, ev, p.History)
		if outcome == Unchanged {
			dup := cur != nil && (cur.EventID == ev.ID || slices.ContainsFunc(cur.History, func(x HistoryEntry) bool { return x.EventID == ev.ID }))
			return outcome, dup, nil
		}
		// The record remembers the span that wrote it (the apply span), so
		// that Notify continues the event's trace; merge returned a copy.
		next.Trace = traceOf(ctx)
		data, err := json.Marshal(next)
		if err != nil {
			return Ignored, false, fmt.Errorf("encode entity: %w", err)
		}
		if entry == nil {
			_, err = kv.Create(ctx, kvKey, data)
		} else {
			_, err = kv.Update(ctx, kvKey, data, entry.Revision())
		}
		switch {
		case err == nil:
			return outcome, false, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another replica wrote the entity: read it again
		default:
			return Ignored, false, fmt.Errorf("write %s/%s: %w", p.Name, c.key, err)
		}
	}
	return Ignored, false, fmt.Errorf("write %s/%s: %d concurrent writers in a row, retry later", p.Name, c.key, maxCASAttempts)
}

// merge computes the entity after ev. It depends only on cur and ev, never
// on the clock or on which replica runs it, so any order of delivery of the
// same events gives the same entity.
func merge(cur *Entity, c candidate, ev Event, historyLen int) (*Entity, Outcome) {
	h := HistoryEntry{EventID: ev.ID, Type: ev.Type, Version: c.version, Sequence: ev.Sequence, Deleted: c.deleted}
	latest := func(e *Entity) {
		e.Key, e.Value, e.Version, e.Deleted = c.key, c.value, c.version, c.deleted
		e.EventID, e.EventType, e.Source, e.Sequence, e.ReceivedAt = ev.ID, ev.Type, ev.Source, ev.Sequence, ev.ReceivedAt.UTC()
	}
	if cur == nil {
		e := &Entity{History: []HistoryEntry{h}}
		latest(e)
		return e, Applied
	}
	if cur.EventID == ev.ID || slices.ContainsFunc(cur.History, func(x HistoryEntry) bool { return x.EventID == ev.ID }) {
		return cur, Unchanged
	}
	next := *cur
	next.History = insertHistory(cur.History, h, historyLen)
	if before(cur.Version, cur.Sequence, c.version, ev.Sequence) {
		latest(&next)
		return &next, Applied
	}
	if !slices.Contains(next.History, h) {
		return cur, Unchanged
	}
	return &next, Superseded
}

// insertHistory adds h in (version, sequence) order and keeps the latest n.
func insertHistory(hist []HistoryEntry, h HistoryEntry, n int) []HistoryEntry {
	if n <= 0 {
		n = catalog.DefaultHistory
	}
	i, _ := slices.BinarySearchFunc(hist, h, func(x, t HistoryEntry) int {
		if before(x.Version, x.Sequence, t.Version, t.Sequence) {
			return -1
		}
		return 1
	})
	out := make([]HistoryEntry, 0, len(hist)+1)
	out = append(out, hist[:i]...)
	out = append(out, h)
	out = append(out, hist[i:]...)
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
