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
// already consumes are replaced; an upstream new to the catalog is served
// after a restart (its consumer is created at start), which is logged. On
// error the current catalog keeps serving.
func (s *Service) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("rest-worker: reload: no catalog")
	}
	old := s.gen.Load()
	if old == nil {
		return errors.New("rest-worker: reload before Start")
	}
	names := s.opts.Upstreams
	if len(names) == 0 {
		for _, u := range s.upstreams {
			names = append(names, u.Name)
		}
		for name, u := range cat.Upstreams {
			if (u.Kind == catalog.KindREST || u.Kind == catalog.KindSOAP) && !served(s.upstreams, name) {
				s.log.Warn("catalog reload: new upstream is served after a restart", "upstream", name)
			}
		}
	}
	var keep []string
	for _, n := range names {
		if _, ok := cat.Upstreams[n]; ok {
			keep = append(keep, n)
		} else {
			s.log.Warn("catalog reload: upstream removed; its queued calls fail as unknown tools", "upstream", n)
		}
	}
	// An empty selection means "all" to selectUpstreams; here it means the
	// catalog no longer has any upstream this worker consumes.
	var ups []*catalog.Upstream
	if len(keep) > 0 {
		var err error
		if ups, err = selectUpstreams(cat, keep); err != nil {
			return fmt.Errorf("rest-worker: reload: %w", err)
		}
	}
	h, err := newHandler(cat, ups, s.opts.HTTP)
	if err != nil {
		return fmt.Errorf("rest-worker: reload: %w", err)
	}
	h.publish = s.opts.NC.Publish
	s.gen.Store(s.newGeneration(cat, h))
	// Connections of the old clients close once their calls finish.
	old.h.closeIdle()
	s.log.Info("catalog reloaded", "digest", cat.Digest, "tools", len(h.routes))
	return nil
}

func served(ups []*catalog.Upstream, name string) bool {
	for _, u := range ups {
		if u.Name == name {
			return true
		}
	}
	return false
}
