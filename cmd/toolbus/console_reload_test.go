package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/toolbus/toolbus/bus/bustest"
	"github.com/toolbus/toolbus/console"
)

// TestConsoleShowsRefusedEdit: in the all-in-one, an edit of the catalog
// file that does not validate is shown on the console's Tools page with
// its file:line, and a valid edit after it is shown as reloaded.
func TestConsoleShowsRefusedEdit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newFileRig(t, ctx, applyV1)
	con, err := console.New(console.Options{Catalog: f.cat, NC: f.nc, JS: f.js, Logger: bustest.Logger(), Open: true})
	if err != nil {
		t.Fatal(err)
	}
	startServices(t, ctx, con)
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	f.reload(ctx, con)
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

	f.write(strings.Replace(applyV1, "upstream: crm, method: GET, path: /report", "upstream: nope, method: GET, path: /report", 1))
	page := waitTools(`id="reload-refused"`)
	if !strings.Contains(page, "An edit of the catalog file") || !strings.Contains(page, f.path+":6:") {
		t.Errorf("the refusal shown does not name the edit and its file:line:\n%s", page)
	}
	f.write(applyV2)
	waitTools("before the catalog shown was applied")
	waitTools("get_invoice")
}
