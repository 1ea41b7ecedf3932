package mcpfront_test

import (
	"strings"
	"testing"
	"time"

	"github.com/toolbus/toolbus/catalog"
)

// tools/list answers from a cache; a reload must show the new tool set at
// once, in the session that listed the old one.
func TestListToolsAfterReload(t *testing.T) {
	r := newRig(t, rigOptions{})
	cs := r.connect(t)
	for range 2 {
		res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) != len(r.cat.Tools) {
			t.Fatalf("listed %d tools, want %d", len(res.Tools), len(r.cat.Tools))
		}
	}
	host := strings.TrimPrefix(r.upstream.URL, "http://")
	src := strings.Replace(testCatalog, "Fetch one customer", "Fetch one customer (reloaded)", 1)
	if src == testCatalog {
		t.Fatal("test catalog changed: update the replaced text")
	}
	cat, err := catalog.Parse("test.yaml", []byte(src), catalog.WithLookupEnv(func(name string) (string, bool) {
		return host, name == "CRM_HOST"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Reload(cat); err != nil {
		t.Fatal(err)
	}
	res, err := cs.ListTools(ctxTimeout(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tl := range res.Tools {
		found = found || strings.Contains(tl.Description, "(reloaded)")
	}
	if !found {
		t.Errorf("tools/list after reload still shows the old descriptions")
	}
}
