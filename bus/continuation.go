package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// ContinuationTTL is how long the remainder of a capped answer can be read.
const ContinuationTTL = time.Hour

// ErrContinuationExpired is returned for a handle whose remainder is gone.
var ErrContinuationExpired = errors.New("continuation expired or unknown")

// Continuations keeps the full text of capped answers in the KV bucket
// toolbus_continuations, so that any mcp-front replica can serve the next
// part.
type Continuations struct {
	kv jetstream.KeyValue
}

// OpenContinuations binds the bucket, which Topology.Ensure creates.
func OpenContinuations(ctx context.Context, js jetstream.JetStream) (*Continuations, error) {
	kv, err := js.KeyValue(ctx, BucketContinuations)
	if err != nil {
		return nil, fmt.Errorf("continuations bucket %s: %w (is the bus topology applied?)", BucketContinuations, err)
	}
	return &Continuations{kv: kv}, nil
}

// Put stores text and returns its id.
func (c *Continuations) Put(ctx context.Context, text []byte) (string, error) {
	id := nuid.Next()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := c.kv.Put(ctx, id, text); err != nil {
		return "", fmt.Errorf("store continuation: %w", err)
	}
	return id, nil
}

// Get returns the text stored under id.
func (c *Continuations) Get(ctx context.Context, id string) ([]byte, error) {
	if !validKeyToken(id) {
		return nil, ErrContinuationExpired
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	e, err := c.kv.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, ErrContinuationExpired
	case err != nil:
		return nil, fmt.Errorf("read continuation: %w", err)
	}
	return e.Value(), nil
}

func validKeyToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
