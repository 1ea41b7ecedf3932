package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const petsSpec = `openapi: 3.0.3
info: {title: Pet Store, version: "1"}
servers: [{url: "https://pets.example/v1"}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-Api-Key}
security: [{key: []}]
paths:
  /pets:
    get:
      operationId: listPets
      parameters: [{name: limit, in: query, schema: {type: integer}}]
      responses: {"200": {description: ok, content: {application/json: {schema: {type: array, items: {type: object}}}}}}
    post:
      operationId: createPet
      requestBody:
        required: true
        content: {application/x-www-form-urlencoded: {schema: {type: object, required: [name], properties: {name: {type: string}, tags: {type: object}}}}}
      responses: {"201": {description: ok}}
  /pets/{id}:
    delete:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: gone}}
`

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestImportOpenAPISkeletonLoads writes a skeleton, loads it back and lists
// its tools, as a team would: import-openapi > catalog.yaml, then tools.
func TestImportOpenAPISkeletonLoads(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("pets.yaml", []byte(petsSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	skeleton, stderr, err := runCLI(t, "catalog", "import-openapi", "pets.yaml", "--methods", "GET,POST,DELETE", "--upstream", "pets")
	if err != nil {
		t.Fatalf("import-openapi: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		`base_url: "https://pets.example/v1"`,
		`# auth: {type: api_key, in: header, name: "X-Api-Key", value: "${env:PETS_API_KEY}"} # key`,
		`file: "pets.yaml"`,
		`methods: ["GET", "POST", "DELETE"]`,
		"\"DELETE /pets/{id}\": # DELETE /pets/{id}\n          name: \"delete_pets_id\"",
	} {
		if !strings.Contains(skeleton, want) {
			t.Errorf("skeleton lacks %q:\n%s", want, skeleton)
		}
	}
	if err := os.WriteFile("catalog.yaml", []byte(skeleton), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, "catalog", "tools", "catalog.yaml", "--json")
	if err != nil {
		t.Fatalf("tools: %v\n%s", err, stderr)
	}
	var tools []listedTool
	if err := json.Unmarshal([]byte(out), &tools); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tl := range tools {
		got = append(got, tl.Name+" "+tl.Method+" "+tl.Path+" "+tl.BodyEncoding)
	}
	want := []string{"listPets GET /pets ", "createPet POST /pets form", "delete_pets_id DELETE /pets/{id} "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if string(tools[0].OutputSchema) == "" || !strings.Contains(string(tools[0].OutputSchema), `"result"`) {
		t.Errorf("listPets output schema = %s, want the array wrapped in result", tools[0].OutputSchema)
	}

	table, _, err := runCLI(t, "catalog", "tools", "catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"createPet       pets      POST    /pets       destructive", "name* tags", "3 tools", "upstream pets: 3 of 3 operations of pets.yaml (Pet Store, openapi 3.0.3)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestCatalogCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nupstreams:\n  pets:\n    openapi: {file: nope.yaml}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give       []string
		wantErr    string
		wantStderr string
	}{
		{give: []string{"catalog", "tools", bad}, wantErr: "is invalid", wantStderr: "c.yaml:4:21: upstreams.pets.openapi.file: file " + filepath.Join(dir, "nope.yaml") + " does not exist"},
		{give: []string{"catalog", "validate", bad}, wantErr: "is invalid", wantStderr: "c.yaml:4:21: upstreams.pets.openapi.file"},
		{give: []string{"catalog", "tools"}, wantErr: "usage: toolbus catalog tools FILE [--json]"},
		{give: []string{"catalog", "import-openapi"}, wantErr: "give exactly one OpenAPI document"},
		{give: []string{"catalog", "import-openapi", bad}, wantErr: "not an OpenAPI document"},
		{give: []string{"catalog", "frobnicate"}, wantErr: "usage:"},
	}
	for _, tt := range tests {
		_, stderr, err := runCLI(t, tt.give...)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("%v: err = %v, stderr = %q; want %q and %q", tt.give, err, stderr, tt.wantErr, tt.wantStderr)
		}
	}
}
