package validate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const demoCatalog = "../../../examples/demo/catalog.yaml"

// overlays lists every overlay with what it must provide.
var overlays = map[string]Expect{
	"dev":      {Namespace: "toolbus", StreamReplicas: 1, KEDA: true, DemoCatalog: demoCatalog},
	"prod":     {Namespace: "toolbus", StreamReplicas: 3, KEDA: true, DemoCatalog: demoCatalog},
	"prod-hpa": {Namespace: "toolbus", StreamReplicas: 3, KEDA: false, DemoCatalog: demoCatalog},
}

var (
	renderOnce sync.Map // overlay -> *rendered
)

type rendered struct {
	once sync.Once
	docs []Doc
	err  error
}

// render renders an overlay once per test binary; callers decode their own
// copy, so mutations never leak between tests.
func render(t *testing.T, overlay string) []Doc {
	t.Helper()
	v, _ := renderOnce.LoadOrStore(overlay, &rendered{})
	r := v.(*rendered)
	r.once.Do(func() { r.docs, r.err = Render(filepath.Join("..", "overlays", overlay)) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.docs
}

func decoded(t *testing.T, overlay string) *Set {
	t.Helper()
	s, err := Decode(render(t, overlay))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEveryOverlayIsChecked(t *testing.T) {
	entries, err := os.ReadDir("../overlays")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := overlays[e.Name()]; e.IsDir() && !ok {
			t.Errorf("overlay %s has no entry in the overlays table of this test", e.Name())
		}
	}
}

func TestOverlaysPassEveryCheck(t *testing.T) {
	for name, want := range overlays {
		t.Run(name, func(t *testing.T) {
			s := decoded(t, name)
			for _, p := range Check(s, want) {
				t.Error(p)
			}
			if len(s.Deployments) < 6 || len(s.StatefulSets) != 1 {
				t.Errorf("render has %d Deployments and %d StatefulSets: the overlay lost its base", len(s.Deployments), len(s.StatefulSets))
			}
			if got := len(s.ScaledObjects) > 0; got != want.KEDA {
				t.Errorf("ScaledObjects present = %v, want %v", got, want.KEDA)
			}
		})
	}
}

// TestScalersUseTheCodesNames spells out, for a reader, the names the KEDA
// checks derive from package bus and the catalog.
func TestScalersUseTheCodesNames(t *testing.T) {
	s := decoded(t, "prod")
	got := map[string][]string{}
	for _, so := range s.ScaledObjects {
		for _, tr := range so.Spec.Triggers {
			got[so.Spec.ScaleTargetRef.Name] = append(got[so.Spec.ScaleTargetRef.Name], tr.Metadata["stream"]+"/"+tr.Metadata["consumer"])
		}
	}
	want := map[string][]string{
		"rest-worker":    {"CALLS/calls-rest-crm", "CALLS/calls-soap-crmsoap"},
		"graphql-worker": {"CALLS/calls-graphql-crmgraphql"},
		"state-updater":  {"WEBHOOKS/state-payments"},
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s scales on %v, want %v", k, got[k], v)
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		docName string
		old     string
		new     string
		want    string
	}{
		{"misspelt probe", "Deployment", "mcp-front", "livenessProbe:", "livenesProbe:", `unknown field "livenesProbe"`},
		{"unknown KEDA field", "ScaledObject", "rest-worker", "minReplicaCount:", "minReplicas:", `unknown field "minReplicas"`},
		{"unknown trigger field", "ScaledObject", "rest-worker", "metadata:\n      account:", "metdata:\n      account:", `unknown field "metdata"`},
		{"misplaced field in a PDB", "PodDisruptionBudget", "nats", "maxUnavailable:", "maxUnavailables:", `unknown field "maxUnavailables"`},
		{"duplicate key", "Service", "nats", "  selector:\n", "  type: ClusterIP\n  type: ClusterIP\n  selector:\n", `key "type" already set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := slices.Clone(render(t, "prod"))
			found := false
			for i, d := range docs {
				if d.Kind == tt.kind && d.Name == tt.docName {
					if !strings.Contains(string(d.YAML), tt.old) {
						t.Fatalf("%s has no %q to mutate:\n%s", d, tt.old, d.YAML)
					}
					d.YAML = []byte(strings.Replace(string(d.YAML), tt.old, tt.new, 1))
					docs[i], found = d, true
				}
			}
			if !found {
				t.Fatalf("no %s/%s in the render", tt.kind, tt.docName)
			}
			_, err := Decode(docs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeRejectsUnknownKinds(t *testing.T) {
	docs := append(slices.Clone(render(t, "dev")), Doc{APIVersion: "v1", Kind: "Pod", Name: "stray", YAML: []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: stray}\n")})
	if _, err := Decode(docs); err == nil || !strings.Contains(err.Error(), "unexpected kind v1 Pod") {
		t.Fatalf("Decode error = %v, want unexpected kind", err)
	}
}

// The GraphQL schema shipped in the catalog ConfigMap is a copy (kustomize
// reads files only below the kustomization); it must not drift.
func TestShippedSchemaIsTheDemoSchema(t *testing.T) {
	want, err := os.ReadFile("../../../examples/crmgraphql/schema.graphql")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../base/toolbus/crmgraphql.graphql")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("deploy/k8s/base/toolbus/crmgraphql.graphql differs from examples/crmgraphql/schema.graphql: copy it again")
	}
}
