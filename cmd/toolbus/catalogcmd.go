package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/openapi"
)

const catalogUsage = `usage:
  toolbus catalog validate FILE                 check a catalog; every problem with file:line
  toolbus catalog show FILE                     print the loaded catalog as JSON
  toolbus catalog tools FILE [--json]           list the tools the catalog serves, with their schemas
  toolbus catalog import-openapi SPEC [flags]   write a catalog skeleton for an OpenAPI document to stdout
  toolbus catalog apply FILE [--nats URL]       validate and publish a catalog to every running process (hot reload)`

func runCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 2 && args[0] == "show" {
		return runCatalogShow(args[1], stdout, stderr) // catalogshow.go
	}
	if len(args) == 0 {
		return usageError{catalogUsage}
	}
	switch args[0] {
	case "validate":
		if len(args) != 2 {
			return usageError{"usage: toolbus catalog validate FILE"}
		}
		cat, err := loadCatalogFile(args[1], stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%d upstreams, %d tools)\n", cat.File, len(cat.Upstreams), len(cat.Tools))
		return nil
	case "tools":
		return runCatalogTools(args[1:], stdout, stderr)
	case "import-openapi":
		return runImportOpenAPI(args[1:], stdout, stderr)
	case "apply":
		return runCatalogApply(ctx, args[1:], stdout, stderr) // reload.go
	}
	return usageError{catalogUsage}
}

func loadCatalogFile(path string, stderr io.Writer) (*catalog.Catalog, error) {
	cat, err := catalog.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, fmt.Errorf("catalog %s is invalid", path)
	}
	return cat, nil
}

// listedTool is one tool as `catalog tools --json` prints it.
type listedTool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description"`
	Upstream     string          `json:"upstream"`
	Method       string          `json:"method"`
	Path         string          `json:"path"`
	BodyEncoding string          `json:"body_encoding,omitempty"`
	Params       []listedParam   `json:"params"`
	Fixed        map[string]any  `json:"fixed,omitempty"`
	Annotations  map[string]bool `json:"annotations"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

type listedParam struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	WireName string `json:"wire_name,omitempty"`
	Required bool   `json:"required,omitempty"`
	Deep     bool   `json:"deep_object,omitempty"`
}

func runCatalogTools(args []string, stdout, stderr io.Writer) error {
	var file string
	asJSON := false
	for _, a := range args {
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
		case strings.HasPrefix(a, "-"):
			return usageError{"usage: toolbus catalog tools FILE [--json]"}
		case file == "":
			file = a
		default:
			return usageError{"usage: toolbus catalog tools FILE [--json]"}
		}
	}
	if file == "" {
		return usageError{"usage: toolbus catalog tools FILE [--json]"}
	}
	cat, err := loadCatalogFile(file, stderr)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]listedTool, 0, len(cat.Tools))
		for _, t := range cat.Tools {
			out = append(out, listTool(t))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUPSTREAM\tMETHOD\tPATH\tHINTS\tARGUMENTS")
	for _, t := range cat.Tools {
		var args []string
		for _, p := range t.Params {
			if _, fixed := t.Fixed[p.Name]; fixed {
				continue
			}
			a := p.Name
			if p.Required {
				a += "*"
			}
			args = append(args, a)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, toolUpstream(t), t.Method, t.Path, toolHints(t.Annotations), strings.Join(args, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d tools (* required argument; --json prints the schemas)\n", len(cat.Tools))
	names := make([]string, 0, len(cat.Upstreams))
	for name := range cat.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := cat.Upstreams[name].OpenAPI
		if s == nil {
			continue
		}
		fmt.Fprintf(stdout, "upstream %s: %d of %d operations of %s (%s, openapi %s); %d notes:\n", name, s.Tools, s.Operations, s.Path, s.Title, s.Version, len(s.Notes))
		for _, n := range s.Notes {
			fmt.Fprintf(stdout, "  %s\n", n)
		}
	}
	return nil
}

func toolHints(a catalog.Annotations) string {
	var hs []string
	if a.ReadOnly != nil && *a.ReadOnly {
		hs = append(hs, "read-only")
	}
	if a.Destructive != nil && *a.Destructive {
		hs = append(hs, "destructive")
	}
	if a.Idempotent != nil && *a.Idempotent {
		hs = append(hs, "idempotent")
	}
	if len(hs) == 0 {
		return "-"
	}
	return strings.Join(hs, ",")
}

func listTool(t *catalog.Tool) listedTool {
	lt := listedTool{Name: t.Name, Title: t.Title, Description: t.Description, Upstream: toolUpstream(t),
		Method: t.Method, Path: t.Path, BodyEncoding: string(t.BodyEncoding), Fixed: t.Fixed,
		InputSchema: t.InputSchema, OutputSchema: t.OutputSchema, Annotations: map[string]bool{}}
	for _, p := range t.Params {
		lp := listedParam{Name: p.Name, In: string(p.In), Required: p.Required, Deep: p.Deep}
		if p.WireName != p.Name {
			lp.WireName = p.WireName
		}
		lt.Params = append(lt.Params, lp)
	}
	for k, v := range map[string]*bool{"read_only": t.Annotations.ReadOnly, "destructive": t.Annotations.Destructive,
		"idempotent": t.Annotations.Idempotent, "open_world": t.Annotations.OpenWorld} {
		if v != nil {
			lt.Annotations[k] = *v
		}
	}
	return lt
}

var upstreamNameChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// runImportOpenAPI writes a catalog skeleton: one upstream whose tools
// come from the document, with the selection and one override entry per
// operation ready to edit. The skeleton is loaded before it is printed,
// as if written to ./catalog.yaml, so what comes out is a valid catalog.
func runImportOpenAPI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog import-openapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	upstreamName := fs.String("upstream", "", "upstream name (default: from the document's title)")
	ids := fs.String("operation-ids", "", "select operations by operationId (comma-separated)")
	tags := fs.String("tags", "", "select operations by tag (comma-separated)")
	paths := fs.String("paths", "", "select operations by path glob, * matches across / (comma-separated)")
	methods := fs.String("methods", "", "select operations by method (comma-separated)")
	prefix := fs.String("name-prefix", "", "prefix for generated tool names")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: toolbus catalog import-openapi SPEC [flags] > catalog.yaml")
		fs.PrintDefaults()
	}
	// The document may come before or after the flags.
	var spec string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		spec, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if spec == "" && fs.NArg() == 1 {
		spec = fs.Arg(0)
	} else if spec == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"toolbus catalog import-openapi: give exactly one OpenAPI document"}
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return err
	}
	sel := openapi.Selection{OperationIDs: splitList(*ids), Tags: splitList(*tags), Paths: splitList(*paths), Methods: splitList(*methods)}
	res, err := openapi.Import(data, openapi.Options{Select: sel, NamePrefix: *prefix})
	if err != nil {
		return fmt.Errorf("%s: %w", spec, err)
	}
	name := *upstreamName
	if name == "" {
		name = strings.Trim(upstreamNameChars.ReplaceAllString(strings.ToLower(res.Title), "_"), "_-")
		if len(name) > 32 {
			name = strings.TrimRight(name[:32], "_-")
		}
		if name == "" {
			name = "api"
		}
	}
	skeleton := writeSkeleton(spec, name, sel, *prefix, res)
	if _, err := catalog.Parse("catalog.yaml", []byte(skeleton)); err != nil {
		var le *catalog.LoadError
		if errors.As(err, &le) {
			fmt.Fprintln(stderr, err)
			return errors.New("the generated catalog does not load; adjust the flags (see the problems above)")
		}
		return err
	}
	_, err = io.WriteString(stdout, skeleton)
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// q quotes a YAML scalar: JSON string syntax is valid YAML.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func qList(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = q(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func writeSkeleton(spec, name string, sel openapi.Selection, prefix string, res *openapi.Result) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Catalog skeleton written by `toolbus catalog import-openapi %s`.\n", spec)
	w("# %s (openapi %s): %d of %d operations become tools.\n", res.Title, res.Version, len(res.Tools), res.Operations)
	w("# Edit it: narrow select, rename tools and sharpen descriptions under overrides,\n")
	w("# fix parameters with hidden. Check it with `toolbus catalog tools catalog.yaml`.\n")
	w("version: 1\n\nupstreams:\n  %s:\n", name)
	if len(res.Servers) > 0 {
		w("    base_url: %s # from the document's servers; may be left out\n", q(res.Servers[0]))
	} else {
		w("    # The document names no absolute server URL: set it here.\n    base_url: \"https://api.example.com\"\n")
	}
	writeAuth(&b, name, res)
	file := spec
	if !filepath.IsAbs(file) {
		file = filepath.ToSlash(filepath.Clean(file))
	}
	w("    openapi:\n      file: %s # relative to this catalog's directory\n", q(file))
	if prefix != "" {
		w("      name_prefix: %s\n", q(prefix))
	}
	if sel.OperationIDs != nil || sel.Tags != nil || sel.Paths != nil || sel.Methods != nil {
		w("      select:\n")
		for _, f := range []struct {
			k string
			v []string
		}{{"operation_ids", sel.OperationIDs}, {"tags", sel.Tags}, {"paths", sel.Paths}, {"methods", sel.Methods}} {
			if f.v != nil {
				w("        %s: %s\n", f.k, qList(f.v))
			}
		}
	}
	if len(res.Tools) > 0 {
		w("      overrides:\n")
		for _, t := range res.Tools {
			w("        %s: # %s %s\n", q(t.OperationID), t.Method, t.Path)
			w("          name: %s\n", q(t.Name))
			desc := t.Description
			if len(desc) > 100 {
				desc = strings.ToValidUTF8(desc[:100], "") + "…"
			}
			w("          # description: %s\n", q(desc))
		}
	}
	return b.String()
}

// writeAuth writes the document's security schemes as commented auth:
// settings (they need secrets, which only the team can reference).
func writeAuth(b *strings.Builder, name string, res *openapi.Result) {
	if len(res.SecuritySchemes) == 0 {
		return
	}
	env := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	fmt.Fprintf(b, "    # The document's security schemes (default first: %s). Uncomment one auth:\n", strings.Join(res.Security, ", "))
	for _, s := range res.SecuritySchemes {
		switch {
		case s.Type == "http" && s.Scheme == "bearer":
			fmt.Fprintf(b, "    # auth: {type: bearer, token: \"${env:%s_TOKEN}\"} # %s\n", env, s.Name)
		case s.Type == "http" && s.Scheme == "basic":
			fmt.Fprintf(b, "    # auth: {type: basic, username: \"${env:%s_USERNAME}\", password: \"${env:%s_PASSWORD}\"} # %s\n", env, env, s.Name)
		case s.Type == "apiKey" && (s.In == "header" || s.In == "query"):
			fmt.Fprintf(b, "    # auth: {type: api_key, in: %s, name: %s, value: \"${env:%s_API_KEY}\"} # %s\n", s.In, q(s.ParamName), env, s.Name)
		case s.Type == "oauth2" && s.TokenURL != "":
			fmt.Fprintf(b, "    # auth: {type: oauth2_client_credentials, token_url: %s, client_id: \"${env:%s_CLIENT_ID}\", client_secret: \"${env:%s_CLIENT_SECRET}\", scopes: %s} # %s\n",
				q(s.TokenURL), env, env, qList(s.Scopes), s.Name)
		default:
			fmt.Fprintf(b, "    # %s: %s %s%s is not mapped to an auth type; configure auth by hand\n", s.Name, s.Type, s.Scheme, s.In)
		}
	}
}

// toolUpstream names a tool's upstream; composite and batch tools have
// none and show what they are instead.
func toolUpstream(t *catalog.Tool) string {
	switch {
	case t.Composite != nil:
		return "(composite)"
	case t.Batch != nil:
		return "(batch)"
	}
	return t.Upstream.Name
}
