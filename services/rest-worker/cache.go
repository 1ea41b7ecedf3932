package restworker

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// The answers of cached tools are written here, by the worker, because
// only the worker sees the upstream's Cache-Control; mcp-front reads them
// before publishing a call (services/mcp-front/cache.go), which saves the
// bus round trip on a hit.

type cacheHintKey struct{}

// cacheHint carries what the handler learnt from the upstream's headers
// back to the cache middleware.
type cacheHint struct{ noStore atomic.Bool }

// markNoStore records Cache-Control: no-store (or no-cache, which forbids
// reuse without revalidation) for the call in ctx.
func markNoStore(ctx context.Context, h http.Header) {
	hint, ok := ctx.Value(cacheHintKey{}).(*cacheHint)
	if !ok {
		return
	}
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-store" || d == "no-cache" || d == "private" {
				hint.noStore.Store(true)
			}
		}
	}
}

// cacheMiddleware collapses concurrent identical calls of cached tools
// into one upstream call (singleflight on the cache key) and stores
// successful answers for the tool's TTL. It sits outside shaping, so the
// shaped answer is what is cached.
func cacheMiddleware(cache *bus.ResultCache, lookup func(string) (*catalog.Tool, bool), log *slog.Logger) func(bus.CallHandler) bus.CallHandler {
	var group singleflight.Group
	return func(next bus.CallHandler) bus.CallHandler {
		return func(ctx context.Context, call *toolbusv1.ToolCall, d bus.Delivery) (*toolbusv1.ToolResult, error) {
			t, ok := lookup(call.Tool)
			if !ok || t.Cache == nil || cache == nil {
				return next(ctx, call, d)
			}
			key := CacheKeyOf(t, call)
			v, err, shared := group.Do(key, func() (any, error) {
				// Another front may have published the same call, and its
				// answer been stored, while this one waited in the stream.
				if hit, found, _ := cache.Get(ctx, key); found {
					return hit, nil
				}
				hint := &cacheHint{}
				res, err := next(context.WithValue(ctx, cacheHintKey{}, hint), call, d)
				if err != nil || res == nil || res.Error != nil || hint.noStore.Load() {
					return res, err
				}
				if err := cache.Put(ctx, key, res, t.Cache.TTL); err != nil {
					log.WarnContext(ctx, "cache write failed", "tool", call.Tool, "error", err)
				}
				return res, nil
			})
			res, _ := v.(*toolbusv1.ToolResult)
			if shared && res != nil {
				// The worker stamps call ids on results: each waiter
				// needs its own copy.
				res = proto.Clone(res).(*toolbusv1.ToolResult)
			}
			return res, err
		}
	}
}

// CacheKeyOf is the cache key of a call, computed the same way as
// mcp-front's lookup.
func CacheKeyOf(t *catalog.Tool, call *toolbusv1.ToolCall) string {
	var caller string
	if t.Cache.PerCaller && call.GetCaller() != nil {
		caller = call.GetCaller().GetTenant() + "/" + call.GetCaller().GetSubject()
	}
	return bus.CacheKey(t.Name, call.CatalogDigest, bus.NormalizeArgs(call.Arguments), caller)
}
