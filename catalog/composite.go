package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"gopkg.in/yaml.v3"
)

// Limits of composite tools.
const (
	MaxCompositeSteps = 32
	// maxJQOutputs bounds what one argument expression may produce; an
	// expression that streams more is a catalog mistake.
	maxJQOutputs = 1
)

// Composite is a tool whose call runs other tools (its steps) and merges
// their results. Steps run in parallel unless one depends on another's
// result; mcp-front's scheduler (package composite) executes them, each as
// an ordinary call through the bus.
type Composite struct {
	// Steps in file order.
	Steps []*Step
	// Merge lists, in order, the keys of the composite's result and the
	// step whose result each holds. By default every step under its name.
	Merge []MergeEntry
}

// MergeEntry puts the result of step Step under Key.
type MergeEntry struct {
	Key  string
	Step string
}

// Step is one call of a composite tool.
type Step struct {
	Name string
	// Tool is the called tool: a tool on an upstream, never another
	// composite or batch tool.
	Tool *Tool
	// Args computes the step's arguments from the composite's input and
	// its dependencies' results.
	Args *ArgExpr
	// Optional steps that fail leave their key null and are listed in the
	// result's _missing; a required step that fails fails the composite.
	Optional bool
	// After is every step this one waits for: the steps its expressions
	// refer to (.steps.<name>) and those listed in after. Sorted.
	After []string
	Pos   Pos

	toolName   string
	toolNode   *yaml.Node
	afterNodes map[string]*yaml.Node
}

// ArgExpr builds a JSON object of arguments from a JSON value with jq:
// either one program (args_jq) or a template (args), a mapping whose string
// values may hold {{ jq }} expressions.
type ArgExpr struct {
	// program is set for args_jq: its one output is the arguments object.
	program *gojq.Code
	// tmpl is the args mapping with its expressions compiled.
	tmpl map[string]argNode
	// refs are the step names the expressions refer to.
	refs []string
}

// argNode is one value of an args template.
type argNode struct {
	literal any           // a value without expressions
	whole   *gojq.Code    // "{{ expr }}" alone: the value is the result, any type
	parts   []argTextPart // text with {{ expr }} inside: a string
	obj     map[string]argNode
	list    []argNode
	kind    byte // 'l' literal, 'w' whole, 't' text, 'o' object, 'a' list
}

type argTextPart struct {
	text string
	code *gojq.Code
}

// Eval returns the arguments for input, which is normalised JSON data
// (see NormalizeJSON): {"input": {...}, "steps": {"name": result}}.
func (a *ArgExpr) Eval(input any) (map[string]any, error) {
	if a == nil {
		return map[string]any{}, nil
	}
	if a.program != nil {
		v, err := runJQ(a.program, input)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("args_jq produced %s, want an object of arguments", jqType(v))
		}
		return m, nil
	}
	out := make(map[string]any, len(a.tmpl))
	for k, n := range a.tmpl {
		v, err := n.eval(input)
		if err != nil {
			return nil, fmt.Errorf("args.%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func (n argNode) eval(input any) (any, error) {
	switch n.kind {
	case 'w':
		return runJQ(n.whole, input)
	case 't':
		var b strings.Builder
		for _, p := range n.parts {
			if p.code == nil {
				b.WriteString(p.text)
				continue
			}
			v, err := runJQ(p.code, input)
			if err != nil {
				return nil, err
			}
			switch v := v.(type) {
			case string:
				b.WriteString(v)
			case nil:
			default:
				j, err := json.Marshal(v)
				if err != nil {
					return nil, err
				}
				b.Write(j)
			}
		}
		return b.String(), nil
	case 'o':
		out := make(map[string]any, len(n.obj))
		for k, c := range n.obj {
			v, err := c.eval(input)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = v
		}
		return out, nil
	case 'a':
		out := make([]any, len(n.list))
		for i, c := range n.list {
			v, err := c.eval(input)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	}
	return n.literal, nil
}

// runJQ runs code on input and returns its single output (null when it
// produces none).
func runJQ(code *gojq.Code, input any) (any, error) {
	iter := code.Run(input)
	var out any
	n := 0
	for {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, ok := v.(error); ok {
			var he *gojq.HaltError
			if errors.As(err, &he) && he.Value() == nil {
				break
			}
			return nil, fmt.Errorf("jq: %v", err)
		}
		n++
		if n > maxJQOutputs {
			return nil, errors.New("jq expression produced more than one value; wrap it in [ ] to collect a list")
		}
		out = v
	}
	return out, nil
}

func jqType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	}
	return "a number"
}

// NormalizeJSON converts decoded JSON (json.Number included) into the
// values jq works on: int, float64, *big.Int, string, bool, nil, []any and
// map[string]any.
func NormalizeJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil && i >= math.MinInt && i <= math.MaxInt {
				return int(i)
			}
			if b, ok := new(big.Int).SetString(s, 10); ok {
				return b
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case map[string]any:
		for k, c := range v {
			v[k] = NormalizeJSON(c)
		}
		return v
	case []any:
		for i, c := range v {
			v[i] = NormalizeJSON(c)
		}
		return v
	}
	return v
}

var compositeFields = []string{"steps", "merge"}

var stepFields = []string{"name", "tool", "args", "args_jq", "optional", "after"}

var stepNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

// stepRefRE finds the steps an expression reads: .steps.name,
// .steps["name"] and .steps."name".
var stepRefRE = regexp.MustCompile(`\.steps\s*(?:\.\s*"?|\[\s*")([a-zA-Z_][a-zA-Z0-9_]*)`)

// isVirtualTool reports tools that mcp-front runs itself: composites
// (steps) and batch tools.
func isVirtualTool(ms members) bool {
	return ms.get("steps") != nil || ms.get("batch") != nil
}

// virtualOnlyFields may not appear on tools with an upstream.
var virtualOnlyFields = []string{"steps", "merge", "batch"}

// virtualTool parses the composite or batch part of a tool; the steps'
// and target's tools are linked by resolveVirtualTools once every tool is
// known.
func (p *parser) virtualTool(t *Tool, ms members, field string, sc *schemaCompiler) {
	for _, f := range append([]string{"upstream", "method", "path", "params", "output_schema", "soap"}, graphqlToolFields...) {
		if k := ms.key(f); k != nil {
			p.errorf(k, field+"."+f, "a composite or batch tool has no %s: its steps or target tool have theirs", f)
		}
	}
	if ms.get("steps") != nil && ms.get("batch") != nil {
		p.errorf(ms.key("batch"), field+".batch", "a tool has either steps or batch, not both")
		return
	}
	t.virtual = &virtualSpec{field: field, ms: ms, sc: sc}
	if ms.get("batch") != nil {
		if k := ms.key("merge"); k != nil {
			p.errorf(k, field+".merge", "only composite tools (with steps) have merge")
		}
		if k := ms.key("input_schema"); k != nil {
			p.errorf(k, field+".input_schema", "a batch tool's input schema is derived from its target tool")
		}
		t.Batch = p.batchSpec(ms.get("batch"), field+".batch")
		return
	}
	p.inputSchema(t, ms.get("input_schema"), field+".input_schema", sc)
	t.Composite = p.compositeSpec(ms, field)
}

// virtualSpec keeps what resolveVirtualTools needs.
type virtualSpec struct {
	field string
	ms    members
	sc    *schemaCompiler
}

func (p *parser) compositeSpec(ms members, field string) *Composite {
	c := &Composite{}
	sn := ms.get("steps")
	if sn.Kind != yaml.SequenceNode || len(sn.Content) == 0 {
		p.errorf(sn, field+".steps", "must be a non-empty list of steps")
		return c
	}
	if len(sn.Content) > MaxCompositeSteps {
		p.errorf(sn, field+".steps", "has %d steps; the limit is %d", len(sn.Content), MaxCompositeSteps)
	}
	seen := map[string]int{}
	for i, item := range sn.Content {
		item = deref(item)
		sf := fmt.Sprintf("%s.steps[%d]", field, i)
		fs, ok := p.mapping(item, sf, stepFields)
		if !ok {
			continue
		}
		s := &Step{Pos: p.pos(item), afterNodes: map[string]*yaml.Node{}}
		if nn := fs.get("name"); nn == nil {
			p.errorf(item, sf+".name", "required field is missing")
		} else if v, ok := p.str(nn, sf+".name"); ok {
			switch {
			case !stepNameRE.MatchString(v):
				p.errorf(nn, sf+".name", "step name %q must match [a-zA-Z_][a-zA-Z0-9_]* (at most 64 characters): jq expressions refer to it as .steps.%s", v, v)
			case seen[v] > 0:
				p.errorf(nn, sf+".name", "duplicate step name %q (first at line %d)", v, seen[v])
			default:
				seen[v] = nn.Line
				s.Name = v
				sf = fmt.Sprintf("%s.steps[%d] (%s)", field, i, v)
			}
		}
		if tn := fs.get("tool"); tn == nil {
			p.errorf(item, sf+".tool", "required field is missing")
		} else if v, ok := p.str(tn, sf+".tool"); ok {
			s.toolName, s.toolNode = v, tn
		}
		if fs.get("args") != nil && fs.get("args_jq") != nil {
			p.errorf(fs.key("args_jq"), sf+".args_jq", "give args or args_jq, not both")
		} else if an := fs.get("args"); an != nil {
			s.Args = p.argTemplate(an, sf+".args")
		} else if jn := fs.get("args_jq"); jn != nil {
			s.Args = p.argProgram(jn, sf+".args_jq")
		}
		if on := fs.get("optional"); on != nil {
			s.Optional, _ = p.boolean(on, sf+".optional")
		}
		if an := fs.get("after"); an != nil {
			for _, it := range p.strList(an, sf+".after") {
				s.afterNodes[it.s] = it.n
			}
		}
		c.Steps = append(c.Steps, s)
	}
	if mn := ms.get("merge"); mn != nil {
		mm, _ := p.mapping(mn, field+".merge", nil)
		for _, m := range mm {
			mf := joinField(field+".merge", m.name)
			if strings.HasPrefix(m.name, "_") || m.name == "" {
				p.errorf(m.key, mf, "result keys must not be empty or start with _ (reserved for _missing)")
				continue
			}
			if v, ok := p.str(m.val, mf); ok {
				if seen[v] == 0 {
					p.errorf(m.val, mf, "unknown step %q", v)
					continue
				}
				c.Merge = append(c.Merge, MergeEntry{Key: m.name, Step: v})
			}
		}
	} else {
		for _, s := range c.Steps {
			if s.Name != "" {
				c.Merge = append(c.Merge, MergeEntry{Key: s.Name, Step: s.Name})
			}
		}
	}
	return c
}

// argProgram compiles an args_jq program.
func (p *parser) argProgram(n *yaml.Node, field string) *ArgExpr {
	src, ok := p.str(n, field)
	if !ok {
		return nil
	}
	code := p.compileJQ(n, field, src)
	if code == nil {
		return nil
	}
	return &ArgExpr{program: code, refs: stepRefs(src)}
}

// argTemplate compiles an args mapping.
func (p *parser) argTemplate(n *yaml.Node, field string) *ArgExpr {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping of argument name to value, got %s", kindName(n))
		return nil
	}
	a := &ArgExpr{}
	root := p.argNode(n, field, a, 0)
	a.tmpl = root.obj
	slices.Sort(a.refs)
	a.refs = slices.Compact(a.refs)
	return a
}

var exprRE = regexp.MustCompile(`\{\{(.*?)\}\}`)

func (p *parser) argNode(n *yaml.Node, field string, a *ArgExpr, depth int) argNode {
	n = deref(n)
	if depth > maxValueDepth {
		p.errorf(n, field, "nested too deeply")
		return argNode{}
	}
	switch n.Kind {
	case yaml.MappingNode:
		ms, _ := p.mapping(n, field, nil)
		out := argNode{kind: 'o', obj: map[string]argNode{}}
		for _, m := range ms {
			out.obj[m.name] = p.argNode(m.val, joinField(field, m.name), a, depth+1)
		}
		return out
	case yaml.SequenceNode:
		out := argNode{kind: 'a'}
		for i, c := range n.Content {
			out.list = append(out.list, p.argNode(c, fmt.Sprintf("%s[%d]", field, i), a, depth+1))
		}
		return out
	}
	if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "{{") {
		raw, ok := p.toJSON(n, field)
		if !ok {
			return argNode{}
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		_ = dec.Decode(&v)
		return argNode{kind: 'l', literal: NormalizeJSON(v)}
	}
	s := n.Value
	locs := exprRE.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(s) {
		expr := s[locs[0][2]:locs[0][3]]
		a.refs = append(a.refs, stepRefs(expr)...)
		return argNode{kind: 'w', whole: p.compileJQ(n, field, expr)}
	}
	out := argNode{kind: 't'}
	last := 0
	for _, l := range locs {
		if l[0] > last {
			out.parts = append(out.parts, argTextPart{text: s[last:l[0]]})
		}
		expr := s[l[2]:l[3]]
		a.refs = append(a.refs, stepRefs(expr)...)
		out.parts = append(out.parts, argTextPart{code: p.compileJQ(n, field, expr)})
		last = l[1]
	}
	if last < len(s) {
		out.parts = append(out.parts, argTextPart{text: s[last:]})
	}
	return out
}

func (p *parser) compileJQ(n *yaml.Node, field, src string) *gojq.Code {
	if strings.TrimSpace(src) == "" {
		p.errorf(n, field, "empty jq expression")
		return nil
	}
	q, err := gojq.Parse(src)
	if err != nil {
		p.errorf(n, field, "invalid jq expression %q: %v", src, err)
		return nil
	}
	code, err := gojq.Compile(q)
	if err != nil {
		p.errorf(n, field, "invalid jq expression %q: %v", src, err)
		return nil
	}
	return code
}

func stepRefs(src string) []string {
	var out []string
	for _, m := range stepRefRE.FindAllStringSubmatch(src, -1) {
		out = append(out, m[1])
	}
	return out
}

// resolveVirtualTools links composite steps and batch targets to their
// tools, checks the step graph, and fills annotations, timeouts and input
// schemas. It runs once every tool, imported ones included, is known.
func (p *parser) resolveVirtualTools(cat *Catalog) {
	for _, t := range cat.Tools {
		if t.virtual == nil {
			continue
		}
		switch {
		case t.Composite != nil:
			p.resolveComposite(cat, t)
		case t.Batch != nil:
			p.resolveBatch(cat, t)
		}
	}
}

// target returns the upstream tool a composite step or batch tool calls.
func (p *parser) target(cat *Catalog, name string, n *yaml.Node, field string) *Tool {
	if n == nil || name == "" {
		return nil
	}
	tt, ok := cat.Tool(name)
	switch {
	case !ok:
		p.errorf(n, field, "unknown tool %q", name)
		return nil
	case tt.Upstream == nil:
		p.errorf(n, field, "tool %s is itself a composite or batch tool; steps and batch targets must be tools on an upstream", name)
		return nil
	}
	return tt
}

func (p *parser) resolveComposite(cat *Catalog, t *Tool) {
	field := t.virtual.field
	c := t.Composite
	byName := map[string]*Step{}
	for _, s := range c.Steps {
		if s.Name != "" {
			byName[s.Name] = s
		}
	}
	for i, s := range c.Steps {
		sf := fmt.Sprintf("%s.steps[%d] (%s)", field, i, s.Name)
		s.Tool = p.target(cat, s.toolName, s.toolNode, sf+".tool")
		deps := map[string]bool{}
		for name, n := range s.afterNodes {
			if byName[name] == nil {
				p.errorf(n, sf+".after", "unknown step %q", name)
				continue
			}
			deps[name] = true
		}
		if s.Args != nil {
			for _, name := range s.Args.refs {
				if byName[name] == nil {
					p.errorf(s.toolNode, sf+".args", "the arguments read .steps.%s, but there is no step %s", name, name)
					continue
				}
				deps[name] = true
			}
		}
		if deps[s.Name] {
			p.errorf(s.toolNode, sf, "step %s depends on itself", s.Name)
			delete(deps, s.Name)
		}
		for name := range deps {
			s.After = append(s.After, name)
		}
		slices.Sort(s.After)
	}
	if cycle := stepCycle(c.Steps, byName); cycle != nil {
		p.errorf(t.virtual.ms.get("steps"), field+".steps", "the steps depend on each other in a cycle: %s", strings.Join(cycle, " → "))
		return
	}
	if len(p.problems) > 0 {
		return
	}
	// Annotations: read-only only when every step is; destructive when any is.
	ro, destructive, idempotent, openWorld := true, false, true, false
	var scopes []string
	for _, s := range c.Steps {
		a := s.Tool.Annotations
		ro = ro && flagOf(a.ReadOnly)
		destructive = destructive || flagOf(a.Destructive)
		idempotent = idempotent && flagOf(a.Idempotent)
		openWorld = openWorld || flagOf(a.OpenWorld)
		scopes = append(scopes, s.Tool.Scopes...)
	}
	p.virtualAnnotations(t, ro, destructive, idempotent, openWorld)
	if t.Scopes == nil && scopes != nil {
		slices.Sort(scopes)
		t.Scopes = slices.Compact(scopes)
	}
	if t.Timeout == 0 {
		t.Timeout = min(criticalPath(c.Steps, byName), MaxTimeout)
	}
}

func flagOf(b *bool) bool { return b != nil && *b }

// virtualAnnotations fills the hints a composite or batch tool leaves
// out from its steps' (given values win).
func (p *parser) virtualAnnotations(t *Tool, ro, destructive, idempotent, openWorld bool) {
	a := &t.Annotations
	a.Title = t.Title
	if n := t.virtual.ms.get("annotations"); n != nil && !isNull(n) {
		field := t.virtual.field + ".annotations"
		ms, _ := p.mapping(n, field, annotationFields)
		for _, m := range ms {
			b, ok := p.boolean(m.val, field+"."+m.name)
			if !ok {
				continue
			}
			switch m.name {
			case "read_only":
				a.ReadOnly = &b
			case "destructive":
				a.Destructive = &b
			case "idempotent":
				a.Idempotent = &b
			case "open_world":
				a.OpenWorld = &b
			}
		}
	}
	if a.ReadOnly == nil {
		a.ReadOnly = &ro
	}
	if *a.ReadOnly {
		destructive = false
	}
	if a.Destructive == nil {
		a.Destructive = &destructive
	}
	if a.Idempotent == nil {
		a.Idempotent = &idempotent
	}
	if a.OpenWorld == nil {
		a.OpenWorld = &openWorld
	}
}

// stepCycle returns a dependency cycle among steps, or nil.
func stepCycle(steps []*Step, byName map[string]*Step) []string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(s *Step) []string
	visit = func(s *Step) []string {
		state[s.Name] = active
		stack = append(stack, s.Name)
		for _, d := range s.After {
			switch state[d] {
			case active:
				i := slices.Index(stack, d)
				return append(slices.Clone(stack[i:]), d)
			case unseen:
				if c := visit(byName[d]); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[s.Name] = done
		return nil
	}
	for _, s := range steps {
		if s.Name != "" && state[s.Name] == unseen {
			if c := visit(s); c != nil {
				return c
			}
		}
	}
	return nil
}

// criticalPath is the longest chain of step timeouts: the default budget
// of a composite.
func criticalPath(steps []*Step, byName map[string]*Step) time.Duration {
	memo := map[string]time.Duration{}
	var finish func(s *Step) time.Duration
	finish = func(s *Step) time.Duration {
		if d, ok := memo[s.Name]; ok {
			return d
		}
		var start time.Duration
		for _, d := range s.After {
			start = max(start, finish(byName[d]))
		}
		memo[s.Name] = start + s.Tool.CallTimeout()
		return memo[s.Name]
	}
	var longest time.Duration
	for _, s := range steps {
		longest = max(longest, finish(s))
	}
	if longest <= 0 {
		return DefaultTimeout
	}
	return longest
}

// IsVirtual reports tools that mcp-front runs itself (composite and batch
// tools): they have no upstream of their own.
func (t *Tool) IsVirtual() bool { return t.Composite != nil || t.Batch != nil }
