package catalog

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
)

// XML namespaces of WSDL 1.1 and XML Schema.
const (
	nsXSD       = "http://www.w3.org/2001/XMLSchema"
	nsWSDLSOAP  = "http://schemas.xmlsoap.org/wsdl/soap/"
	nsWSDLSOAP2 = "http://schemas.xmlsoap.org/wsdl/soap12/"
)

// maxXMLDepth bounds how deep a WSDL's types are expanded (recursive
// types are cut there).
const maxXMLDepth = 12

// XMLElement is one element of a SOAP message, from a WSDL's XML Schema:
// enough to build a request body from arguments and to type a response.
type XMLElement struct {
	// Name is the local name.
	Name string
	// Namespace is the element's namespace; empty for an unqualified
	// element.
	Namespace string
	// Type is the XML Schema built-in type of simple content ("string",
	// "int", "boolean", ...); empty for complex content.
	Type string
	// Children of complex content, in sequence order.
	Children []*XMLElement
	// Optional is minOccurs="0"; Repeated is maxOccurs > 1.
	Optional bool
	Repeated bool
	// Enum lists the allowed values of a restricted simple type.
	Enum []string
}

// SOAPOperation is a WSDL operation bound to SOAP.
type SOAPOperation struct {
	Name   string
	Action string
	Input  *XMLElement
	Output *XMLElement
}

// WSDL is what Toolbus uses of a WSDL 1.1 document: the operations of the
// chosen SOAP port, the SOAP version of its binding and its address.
type WSDL struct {
	File       string
	Port       string
	Version    SOAPVersion
	Address    string
	Operations map[string]*SOAPOperation
}

// wsdl 1.1 documents, as encoding/xml reads them (namespaces by URI).
type wsdlDefs struct {
	TargetNamespace string        `xml:"targetNamespace,attr"`
	Attrs           []xml.Attr    `xml:",any,attr"`
	Schemas         []xsdSchema   `xml:"types>schema"`
	Messages        []wsdlMessage `xml:"message"`
	Bindings        []wsdlBinding `xml:"binding"`
	Services        []wsdlService `xml:"service"`
}

type wsdlMessage struct {
	Name  string `xml:"name,attr"`
	Parts []struct {
		Name    string `xml:"name,attr"`
		Element string `xml:"element,attr"`
	} `xml:"part"`
}

type wsdlBinding struct {
	Name   string    `xml:"name,attr"`
	Type   string    `xml:"type,attr"`
	SOAP11 *struct{} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ binding"`
	SOAP12 *struct{} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ binding"`
	Ops    []struct {
		Name   string `xml:"name,attr"`
		SOAP11 *struct {
			Action string `xml:"soapAction,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ operation"`
		SOAP12 *struct {
			Action string `xml:"soapAction,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ operation"`
	} `xml:"operation"`
}

type wsdlService struct {
	Name  string `xml:"name,attr"`
	Ports []struct {
		Name    string `xml:"name,attr"`
		Binding string `xml:"binding,attr"`
		Addr11  *struct {
			Location string `xml:"location,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/soap/ address"`
		Addr12 *struct {
			Location string `xml:"location,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ address"`
	} `xml:"port"`
}

// portType operations name their input and output messages.
type wsdlPortTypes struct {
	PortTypes []struct {
		Name string `xml:"name,attr"`
		Ops  []struct {
			Name  string `xml:"name,attr"`
			Input struct {
				Message string `xml:"message,attr"`
			} `xml:"input"`
			Output struct {
				Message string `xml:"message,attr"`
			} `xml:"output"`
		} `xml:"operation"`
	} `xml:"portType"`
}

type xsdSchema struct {
	TargetNamespace    string       `xml:"targetNamespace,attr"`
	ElementFormDefault string       `xml:"elementFormDefault,attr"`
	Elements           []xsdElement `xml:"element"`
	ComplexTypes       []xsdComplex `xml:"complexType"`
	SimpleTypes        []xsdSimple  `xml:"simpleType"`
}

type xsdElement struct {
	Name      string      `xml:"name,attr"`
	Type      string      `xml:"type,attr"`
	Ref       string      `xml:"ref,attr"`
	MinOccurs string      `xml:"minOccurs,attr"`
	MaxOccurs string      `xml:"maxOccurs,attr"`
	Complex   *xsdComplex `xml:"complexType"`
	Simple    *xsdSimple  `xml:"simpleType"`
}

type xsdComplex struct {
	Name     string       `xml:"name,attr"`
	Sequence []xsdElement `xml:"sequence>element"`
	All      []xsdElement `xml:"all>element"`
	Choice   []xsdElement `xml:"choice>element"`
}

type xsdSimple struct {
	Name        string `xml:"name,attr"`
	Restriction struct {
		Base  string `xml:"base,attr"`
		Enums []struct {
			Value string `xml:"value,attr"`
		} `xml:"enumeration"`
	} `xml:"restriction"`
}

// types indexes a WSDL's schemas by local name. Names are assumed unique
// across the document's schemas, which holds for the WSDLs services
// generate.
type xsdTypes struct {
	elements  map[string]*xsdElement
	complex   map[string]*xsdComplex
	simple    map[string]*xsdSimple
	ns        map[string]string // element and type name → target namespace
	qualified map[string]bool   // target namespace → elementFormDefault="qualified"
}

func local(qname string) string {
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		return qname[i+1:]
	}
	return qname
}

// parseWSDL reads a WSDL 1.1 document and the SOAP operations of one port:
// the named one, or the first port whose binding has the wanted version
// (any version when want is empty).
func parseWSDL(data []byte, port string, want SOAPVersion) (*WSDL, error) {
	var defs wsdlDefs
	if err := xml.Unmarshal(data, &defs); err != nil {
		return nil, fmt.Errorf("not a WSDL document: %v", err)
	}
	var pts wsdlPortTypes
	_ = xml.Unmarshal(data, &pts)
	xsdPrefixes := map[string]bool{}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "xmlns" && a.Value == nsXSD {
					xsdPrefixes[a.Name.Local] = true
				}
			}
		}
	}
	ty := &xsdTypes{elements: map[string]*xsdElement{}, complex: map[string]*xsdComplex{}, simple: map[string]*xsdSimple{},
		ns: map[string]string{}, qualified: map[string]bool{}}
	for i := range defs.Schemas {
		s := &defs.Schemas[i]
		ty.qualified[s.TargetNamespace] = s.ElementFormDefault == "qualified"
		for j := range s.Elements {
			e := &s.Elements[j]
			ty.elements[e.Name] = e
			ty.ns["e:"+e.Name] = s.TargetNamespace
		}
		for j := range s.ComplexTypes {
			c := &s.ComplexTypes[j]
			ty.complex[c.Name] = c
			ty.ns["t:"+c.Name] = s.TargetNamespace
		}
		for j := range s.SimpleTypes {
			st := &s.SimpleTypes[j]
			ty.simple[st.Name] = st
		}
	}

	// Choose the port.
	var bindingName, address string
	var version SOAPVersion
	for _, svc := range defs.Services {
		for _, p := range svc.Ports {
			v, loc := SOAPVersion(""), ""
			switch {
			case p.Addr11 != nil:
				v, loc = SOAP11, p.Addr11.Location
			case p.Addr12 != nil:
				v, loc = SOAP12, p.Addr12.Location
			default:
				continue
			}
			if (port != "" && p.Name == port) || (port == "" && bindingName == "" && (want == "" || want == v)) {
				bindingName, address, version = local(p.Binding), loc, v
				if port == "" {
					port = p.Name
				}
			}
		}
	}
	if bindingName == "" {
		if port != "" {
			return nil, fmt.Errorf("the WSDL has no SOAP port %q", port)
		}
		return nil, fmt.Errorf("the WSDL has no SOAP %s port", want)
	}
	w := &WSDL{Port: port, Version: version, Address: address, Operations: map[string]*SOAPOperation{}}
	msgs := map[string]string{}
	for _, m := range defs.Messages {
		if len(m.Parts) == 1 && m.Parts[0].Element != "" {
			msgs[m.Name] = local(m.Parts[0].Element)
		}
	}
	for _, b := range defs.Bindings {
		if b.Name != bindingName {
			continue
		}
		ptName := local(b.Type)
		for _, op := range b.Ops {
			so := &SOAPOperation{Name: op.Name}
			switch {
			case op.SOAP11 != nil:
				so.Action = op.SOAP11.Action
			case op.SOAP12 != nil:
				so.Action = op.SOAP12.Action
			}
			for _, pt := range pts.PortTypes {
				if pt.Name != ptName {
					continue
				}
				for _, pop := range pt.Ops {
					if pop.Name != op.Name {
						continue
					}
					if in := msgs[local(pop.Input.Message)]; in != "" {
						so.Input = ty.element(ty.elements[in], ty.ns["e:"+in], true, xsdPrefixes, 0)
					}
					if out := msgs[local(pop.Output.Message)]; out != "" {
						so.Output = ty.element(ty.elements[out], ty.ns["e:"+out], true, xsdPrefixes, 0)
					}
				}
			}
			if so.Input != nil {
				w.Operations[op.Name] = so
			}
		}
	}
	return w, nil
}

// element expands a schema element. ns is the schema's target namespace;
// top-level elements are always qualified, local ones when the schema says
// elementFormDefault="qualified".
func (ty *xsdTypes) element(e *xsdElement, ns string, top bool, xsdPrefixes map[string]bool, depth int) *XMLElement {
	if e == nil {
		return nil
	}
	if e.Ref != "" {
		ref := ty.elements[local(e.Ref)]
		if ref == nil {
			return nil
		}
		out := ty.element(ref, ty.ns["e:"+local(e.Ref)], true, xsdPrefixes, depth)
		if out != nil {
			out.Optional, out.Repeated = e.MinOccurs == "0", e.MaxOccurs != "" && e.MaxOccurs != "1" && e.MaxOccurs != "0"
		}
		return out
	}
	x := &XMLElement{Name: e.Name, Optional: e.MinOccurs == "0", Repeated: e.MaxOccurs != "" && e.MaxOccurs != "1" && e.MaxOccurs != "0"}
	if top || ty.qualified[ns] {
		x.Namespace = ns
	}
	if depth > maxXMLDepth {
		x.Type = "string"
		return x
	}
	var c *xsdComplex
	switch {
	case e.Complex != nil:
		c = e.Complex
	case e.Simple != nil:
		x.Type, x.Enum = ty.simpleBase(e.Simple, xsdPrefixes)
		return x
	case e.Type == "":
		x.Type = "string"
		return x
	default:
		prefix, name, _ := strings.Cut(e.Type, ":")
		if name == "" {
			prefix, name = "", e.Type
		}
		if xsdPrefixes[prefix] {
			x.Type = name
			return x
		}
		if st := ty.simple[name]; st != nil {
			x.Type, x.Enum = ty.simpleBase(st, xsdPrefixes)
			return x
		}
		c = ty.complex[name]
		if c == nil {
			x.Type = "string"
			return x
		}
		if tns, ok := ty.ns["t:"+name]; ok {
			ns = tns
		}
	}
	for k, list := range [][]xsdElement{c.Sequence, c.All, c.Choice} {
		for i := range list {
			if ch := ty.element(&list[i], ns, false, xsdPrefixes, depth+1); ch != nil {
				ch.Optional = ch.Optional || k == 2 // one of a choice
				x.Children = append(x.Children, ch)
			}
		}
	}
	return x
}

func (ty *xsdTypes) simpleBase(st *xsdSimple, xsdPrefixes map[string]bool) (string, []string) {
	var enum []string
	for _, e := range st.Restriction.Enums {
		enum = append(enum, e.Value)
	}
	prefix, name, ok := strings.Cut(st.Restriction.Base, ":")
	if !ok {
		name = prefix
	}
	if base := ty.simple[name]; base != nil && !xsdPrefixes[prefix] {
		t, _ := ty.simpleBase(base, xsdPrefixes)
		return t, enum
	}
	if name == "" {
		name = "string"
	}
	return name, enum
}

// JSONKind is the JSON type an XML Schema built-in type maps to:
// "integer", "number", "boolean" or "string".
func JSONKind(xsdType string) string {
	switch xsdType {
	case "int", "integer", "long", "short", "byte", "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte",
		"positiveInteger", "negativeInteger", "nonNegativeInteger", "nonPositiveInteger":
		return "integer"
	case "decimal", "double", "float":
		return "number"
	case "boolean":
		return "boolean"
	}
	return "string"
}

// inputSchemaOf derives a tool's input schema from an operation's input
// element: one property per child element, in order.
func inputSchemaOf(e *XMLElement) json.RawMessage {
	var b bytes.Buffer
	writeObjectSchema(&b, e, 0)
	return b.Bytes()
}

func writeObjectSchema(b *bytes.Buffer, e *XMLElement, depth int) {
	b.WriteString(`{"type":"object","properties":{`)
	var required []string
	for i, c := range e.Children {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.Name)
		b.Write(k)
		b.WriteByte(':')
		if c.Repeated {
			b.WriteString(`{"type":"array","items":`)
		}
		writeElementSchema(b, c, depth+1)
		if c.Repeated {
			b.WriteByte('}')
		}
		if !c.Optional {
			required = append(required, c.Name)
		}
	}
	b.WriteString(`},"additionalProperties":false`)
	if len(required) > 0 {
		r, _ := json.Marshal(required)
		b.WriteString(`,"required":`)
		b.Write(r)
	}
	b.WriteByte('}')
}

func writeElementSchema(b *bytes.Buffer, e *XMLElement, depth int) {
	if e.Type == "" && len(e.Children) > 0 {
		writeObjectSchema(b, e, depth)
		return
	}
	kind := JSONKind(e.Type)
	if e.Type == "" {
		kind = "string"
	}
	fmt.Fprintf(b, `{"type":%q`, kind)
	if len(e.Enum) > 0 {
		en, _ := json.Marshal(e.Enum)
		b.WriteString(`,"enum":`)
		b.Write(en)
	}
	switch e.Type {
	case "dateTime":
		b.WriteString(`,"format":"date-time"`)
	case "date":
		b.WriteString(`,"format":"date"`)
	}
	b.WriteByte('}')
}
