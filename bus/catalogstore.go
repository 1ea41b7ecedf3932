package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// CatalogKey is the key of the applied catalog in BucketCatalog. The value
// is opaque to the bus (cmd/toolbus encodes a catalog bundle).
const CatalogKey = "catalog"

// PutCatalog stores an applied catalog and returns its revision.
func PutCatalog(ctx context.Context, js jetstream.JetStream, value []byte) (uint64, error) {
	kv, err := js.KeyValue(ctx, BucketCatalog)
	if err != nil {
		return 0, fmt.Errorf("catalog bucket %s: %w (is the bus topology applied?)", BucketCatalog, err)
	}
	rev, err := kv.Put(ctx, CatalogKey, value)
	if err != nil {
		return 0, fmt.Errorf("store catalog: %w", err)
	}
	return rev, nil
}

// GetCatalog returns the applied catalog and its revision; nil and 0 when
// none was applied yet.
func GetCatalog(ctx context.Context, js jetstream.JetStream) ([]byte, uint64, error) {
	kv, err := js.KeyValue(ctx, BucketCatalog)
	if err != nil {
		return nil, 0, fmt.Errorf("catalog bucket %s: %w (is the bus topology applied?)", BucketCatalog, err)
	}
	e, err := kv.Get(ctx, CatalogKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("read the applied catalog: %w", err)
	}
	return e.Value(), e.Revision(), nil
}

// CatalogWatch delivers applied catalogs until Stop.
type CatalogWatch struct {
	w    jetstream.KeyWatcher
	done chan struct{}
	once sync.Once
}

// WatchCatalog calls fn with the applied catalog, if any, and then with
// every catalog applied later, in order, from one goroutine that Stop ends.
func WatchCatalog(ctx context.Context, js jetstream.JetStream, fn func(value []byte, revision uint64)) (*CatalogWatch, error) {
	kv, err := js.KeyValue(ctx, BucketCatalog)
	if err != nil {
		return nil, fmt.Errorf("catalog bucket %s: %w (is the bus topology applied?)", BucketCatalog, err)
	}
	// The watcher outlives ctx (which only bounds setting it up).
	w, err := kv.Watch(context.Background(), CatalogKey)
	if err != nil {
		return nil, fmt.Errorf("watch catalog: %w", err)
	}
	cw := &CatalogWatch{w: w, done: make(chan struct{})}
	go func() {
		defer close(cw.done)
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // nil marks the end of the initial values
			}
			fn(e.Value(), e.Revision())
		}
	}()
	return cw, nil
}

// Stop ends the watch and waits for the goroutine.
func (c *CatalogWatch) Stop() error {
	var err error
	c.once.Do(func() {
		err = c.w.Stop()
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			err = nil
		}
	})
	<-c.done
	return err
}
