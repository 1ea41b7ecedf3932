package restworker

import (
	"errors"
	"fmt"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/shape"
)

// stores are the KV-backed stores every generation shares.
type stores struct {
	results *bus.ResultStore
	conts   *bus.Continuations
	cache   *bus.ResultCache
}

// generation is one catalog as this worker serves it: the compiled routes
// and the call chain built on them. A call keeps the generation it
// started with, so a reload never changes a call half-way.
type generation struct {
	cat    *catalog.Catalog
	h      *handler
	handle bus.CallHandler
}

// newGeneration builds the call chain, innermost first: the request
// (paginated when the tool says so), shaping (jq, drop, cap) on the merged
// answer, the cache of the shaped answer, and the idempotency store of
// what the caller finally got.
func (s *Service) newGeneration(cat *catalog.Catalog, h *handler) *generation {
	lookup := cat.Tool
	shaped := shape.Middleware(lookup, s.stores.conts)(h.handle)
	cached := cacheMiddleware(s.stores.cache, lookup, s.log)(shaped)
	return &generation{cat: cat, h: h, handle: s.stores.results.Remember(cached, h.mutating)}
}

// Reload serves cat from now on. The tools of the upstreams this worker
// consumes are replaced; an upstream new to the catalog gets its consumer
// once its routes are in place (when the worker serves every REST and SOAP
// upstream). On error the current catalog keeps serving, except when only
// a new upstream's consumer could not be created: the new catalog serves
// and the next reload tries that consumer again.
func (s *Service) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("rest-worker: reload: no catalog")
	}
	old := s.gen.Load()
	if old == nil {
		return errors.New("rest-worker: reload before Start")
	}
	ups, fresh := s.life.Reselect(cat)
	h, err := newHandler(cat, ups, s.opts.HTTP)
	if err != nil {
		return fmt.Errorf("rest-worker: reload: %w", err)
	}
	h.publish = s.opts.NC.Publish
	s.gen.Store(s.newGeneration(cat, h))
	// Connections of the old clients close once their calls finish.
	old.h.closeIdle()
	s.log.Info("catalog reloaded", "digest", cat.Digest, "tools", len(h.routes))
	return s.life.ServeNew(ups, fresh)
}
