package catalog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// head declares one upstream; tool cases start at line 4.
const head = "version: 1\nupstreams:\n  crm: {base_url: http://h}\n"

// tool is a valid tool entry; cases add or change fields after it. It
// starts at line 5 (tools: is line 4).
const tool = head + `tools:
  - name: t
    description: d
    upstream: crm
    method: GET
    path: /x
`

var testEnv = map[string]string{"CRM_API_KEY": "s3cr3t-value", "HOST": "127.0.0.1:8081", "EMPTY": ""}

var testFiles = map[string]string{"/run/secrets/token": "file-s3cr3t\n"}

func testOptions() []Option {
	return []Option{
		WithLookupEnv(func(name string) (string, bool) { v, ok := testEnv[name]; return v, ok }),
		WithReadFile(func(path string) ([]byte, error) {
			if v, ok := testFiles[path]; ok {
				return []byte(v), nil
			}
			if strings.HasPrefix(path, "testdata/") || path == exampleSchemaFile {
				return os.ReadFile(path)
			}
			return nil, fmt.Errorf("open %s: %w", path, os.ErrNotExist)
		}),
	}
}

func problems(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse("c.yaml", []byte(src), testOptions()...)
	if err == nil {
		return nil
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Parse error is %T, want *LoadError: %v", err, err)
	}
	var out []string
	for _, p := range le.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		// File and top level.
		{"empty file", "", []string{
			"c.yaml:1:1: empty catalog: want at least version: 1",
		}},
		{"syntax error", "version: 1\nupstreams: {crm: [}\n", []string{
			"c.yaml:2: invalid YAML: did not find expected node content",
		}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{
			"c.yaml:3:1: a catalog is one YAML document; remove the second document",
		}},
		{"invalid utf8", "version: 1\ntools: \xff\n", []string{
			"c.yaml:2:8: invalid UTF-8",
		}},
		{"control character", "version: 1\ntools: a\x01\n", []string{
			"c.yaml:2:9: control character U+0001 is not allowed",
		}},
		{"not a mapping", "- 1\n", []string{
			"c.yaml:1:1: a catalog must be a mapping with version, upstreams and tools, got a list",
		}},
		{"missing version", "upstreams: {}\n", []string{
			"c.yaml:1:1: version: required field is missing; add version: 1",
		}},
		{"version 2", "version: 2\n", []string{
			"c.yaml:1:10: version: unsupported version 2: this Toolbus reads version 1",
		}},
		{"version string", "version: \"1\"\n", []string{
			"c.yaml:1:10: version: must be an integer, got a string",
		}},
		{"unknown top-level field", "version: 1\nupstream: {}\n", []string{
			"c.yaml:2:1: upstream: unknown field (known fields: version, upstreams, tools, sources, projections, auth, widgets)",
		}},
		{"tools not a list", "version: 1\ntools: {a: 1}\n", []string{
			"c.yaml:2:8: tools: must be a list, got a mapping",
		}},
		// Upstreams.
		{"duplicate upstream", "version: 1\nupstreams:\n  crm: {base_url: http://a}\n  crm: {base_url: http://b}\n", []string{
			"c.yaml:4:3: upstreams.crm: duplicate key \"crm\" (first at line 3)",
		}},
		{"bad upstream name", "version: 1\nupstreams:\n  crm.v1: {base_url: http://a}\n", []string{
			"c.yaml:3:3: upstreams.\"crm.v1\": upstream name must match [a-zA-Z0-9_-]{1,32}",
		}},
		{"unknown upstream field", "version: 1\nupstreams:\n  crm: {base_url: http://a, retries: 3}\n", []string{
			"c.yaml:3:29: upstreams.crm.retries: unknown field (known fields: kind, base_url, timeout, concurrency, max_response_bytes, idempotency_header, headers, retry, rate_limit, circuit_breaker, auth, endpoint, schema, openapi, soap)",
		}},
		{"missing base_url", "version: 1\nupstreams:\n  crm: {timeout: 1s}\n", []string{
			"c.yaml:3:3: upstreams.crm.base_url: required field is missing",
		}},
		{"unknown kind", "version: 1\nupstreams:\n  crm: {base_url: http://a, kind: corba}\n", []string{
			"c.yaml:3:35: upstreams.crm.kind: unknown kind \"corba\": want rest, graphql or soap",
		}},
		{"relative base_url", "version: 1\nupstreams:\n  crm: {base_url: /api}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: must be an absolute http or https URL such as https://api.example.com/v1",
		}},
		{"ftp base_url", "version: 1\nupstreams:\n  crm: {base_url: ftp://h/x}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: scheme \"ftp\" is not supported: want http or https",
		}},
		{"base_url with query", "version: 1\nupstreams:\n  crm: {base_url: \"http://h/x?a=1\"}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: must not have a query; declare query parameters in the tools' input_schema",
		}},
		{"base_url with userinfo", "version: 1\nupstreams:\n  crm: {base_url: http://u:pw@h/x}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: must not contain user info; send credentials in headers with ${env:NAME} or ${file:/path}",
		}},
		{"base_url with fragment", "version: 1\nupstreams:\n  crm: {base_url: http://h/x#f}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: must not have a fragment",
		}},
		{"base_url file reference", "version: 1\nupstreams:\n  crm: {base_url: \"http://${file:/run/secrets/token}\"}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: ${file:/run/secrets/token}: only ${env:NAME} references are allowed here",
		}},
		{"base_url unset env", "version: 1\nupstreams:\n  crm: {base_url: \"http://${env:NOPE}\"}\n", []string{
			"c.yaml:3:19: upstreams.crm.base_url: ${env:NOPE}: environment variable NOPE is not set",
		}},
		{"bad duration", "version: 1\nupstreams:\n  crm: {base_url: http://h, timeout: 10}\n", []string{
			"c.yaml:3:38: upstreams.crm.timeout: must be a duration such as 10s or 1m30s, got an integer",
		}},
		{"unparsable duration", "version: 1\nupstreams:\n  crm: {base_url: http://h, timeout: 10 s}\n", []string{
			"c.yaml:3:38: upstreams.crm.timeout: invalid duration \"10 s\": want a value such as 10s or 1m30s",
		}},
		{"zero duration", "version: 1\nupstreams:\n  crm: {base_url: http://h, timeout: 0s}\n", []string{
			"c.yaml:3:38: upstreams.crm.timeout: must be greater than 0, got 0s",
		}},
		{"long duration", "version: 1\nupstreams:\n  crm: {base_url: http://h, timeout: 11m}\n", []string{
			"c.yaml:3:38: upstreams.crm.timeout: must be at most 10m, got 11m",
		}},
		{"concurrency zero", "version: 1\nupstreams:\n  crm: {base_url: http://h, concurrency: 0}\n", []string{
			"c.yaml:3:42: upstreams.crm.concurrency: must be between 1 and 10000, got 0",
		}},
		{"concurrency too high", "version: 1\nupstreams:\n  crm: {base_url: http://h, concurrency: 10001}\n", []string{
			"c.yaml:3:42: upstreams.crm.concurrency: must be between 1 and 10000, got 10001",
		}},
		{"bad size", "version: 1\nupstreams:\n  crm: {base_url: http://h, max_response_bytes: 4 parsecs}\n", []string{
			"c.yaml:3:49: upstreams.crm.max_response_bytes: invalid size \"4 parsecs\": want bytes or a size such as 512KB or 4MiB",
		}},
		{"size too big", "version: 1\nupstreams:\n  crm: {base_url: http://h, max_response_bytes: 2GiB}\n", []string{
			"c.yaml:3:49: upstreams.crm.max_response_bytes: must be between 1 byte and 1GiB, got 2GiB",
		}},
		{"bad idempotency header", "version: 1\nupstreams:\n  crm: {base_url: http://h, idempotency_header: \"Idem Key\"}\n", []string{
			"c.yaml:3:49: upstreams.crm.idempotency_header: \"Idem Key\" is not a valid header name",
		}},
		{"forbidden header", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {Host: x}\n", []string{
			"c.yaml:5:15: upstreams.crm.headers.Host: header Host is managed by the HTTP client and cannot be set",
		}},
		{"duplicate header", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-A: x, x-a: y}\n", []string{
			"c.yaml:5:23: upstreams.crm.headers.x-a: header x-a is set twice (also as X-A)",
		}},
		// Secrets.
		{"literal authorization", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {Authorization: Bearer abc}\n", []string{
			"c.yaml:5:30: upstreams.crm.headers.Authorization: header Authorization carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}",
		}},
		{"literal api key", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Api-Key: abc}\n", []string{
			"c.yaml:5:26: upstreams.crm.headers.X-Api-Key: header X-Api-Key carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}",
		}},
		{"literal proxy authorization", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {Proxy-Authorization: abc}\n", []string{
			"c.yaml:5:36: upstreams.crm.headers.Proxy-Authorization: header Proxy-Authorization carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}",
		}},
		{"literal password", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-DB-PASSWORD: abc}\n", []string{
			"c.yaml:5:30: upstreams.crm.headers.X-DB-PASSWORD: header X-DB-PASSWORD carries a credential, so its value must not be written in the catalog: use ${env:NAME} or ${file:/path}",
		}},
		{"unset env", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Api-Key: \"${env:MISSING_KEY}\"}\n", []string{
			"c.yaml:5:26: upstreams.crm.headers.X-Api-Key: ${env:MISSING_KEY}: environment variable MISSING_KEY is not set",
		}},
		{"unreadable file", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Token: \"${file:/nope}\"}\n", []string{
			"c.yaml:5:24: upstreams.crm.headers.X-Token: ${file:/nope}: cannot read file: open /nope: file does not exist",
		}},
		{"relative file", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Token: \"${file:nope}\"}\n", []string{
			"c.yaml:5:24: upstreams.crm.headers.X-Token: malformed reference ${file:nope}: want ${file:/absolute/path}",
		}},
		{"empty env name", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Token: \"${env:}\"}\n", []string{
			"c.yaml:5:24: upstreams.crm.headers.X-Token: malformed reference ${env:}: want ${env:NAME} with NAME matching [A-Za-z_][A-Za-z0-9_]*",
		}},
		{"unknown reference scheme", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Token: \"${foo:bar}\"}\n", []string{
			"c.yaml:5:24: upstreams.crm.headers.X-Token: malformed reference ${foo:bar}: want ${env:NAME} or ${file:/path}",
		}},
		{"unterminated reference", "version: 1\nupstreams:\n  crm:\n    base_url: http://h\n    headers: {X-Token: \"${env:A\"}\n", []string{
			"c.yaml:5:24: upstreams.crm.headers.X-Token: unterminated reference \"${env:A\": want ${env:NAME} or ${file:/path}",
		}},
		// Tools.
		{"tool missing fields", head + "tools:\n  - name: t\n", []string{
			"c.yaml:5:5: tools[0] (t).description: required field is missing",
			"c.yaml:5:5: tools[0] (t).upstream: required field is missing",
			"c.yaml:5:5: tools[0] (t).method: required field is missing",
			"c.yaml:5:5: tools[0] (t).path: required field is missing",
		}},
		{"unknown tool field", tool + "    verb: GET\n", []string{
			"c.yaml:10:5: tools[0] (t).verb: unknown field (known fields: name, title, description, upstream, method, path, input_schema, params, output_schema, annotations, timeout, meta, retry, scopes, operation, operation_file, operation_name, pagination, payload_errors, steps, merge, batch, soap, response, cache, result_meta)",
		}},
		{"duplicate tool", tool + "  - {name: t, description: d, upstream: crm, method: GET, path: /y}\n", []string{
			"c.yaml:10:12: tools[1] (t).name: duplicate tool name \"t\" (first at line 5)",
		}},
		{"tool name too long", head + "tools:\n  - {name: " + strings.Repeat("a", 65) + ", description: d, upstream: crm, method: GET, path: /y}\n", []string{
			"c.yaml:5:12: tools[0].name: tool name is 65 characters long; the limit is 64",
		}},
		{"tool name chars", head + "tools:\n  - {name: get.customer, description: d, upstream: crm, method: GET, path: /y}\n", []string{
			"c.yaml:5:12: tools[0].name: tool name \"get.customer\" may contain only letters, digits, '_' and '-'",
		}},
		{"empty description", head + "tools:\n  - {name: t, description: \" \", upstream: crm, method: GET, path: /y}\n", []string{
			"c.yaml:5:28: tools[0] (t).description: must not be empty: models choose tools by their description",
		}},
		{"unknown upstream", head + "tools:\n  - {name: t, description: d, upstream: erp, method: GET, path: /y}\n", []string{
			"c.yaml:5:41: tools[0] (t).upstream: unknown upstream \"erp\" (declared: crm)",
		}},
		{"bad method", head + "tools:\n  - {name: t, description: d, upstream: crm, method: FETCH, path: /y}\n", []string{
			"c.yaml:5:54: tools[0] (t).method: unsupported method \"FETCH\": want GET, POST, PUT, PATCH, DELETE or HEAD",
		}},
		{"path without slash", head + "tools:\n  - {name: t, description: d, upstream: crm, method: GET, path: y}\n", []string{
			"c.yaml:5:65: tools[0] (t).path: invalid path template: must start with '/'",
		}},
		{"path with query", head + "tools:\n  - {name: t, description: d, upstream: crm, method: GET, path: \"/y?a=1\"}\n", []string{
			"c.yaml:5:65: tools[0] (t).path: invalid path template: must not contain '?' or '#' (declare query parameters in input_schema)",
		}},
		{"path unclosed brace", head + "tools:\n  - {name: t, description: d, upstream: crm, method: GET, path: \"/y/{id\"}\n", []string{
			"c.yaml:5:65: tools[0] (t).path: invalid path template: unclosed '{' at offset 3",
		}},
		{"path bad placeholder", head + "tools:\n  - {name: t, description: d, upstream: crm, method: GET, path: \"/y/{1d}\"}\n", []string{
			"c.yaml:5:65: tools[0] (t).path: invalid path template: invalid placeholder {1d}: name must match [a-zA-Z_][a-zA-Z0-9_]*",
		}},
		{"path repeated placeholder", head + "tools:\n  - name: t\n    description: d\n    upstream: crm\n    method: GET\n    path: /y/{id}/{id}\n    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}\n", []string{
			"c.yaml:9:11: tools[0] (t).path: invalid path template: placeholder {id} appears more than once",
		}},
		{"path dot segment", head + "tools:\n  - {name: t, description: d, upstream: crm, method: GET, path: /y/../z}\n", []string{
			"c.yaml:5:65: tools[0] (t).path: invalid path template: dot segments (. and ..) are not allowed",
		}},
		{"placeholder not a property", head + "tools:\n  - name: get_customer\n    description: d\n    upstream: crm\n    method: GET\n    path: /customers/{id}\n", []string{
			"c.yaml:9:11: tools[0] (get_customer).path: parameter {id} is not a property of input_schema",
		}},
		{"placeholder not required", head + "tools:\n  - name: t\n    description: d\n    upstream: crm\n    method: GET\n    path: /y/{id}\n    input_schema:\n      type: object\n      properties:\n        id: {type: string}\n", []string{
			"c.yaml:13:9: tools[0] (t).input_schema.properties.id: path parameter {id} must be listed in input_schema.required",
		}},
		{"placeholder not scalar", head + "tools:\n  - name: t\n    description: d\n    upstream: crm\n    method: GET\n    path: /y/{id}\n    input_schema:\n      type: object\n      properties:\n        id: {type: array}\n      required: [id]\n", []string{
			"c.yaml:13:9: tools[0] (t).input_schema.properties.id: path parameter {id} must have type string, integer or number",
		}},
		{"input_schema not a mapping", tool + "    input_schema: [a]\n", []string{
			"c.yaml:10:19: tools[0] (t).input_schema: must be a JSON Schema mapping with type: object, got a list",
		}},
		{"input_schema not object", tool + "    input_schema: {type: string}\n", []string{
			"c.yaml:10:26: tools[0] (t).input_schema.type: must be object (tool arguments are a JSON object)",
		}},
		{"input_schema without type", tool + "    input_schema: {properties: {}}\n", []string{
			"c.yaml:10:19: tools[0] (t).input_schema: must declare type: object (tool arguments are a JSON object)",
		}},
		{"input_schema not compiling", tool + "    input_schema:\n      type: object\n      properties:\n        n: {type: integer, minimum: low}\n", []string{
			"c.yaml:13:37: tools[0] (t).input_schema.properties.n.minimum: invalid JSON Schema: got string, want number",
		}},
		{"input_schema bad type name", tool + "    input_schema:\n      type: object\n      properties:\n        n: {type: objekt}\n", []string{
			"c.yaml:13:19: tools[0] (t).input_schema.properties.n.type: invalid JSON Schema: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'",
		}},
		{"input_schema external ref", tool + "    input_schema:\n      type: object\n      properties:\n        n: {$ref: \"http://example.com/s.json\"}\n", []string{
			"c.yaml:13:19: tools[0] (t).input_schema.properties.n.$ref: invalid JSON Schema: $ref \"http://example.com/s.json\": external $ref is not allowed; put shared definitions under $defs",
		}},
		{"output_schema not compiling", tool + "    output_schema: {type: object, required: 5}\n", []string{
			"c.yaml:10:45: tools[0] (t).output_schema.required: invalid JSON Schema: got number, want array",
		}},
		{"output_schema not object", tool + "    output_schema: {type: array}\n", []string{
			"c.yaml:10:27: tools[0] (t).output_schema.type: must be object: MCP structured results are JSON objects",
		}},
		{"unknown params property", tool + "    params: {q: {in: query}}\n", []string{
			"c.yaml:10:14: tools[0] (t).params.q: \"q\" is not a property of input_schema",
		}},
		{"params bad location", tool + "    input_schema: {type: object, properties: {q: {type: string}}}\n    params: {q: {in: cookie}}\n", []string{
			"c.yaml:11:22: tools[0] (t).params.q.in: unknown location \"cookie\": want path, query, header or body",
		}},
		{"params path without placeholder", tool + "    input_schema: {type: object, properties: {q: {type: string}}}\n    params: {q: {in: path}}\n", []string{
			"c.yaml:11:22: tools[0] (t).params.q.in: in: path needs a {q} placeholder in path",
		}},
		{"params moves path parameter", head + "tools:\n  - name: t\n    description: d\n    upstream: crm\n    method: GET\n    path: /y/{id}\n    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}\n    params: {id: {in: query}}\n", []string{
			"c.yaml:11:23: tools[0] (t).params.id.in: id is a path parameter ({id} in path); it cannot go in query",
		}},
		{"params bad header name", tool + "    input_schema: {type: object, properties: {q: {type: string}}}\n    params: {q: {in: header, name: \"X Q\"}}\n", []string{
			"c.yaml:11:36: tools[0] (t).params.q.name: \"X Q\" is not a valid header name",
		}},
		{"params hop-by-hop header", tool + "    input_schema: {type: object, properties: {q: {type: string}}}\n    params: {q: {in: header, name: Connection}}\n", []string{
			"c.yaml:11:36: tools[0] (t).params.q.name: header Connection is managed by the HTTP client and cannot be set",
		}},
		{"params duplicate wire name", tool + "    input_schema: {type: object, properties: {a: {type: string}, b: {type: string}}}\n    params: {b: {name: a}}\n", []string{
			"c.yaml:10:66: tools[0] (t).input_schema.properties.b: a and b are both sent as query \"a\"",
		}},
		{"annotations not bool", tool + "    annotations: {read_only: yes please}\n", []string{
			"c.yaml:10:30: tools[0] (t).annotations.read_only: must be true or false, got a string",
		}},
		{"annotations unknown", tool + "    annotations: {readOnly: true}\n", []string{
			"c.yaml:10:19: tools[0] (t).annotations.readOnly: unknown field (known fields: read_only, destructive, idempotent, open_world)",
		}},
		{"annotations contradiction", tool + "    annotations: {read_only: true, destructive: true}\n", []string{
			"c.yaml:10:18: tools[0] (t).annotations: read_only and destructive cannot both be true",
		}},
		{"tool timeout", tool + "    timeout: -1s\n", []string{
			"c.yaml:10:14: tools[0] (t).timeout: must be greater than 0, got -1s",
		}},
		{"meta not a mapping", tool + "    meta: [1]\n", []string{
			"c.yaml:10:11: tools[0] (t).meta: must be a mapping, got a list",
		}},
		{"graphql upstream tool", "version: 1\nupstreams:\n  gh: {kind: graphql, endpoint: https://h/graphql, schema: {file: ../examples/crmgraphql/schema.graphql}}\ntools:\n  - {name: t, description: d, upstream: gh, method: POST, path: /}\n", []string{
			"c.yaml:5:41: tools[0] (t).upstream: upstream gh is of kind graphql; give the tool an operation or an operation_file",
		}},
		{"merge key", "version: 1\nx: &a {base_url: http://h}\nupstreams:\n  crm: {<<: *a}\n", []string{
			"c.yaml:2:1: x: unknown field (known fields: version, upstreams, tools, sources, projections, auth, widgets)",
			"c.yaml:4:3: upstreams.crm.base_url: required field is missing",
			"c.yaml:4:9: upstreams.crm: merge keys (<<) are not supported",
		}},
		{"alias cycle", tool + "    meta: &m {a: [*m]}\n", []string{
			"c.yaml:10:19: tools[0] (t).meta.a[0]: alias *m refers to its own anchor",
		}},
		{"alias expansion", tool + "    meta:\n      a: &a [x, x, x, x, x, x, x, x, x, x]\n      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", []string{
			"c.yaml:11:20: tools[0] (t).meta.e[7][8][9][0][2]: aliases expand to more than 100000 YAML nodes",
		}},
		{"many problems at once", "version: 3\nupstreams:\n  crm: {base_url: ftp://h, timeout: 1h}\ntools:\n  - {name: t, upstream: nope, method: GET, path: /x}\n", []string{
			"c.yaml:1:10: version: unsupported version 3: this Toolbus reads version 1",
			"c.yaml:3:19: upstreams.crm.base_url: scheme \"ftp\" is not supported: want http or https",
			"c.yaml:3:37: upstreams.crm.timeout: must be at most 10m, got 1h",
			"c.yaml:5:5: tools[0] (t).description: required field is missing",
			"c.yaml:5:25: tools[0] (t).upstream: unknown upstream \"nope\" (declared: crm)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.give)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s\ngot:\n%#v", diff, got)
			}
		})
	}
}
