package catalog

import (
	"fmt"
	"regexp"
	"sort"

	"gopkg.in/yaml.v3"
)

// WidgetMIME is the MIME type ChatGPT expects of a widget template.
const WidgetMIME = "text/html+skybridge"

// MetaOutputTemplate is the tool _meta key naming a tool's widget.
const MetaOutputTemplate = "openai/outputTemplate"

// Widget is an HTML template served as the MCP resource URI (catalog field
// widgets), which clients such as ChatGPT render a tool's result with.
type Widget struct {
	Name string
	// URI is ui://widget/<name>.html.
	URI  string
	MIME string
	// File the template was read from; HTML its content.
	File string
	HTML []byte
	Pos  Pos
}

var widgetNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// WidgetURI is the resource URI of the widget called name.
func WidgetURI(name string) string { return "ui://widget/" + name + ".html" }

// SortedWidgets returns the widgets by name.
func (c *Catalog) SortedWidgets() []*Widget {
	out := make([]*Widget, 0, len(c.Widgets))
	for _, w := range c.Widgets {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (p *parser) widgets(n *yaml.Node, cat *Catalog) {
	if n == nil || isNull(n) {
		return
	}
	ms, ok := p.mapping(n, "widgets", nil)
	if !ok {
		return
	}
	cat.Widgets = map[string]*Widget{}
	for _, m := range ms {
		field := joinField("widgets", m.name)
		if !widgetNameRE.MatchString(m.name) {
			p.errorf(m.key, field, "widget name %q may contain only letters, digits, '_' and '-' (1 to 64)", m.name)
			continue
		}
		fs, ok := p.mapping(m.val, field, []string{"file", "mime"})
		if !ok {
			continue
		}
		w := &Widget{Name: m.name, URI: WidgetURI(m.name), MIME: WidgetMIME, Pos: p.pos(m.key)}
		if mn := fs.get("mime"); mn != nil {
			if s, ok := p.str(mn, field+".mime"); ok {
				if s != WidgetMIME && s != "text/html" {
					p.errorf(mn, field+".mime", "unsupported MIME type %q: want %s (ChatGPT) or text/html", s, WidgetMIME)
				}
				w.MIME = s
			}
		}
		fn := fs.get("file")
		if fn == nil {
			p.errorf(m.val, field+".file", "required field is missing: the HTML template, relative to the catalog")
			continue
		}
		if s, ok := p.str(fn, field+".file"); ok {
			if display, data, ok := p.readRef(fn, field+".file", s); ok {
				w.File, w.HTML = display, data
				cat.Widgets[m.name] = w
			}
		}
	}
}

// checkOutputTemplates makes every tool's openai/outputTemplate name a
// declared widget. Without widgets the catalog serves no ui:// resources
// and the template is passed through as written.
func (p *parser) checkOutputTemplates(cat *Catalog, root *yaml.Node) {
	if cat.Widgets == nil {
		return
	}
	uris := map[string]bool{}
	for _, w := range cat.Widgets {
		uris[w.URI] = true
	}
	for _, t := range cat.Tools {
		v, ok := t.Meta[MetaOutputTemplate]
		if !ok {
			continue
		}
		s, _ := v.(string)
		if !uris[s] {
			names := make([]string, 0, len(uris))
			for u := range uris {
				names = append(names, u)
			}
			sort.Strings(names)
			at := root
			if t.Pos.Line > 0 {
				at = &yaml.Node{Line: t.Pos.Line, Column: t.Pos.Col}
			}
			p.errorf(at, fmt.Sprintf("tool %s.meta.%s", t.Name, MetaOutputTemplate), "%q names no declared widget (declared: %v)", v, names)
		}
	}
}
