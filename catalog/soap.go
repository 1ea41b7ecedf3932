package catalog

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"

	"gopkg.in/yaml.v3"
)

// KindSOAP is an upstream that speaks SOAP over HTTP (served by the REST
// worker).
const KindSOAP Kind = "soap"

// SOAPVersion is 1.1 or 1.2.
type SOAPVersion string

// SOAP versions.
const (
	SOAP11 SOAPVersion = "1.1"
	SOAP12 SOAPVersion = "1.2"
)

// PasswordType is how a WS-Security UsernameToken carries the password.
type PasswordType string

// UsernameToken password types (their names in the token profile).
const (
	PasswordText   PasswordType = "PasswordText"
	PasswordDigest PasswordType = "PasswordDigest"
)

// SOAPUpstream is the SOAP part of a soap upstream.
type SOAPUpstream struct {
	Version SOAPVersion
	// WSDL is set when the upstream declares one; tools may then name an
	// operation instead of writing their body.
	WSDL *WSDL
	// Security adds a WS-Security UsernameToken header to every request;
	// nil means none.
	Security *UsernameToken
}

// UsernameToken is a WS-Security UsernameToken credential.
type UsernameToken struct {
	Username Secret
	Password Secret
	Type     PasswordType
}

// SOAPTool is the SOAP side of a tool on a soap upstream.
type SOAPTool struct {
	// Action is the SOAPAction (the SOAPAction header in 1.1, the action
	// parameter of the Content-Type in 1.2); may be empty.
	Action string
	// Body renders the content of soap:Body from the arguments (template
	// mode); every value it prints is XML-escaped. Nil in WSDL mode.
	Body *template.Template
	// Operation is the WSDL operation (WSDL mode): the body is built from
	// its input element and the response typed by its output element.
	Operation *SOAPOperation
}

var soapUpstreamFields = []string{"version", "wsdl", "ws_security"}

// soapUpstream reads upstreams.<name>.soap once the kind is known.
func (p *parser) soapUpstream(u *Upstream, ms members, key *yaml.Node, field string) {
	sn := ms.get("soap")
	if u.Kind != KindSOAP {
		if k := ms.key("soap"); k != nil {
			p.errorf(k, field+".soap", "only soap upstreams have soap (this upstream is of kind %s)", u.Kind)
		}
		return
	}
	if ms.get("endpoint") != nil && ms.get("base_url") != nil {
		p.errorf(ms.key("base_url"), field+".base_url", "set endpoint or base_url, not both: they are the same URL for a soap upstream")
	}
	su := &SOAPUpstream{Version: SOAP11}
	u.SOAP = su
	if sn == nil {
		return
	}
	fs, ok := p.mapping(sn, field+".soap", soapUpstreamFields)
	if !ok {
		return
	}
	versionGiven := false
	if vn := fs.get("version"); vn != nil {
		if s, ok := p.str(vn, field+".soap.version"); ok {
			switch SOAPVersion(s) {
			case SOAP11, SOAP12:
				su.Version, versionGiven = SOAPVersion(s), true
			default:
				p.errorf(vn, field+".soap.version", "unsupported SOAP version %q: want \"1.1\" or \"1.2\"", s)
			}
		}
	}
	if wn := fs.get("wsdl"); wn != nil {
		wf := field + ".soap.wsdl"
		wm, ok := p.mapping(wn, wf, []string{"file", "port"})
		if ok {
			var port string
			if pn := wm.get("port"); pn != nil {
				port, _ = p.str(pn, wf+".port")
			}
			if fn := wm.get("file"); fn == nil {
				p.errorf(wn, wf+".file", "required field is missing")
			} else if name, ok := p.str(fn, wf+".file"); ok {
				if display, data, ok := p.readRef(fn, wf+".file", name); ok {
					want := SOAPVersion("")
					if versionGiven {
						want = su.Version
					}
					w, err := parseWSDL(data, port, want)
					if err != nil {
						p.errorf(fn, wf+".file", "%s: %v", display, err)
					} else {
						w.File = display
						su.WSDL = w
						if versionGiven && w.Version != su.Version {
							p.errorf(fs.get("version"), field+".soap.version", "port %s of the WSDL is bound to SOAP %s, not %s", w.Port, w.Version, su.Version)
						}
						su.Version = w.Version
					}
				}
			}
		}
	}
	if sec := fs.get("ws_security"); sec != nil {
		su.Security = p.usernameToken(sec, field+".soap.ws_security")
	}
}

// soapBaseURL takes a soap upstream's endpoint from its WSDL's port
// address when the catalog gives none.
func (p *parser) soapBaseURL(u *Upstream, key *yaml.Node, field string) bool {
	if u.Kind != KindSOAP || u.SOAP == nil || u.SOAP.WSDL == nil || u.SOAP.WSDL.Address == "" {
		return false
	}
	v, err := url.Parse(u.SOAP.WSDL.Address)
	if err != nil || (v.Scheme != "http" && v.Scheme != "https") || v.Host == "" || v.User != nil {
		p.errorf(key, field+".endpoint", "the WSDL's address is not a usable http(s) URL; set endpoint")
		return true
	}
	u.BaseURL = v
	return true
}

func (p *parser) usernameToken(n *yaml.Node, field string) *UsernameToken {
	ms, ok := p.mapping(n, field, []string{"username", "password", "password_type"})
	if !ok {
		return nil
	}
	ut := &UsernameToken{Type: PasswordDigest}
	for _, req := range []string{"username", "password"} {
		if ms.get(req) == nil {
			p.errorf(n, field+"."+req, "required field is missing")
		}
	}
	if un := ms.get("username"); un != nil {
		ut.Username = p.authValue(un, field+".username", false, p.upstreamGroups)
	}
	if pn := ms.get("password"); pn != nil {
		ut.Password = p.authValue(pn, field+".password", true, p.upstreamGroups)
	}
	if tn := ms.get("password_type"); tn != nil {
		if s, ok := p.str(tn, field+".password_type"); ok {
			switch PasswordType(s) {
			case PasswordText, PasswordDigest:
				ut.Type = PasswordType(s)
			default:
				p.errorf(tn, field+".password_type", "unknown password type %q: want PasswordText or PasswordDigest", s)
			}
		}
	}
	return ut
}

// isSOAPTool reports a tool on a soap upstream (or one that has a soap
// section, to report it on the wrong upstream).
func isSOAPTool(ms members, cat *Catalog) bool {
	if ms.get("soap") != nil {
		return true
	}
	if un := ms.get("upstream"); un != nil && un.Kind == yaml.ScalarNode {
		if u := cat.Upstreams[un.Value]; u != nil && u.Kind == KindSOAP {
			return true
		}
	}
	return false
}

var soapToolFields = []string{"action", "operation", "body"}

// soapTool reads the soap section of a tool on a soap upstream, and its
// input schema (written, or derived from the WSDL operation).
func (p *parser) soapTool(t *Tool, ms members, n *yaml.Node, field string, sc *schemaCompiler) {
	for _, f := range []string{"method", "path", "params"} {
		if k := ms.key(f); k != nil {
			p.errorf(k, field+"."+f, "a SOAP tool has no %s: every call is a POST of an envelope to the upstream's endpoint", f)
		}
	}
	if t.Upstream != nil && t.Upstream.Kind != KindSOAP {
		p.errorf(ms.key("soap"), field+".soap", "upstream %s is of kind %s; soap is for soap upstreams", t.Upstream.Name, t.Upstream.Kind)
		return
	}
	sn := ms.get("soap")
	if sn == nil {
		p.errorf(n, field+".soap", "required field is missing: give soap: {operation: Name} (with a WSDL) or soap: {action: ..., body: ...}")
		return
	}
	fs, ok := p.mapping(sn, field+".soap", soapToolFields)
	if !ok {
		return
	}
	st := &SOAPTool{}
	t.SOAP = st
	sf := field + ".soap"
	if an := fs.get("action"); an != nil {
		st.Action, _ = p.str(an, sf+".action")
		if strings.ContainsAny(st.Action, "\"\r\n") {
			p.errorf(an, sf+".action", "must not contain quotes or line breaks")
		}
	}
	on, bn := fs.get("operation"), fs.get("body")
	switch {
	case on != nil && bn != nil:
		p.errorf(fs.key("body"), sf+".body", "give operation (from the WSDL) or body, not both")
	case on != nil:
		name, ok := p.str(on, sf+".operation")
		if !ok || t.Upstream == nil {
			return
		}
		w := t.Upstream.SOAP.WSDL
		if w == nil {
			p.errorf(on, sf+".operation", "upstream %s has no wsdl; give body and action instead", t.Upstream.Name)
			return
		}
		op := w.Operations[name]
		if op == nil {
			p.errorf(on, sf+".operation", "the WSDL's port %s has no document/literal operation %q", w.Port, name)
			return
		}
		st.Operation = op
		if fs.get("action") == nil {
			st.Action = op.Action
		}
		if k := ms.key("input_schema"); k != nil {
			p.errorf(k, field+".input_schema", "the input schema of a WSDL operation is derived from its XML Schema types")
			return
		}
		raw := inputSchemaOf(op.Input)
		if s := p.compileSchema(sc, raw, on, field+".input_schema"); s != nil {
			t.args = schemaValidator{schema: s}
		}
		t.InputSchema = raw
	case bn != nil:
		src, ok := p.str(bn, sf+".body")
		if !ok {
			return
		}
		tmpl, err := ParseSOAPBody(t.Name, src)
		if err != nil {
			p.errorf(bn, sf+".body", "%v", err)
			return
		}
		st.Body = tmpl
		p.inputSchema(t, ms.get("input_schema"), field+".input_schema", sc)
	default:
		p.errorf(sn, sf, "give operation (from the upstream's WSDL) or body (a template of the soap:Body content)")
	}
}

// ParseSOAPBody parses a body template. Every action that prints a value
// is made to XML-escape it, so an argument can never add markup. The
// rendered text (with sample empty arguments) must be well-formed XML.
func ParseSOAPBody(name, src string) (*template.Template, error) {
	tmpl, err := template.New(name).Option("missingkey=zero").Funcs(template.FuncMap{"xmlEscape": XMLEscapeValue}).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %v", strings.TrimPrefix(err.Error(), "template: "))
	}
	for _, t := range tmpl.Templates() {
		if t.Tree != nil {
			escapeActions(t.Tree.Root)
		}
	}
	var sb strings.Builder
	if err := tmpl.Execute(&sb, map[string]any{}); err == nil {
		dec := xml.NewDecoder(strings.NewReader("<x>" + sb.String() + "</x>"))
		for {
			if _, err := dec.Token(); err != nil {
				if err.Error() != "EOF" {
					return nil, fmt.Errorf("the body is not well-formed XML: %v", err)
				}
				break
			}
		}
	}
	return tmpl, nil
}

// escapeActions appends xmlEscape to every action that prints.
func escapeActions(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			escapeActions(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand,
				Args: []parse.Node{parse.NewIdentifier("xmlEscape").SetTree(nil).SetPos(n.Pos)}})
		}
	case *parse.IfNode:
		escapeActions(n.List)
		escapeActions(n.ElseList)
	case *parse.RangeNode:
		escapeActions(n.List)
		escapeActions(n.ElseList)
	case *parse.WithNode:
		escapeActions(n.List)
		escapeActions(n.ElseList)
	}
}

// XMLEscapeValue renders an argument value as escaped XML text: strings
// as they are, numbers as written, booleans as true/false, null and
// missing values as nothing.
func XMLEscapeValue(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		s = v
	default:
		s = fmt.Sprint(v)
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
