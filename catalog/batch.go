package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults and limits of batch tools.
const (
	DefaultBatchMaxParallel = 8
	MaxBatchMaxParallel     = 64
	DefaultBatchMaxItems    = 100
	MaxBatchMaxItems        = 1000
	DefaultBatchMaxBatch    = 100
)

// BatchMode says how a batch tool calls its target.
type BatchMode string

// Batch modes.
const (
	// BatchUpstream sends many ids in one call of the target tool (a REST
	// endpoint taking ids=1,2,3, a batch endpoint, a GraphQL list
	// variable) and splits its answer per id.
	BatchUpstream BatchMode = "upstream"
	// BatchParallel calls the target once per id, at most MaxParallel at
	// a time.
	BatchParallel BatchMode = "parallel"
)

// Batch is a tool that runs a target tool over a list of ids and answers
// with one result or one error per id. mcp-front's scheduler (package
// composite) executes it; every target call goes through the bus.
type Batch struct {
	// Tool is the target, a tool on an upstream.
	Tool *Tool
	// Argument is the target's argument that receives one id (parallel)
	// or the ids (upstream).
	Argument string
	// List is the batch tool's own argument holding the ids.
	List string
	Mode BatchMode
	// MaxParallel bounds the target calls in flight for one batch call.
	MaxParallel int
	// MaxItems bounds the ids of one call (the list's maxItems).
	MaxItems int
	// MaxBatch bounds the ids sent in one upstream call (upstream mode);
	// longer lists are split into several calls.
	MaxBatch int
	// Join, in upstream mode, joins the ids into one string ("1,2,3");
	// empty sends them as a JSON list.
	Join string
	// Results is the dot path of the item list in the target's answer
	// (upstream mode); empty means the answer is the list (or its
	// "result").
	Results string
	// IDField is the dot path, inside one item, of its id (upstream mode).
	IDField string

	targetName string
	targetNode *yaml.Node
	node       *yaml.Node
}

var batchFields = []string{"tool", "argument", "list_argument", "mode", "max_parallel", "max_items", "max_batch", "join", "results", "id_field"}

func (p *parser) batchSpec(n *yaml.Node, field string) *Batch {
	b := &Batch{List: "ids", Mode: BatchParallel, MaxParallel: DefaultBatchMaxParallel, MaxItems: DefaultBatchMaxItems,
		MaxBatch: DefaultBatchMaxBatch, IDField: "id", node: n}
	ms, ok := p.mapping(n, field, batchFields)
	if !ok {
		return b
	}
	for _, req := range []string{"tool", "argument"} {
		if ms.get(req) == nil {
			p.errorf(n, field+"."+req, "required field is missing")
		}
	}
	upstreamOnly := map[string]bool{"max_batch": true, "join": true, "results": true, "id_field": true}
	for _, f := range ms {
		ff := field + "." + f.name
		switch f.name {
		case "tool":
			if s, ok := p.str(f.val, ff); ok {
				b.targetName, b.targetNode = s, f.val
			}
		case "argument":
			b.Argument, _ = p.str(f.val, ff)
		case "list_argument":
			if s, ok := p.str(f.val, ff); ok {
				if !stepNameRE.MatchString(s) {
					p.errorf(f.val, ff, "must match [a-zA-Z_][a-zA-Z0-9_]*")
				}
				b.List = s
			}
		case "mode":
			if s, ok := p.str(f.val, ff); ok {
				switch BatchMode(s) {
				case BatchUpstream, BatchParallel:
					b.Mode = BatchMode(s)
				default:
					p.errorf(f.val, ff, "unknown mode %q: want upstream or parallel", s)
				}
			}
		case "max_parallel":
			b.MaxParallel = p.positiveInt(f.val, ff, MaxBatchMaxParallel)
		case "max_items":
			b.MaxItems = p.positiveInt(f.val, ff, MaxBatchMaxItems)
		case "max_batch":
			b.MaxBatch = p.positiveInt(f.val, ff, MaxBatchMaxItems)
		case "join":
			if s, ok := p.str(f.val, ff); ok {
				if s == "" {
					p.errorf(f.val, ff, "must not be empty")
				}
				b.Join = s
			}
		case "results":
			b.Results, _ = p.str(f.val, ff)
		case "id_field":
			if s, ok := p.str(f.val, ff); ok && s != "" {
				b.IDField = s
			}
		}
	}
	if b.Mode == BatchParallel {
		for _, f := range ms {
			if upstreamOnly[f.name] {
				p.errorf(f.key, field+"."+f.name, "only mode: upstream has %s", f.name)
			}
		}
	}
	return b
}

func (p *parser) resolveBatch(cat *Catalog, t *Tool) {
	b := t.Batch
	field := t.virtual.field + ".batch"
	b.Tool = p.target(cat, b.targetName, b.targetNode, field+".tool")
	if b.Tool == nil || b.Argument == "" {
		return
	}
	schema, err := batchInputSchema(b.Tool.InputSchema, b)
	if err != nil {
		p.errorf(b.node, field+".argument", "%v", err)
		return
	}
	t.InputSchema = schema
	if s := p.compileSchema(t.virtual.sc, schema, b.node, field); s != nil {
		t.args = schemaValidator{schema: s}
	}
	a := b.Tool.Annotations
	p.virtualAnnotations(t, flagOf(a.ReadOnly), flagOf(a.Destructive), flagOf(a.Idempotent), flagOf(a.OpenWorld))
	if t.Scopes == nil {
		t.Scopes = b.Tool.Scopes
	}
	if t.Timeout == 0 {
		// Enough for every wave of target calls, within the overall limit.
		waves := (b.MaxItems + b.MaxParallel - 1) / b.MaxParallel
		if b.Mode == BatchUpstream {
			waves = ((b.MaxItems+b.MaxBatch-1)/b.MaxBatch + b.MaxParallel - 1) / b.MaxParallel
		}
		t.Timeout = min(b.Tool.CallTimeout()*time.Duration(waves), MaxTimeout)
	}
}

// batchInputSchema derives a batch tool's input schema from its target's:
// the target's argument is replaced by the list argument, whose items are
// what the argument accepts (parallel), its items (upstream with a list
// argument) or strings and integers (upstream with join). Key order is
// kept.
func batchInputSchema(target json.RawMessage, b *Batch) (json.RawMessage, error) {
	top, err := orderedObject(target)
	if err != nil {
		return nil, fmt.Errorf("the target's input schema: %v", err)
	}
	var props []orderedMember
	var required []string
	for _, m := range top {
		switch m.key {
		case "properties":
			if props, err = orderedObject(m.val); err != nil {
				return nil, fmt.Errorf("the target's input schema properties: %v", err)
			}
		case "required":
			_ = json.Unmarshal(m.val, &required)
		}
	}
	var argSchema json.RawMessage
	for _, m := range props {
		if m.key == b.Argument {
			argSchema = m.val
		}
		if m.key == b.List && b.List != b.Argument {
			return nil, fmt.Errorf("the target tool %s already has an argument %s; choose another list_argument", b.Tool.Name, b.List)
		}
	}
	if argSchema == nil {
		return nil, fmt.Errorf("tool %s has no argument %q", b.Tool.Name, b.Argument)
	}
	item := argSchema
	if b.Mode == BatchUpstream {
		var s struct {
			Type  any             `json:"type"`
			Items json.RawMessage `json:"items"`
		}
		_ = json.Unmarshal(argSchema, &s)
		switch {
		case b.Join != "":
			if s.Type != "string" {
				return nil, fmt.Errorf("with join, the target's argument %s must be a string (the ids joined with %q)", b.Argument, b.Join)
			}
			item = json.RawMessage(`{"type":["string","integer"]}`)
		case s.Type != "array":
			return nil, fmt.Errorf("in upstream mode without join, the target's argument %s must be an array of ids", b.Argument)
		case len(s.Items) > 0:
			item = s.Items
		default:
			item = json.RawMessage(`{}`)
		}
	}
	list := fmt.Sprintf(`{"type":"array","description":"The ids; each gets its own result or error.","items":%s,"minItems":1,"maxItems":%d}`, item, b.MaxItems)

	var buf bytes.Buffer
	buf.WriteByte('{')
	wrote := false
	write := func(k string, v []byte) {
		if wrote {
			buf.WriteByte(',')
		}
		wrote = true
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
	}
	hasProps, hasRequired := false, false
	for _, m := range top {
		switch m.key {
		case "properties":
			hasProps = true
			var pb bytes.Buffer
			pb.WriteByte('{')
			first := true
			for _, pm := range props {
				if !first {
					pb.WriteByte(',')
				}
				first = false
				kb, _ := json.Marshal(pm.key)
				if pm.key == b.Argument {
					kb, _ = json.Marshal(b.List)
					pb.Write(kb)
					pb.WriteByte(':')
					pb.WriteString(list)
					continue
				}
				pb.Write(kb)
				pb.WriteByte(':')
				pb.Write(pm.val)
			}
			pb.WriteByte('}')
			write("properties", pb.Bytes())
		case "required":
			hasRequired = true
			out := []string{b.List}
			for _, r := range required {
				if r != b.Argument {
					out = append(out, r)
				}
			}
			rb, _ := json.Marshal(out)
			write("required", rb)
		case "description", "title", "$id":
		default:
			write(m.key, m.val)
		}
	}
	if !hasProps {
		return nil, fmt.Errorf("tool %s has no argument %q", b.Tool.Name, b.Argument)
	}
	if !hasRequired {
		rb, _ := json.Marshal([]string{b.List})
		write("required", rb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

type orderedMember struct {
	key string
	val json.RawMessage
}

// orderedObject splits a JSON object into its members in order.
func orderedObject(raw json.RawMessage) ([]orderedMember, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []orderedMember
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, orderedMember{key: k.(string), val: v})
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return nil, err
	}
	return out, nil
}

// ItemPath splits a dot path ("data.customers") into its keys.
func ItemPath(path string) []string {
	if path == "" {
		return nil
	}
	return strings.Split(path, ".")
}
