package projection

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/catalog"
)

// Errors of the Reader.
var (
	// ErrNotFound: no such entity, or it was deleted.
	ErrNotFound = errors.New("entity not found")
	// ErrUnknownProjection: the catalog declares no such projection.
	ErrUnknownProjection = errors.New("unknown projection")
	// ErrBadCursor: a List cursor that List did not return.
	ErrBadCursor = errors.New("invalid cursor")
)

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Reader reads projection buckets. It is safe for concurrent use.
type Reader struct {
	js  jetstream.JetStream
	cat atomic.Pointer[catalog.Catalog]

	mu  sync.Mutex
	kvs map[string]jetstream.KeyValue
}

// NewReader returns a Reader over the projections of cat.
func NewReader(js jetstream.JetStream, cat *catalog.Catalog) *Reader {
	r := &Reader{js: js, kvs: map[string]jetstream.KeyValue{}}
	r.cat.Store(cat)
	return r
}

// SetCatalog reads the projections of cat from now on (a hot reload): a
// projection cat lacks is unknown to every later read.
func (r *Reader) SetCatalog(cat *catalog.Catalog) { r.cat.Store(cat) }

// has reports whether the current catalog declares the projection.
func (r *Reader) has(projection string) bool {
	_, ok := r.cat.Load().Projections[projection]
	return ok
}

// bucket opens a projection's bucket. A bucket the state-updater has not
// created yet reads as empty (nil, nil).
func (r *Reader) bucket(ctx context.Context, projection string) (jetstream.KeyValue, error) {
	if !r.has(projection) {
		return nil, fmt.Errorf("%q: %w", projection, ErrUnknownProjection)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if kv, ok := r.kvs[projection]; ok {
		return kv, nil
	}
	kv, err := r.js.KeyValue(ctx, Bucket(projection))
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("open bucket %s: %w", Bucket(projection), err)
	}
	r.kvs[projection] = kv
	return kv, nil
}

// Get returns one live entity; a missing or deleted one is ErrNotFound.
func (r *Reader) Get(ctx context.Context, projection, key string) (*Entity, error) {
	e, err := r.GetAny(ctx, projection, key)
	if err == nil && e.Deleted {
		return nil, fmt.Errorf("%s %q: %w", projection, key, ErrNotFound)
	}
	return e, err
}

// GetAny returns an entity even when it is a tombstone.
func (r *Reader) GetAny(ctx context.Context, projection, key string) (*Entity, error) {
	kv, err := r.bucket(ctx, projection)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, fmt.Errorf("%s %q: %w", projection, key, ErrNotFound)
	}
	entry, err := kv.Get(ctx, EncodeKey(key))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, fmt.Errorf("%s %q: %w", projection, key, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("get %s %q: %w", projection, key, err)
	}
	return decodeEntry(entry)
}

func decodeEntry(entry jetstream.KeyValueEntry) (*Entity, error) {
	e := &Entity{}
	dec := json.NewDecoder(bytes.NewReader(entry.Value()))
	// Numbers stay as the provider wrote them (ids, cents, sequences).
	dec.UseNumber()
	if err := dec.Decode(e); err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", entry.Key(), err)
	}
	e.Revision = entry.Revision()
	return e, nil
}

// Query selects entities for List.
type Query struct {
	// Prefix keeps entities whose key starts with it.
	Prefix string
	// Where keeps entities whose value has these top-level fields equal to
	// these scalars (numbers compare by value; a string also matches a
	// number or boolean written the same way).
	Where map[string]any
	// Limit is the page size (DefaultPageSize if 0, at most MaxPageSize).
	Limit int
	// Cursor continues after a previous page (Page.NextCursor).
	Cursor string
	// IncludeDeleted lists tombstones too.
	IncludeDeleted bool
}

// Page is one page of a List, in key order.
type Page struct {
	Items []*Entity
	// NextCursor is empty on the last page.
	NextCursor string
}

// List returns entities in key order, filtered and paged. It reads a
// snapshot of the bucket in one pass (an ordered consumer), so its cost
// grows with the bucket: fine for thousands of entities, not for millions.
func (r *Reader) List(ctx context.Context, projection string, q Query) (*Page, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	after := ""
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(b) == 0 {
			return nil, ErrBadCursor
		}
		after = string(b)
	}
	all, err := r.snapshot(ctx, projection)
	if err != nil {
		return nil, err
	}
	page := &Page{}
	for _, e := range all {
		if after != "" && e.Key <= after {
			continue
		}
		if !q.IncludeDeleted && e.Deleted || !strings.HasPrefix(e.Key, q.Prefix) || !matches(e, q.Where) {
			continue
		}
		if len(page.Items) == limit {
			page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Items[limit-1].Key))
			break
		}
		page.Items = append(page.Items, e)
	}
	return page, nil
}

// All returns every entity of a projection, tombstones included, in key
// order: the whole state, for comparisons and exports.
func (r *Reader) All(ctx context.Context, projection string) ([]*Entity, error) {
	return r.snapshot(ctx, projection)
}

func (r *Reader) snapshot(ctx context.Context, projection string) ([]*Entity, error) {
	kv, err := r.bucket(ctx, projection)
	if err != nil || kv == nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", projection, err)
	}
	defer w.Stop()
	var out []*Entity
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case entry, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list %s: watcher closed", projection)
			}
			if entry == nil { // initial values delivered
				slices.SortFunc(out, func(a, b *Entity) int { return strings.Compare(a.Key, b.Key) })
				return out, nil
			}
			e, err := decodeEntry(entry)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
}

func matches(e *Entity, where map[string]any) bool {
	if len(where) == 0 {
		return true
	}
	obj, ok := e.Value.(map[string]any)
	if !ok {
		return false
	}
	for field, want := range where {
		got, ok := obj[field]
		if !ok {
			return false
		}
		if catalog.ScalarEqual(got, want) {
			continue
		}
		ws, wIsStr := want.(string)
		gs, gIsScalar := catalog.ScalarText(got)
		if !wIsStr || !gIsScalar || ws != gs {
			return false
		}
	}
	return true
}

// Watch calls changed with the key of every entity written after Watch
// started, until ctx ends. A bucket that does not exist yet is waited for.
// It returns ctx's error, or the watcher's if it fails.
func (r *Reader) Watch(ctx context.Context, projection string, changed func(key string)) error {
	return r.WatchEntities(ctx, projection, func(e *Entity) { changed(e.Key) })
}

// WatchEntities is Watch handing over the record written, so the callback
// can use it without reading the bucket again (Trace, to continue the
// writer's trace). A record that does not decode still reports its key:
// changed gets an Entity with only Key set.
func (r *Reader) WatchEntities(ctx context.Context, projection string, changed func(e *Entity)) error {
	return r.watchEntities(ctx, projection, changed, nil)
}

// watchEntities is WatchEntities, calling watching (when not nil) once the
// watch is established.
func (r *Reader) watchEntities(ctx context.Context, projection string, changed func(e *Entity), watching func()) error {
	for {
		kv, err := r.bucket(ctx, projection)
		if err != nil {
			return err
		}
		if kv != nil {
			return r.watch(ctx, kv, projection, changed, watching)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (r *Reader) watch(ctx context.Context, kv jetstream.KeyValue, projection string, changed func(e *Entity), watching func()) error {
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", projection, err)
	}
	defer w.Stop()
	if watching != nil {
		watching()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case entry, ok := <-w.Updates():
			if !ok {
				return ctx.Err()
			}
			if entry == nil {
				continue
			}
			key, err := DecodeKey(entry.Key())
			if err != nil {
				continue // not written by Apply
			}
			e, err := decodeEntry(entry)
			if err != nil || e.Key != key {
				e = &Entity{Key: key, Revision: entry.Revision()}
			}
			changed(e)
		}
	}
}
