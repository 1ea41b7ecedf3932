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
// consumes are replaced (new, changed and removed operations); an upstream
// new to the catalog gets its consumer once its routes are in place (when
// the worker serves every GraphQL upstream). A catalog whose GraphQL
// schemas are still to be introspected is refused. On error the current
// catalog keeps serving, except when only a new upstream's consumer could
// not be created: the new catalog serves and the next reload tries that
// consumer again.
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
	ups, fresh := s.life.Reselect(cat)
	h, err := newHandler(cat, ups, s.opts.HTTP)
	if err != nil {
		return fmt.Errorf("graphql-worker: reload: %w", err)
	}
	s.gen.Store(s.newGeneration(cat, h))
	// Connections of the old clients close once their calls finish.
	old.h.closeIdle()
	s.log.Info("catalog reloaded", "digest", cat.Digest, "tools", len(h.routes))
	return s.life.ServeNew(ups, fresh)
}
