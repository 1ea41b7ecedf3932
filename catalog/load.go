package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/toolbus/toolbus/gqlop"
)

// Option configures Load and Parse.
type Option func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
	// fsys and schemas: see WithFS and withGraphQLSchemas (graphql.go).
	fsys    fs.FS
	schemas map[string]*gqlop.Schema
	// secrets are the secret groups to resolve (WithSecrets, secretgroups.go).
	secrets SecretGroups
}

// WithLookupEnv replaces os.LookupEnv for ${env:NAME} references, so tests
// need not change the process environment.
func WithLookupEnv(f func(name string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

// WithReadFile replaces os.ReadFile for reading the catalog (Load) and
// ${file:/path} references.
func WithReadFile(f func(path string) ([]byte, error)) Option {
	return func(o *options) { o.readFile = f }
}

// Load reads and parses the catalog file at path. A file that cannot be read
// gives the read error; a file with problems gives a *LoadError listing all
// of them.
func Load(path string, opts ...Option) (*Catalog, error) {
	o := newOptions(opts)
	src, err := o.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(path, src, opts...)
}

func newOptions(opts []Option) options {
	o := options{lookupEnv: os.LookupEnv, readFile: os.ReadFile, secrets: SecretsAll}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Parse parses and validates catalog source. file names the source in
// messages. On failure the error is a *LoadError listing every problem in
// file order, each with file:line:col and the field path.
func Parse(file string, src []byte, opts ...Option) (*Catalog, error) {
	p := &parser{file: file, src: src, opts: newOptions(opts), aliasNodes: maxAliasNodes}
	var cat *Catalog
	if p.checkText(src) {
		if root := p.decodeYAML(src); root != nil {
			cat = p.catalog(root)
		}
	}
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool {
			a, b := p.problems[i].Pos, p.problems[j].Pos
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, &LoadError{Problems: p.problems}
	}
	sum := sha256.Sum256(src)
	cat.Digest = hex.EncodeToString(sum[:])
	cat.src, cat.opts, cat.secrets = src, opts, p.opts.secrets
	return cat, nil
}

// checkText reports the first invalid UTF-8 sequence or control character
// with its exact position; the YAML parser reports them without one.
func (p *parser) checkText(src []byte) bool {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			p.problems = append(p.problems, Problem{Pos: Pos{p.file, line, col}, Message: "invalid UTF-8"})
			return false
		case r == '\n':
			line, col = line+1, 0
		case (r < 0x20 && r != '\t' && r != '\r') || r == 0x7f:
			p.problems = append(p.problems, Problem{Pos: Pos{p.file, line, col}, Message: fmt.Sprintf("control character %U is not allowed", r)})
			return false
		}
		i += size
		col++
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeYAML parses the single YAML document in src and returns its root.
func (p *parser) decodeYAML(src []byte) (root *yaml.Node) {
	defer func() {
		// The YAML parser is third-party code fed with user input; a
		// panic in it must become a problem, not bring the process down.
		if r := recover(); r != nil {
			p.problems = append(p.problems, Problem{Pos: Pos{File: p.file, Line: 1}, Message: fmt.Sprintf("invalid YAML: %v", r)})
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.problems = append(p.problems, Problem{Pos: Pos{p.file, 1, 1}, Message: "empty catalog: want at least version: 1"})
		} else {
			p.yamlError(src, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(src, err)
		return nil
	default:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		p.errorf(at, "", "a catalog is one YAML document; remove the second document")
		return nil
	}
	if len(doc.Content) == 0 {
		p.problems = append(p.problems, Problem{Pos: Pos{p.file, 1, 1}, Message: "empty catalog: want at least version: 1"})
		return nil
	}
	return doc.Content[0]
}

// yamlParserProblems are the problems of yaml.v3's parser stage, whose
// line numbers are zero-based (its scanner's are one-based).
var yamlParserProblems = []string{
	"did not find expected ",
	"found duplicate %",
	"found incompatible YAML document",
	"found undefined tag handle",
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

func (p *parser) yamlError(src []byte, err error) {
	// The YAML parser omits the line when it is the first one and never
	// gives a column.
	pos, msg := Pos{File: p.file, Line: 1}, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		for _, prefix := range yamlParserProblems {
			if strings.HasPrefix(msg, prefix) && !strings.HasPrefix(msg, "did not find expected comment") &&
				!strings.HasPrefix(msg, "did not find expected whitespace") {
				pos.Line++
				break
			}
		}
	}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(src, []byte("*"+m[1])); i >= 0 {
			pos.Line = 1 + bytes.Count(src[:i], []byte("\n"))
			pos.Col = 1 + utf8.RuneCount(src[bytes.LastIndexByte(src[:i], '\n')+1:i])
		}
	}
	p.problems = append(p.problems, Problem{Pos: pos, Message: "invalid YAML: " + msg})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (p *parser) catalog(root *yaml.Node) *Catalog {
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "a catalog must be a mapping with version, upstreams and tools, got %s", kindName(root))
		return nil
	}
	ms, _ := p.mapping(root, "", []string{"version", "upstreams", "tools", "sources", "projections", "auth", "widgets"})
	cat := &Catalog{File: p.file, Upstreams: map[string]*Upstream{}, toolsByName: map[string]*Tool{},
		Sources: map[string]*Source{}, Projections: map[string]*Projection{}}
	p.webhooks(ms, cat)
	if an := ms.get("auth"); an != nil {
		cat.Auth = p.serverAuth(an)
	}

	if v := ms.get("version"); v == nil {
		p.errorf(root, "version", "required field is missing; add version: 1")
	} else if n, ok := p.integer(v, "version"); ok && n != 1 {
		p.errorf(v, "version", "unsupported version %d: this Toolbus reads version 1", n)
	}

	declared := map[string]bool{}
	if un := ms.get("upstreams"); un != nil && !isNull(un) {
		ups, _ := p.mapping(un, "upstreams", nil)
		for _, m := range ups {
			declared[m.name] = true
			if u := p.upstream(m); u != nil {
				cat.Upstreams[m.name] = u
			}
		}
	}

	if tn := ms.get("tools"); tn != nil && !isNull(tn) {
		if tn.Kind != yaml.SequenceNode {
			p.errorf(tn, "tools", "must be a list, got %s", kindName(tn))
			return cat
		}
		sc := newSchemaCompiler()
		firstLine := map[string]int{}
		for i, item := range tn.Content {
			item = deref(item)
			t, name := p.tool(i, item, cat, declared, sc)
			if name != "" {
				nameNode := lookup(item, "name")
				if line, dup := firstLine[name]; dup {
					p.errorf(nameNode, fmt.Sprintf("tools[%d] (%s).name", i, name), "duplicate tool name %q (first at line %d)", name, line)
					continue
				}
				firstLine[name] = nameNode.Line
			}
			if t != nil {
				cat.Tools = append(cat.Tools, t)
				cat.toolsByName[t.Name] = t
			}
		}
	}
	p.openapiTools(cat)
	p.resolveVirtualTools(cat) // composite.go: steps may name imported tools
	p.widgets(ms.get("widgets"), cat)
	p.checkOutputTemplates(cat, root) // widgets.go
	p.checkContinueNames(cat, root)   // response.go
	return cat
}
