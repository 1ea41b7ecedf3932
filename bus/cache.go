package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// ResultCache keeps answers of read-only tools in the KV bucket
// toolbus_cache, shared by every replica. Each entry carries its own expiry
// so that tools with different TTLs share one bucket.
type ResultCache struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// OpenResultCache binds the cache bucket, which Topology.Ensure creates.
func OpenResultCache(ctx context.Context, js jetstream.JetStream) (*ResultCache, error) {
	kv, err := js.KeyValue(ctx, BucketCache)
	if err != nil {
		return nil, fmt.Errorf("cache bucket %s: %w (is the bus topology applied?)", BucketCache, err)
	}
	return &ResultCache{kv: kv, now: time.Now}, nil
}

// CacheKey is the key of one cached answer: the tool, the catalog digest (a
// reload starts afresh), the normalised arguments and, when answers depend
// on the caller's own credentials, the caller.
func CacheKey(tool, digest string, normalizedArgs []byte, caller string) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(digest), normalizedArgs, []byte(caller)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return subjectToken(tool) + "." + hex.EncodeToString(h.Sum(nil)[:20])
}

// Get returns the cached answer under key unless it has expired.
func (c *ResultCache) Get(ctx context.Context, key string) (*toolbusv1.ToolResult, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	e, err := c.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("cache get: %w", err)
	}
	v := e.Value()
	if len(v) < 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))).Before(c.now()) {
		return nil, false, nil
	}
	res := &toolbusv1.ToolResult{}
	if err := proto.Unmarshal(v[8:], res); err != nil {
		return nil, false, fmt.Errorf("cache entry %s: %w", key, err)
	}
	return res, true, nil
}

// Put stores res under key for ttl.
func (c *ResultCache) Put(ctx context.Context, key string, res *toolbusv1.ToolResult, ttl time.Duration) error {
	data, err := proto.Marshal(res)
	if err != nil {
		return fmt.Errorf("cache put: %w", err)
	}
	v := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint64(v, uint64(c.now().Add(ttl).UnixNano()))
	v = append(v, data...)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := c.kv.Put(ctx, key, v); err != nil {
		return fmt.Errorf("cache put: %w", err)
	}
	return nil
}

// NormalizeArgs re-encodes a JSON object of arguments with sorted keys and
// without insignificant space, so that equal arguments give equal cache
// keys. Numbers keep their digits. Undecodable input is returned as is.
func NormalizeArgs(raw []byte) []byte {
	if len(raw) == 0 {
		return []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	if v == nil {
		return []byte("{}")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}
