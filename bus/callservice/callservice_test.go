package callservice_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/bus/callservice"
	"github.com/toolbus/toolbus/catalog"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

var role = callservice.Role{
	Name:      "rest-worker",
	Kinds:     []catalog.Kind{catalog.KindREST, catalog.KindSOAP},
	Described: "rest or soap",
}

func testCatalog() *catalog.Catalog {
	return &catalog.Catalog{Upstreams: map[string]*catalog.Upstream{
		"zeta":  {Name: "zeta", Kind: catalog.KindREST, Concurrency: 2},
		"alpha": {Name: "alpha", Kind: catalog.KindSOAP, Concurrency: 1},
		"gql":   {Name: "gql", Kind: catalog.KindGraphQL, Concurrency: 1},
	}}
}

func names(ups []*catalog.Upstream) []string {
	var ns []string
	for _, u := range ups {
		ns = append(ns, u.Name)
	}
	return ns
}

func TestSelect(t *testing.T) {
	cat := testCatalog()
	for _, tc := range []struct {
		names   []string
		want    []string
		wantErr string
	}{
		{names: nil, want: []string{"alpha", "zeta"}},
		{names: []string{"zeta", "alpha", "zeta"}, want: []string{"alpha", "zeta"}},
		{names: []string{"nope"}, wantErr: `rest-worker: upstream "nope" is not in the catalog`},
		{names: []string{"zeta", "gql"}, wantErr: `rest-worker: upstream "gql" is of kind graphql, not rest or soap`},
	} {
		ups, err := role.Select(cat, tc.names)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Select(%v) error = %v, want %q", tc.names, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Select(%v): %v", tc.names, err)
		}
		if got := names(ups); !slices.Equal(got, tc.want) {
			t.Errorf("Select(%v) = %v, want %v", tc.names, got, tc.want)
		}
	}
}

func TestNewChecks(t *testing.T) {
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	refused := errors.New("refused")
	for _, tc := range []struct {
		name string
		opts callservice.Options
		want string
	}{
		{"no catalog", callservice.Options{NC: nc, JS: js}, "rest-worker: no catalog"},
		{"no nats", callservice.Options{Catalog: testCatalog(), JS: js}, "rest-worker: no NATS connection"},
		// Check runs before upstreams are selected.
		{"check", callservice.Options{Catalog: testCatalog(), NC: nc, JS: js, Upstreams: []string{"nope"},
			Check: func(*catalog.Catalog) error { return refused }}, "refused"},
		{"select", callservice.Options{Catalog: testCatalog(), NC: nc, JS: js, Upstreams: []string{"nope"}},
			`rest-worker: upstream "nope" is not in the catalog`},
	} {
		if _, err := callservice.New(role, tc.opts); err == nil || err.Error() != tc.want {
			t.Errorf("%s: New error = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestStartShutdown(t *testing.T) {
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	s, err := callservice.New(role, callservice.Options{Catalog: testCatalog(), NC: nc, JS: js,
		Logger: bustest.Logger(), AckWait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(s.Upstreams()); !slices.Equal(got, []string{"alpha", "zeta"}) {
		t.Fatalf("Upstreams = %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A failing setup starts nothing and can be retried.
	if err := s.Start(ctx, func(context.Context, callservice.Stores) (bus.CallHandler, error) {
		return nil, errors.New("no cache")
	}); err == nil || err.Error() != "rest-worker: no cache" {
		t.Fatalf("Start with failing setup = %v", err)
	}
	var got callservice.Stores
	handle := func(context.Context, *toolbusv1.ToolCall, bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{}, nil
	}
	if err := s.Start(ctx, func(_ context.Context, st callservice.Stores) (bus.CallHandler, error) {
		got = st
		return handle, nil
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got.Results == nil || got.Conts == nil {
		t.Errorf("setup got stores %+v", got)
	}
	for _, u := range []string{"alpha", "zeta"} {
		kind := string(testCatalog().Upstreams[u].Kind)
		if _, err := js.Consumer(ctx, bus.StreamCalls, bus.CallConsumerName(kind, u)); err != nil {
			t.Errorf("consumer of %s: %v", u, err)
		}
	}
	if err := s.Start(ctx, nil); err == nil || err.Error() != "rest-worker: already started" {
		t.Errorf("second Start = %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Start(ctx, nil); !errors.Is(err, bus.ErrShuttingDown) {
		t.Errorf("Start after Shutdown = %v, want ErrShuttingDown", err)
	}
}

// After a reload, Reselect keeps what the catalog still has, drops the
// rest, and names the upstreams new to the worker; Add consumes those
// once, and only after Start.
func TestReselectAndAdd(t *testing.T) {
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	s, err := callservice.New(role, callservice.Options{Catalog: testCatalog(), NC: nc, JS: js, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The reloaded catalog: alpha gone, zeta kept, beta new, gql not ours.
	next := &catalog.Catalog{Upstreams: map[string]*catalog.Upstream{
		"zeta": {Name: "zeta", Kind: catalog.KindREST, Concurrency: 2},
		"beta": {Name: "beta", Kind: catalog.KindREST, Concurrency: 1},
		"gql":  {Name: "gql", Kind: catalog.KindGraphQL, Concurrency: 1},
	}}
	ups, fresh := s.Reselect(next)
	if got := names(ups); !slices.Equal(got, []string{"beta", "zeta"}) {
		t.Errorf("Reselect serves %v, want [beta zeta]", got)
	}
	if got := names(fresh); !slices.Equal(got, []string{"beta"}) {
		t.Errorf("Reselect fresh = %v, want [beta]", got)
	}
	if _, err := s.Add(ctx, fresh); err == nil {
		t.Error("Add before Start succeeded")
	}

	handle := func(context.Context, *toolbusv1.ToolCall, bus.Delivery) (*toolbusv1.ToolResult, error) {
		return &toolbusv1.ToolResult{}, nil
	}
	if err := s.Start(ctx, func(context.Context, callservice.Stores) (bus.CallHandler, error) { return handle, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(ctx, bus.StreamCalls, bus.CallConsumerName("rest", "beta")); err == nil {
		t.Fatal("beta's consumer exists before Add")
	}
	added, err := s.Add(ctx, append(fresh, next.Upstreams["zeta"], next.Upstreams["gql"]))
	if err != nil || !slices.Equal(added, []string{"beta"}) {
		t.Fatalf("Add = %v, %v; want [beta] (zeta served already, gql not this role's)", added, err)
	}
	if _, err := js.Consumer(ctx, bus.StreamCalls, bus.CallConsumerName("rest", "beta")); err != nil {
		t.Errorf("beta's consumer after Add: %v", err)
	}
	if got := names(s.Upstreams()); !slices.Equal(got, []string{"alpha", "beta", "zeta"}) {
		t.Errorf("Upstreams after Add = %v", got)
	}
	if added, err := s.Add(ctx, fresh); err != nil || len(added) != 0 {
		t.Errorf("second Add = %v, %v; want nothing added", added, err)
	}
	// zeta's concurrency changes: its consumer's MaxAckPending follows.
	retuned := &catalog.Catalog{Upstreams: map[string]*catalog.Upstream{
		"zeta": {Name: "zeta", Kind: catalog.KindREST, Concurrency: 7},
		"beta": {Name: "beta", Kind: catalog.KindREST, Concurrency: 1},
	}}
	rups, rfresh := s.Reselect(retuned)
	if err := s.ServeNew(rups, rfresh); err != nil {
		t.Fatal(err)
	}
	for up, want := range map[string]int{"zeta": 7, "beta": 1} {
		c, err := js.Consumer(ctx, bus.StreamCalls, bus.CallConsumerName("rest", up))
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.MaxAckPending != want {
			t.Errorf("%s's consumer after the reload: MaxAckPending %d, want %d", up, info.Config.MaxAckPending, want)
		}
	}
	// A worker given a list keeps to it: nothing is fresh.
	listed, err := callservice.New(role, callservice.Options{Catalog: testCatalog(), NC: nc, JS: js, Logger: bustest.Logger(), Upstreams: []string{"zeta"}})
	if err != nil {
		t.Fatal(err)
	}
	if ups, fresh := listed.Reselect(next); !slices.Equal(names(ups), []string{"zeta"}) || len(fresh) != 0 {
		t.Errorf("listed Reselect = %v, %v; want [zeta] and nothing fresh", names(ups), names(fresh))
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, []*catalog.Upstream{{Name: "omega", Kind: catalog.KindREST}}); !errors.Is(err, bus.ErrShuttingDown) {
		t.Errorf("Add after Shutdown = %v, want ErrShuttingDown", err)
	}
}
