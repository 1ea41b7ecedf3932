package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// ResultStore keeps the results of mutating calls in the KV bucket
// BucketResults under their upstream and idempotency key, for the
// bucket's TTL, so a call repeated with the same key (a client retry, a
// redelivery after a crash, a dead-letter replay) returns the first result
// instead of changing the upstream again.
type ResultStore struct {
	kv jetstream.KeyValue
}

// OpenResultStore binds the results bucket (Topology.Ensure creates it).
func OpenResultStore(ctx context.Context, js jetstream.JetStream) (*ResultStore, error) {
	kv, err := js.KeyValue(ctx, BucketResults)
	if err != nil {
		return nil, fmt.Errorf("results bucket %s: %w (is the bus topology applied?)", BucketResults, err)
	}
	return &ResultStore{kv: kv}, nil
}

// ResultKey is the KV key of a result: idempotency keys are client text,
// so they are hashed into a valid key.
func ResultKey(upstream, idempotencyKey string) string {
	sum := sha256.Sum256([]byte(idempotencyKey))
	return subjectToken(upstream) + "." + hex.EncodeToString(sum[:16])
}

// storeTimeout bounds one KV round trip of the store; a slow bus must not
// hold a call.
const storeTimeout = 2 * time.Second

// Get returns the stored result for the key, if any.
func (s *ResultStore) Get(ctx context.Context, upstream, idempotencyKey string) (*toolbusv1.ToolResult, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	e, err := s.kv.Get(ctx, ResultKey(upstream, idempotencyKey))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	res := &toolbusv1.ToolResult{}
	if err := proto.Unmarshal(e.Value(), res); err != nil {
		return nil, false, fmt.Errorf("stored result: %w", err)
	}
	return res, true, nil
}

// Put stores res under the key.
func (s *ResultStore) Put(ctx context.Context, upstream, idempotencyKey string, res *toolbusv1.ToolResult) error {
	data, err := proto.Marshal(res)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	_, err = s.kv.Put(ctx, ResultKey(upstream, idempotencyKey), data)
	return err
}

// worthKeeping reports results the upstream decided: successes and
// answers that will not change (a 4xx). Failures worth retrying are not
// kept, so a retry really tries again.
func worthKeeping(res *toolbusv1.ToolResult) bool {
	if res == nil {
		return false
	}
	if res.Error == nil {
		return true
	}
	return res.UpstreamStatus != 0 && !res.Error.Retryable
}

// Remember wraps h so that calls for which mutating reports true return
// their stored result without calling h, and store the result h gives. A
// store that cannot be reached is skipped: the upstream's idempotency
// header still protects the repeat.
func (s *ResultStore) Remember(h CallHandler, mutating func(*toolbusv1.ToolCall) bool) CallHandler {
	return func(ctx context.Context, call *toolbusv1.ToolCall, d Delivery) (*toolbusv1.ToolResult, error) {
		if call.IdempotencyKey == "" || !mutating(call) {
			return h(ctx, call, d)
		}
		if res, ok, err := s.Get(ctx, call.Upstream, call.IdempotencyKey); err == nil && ok {
			// Performed before: nothing is sent upstream this time.
			res.Attempts = 0
			return res, nil
		}
		res, err := h(ctx, call, d)
		if err == nil && worthKeeping(res) {
			_ = s.Put(ctx, call.Upstream, call.IdempotencyKey, res)
		}
		return res, err
	}
}
