package mcpfront

import (
	"errors"
	"fmt"
	"slices"

	"github.com/toolbus/toolbus/catalog"
)

// served is one catalog as this front serves it. Reload swaps it whole;
// a call keeps the frontTool (and so the catalog.Tool) it started with.
type served struct {
	cat   *catalog.Catalog
	tools map[string]*frontTool
	// extras are the generated tools (<tool>_continue) and widget URIs.
	extraTools []string
	widgets    []string
}

func (s *Service) current() *served { return s.cur.Load() }

// Reload serves cat instead of the current catalog: new tools are added,
// changed ones replaced and removed ones dropped, and MCP clients are sent
// notifications/tools/list_changed (the SDK does so on AddTool and
// RemoveTools). Calls in flight finish with the tool they started with.
// Projections follow (state.go), and so do the API keys and default
// scopes of the auth section (mcpauth.Authenticator.Reload). On error
// nothing changes.
func (s *Service) Reload(cat *catalog.Catalog) error {
	if cat == nil {
		return errors.New("mcpfront: reload: no catalog")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.current()
	next := &served{cat: cat, tools: make(map[string]*frontTool, len(cat.Tools))}
	for _, ct := range cat.Tools {
		ft, err := newFrontTool(ct)
		if err != nil {
			return fmt.Errorf("mcpfront: reload: %w", err)
		}
		next.tools[ct.Name] = ft
	}
	next.extraTools, next.widgets = extraNames(cat)

	var gone []string
	for name := range old.tools {
		if _, ok := next.tools[name]; !ok {
			gone = append(gone, name)
		}
	}
	for _, name := range old.extraTools {
		if !slices.Contains(next.extraTools, name) {
			gone = append(gone, name)
		}
	}
	var goneURIs []string
	for _, uri := range old.widgets {
		if !slices.Contains(next.widgets, uri) {
			goneURIs = append(goneURIs, uri)
		}
	}
	// Scopes first: a tool must require its scopes from the moment it can
	// be called (over MCP or gRPC).
	if s.auth != nil {
		s.auth.Reload(cat)
	}
	s.cur.Store(next)
	if len(gone) > 0 {
		s.server.RemoveTools(gone...)
	}
	if len(goneURIs) > 0 {
		s.server.RemoveResources(goneURIs...)
	}
	for _, ct := range cat.Tools {
		ft := next.tools[ct.Name]
		s.server.AddTool(ft.mcp, s.mcpToolHandler(ft))
	}
	s.addCatalogExtras(cat)
	s.state.reload(cat) // state.go
	s.log.Info("catalog reloaded", "digest", cat.Digest, "tools", len(cat.Tools), "removed", len(gone))
	return nil
}

// extraNames lists what addCatalogExtras serves for cat.
func extraNames(cat *catalog.Catalog) (tools, uris []string) {
	for _, t := range cat.Tools {
		if t.Response != nil && t.Response.MaxBytes > 0 {
			tools = append(tools, t.Name+catalog.ContinueSuffix)
		}
	}
	for _, w := range cat.SortedWidgets() {
		uris = append(uris, w.URI)
	}
	return tools, uris
}
