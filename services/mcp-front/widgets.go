package mcpfront

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolbus/toolbus/catalog"
)

// addWidgets serves the catalog's widget templates as MCP resources
// ui://widget/<name>.html; tools name them in _meta openai/outputTemplate.
func (s *Service) addWidgets(cat *catalog.Catalog) {
	for _, w := range cat.SortedWidgets() {
		s.server.AddResource(&mcp.Resource{URI: w.URI, Name: w.Name, MIMEType: w.MIME}, widgetHandler(w))
	}
}

func widgetHandler(w *catalog.Widget) mcp.ResourceHandler {
	html := string(w.HTML)
	return func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: w.URI, MIMEType: w.MIME, Text: html}}}, nil
	}
}
