package restworker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
	"github.com/toolbus/toolbus/toolerr"
	"github.com/toolbus/toolbus/upstream"
)

// SOAP envelope namespaces and the WS-Security ones.
const (
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	nsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	wssToken = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#"
	wssB64   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// CodeSOAPFault is the ToolError code of a SOAP fault.
const CodeSOAPFault = "upstream_soap_fault"

// soapAccept takes both versions' media types and anything else as text.
const soapAccept = "text/xml, application/soap+xml, */*;q=0.5"

// soapRoute builds and reads the SOAP requests of one tool.
type soapRoute struct {
	tool    *catalog.Tool
	version catalog.SOAPVersion
	ns      string // envelope namespace
	u       *url.URL
	sec     *catalog.UsernameToken
	// clock and nonce are the UsernameToken's time and randomness.
	clock func() time.Time
	nonce func([]byte) error
}

func compileSOAPRoute(t *catalog.Tool, c *upstream.Client) (*route, error) {
	u := t.Upstream
	if u.SOAP == nil || u.BaseURL == nil {
		return nil, fmt.Errorf("tool %s: upstream %s is not a soap upstream with an endpoint", t.Name, u.Name)
	}
	s := &soapRoute{tool: t, version: u.SOAP.Version, ns: nsSOAP11, u: u.BaseURL, sec: u.SOAP.Security,
		clock: time.Now, nonce: func(b []byte) error { _, err := rand.Read(b); return err }}
	if s.version == catalog.SOAP12 {
		s.ns = nsSOAP12
	}
	r := &route{tool: t, client: c, scheme: u.BaseURL.Scheme, host: u.BaseURL.Host, userAgent: upstream.UserAgent(), soap: s}
	if h := u.IdempotencyHeader; h != "" && t.Mutating() {
		r.idempotencyHeader = h
	}
	return r, nil
}

// build makes the POST of one call's envelope. With WS-Security, every
// attempt (GetBody) gets a fresh nonce and creation time, of the same
// length, so a server's replay cache never refuses a retry.
func (s *soapRoute) build(ctx context.Context, r *route, args map[string]any, idempotencyKey string) (*http.Request, error) {
	body, err := s.body(args)
	if err != nil {
		return nil, err
	}
	envelope := func() ([]byte, error) { return s.envelope(body) }
	first, err := envelope()
	if err != nil {
		return nil, err
	}
	u := *s.u
	h := make(http.Header, 5)
	h.Set("User-Agent", r.userAgent)
	h.Set("Accept", soapAccept)
	switch s.version {
	case catalog.SOAP12:
		ct := "application/soap+xml; charset=utf-8"
		if a := s.tool.SOAP.Action; a != "" {
			ct += `; action="` + a + `"`
		}
		h.Set("Content-Type", ct)
	default:
		h.Set("Content-Type", "text/xml; charset=utf-8")
		h.Set("SOAPAction", `"`+s.tool.SOAP.Action+`"`)
	}
	if r.idempotencyHeader != "" && idempotencyKey != "" && validHeaderValue(idempotencyKey) {
		h.Set(r.idempotencyHeader, idempotencyKey)
	}
	req := &http.Request{Method: http.MethodPost, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: u.Host, ContentLength: int64(len(first)), Body: io.NopCloser(bytes.NewReader(first))}
	req.GetBody = func() (io.ReadCloser, error) {
		b, err := envelope()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return req.WithContext(ctx), nil
}

// body renders the content of soap:Body: the tool's template, or the
// WSDL operation's input element built from the arguments.
func (s *soapRoute) body(args map[string]any) ([]byte, error) {
	st := s.tool.SOAP
	var b bytes.Buffer
	if st.Body != nil {
		if err := st.Body.Execute(&b, args); err != nil {
			return nil, toolerr.Err(toolerr.Internal(s.tool.Name, "the SOAP body template failed: "+err.Error()))
		}
		return b.Bytes(), nil
	}
	w := &xmlWriter{buf: &b, prefixes: map[string]string{}}
	if err := w.element(st.Operation.Input, args, s.tool.Name, st.Operation.Input.Name, true); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (s *soapRoute) envelope(body []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(body) + 1024)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + s.ns + `">`)
	if s.sec != nil {
		b.WriteString("<soap:Header>")
		if err := s.security(&b); err != nil {
			return nil, err
		}
		b.WriteString("</soap:Header>")
	}
	b.WriteString("<soap:Body>")
	b.Write(body)
	b.WriteString("</soap:Body></soap:Envelope>")
	return b.Bytes(), nil
}

// security writes a WS-Security UsernameToken (OASIS Username Token
// Profile 1.0). PasswordDigest is Base64(SHA-1(nonce + created +
// password)); both types carry a 16-byte nonce and the creation time, in
// UTC with milliseconds, so their length never varies.
func (s *soapRoute) security(b *bytes.Buffer) error {
	nonce := make([]byte, 16)
	if err := s.nonce(nonce); err != nil {
		return toolerr.Err(toolerr.Internal(s.tool.Name, "no randomness for the WS-Security nonce"))
	}
	created := s.clock().UTC().Format("2006-01-02T15:04:05.000Z")
	pw := s.sec.Password.Reveal()
	if s.sec.Type == catalog.PasswordDigest {
		h := sha1.New()
		h.Write(nonce)
		h.Write([]byte(created))
		h.Write([]byte(pw))
		pw = base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	mu := "1"
	if s.version == catalog.SOAP12 {
		mu = "true"
	}
	b.WriteString(`<wsse:Security xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `" soap:mustUnderstand="` + mu + `">`)
	b.WriteString("<wsse:UsernameToken><wsse:Username>")
	_ = xml.EscapeText(b, []byte(s.sec.Username.Reveal()))
	b.WriteString(`</wsse:Username><wsse:Password Type="` + wssToken + string(s.sec.Type) + `">`)
	_ = xml.EscapeText(b, []byte(pw))
	b.WriteString(`</wsse:Password><wsse:Nonce EncodingType="` + wssB64 + `">`)
	b.WriteString(base64.StdEncoding.EncodeToString(nonce))
	b.WriteString("</wsse:Nonce><wsu:Created>" + created + "</wsu:Created></wsse:UsernameToken></wsse:Security>")
	return nil
}

// xmlWriter writes a WSDL element from JSON arguments. The operation's
// element declares the target namespace as prefix tns; other namespaces
// get ns1, ns2, ... where first used.
type xmlWriter struct {
	buf      *bytes.Buffer
	prefixes map[string]string
}

func (w *xmlWriter) element(e *catalog.XMLElement, v any, tool, path string, root bool) error {
	var name, decl string
	switch {
	case e.Namespace == "":
		name = e.Name
	default:
		p, ok := w.prefixes[e.Namespace]
		if !ok {
			p = "tns"
			if !root {
				p = "ns" + strconv.Itoa(len(w.prefixes))
			}
			w.prefixes[e.Namespace] = p
			decl = ` xmlns:` + p + `="` + xmlAttr(e.Namespace) + `"`
		}
		name = p + ":" + e.Name
	}
	w.buf.WriteString("<" + name + decl + ">")
	if len(e.Children) > 0 || e.Type == "" {
		obj, _ := v.(map[string]any)
		if v != nil && obj == nil && len(e.Children) > 0 {
			return toolerr.Err(toolerr.InvalidArgument(tool, path, "must be an object"))
		}
		for _, c := range e.Children {
			cv, ok := obj[c.Name]
			if !ok || cv == nil {
				continue
			}
			items := []any{cv}
			if list, isList := cv.([]any); isList && c.Repeated {
				items = list
			}
			for _, it := range items {
				if err := w.element(c, it, tool, path+"/"+c.Name, false); err != nil {
					return err
				}
			}
		}
	} else {
		switch v := v.(type) {
		case map[string]any, []any:
			return toolerr.Err(toolerr.InvalidArgument(tool, path, "must be a single value"))
		case bool:
			w.buf.WriteString(strconv.FormatBool(v))
		default:
			_ = xml.EscapeText(w.buf, []byte(fmt.Sprint(v)))
		}
	}
	w.buf.WriteString("</" + name + ">")
	return nil
}

func xmlAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// node is a parsed XML element.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
}

func (n *node) child(local string) *node {
	for _, c := range n.children {
		if c.name.Local == local {
			return c
		}
	}
	return nil
}

// parseXML reads a document into a tree (at most 256 levels deep).
func parseXML(body []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "us-ascii") {
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %s", charset)
	}
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= 256 {
				return nil, fmt.Errorf("nested deeper than 256 elements")
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no XML element")
	}
	return root, nil
}

// soapBody returns the first element inside Envelope/Body.
func soapBody(root *node) (*node, bool) {
	if root.name.Local != "Envelope" || (root.name.Space != nsSOAP11 && root.name.Space != nsSOAP12) {
		return nil, false
	}
	body := root.child("Body")
	if body == nil {
		return nil, false
	}
	if len(body.children) == 0 {
		return &node{}, true
	}
	return body.children[0], true
}

// fault is a SOAP fault, either version.
type fault struct {
	code    string // as written, e.g. "soap:Client" or "env:Sender"
	subcode string
	reason  string
	detail  string
	// sender is true for faults the request caused (Client, Sender,
	// VersionMismatch, MustUnderstand, DataEncodingUnknown): permanent.
	sender bool
}

func readFault(n *node) (*fault, bool) {
	if n.name.Local != "Fault" || (n.name.Space != nsSOAP11 && n.name.Space != nsSOAP12) {
		return nil, false
	}
	f := &fault{}
	if c := n.child("faultcode"); c != nil { // 1.1
		f.code = strings.TrimSpace(c.text.String())
		if s := n.child("faultstring"); s != nil {
			f.reason = strings.TrimSpace(s.text.String())
		}
		if d := n.child("detail"); d != nil {
			f.detail = textOf(d)
		}
	} else { // 1.2
		if c := n.child("Code"); c != nil {
			if v := c.child("Value"); v != nil {
				f.code = strings.TrimSpace(v.text.String())
			}
			if sc := c.child("Subcode"); sc != nil {
				if v := sc.child("Value"); v != nil {
					f.subcode = strings.TrimSpace(v.text.String())
				}
			}
		}
		if r := n.child("Reason"); r != nil {
			if t := r.child("Text"); t != nil {
				f.reason = strings.TrimSpace(t.text.String())
			}
		}
		if d := n.child("Detail"); d != nil {
			f.detail = textOf(d)
		}
	}
	local := f.code
	if i := strings.LastIndexByte(local, ':'); i >= 0 {
		local = local[i+1:]
	}
	local, _, _ = strings.Cut(local, ".") // 1.1 allows Client.Authentication
	switch local {
	case "Server", "Receiver":
	default:
		f.sender = true
	}
	return f, true
}

// textOf is the text content of an element and its descendants, spaces
// collapsed.
func textOf(n *node) string {
	var parts []string
	var walk func(*node)
	walk = func(n *node) {
		if t := strings.TrimSpace(n.text.String()); t != "" {
			parts = append(parts, t)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// faultError turns a fault into the tool error a model reads: the fault
// code and string, and whether retrying can help (only for a server's own
// fault).
func faultError(tool, up string, status int, f *fault) *toolerr.ToolError {
	code := f.code
	if f.subcode != "" {
		code += " (" + f.subcode + ")"
	}
	msg := fmt.Sprintf("upstream %s answered %s with SOAP fault %s", up, tool, code)
	if f.reason != "" {
		msg += ": " + strconv.Quote(shorten(f.reason, 300))
	}
	if f.detail != "" {
		msg += " (detail: " + shorten(f.detail, 200) + ")"
	}
	te := &toolerr.ToolError{Code: CodeSOAPFault, UpstreamStatus: int32(status)}
	if f.sender {
		te.Class = toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED
		te.Message = msg + "; the request was refused, retrying the same call will not help"
	} else {
		te.Class = toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_FAILED
		te.Retryable = true
		te.Message = msg + "; the server failed, retrying later may help"
	}
	te.Message = strings.Join(strings.Fields(te.Message), " ")
	return te
}

// mapResponse reads a SOAP answer: a fault becomes a tool error, a body
// becomes {"<element>": <converted>} (see docs/catalog.md).
func (s *soapRoute) mapResponse(r *route, resp *upstream.Response) *toolbusv1.ToolResult {
	tool, up := r.tool.Name, r.tool.Upstream.Name
	status := resp.Status
	if n := soapStatusFrom(resp.Header); n != 0 {
		status = n
	}
	res := &toolbusv1.ToolResult{
		UpstreamStatus:   int32(status),
		Attempts:         int32(resp.Attempts),
		UpstreamDuration: durationpb.New(resp.Elapsed),
		ContentType:      resp.Header.Get("Content-Type"),
	}
	root, err := parseXML(resp.Body)
	var bodyEl *node
	if err == nil {
		var ok bool
		if bodyEl, ok = soapBody(root); !ok {
			err = fmt.Errorf("not a SOAP envelope")
		}
	}
	if err == nil {
		if f, ok := readFault(bodyEl); ok {
			res.Error = faultError(tool, up, status, f)
			return res
		}
	}
	if !statusOK(status) {
		res.Error = toolerr.FromHTTP(tool, up, status, resp.Header, resp.Body)
		return res
	}
	if err != nil {
		res.Error = toolerr.BadResponse(tool, up, status, "an answer that is not a SOAP envelope ("+shorten(err.Error(), 100)+")")
		return res
	}
	if bodyEl.name.Local == "" {
		res.Json = emptyJSON
		return res
	}
	var schema *catalog.XMLElement
	if op := r.tool.SOAP.Operation; op != nil && op.Output != nil && op.Output.Name == bodyEl.name.Local {
		schema = op.Output
	}
	var b bytes.Buffer
	b.WriteByte('{')
	writeJSONString(&b, bodyEl.name.Local)
	b.WriteByte(':')
	writeNode(&b, bodyEl, schema)
	b.WriteByte('}')
	res.Json = b.Bytes()
	return res
}

const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

// writeNode converts an element to JSON: attributes as "@name", child
// elements by local name (a list when repeated, or when the WSDL says
// maxOccurs > 1), text-only elements as strings, typed by the WSDL where
// it is known (numbers, booleans), xsi:nil as null.
func writeNode(b *bytes.Buffer, n *node, schema *catalog.XMLElement) {
	var attrs []xml.Attr
	for _, a := range n.attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		if a.Name.Space == nsXSI {
			if a.Name.Local == "nil" && (a.Value == "true" || a.Value == "1") {
				b.WriteString("null")
				return
			}
			continue
		}
		attrs = append(attrs, a)
	}
	if len(n.children) == 0 && len(attrs) == 0 {
		writeScalar(b, n.text.String(), schema)
		return
	}
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	for _, a := range attrs {
		sep()
		writeJSONString(b, "@"+a.Name.Local)
		b.WriteByte(':')
		writeJSONString(b, a.Value)
	}
	var order []string
	groups := map[string][]*node{}
	for _, c := range n.children {
		if _, seen := groups[c.name.Local]; !seen {
			order = append(order, c.name.Local)
		}
		groups[c.name.Local] = append(groups[c.name.Local], c)
	}
	for _, name := range order {
		sep()
		writeJSONString(b, name)
		b.WriteByte(':')
		var cs *catalog.XMLElement
		if schema != nil {
			for _, c := range schema.Children {
				if c.Name == name {
					cs = c
				}
			}
		}
		list := groups[name]
		if len(list) > 1 || (cs != nil && cs.Repeated) {
			b.WriteByte('[')
			for i, c := range list {
				if i > 0 {
					b.WriteByte(',')
				}
				writeNode(b, c, cs)
			}
			b.WriteByte(']')
			continue
		}
		writeNode(b, list[0], cs)
	}
	if t := strings.TrimSpace(n.text.String()); t != "" && len(n.children) > 0 {
		sep()
		b.WriteString(`"#text":`)
		writeJSONString(b, t)
	} else if len(n.children) == 0 {
		sep()
		b.WriteString(`"#text":`)
		writeJSONString(b, n.text.String())
	}
	b.WriteByte('}')
}

func writeScalar(b *bytes.Buffer, text string, schema *catalog.XMLElement) {
	if schema != nil && schema.Type != "" {
		t := strings.TrimSpace(text)
		switch catalog.JSONKind(schema.Type) {
		case "integer", "number":
			if isJSONNumber(t) {
				b.WriteString(t)
				return
			}
		case "boolean":
			switch t {
			case "true", "1":
				b.WriteString("true")
				return
			case "false", "0":
				b.WriteString("false")
				return
			}
		}
	}
	writeJSONString(b, text)
}

func writeJSONString(b *bytes.Buffer, s string) {
	j, _ := marshalJSON(s)
	b.Write(j)
}

// soapFaults is the SOAP layer of a soap upstream's client, in the auth
// slot: beneath retry and the circuit breaker, which read only the
// status. SOAP 1.1 sends every fault as 500, including faults the request
// caused; such a sender fault is handed up as 400 (what SOAP 1.2's HTTP
// binding uses for env:Sender), so it is neither retried nor counted
// against the upstream's circuit. The real status travels in the
// Toolbus-Soap-Status header for the result. A Server/Receiver fault stays
// a 5xx: retried when the request is safe to repeat, like any 5xx.
func soapFaults(auth upstream.Middleware) upstream.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		if auth != nil {
			next = auth(next)
		}
		return soapFaultTransport{next: next}
	}
}

const headerSOAPStatus = "Toolbus-Soap-Status"

type soapFaultTransport struct{ next http.RoundTripper }

func (t soapFaultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 500 {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		// The size limit or the connection: the layers above handle it.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
		return resp, nil
	}
	root, perr := parseXML(body)
	if perr != nil {
		return resp, nil
	}
	el, ok := soapBody(root)
	if !ok {
		return resp, nil
	}
	if f, ok := readFault(el); ok && f.sender {
		resp.Header = resp.Header.Clone()
		resp.Header.Set(headerSOAPStatus, strconv.Itoa(resp.StatusCode))
		resp.StatusCode, resp.Status = http.StatusBadRequest, "400 Bad Request"
	}
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func soapStatusFrom(h http.Header) int {
	n, _ := strconv.Atoi(h.Get(headerSOAPStatus))
	return n
}
