package graphqlworker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/shape"
)

// stores are the KV-backed stores every generation shares; Start opens
// them.
type stores struct {
	results *bus.ResultStore
	conts   *bus.Continuations
}

// generation is one catalog as this worker serves it: the compiled routes
// (operations and upstream clients) and the call chain built on them. A
// call keeps the generation it started with, so a reload never changes a
// call half-way.
type generation struct {
	cat    *catalog.Catalog
	h      *handler
	handle bus.CallHandler
}

// newGeneration builds the call chain, innermost first: the GraphQL
// request (pages followed when the tool says so), shaping (jq, drop, cap)
// on the merged answer, and the idempotency store of what the caller
// finally got.
func (s *Service) newGeneration(cat *catalog.Catalog, h *handler) *generation {
	shaped := shape.Middleware(cat.Tool, s.stores.conts)(h.handle)
	return &generation{cat: cat, h: h, handle: s.stores.results.Remember(shaped, h.mutating)}
}

// Reload serves cat from now on. The tools of the upstreams this worker
// already consumes are replaced (new, changed and removed operations); an
// upstream new to the catalog is served after a restart (its consumer is
// created at start), which is logged. A catalog whose GraphQL schemas are
// still to be introspected is refused. On error the current catalog keeps
// serving.
func (s *Service) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("graphql-worker: reload: no catalog")
	}
	old := s.gen.Load()
	if old == nil {
		return errors.New("graphql-worker: reload before Start")
	}
	if p := cat.PendingGraphQLSchemas(); len(p) > 0 {
		return fmt.Errorf("graphql-worker: reload: the schemas of upstreams %s are not loaded (introspection is not cached; cache the schema or restart to introspect); the current catalog keeps serving", strings.Join(p, ", "))
	}
	names := s.opts.Upstreams
	if len(names) == 0 {
		for _, u := range s.upstreams {
			names = append(names, u.Name)
		}
		for name, u := range cat.Upstreams {
			if u.Kind == catalog.KindGraphQL && !served(s.upstreams, name) {
				s.log.Warn("catalog reload: new upstream is served after a restart", "upstream", name)
			}
		}
	}
	var keep []string
	for _, n := range names {
		if u, ok := cat.Upstreams[n]; ok && u.Kind == catalog.KindGraphQL {
			keep = append(keep, n)
		} else {
			s.log.Warn("catalog reload: upstream removed; its queued calls fail as unknown tools", "upstream", n)
		}
	}
	ups, err := selectUpstreams(cat, keep)
	if err != nil {
		return fmt.Errorf("graphql-worker: reload: %w", err)
	}
	if len(keep) == 0 {
		// selectUpstreams takes no names as "all": serve none instead.
		ups = nil
	}
	h, err := newHandler(cat, ups, s.opts.HTTP)
	if err != nil {
		return fmt.Errorf("graphql-worker: reload: %w", err)
	}
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
