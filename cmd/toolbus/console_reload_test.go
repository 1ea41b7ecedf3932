package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/console"
)

// TestConsoleShowsRefusedEdit: in the all-in-one, an edit of the catalog
// file that does not validate is shown on the console's Tools page with
// its file:line, and a valid edit after it is shown as reloaded.
func TestConsoleShowsRefusedEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	write := func(src string, by time.Duration) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		bump(t, path, by)
	}
	write(applyV1, 0)
	cat, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ns := bustest.Server(t)
	nc, js := bustest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := bus.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Options{Catalog: cat, NC: nc, JS: js, Logger: bustest.Logger(), Open: true})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, con)
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	r, err := startCatalogReload(ctx, js, 0, cat, []lifecycle{con}, path, bustest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	waitTools := func(want string) string {
		t.Helper()
		for {
			res, err := http.Get(srv.URL + "/console/tools")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.Contains(string(b), want) {
				return string(b)
			}
			if ctx.Err() != nil {
				t.Fatalf("the tools page never showed %q:\n%s", want, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	write(strings.Replace(applyV1, "upstream: crm, method: GET, path: /report", "upstream: nope, method: GET, path: /report", 1), 2*time.Second)
	page := waitTools(`id="reload-refused"`)
	if !strings.Contains(page, "An edit of the catalog file") || !strings.Contains(page, path+":6:") {
		t.Errorf("the refusal shown does not name the edit and its file:line:\n%s", page)
	}
	write(applyV2, 4*time.Second)
	waitTools("before the catalog shown was applied")
	waitTools("get_invoice")
}
