package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// petstore is a small OpenAPI 3.0 document with the cases the import must
// handle: path-level parameters, a recursive schema, a form body, nullable,
// an array response, a header and a cookie parameter.
const petstore = `{
  "openapi": "3.0.3",
  "info": {"title": "Pets", "version": "1"},
  "servers": [{"url": "https://{region}.pets.example/v1", "variables": {"region": {"default": "eu"}}}, {"url": "/relative"}],
  "components": {
    "securitySchemes": {
      "bearer": {"type": "http", "scheme": "bearer"},
      "key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
      "cc": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "https://auth.example/token", "scopes": {"pets:read": "", "pets:write": ""}}}}
    },
    "parameters": {
      "PetID": {"name": "pet-id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^p_"}, "description": "The pet."}
    },
    "schemas": {
      "Node": {"type": "object", "description": "A tree.", "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
      "Pet": {"type": "object", "required": ["id", "name"], "properties": {
        "id": {"type": "string", "readOnly": true},
        "name": {"type": "string", "minLength": 1, "example": "Rex"},
        "tag": {"type": "string", "nullable": true, "enum": ["a", "b"]},
        "age": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "default": 1},
        "born": {"type": "string", "format": "date-time"},
        "secret": {"type": "string", "writeOnly": true},
        "look": {"type": "string", "pattern": "(?=lookahead)"}}}
    }
  },
  "security": [{"bearer": []}, {"key": []}],
  "paths": {
    "/pets": {
      "get": {"operationId": "listPets", "tags": ["pets"], "summary": "List pets",
        "parameters": [
          {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
          {"name": "filter", "in": "query", "style": "deepObject", "schema": {"type": "object", "properties": {"tag": {"type": "string"}}}},
          {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
          {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
          {"name": "session", "in": "cookie", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}}}},
      "post": {"operationId": "createPet", "tags": ["pets"], "description": "<p>Creates a <b>pet</b>.</p>",
        "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Pet"}}}},
        "responses": {"201": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}}}
    },
    "/pets/{pet-id}": {
      "parameters": [{"$ref": "#/components/parameters/PetID"}],
      "get": {"operationId": "getPet", "tags": ["pets"],
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"properties": {"pet": {"$ref": "#/components/schemas/Pet"}}}}}}}},
      "delete": {"tags": ["admin"], "responses": {"204": {"description": "gone"}}}
    },
    "/trees": {
      "put": {"operationId": "putTree", "tags": ["trees"],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"root": {"$ref": "#/components/schemas/Node"}}}}}},
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "string"}]}}}}}},
      "options": {"operationId": "treeOptions", "responses": {"200": {"description": "ok"}}}
    },
    "/files": {
      "post": {"operationId": "upload", "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "ok"}}}
    }
  }
}`

func mustImport(t *testing.T, doc string, opts Options) *Result {
	t.Helper()
	res, err := Import([]byte(doc), opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

func toolByOp(t *testing.T, res *Result, key string) *Tool {
	t.Helper()
	for _, tl := range res.Tools {
		if tl.OperationID == key {
			return tl
		}
	}
	t.Fatalf("no tool for operation %s", key)
	return nil
}

// compile compiles a generated schema the way the catalog does.
func compile(t testing.TB, raw []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, raw)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("mem:///s.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem:///s.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v\n%.2000s", err, raw)
	}
	return s
}

func decodeJSON(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return m
}

func TestImportPetstore(t *testing.T) {
	res := mustImport(t, petstore, Options{})
	if diff := cmp.Diff([]string{"https://eu.pets.example/v1"}, res.Servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bearer", "key"}, res.Security); diff != "" {
		t.Errorf("security (-want +got):\n%s", diff)
	}
	wantSchemes := []SecurityScheme{
		{Name: "bearer", Type: "http", Scheme: "bearer"},
		{Name: "cc", Type: "oauth2", TokenURL: "https://auth.example/token", Scopes: []string{"pets:read", "pets:write"}},
		{Name: "key", Type: "apiKey", In: "header", ParamName: "X-Api-Key"},
	}
	if diff := cmp.Diff(wantSchemes, res.SecuritySchemes); diff != "" {
		t.Errorf("security schemes (-want +got):\n%s", diff)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
		compile(t, tl.InputSchema)
		if tl.OutputSchema != nil {
			compile(t, tl.OutputSchema)
		}
	}
	if diff := cmp.Diff([]string{"listPets", "createPet", "getPet", "delete_pets_pet-id", "putTree"}, names); diff != "" {
		t.Errorf("tool names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"upload: request body of type multipart/form-data is not supported (JSON and form bodies are)",
		"treeOptions: method OPTIONS is not supported for tools; left out",
	}, res.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}

func TestImportParameters(t *testing.T) {
	res := mustImport(t, petstore, Options{})
	list := toolByOp(t, res, "listPets")
	wantParams := []Param{
		{Name: "limit", In: InQuery, WireName: "limit"},
		{Name: "filter", In: InQuery, WireName: "filter", Deep: true},
		{Name: "X-Trace", In: InHeader, WireName: "X-Trace"},
		{Name: "session", In: InCookie, WireName: "session"},
	}
	if diff := cmp.Diff(wantParams, list.Params); diff != "" {
		t.Errorf("listPets params (-want +got):\n%s", diff)
	}
	// Notes cover the output schema too (Pet's look-ahead pattern).
	if diff := cmp.Diff([]string{"header parameter Authorization is left out: the upstream client sets it",
		`a pattern that RE2 cannot compile was dropped: "(?=lookahead)"`}, list.Notes); diff != "" {
		t.Errorf("listPets notes (-want +got):\n%s", diff)
	}

	get := toolByOp(t, res, "getPet")
	if get.Path != "/pets/{pet_id}" {
		t.Errorf("path = %q, want the placeholder renamed to /pets/{pet_id}", get.Path)
	}
	want := `{"type":"object","properties":{"pet_id":{"type":"string","description":"The pet.","pattern":"^p_"}},"required":["pet_id"]}`
	if string(get.InputSchema) != want {
		t.Errorf("getPet input schema\n got %s\nwant %s", get.InputSchema, want)
	}

	create := toolByOp(t, res, "createPet")
	if create.BodyEncoding != BodyForm {
		t.Errorf("body encoding = %q, want form", create.BodyEncoding)
	}
	if create.Description != "Creates a pet." {
		t.Errorf("description = %q, want the HTML removed", create.Description)
	}
	in := decodeJSON(t, create.InputSchema)
	props := in["properties"].(map[string]any)
	if _, ok := props["id"]; ok {
		t.Error("readOnly property id is an input")
	}
	if _, ok := props["secret"]; !ok {
		t.Error("writeOnly property secret is missing from the input")
	}
	if diff := cmp.Diff([]any{"name"}, in["required"]); diff != "" {
		t.Errorf("required (-want +got):\n%s", diff)
	}
	wantProps := map[string]any{
		"tag":  map[string]any{"type": []any{"string", "null"}, "enum": []any{"a", "b", nil}},
		"age":  map[string]any{"type": "integer", "default": 1.0, "minimum": 0.0, "exclusiveMinimum": 0.0},
		"name": map[string]any{"type": "string", "minLength": 1.0, "examples": []any{"Rex"}},
		"born": map[string]any{"type": "string", "format": "date-time"},
		// The look-ahead pattern is dropped with a note.
		"look":   map[string]any{"type": "string"},
		"secret": map[string]any{"type": "string", "writeOnly": true},
	}
	if diff := cmp.Diff(wantProps, props); diff != "" {
		t.Errorf("createPet properties (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(create.Notes, "\n"), "RE2 cannot compile") {
		t.Errorf("notes %q do not mention the dropped pattern", create.Notes)
	}
	out := decodeJSON(t, create.OutputSchema)
	if _, ok := out["properties"].(map[string]any)["secret"]; ok {
		t.Error("writeOnly property secret is in the output schema")
	}
}

func TestImportOutputSchemas(t *testing.T) {
	res := mustImport(t, petstore, Options{})
	tests := []struct {
		give     string
		wantType string
		wantKeys []string
	}{
		// An array answer is wrapped, as mcp-front wraps the result.
		{give: "listPets", wantType: "object", wantKeys: []string{"properties", "required", "type"}},
		// An object without type gets type: object.
		{give: "getPet", wantType: "object", wantKeys: []string{"properties", "type"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			out := decodeJSON(t, toolByOp(t, res, tt.give).OutputSchema)
			if out["type"] != tt.wantType {
				t.Errorf("type = %v, want %s", out["type"], tt.wantType)
			}
			if diff := cmp.Diff(tt.wantKeys, sortedKeys(out)); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
	list := decodeJSON(t, toolByOp(t, res, "listPets").OutputSchema)
	if r := list["properties"].(map[string]any)["result"].(map[string]any); r["type"] != "array" {
		t.Errorf("wrapped result = %v, want the array schema", r)
	}
	// Object or string: no output schema rather than a wrong one.
	put := toolByOp(t, res, "putTree")
	if put.OutputSchema != nil {
		t.Errorf("putTree output schema = %s, want none", put.OutputSchema)
	}
	if !strings.Contains(strings.Join(put.Notes, "\n"), "no output schema") {
		t.Errorf("notes %q do not say why there is no output schema", put.Notes)
	}
}

func TestImportCutsRecursiveSchemas(t *testing.T) {
	res := mustImport(t, petstore, Options{})
	put := toolByOp(t, res, "putTree")
	s := compile(t, put.InputSchema)
	if diff := cmp.Diff([]string{"recursive schema Node cut at its second appearance", "the success response may or may not be an object; no output schema"}, put.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	in := decodeJSON(t, put.InputSchema)
	root := in["properties"].(map[string]any)["root"].(map[string]any)
	child := root["properties"].(map[string]any)["children"].(map[string]any)["items"].(map[string]any)
	want := map[string]any{"type": "object", "description": "Node (recursive: not expanded again)"}
	if diff := cmp.Diff(want, child); diff != "" {
		t.Errorf("cut schema (-want +got):\n%s", diff)
	}
	// The cut keeps deeper trees valid.
	deep := map[string]any{"root": map[string]any{"name": "a", "children": []any{map[string]any{"name": "b", "children": []any{map[string]any{"x": 1.0}}}}}}
	if err := s.Validate(deep); err != nil {
		t.Errorf("a deep tree is refused: %v", err)
	}
}

func TestImportRefDepthCut(t *testing.T) {
	const doc = `{"openapi": "3.0.0", "info": {"title": "d", "version": "1"},
	  "components": {"schemas": {
	    "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
	    "B": {"type": "object", "properties": {"c": {"$ref": "#/components/schemas/C"}}},
	    "C": {"type": "string", "nullable": true}}},
	  "paths": {"/a": {"post": {"operationId": "a",
	    "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}}}}},
	    "responses": {"200": {"description": "ok"}}}}}}`
	res := mustImport(t, doc, Options{MaxRefDepth: 2})
	tl := res.Tools[0]
	want := `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","properties":{"c":{"type":["string","null"],"description":"C (not expanded: nested more than 2 references deep)"}}}}}}}`
	if string(tl.InputSchema) != want {
		t.Errorf("input schema\n got %s\nwant %s", tl.InputSchema, want)
	}
	if diff := cmp.Diff([]string{"schemas nested more than 2 references deep are not expanded"}, tl.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}

func TestSelection(t *testing.T) {
	tests := []struct {
		name string
		give Selection
		want []string
	}{
		{name: "all", give: Selection{}, want: []string{"listPets", "createPet", "getPet", "DELETE /pets/{pet-id}", "putTree"}},
		{name: "operation ids", give: Selection{OperationIDs: []string{"getPet", "DELETE /pets/{pet-id}"}}, want: []string{"getPet", "DELETE /pets/{pet-id}"}},
		{name: "tags", give: Selection{Tags: []string{"admin", "trees"}}, want: []string{"DELETE /pets/{pet-id}", "putTree"}},
		{name: "path glob crosses slashes", give: Selection{Paths: []string{"/pets*"}}, want: []string{"listPets", "createPet", "getPet", "DELETE /pets/{pet-id}"}},
		{name: "path glob exact", give: Selection{Paths: []string{"/pets"}}, want: []string{"listPets", "createPet"}},
		{name: "methods any case", give: Selection{Methods: []string{"get"}}, want: []string{"listPets", "getPet"}},
		{name: "filters combine", give: Selection{Tags: []string{"pets"}, Methods: []string{"GET"}, Paths: []string{"/pets/*"}}, want: []string{"getPet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustImport(t, petstore, Options{Select: tt.give})
			var got []string
			for _, tl := range res.Tools {
				got = append(got, tl.OperationID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionProblems(t *testing.T) {
	tests := []struct {
		name string
		give Options
		want []Problem
	}{
		{
			name: "selection entries that match nothing",
			give: Options{Select: Selection{OperationIDs: []string{"nope"}, Tags: []string{"ghost"}, Paths: []string{"/x*"}, Methods: []string{"patch"}}},
			want: []Problem{
				{Field: "select.operation_ids", Value: "nope", Message: `operationId "nope" matches no operation of the document`},
				{Field: "select.tags", Value: "ghost", Message: `tag "ghost" matches no operation of the document`},
				{Field: "select.paths", Value: "/x*", Message: `path pattern "/x*" matches no operation of the document`},
				{Field: "select.methods", Value: "patch", Message: `method "patch" matches no operation of the document`},
			},
		},
		{
			name: "overrides",
			give: Options{Select: Selection{Tags: []string{"pets"}}, Overrides: map[string]Override{
				"missing":   {Name: "x"},
				"putTree":   {Name: "y"},
				"getPet":    {Name: "bad name!", Hidden: map[string]any{"nope": 1}},
				"listPets":  {Name: "same"},
				"createPet": {Name: "same"},
			}},
			want: []Problem{
				{Override: "getPet", Field: "name", Message: `tool name "bad name!" must be 1 to 64 characters from a-z A-Z 0-9 _ -`},
				{Override: "listPets", Field: "name", Message: `tool name "same" is already used`},
				{Override: "missing", Message: `the document has no operation "missing"`},
				{Override: "putTree", Message: `operation "putTree" is not selected`},
				{Override: "getPet", Field: "hidden.nope", Message: `operation getPet has no parameter "nope" (it has: pet_id)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Import([]byte(petstore), tt.give)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if diff := cmp.Diff(tt.want, ie.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	ro, destructive := true, false
	res := mustImport(t, petstore, Options{
		Select: Selection{OperationIDs: []string{"listPets", "createPet"}},
		Overrides: map[string]Override{
			"listPets":  {Name: "pets", Title: "Pets", Description: "All pets.", ReadOnly: &ro, Hidden: map[string]any{"limit": 50.0}},
			"createPet": {Destructive: &destructive, Hidden: map[string]any{"tag": "a"}},
		},
	})
	list := toolByOp(t, res, "listPets")
	if list.Name != "pets" || list.Title != "Pets" || list.Description != "All pets." || list.ReadOnly == nil || !*list.ReadOnly {
		t.Errorf("override not applied: %+v", list)
	}
	if diff := cmp.Diff(map[string]any{"limit": 50.0}, list.Fixed); diff != "" {
		t.Errorf("fixed (-want +got):\n%s", diff)
	}
	if strings.Contains(string(list.InputSchema), `"limit"`) {
		t.Errorf("hidden limit is still in the input schema: %s", list.InputSchema)
	}
	if list.Params[0] != (Param{Name: "limit", In: InQuery, WireName: "limit"}) {
		t.Errorf("hidden parameter lost its place: %+v", list.Params)
	}
	create := toolByOp(t, res, "createPet")
	if create.Name != "createPet" || create.Destructive == nil || *create.Destructive || create.Fixed["tag"] != "a" {
		t.Errorf("override not applied: %+v", create)
	}
}

func TestNamesAvoidReservedAndPrefix(t *testing.T) {
	res := mustImport(t, petstore, Options{NamePrefix: "pets_", Select: Selection{Tags: []string{"pets"}},
		Reserved: func(n string) bool { return n == "pets_listPets" }})
	var got []string
	for _, tl := range res.Tools {
		got = append(got, tl.Name)
	}
	if diff := cmp.Diff([]string{"pets_listPets_2", "pets_createPet", "pets_getPet"}, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("abcdefghij", 8)
	tests := []struct {
		give, want string
	}{
		{give: "GetCustomersCustomer", want: "GetCustomersCustomer"},
		{give: "repos/get-content", want: "repos_get-content"},
		{give: "  weird..name!!", want: "weird_name"},
		{give: "über/straße", want: "ber_stra_e"},
		{give: "///", want: "operation"},
	}
	for _, tt := range tests {
		got := SanitizeName(tt.give)
		if len(got) > MaxNameLen || !ValidName(got) {
			t.Errorf("SanitizeName(%q) = %q is not a valid name", tt.give, got)
		}
		if got != tt.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	// Long names that share their first 55 characters stay distinct.
	if a, b := SanitizeName(long), SanitizeName(long+"x"); a == b || len(a) != 64 || !strings.HasPrefix(a, long[:55]+"_") {
		t.Errorf("long names: %q and %q", a, b)
	}
	if got := operationName("GET", "/repos/{owner}/{repo}"); got != "get_repos_owner_repo" {
		t.Errorf("operationName = %q", got)
	}
}

func TestNamerUnique(t *testing.T) {
	n := newNamer()
	long := strings.Repeat("x", 64)
	var got []string
	for _, give := range []string{"a", "a", "A", "a_2", "a", long, long} {
		got = append(got, n.unique(give, nil))
	}
	want := []string{"a", "a_2", "A_3", "a_2_2", "a_4", long, long[:62] + "_2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestSwagger2IsConverted(t *testing.T) {
	const doc = `
swagger: "2.0"
info: {title: Legacy, version: "1"}
host: legacy.example
basePath: /api
schemes: [https]
paths:
  /orders/{id}:
    post:
      operationId: updateOrder
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - {name: id, in: path, required: true, type: integer}
        - {name: note, in: formData, type: string, required: true}
        - {name: qty, in: formData, type: integer, minimum: 1}
      responses:
        "200": {description: ok, schema: {$ref: "#/definitions/Order"}}
definitions:
  Order: {type: object, properties: {id: {type: integer}, lines: {type: array, items: {$ref: "#/definitions/Order"}}}}
`
	res := mustImport(t, doc, Options{})
	if res.Version != "2.0 (converted to 3.0)" {
		t.Errorf("version = %q", res.Version)
	}
	if diff := cmp.Diff([]string{"https://legacy.example/api"}, res.Servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	tl := res.Tools[0]
	if tl.BodyEncoding != BodyForm || tl.Path != "/orders/{id}" {
		t.Errorf("tool = %+v, want a form body on /orders/{id}", tl)
	}
	in := decodeJSON(t, tl.InputSchema)
	if diff := cmp.Diff([]any{"id", "note"}, in["required"]); diff != "" {
		t.Errorf("required (-want +got):\n%s", diff)
	}
	compile(t, tl.InputSchema)
	compile(t, tl.OutputSchema)
}

func TestUnsupportedDocuments(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{give: `{"swagger": "1.2"}`, want: "swagger 1.2 is not supported: want OpenAPI 3.0, 3.1 or Swagger 2.0"},
		{give: `{"openapi": "4.0.0"}`, want: "openapi 4.0.0 is not supported: want 3.0, 3.1 or Swagger 2.0"},
		{give: `{"info": {}}`, want: "not an OpenAPI document: no openapi (3.x) or swagger (2.0) field"},
		{give: `[1]`, want: "not an OpenAPI document: the top level must be an object"},
		{give: `{"openapi": `, want: "invalid JSON: unexpected EOF"},
	}
	for _, tt := range tests {
		_, err := Import([]byte(tt.give), Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Import(%s) = %v, want %q", tt.give, err, tt.want)
		}
	}
}

func TestOpenAPI31(t *testing.T) {
	const doc = `{"openapi": "3.1.0", "info": {"title": "n", "version": "1"},
	  "paths": {"/n": {"post": {"operationId": "n",
	    "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["v"], "properties": {
	      "v": {"type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [3]},
	      "c": {"const": "x"}, "any": true}}}}},
	    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "string"}}}}}}}}}`
	res := mustImport(t, doc, Options{})
	tl := res.Tools[0]
	want := `{"type":"object","properties":{"any":true,"c":{"const":"x"},"v":{"type":["integer","null"],"exclusiveMinimum":0,"examples":[3]}},"required":["v"]}`
	if string(tl.InputSchema) != want {
		t.Errorf("input schema\n got %s\nwant %s", tl.InputSchema, want)
	}
	if got := string(tl.OutputSchema); got != `{"type":"object","properties":{"result":{"type":"string"}},"required":["result"]}` {
		t.Errorf("output schema = %s", got)
	}
}
