package mcpfront

import (
	"context"

	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"github.com/toolbus/toolbus/bus"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// The cache of read-only tools lives here, before the bus: a hit costs one
// KV read and never touches the CALLS stream or a worker. The worker
// writes entries (services/rest-worker/cache.go) because only it sees the
// upstream's Cache-Control; both compute the key with bus.CacheKey.

// cacheWorker is the ToolResult.Worker of an answer served from the cache.
const cacheWorker = "cache"

// frontCache reads cached answers and collapses concurrent identical
// calls of this instance into one published call.
type frontCache struct {
	store *bus.ResultCache
	group singleflight.Group
}

func (s *Service) cacheKey(req callRequest, digest string) string {
	var caller string
	if req.tool.cat.Cache.PerCaller && req.caller != nil {
		caller = req.caller.Tenant + "/" + req.caller.Subject
	}
	return bus.CacheKey(req.tool.name, digest, bus.NormalizeArgs(req.args), caller)
}

// cached answers a cached tool's call from the cache, or runs publish once
// for all concurrent identical calls. ok is false when the tool is not
// cached (or the cache is unavailable): the caller publishes as usual.
func (s *Service) cached(ctx context.Context, req callRequest, digest string, publish func() (*toolbusv1.ToolResult, error, error)) (res *toolbusv1.ToolResult, cause, err error, ok bool) {
	c := s.cache
	if c == nil || req.tool.cat.Cache == nil {
		return nil, nil, nil, false
	}
	key := s.cacheKey(req, digest)
	if hit, found, gerr := c.store.Get(ctx, key); gerr != nil {
		s.log.WarnContext(ctx, "cache read failed", "tool", req.tool.name, "error", gerr)
	} else if found {
		hit.Worker = cacheWorker
		return hit, nil, nil, true
	}
	type out struct {
		res        *toolbusv1.ToolResult
		cause, err error
	}
	v, _, shared := c.group.Do(key, func() (any, error) {
		// Read again as the leader: an identical call may have finished,
		// and stored its answer, between the read above and Do.
		if hit, found, _ := c.store.Get(ctx, key); found {
			hit.Worker = cacheWorker
			return out{res: hit}, nil
		}
		r, cause, err := publish()
		return out{r, cause, err}, nil
	})
	o := v.(out)
	if shared && (o.err != nil || o.res == nil || o.res.Error != nil) {
		// The leader's failure may be its own (its client gave up, its
		// deadline): this call tries for itself.
		return nil, nil, nil, false
	}
	if shared {
		return proto.Clone(o.res).(*toolbusv1.ToolResult), o.cause, nil, true
	}
	return o.res, o.cause, o.err, true
}
