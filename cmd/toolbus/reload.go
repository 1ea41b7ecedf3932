package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/console"
	graphqlworker "github.com/toolbus/toolbus/services/graphql-worker"
	mcpfront "github.com/toolbus/toolbus/services/mcp-front"
	restworker "github.com/toolbus/toolbus/services/rest-worker"
	stateupdater "github.com/toolbus/toolbus/services/state-updater"
	webhookingest "github.com/toolbus/toolbus/services/webhook-ingest"
)

// Hot reload: `toolbus catalog apply` validates a catalog and stores its
// bundle (the catalog and the files it references) in the KV bucket
// toolbus_catalog; every serve process watches that key, validates the
// bundle again and hands the new catalog to each of its services that can
// reload. A catalog that fails anywhere is logged and never replaces the
// one being served. In the all-in-one the --catalog file is polled and
// applied the same way.

// reloader is a service that can swap catalogs while running: every
// service, and the console.
type reloader interface {
	Reload(*catalog.Catalog) error
}

// refusalNoter is told of each catalog the process refused: an applied
// one (its revision), or an edit of the all-in-one's file (revision 0).
type refusalNoter interface {
	CatalogRefused(revision uint64, err error)
}

var _ refusalNoter = (*console.Console)(nil)

// Services that stopped being reloaders would silently keep their start
// catalog: the compiler checks they still are.
var (
	_ reloader = (*mcpfront.Service)(nil)
	_ reloader = (*restworker.Service)(nil)
	_ reloader = (*graphqlworker.Service)(nil)
	_ reloader = (*webhookingest.Service)(nil)
	_ reloader = (*stateupdater.Service)(nil)
	_ reloader = (*console.Console)(nil)
)

// maxBundleBytes bounds a decompressed bundle (a gzip bomb must not take
// a process down).
const maxBundleBytes = 256 << 20

func encodeBundle(b *catalog.Bundle) ([]byte, error) {
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeBundle(data []byte) (*catalog.Bundle, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("catalog bundle: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("catalog bundle: %w", err)
	}
	if len(raw) > maxBundleBytes {
		return nil, fmt.Errorf("catalog bundle is larger than %d bytes", maxBundleBytes)
	}
	var b catalog.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("catalog bundle: %w", err)
	}
	return &b, nil
}

// applyBundle validates the catalog at path and stores it for every
// running process. It returns the loaded catalog. opts are the load
// options (the all-in-one's poller passes its secret groups).
func applyBundle(ctx context.Context, js jetstream.JetStream, maxPayload int64, path string, opts ...catalog.Option) (*catalog.Catalog, uint64, error) {
	cat, b, err := catalog.LoadBundle(path, opts...)
	if err != nil {
		return nil, 0, err
	}
	data, err := encodeBundle(b)
	if err != nil {
		return nil, 0, err
	}
	if maxPayload > 0 && int64(len(data)) > maxPayload {
		return nil, 0, fmt.Errorf("catalog %s with its files is %d bytes compressed; the NATS server accepts messages of at most %d (max_payload)", path, len(data), maxPayload)
	}
	rev, err := bus.PutCatalog(ctx, js, data)
	return cat, rev, err
}

// runCatalogApply is `toolbus catalog apply FILE --nats URL`.
func runCatalogApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("toolbus catalog apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", envOr("TOOLBUS_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL of the running system [TOOLBUS_NATS_URL]")
	var file string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{"usage: toolbus catalog apply FILE [--nats URL]"}
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if file == "" {
		return usageError{"usage: toolbus catalog apply FILE [--nats URL]"}
	}
	// Validate before touching the bus: an invalid catalog is never sent.
	if _, _, err := catalog.LoadBundle(file); err != nil {
		fmt.Fprintln(stderr, err)
		return fmt.Errorf("catalog %s is invalid; nothing was applied", file)
	}
	nc, err := nats.Connect(*url, nats.Name("toolbus-catalog-apply"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	prev := appliedCatalog(actx, js)
	cat, rev, err := applyBundle(actx, js, nc.MaxPayload(), file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: applied (revision %d, digest %.12s, %d tools)\n", file, rev, cat.Digest, len(cat.Tools))
	if prev != nil {
		// Compared as both are stored: without secret values.
		if next, _, err := catalog.LoadBundle(file, catalog.WithSecrets(catalog.SecretsNone)); err == nil {
			fmt.Fprintln(stdout, catalogChanges(prev, next))
		}
	}
	return nil
}

// appliedCatalog is the catalog applied before, loaded without reading
// any secret; nil when there is none or it does not load.
func appliedCatalog(ctx context.Context, js jetstream.JetStream) *catalog.Catalog {
	value, _, err := bus.GetCatalog(ctx, js)
	if err != nil || value == nil {
		return nil
	}
	b, err := decodeBundle(value)
	if err != nil {
		return nil
	}
	cat, err := catalog.ParseBundle(b, catalog.WithSecrets(catalog.SecretsNone))
	if err != nil {
		return nil
	}
	return cat
}

// catalogChanges says, by name, what applying next over prev adds and
// removes: tools, upstreams, webhook sources and projections (an item
// changed in place is not listed), and whether the auth section changed.
func catalogChanges(prev, next *catalog.Catalog) string {
	if prev.Digest == next.Digest {
		return "  no change: the same catalog was applied before"
	}
	var lines []string
	diff := func(kind string, before, after []string) {
		var parts []string
		for _, n := range after {
			if !slices.Contains(before, n) {
				parts = append(parts, "+"+n)
			}
		}
		for _, n := range before {
			if !slices.Contains(after, n) {
				parts = append(parts, "-"+n)
			}
		}
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("  %s: %s", kind, strings.Join(parts, " ")))
		}
	}
	toolNames := func(c *catalog.Catalog) []string {
		var out []string
		for _, t := range c.Tools {
			out = append(out, t.Name)
		}
		slices.Sort(out)
		return out
	}
	diff("tools", toolNames(prev), toolNames(next))
	diff("upstreams", slices.Sorted(maps.Keys(prev.Upstreams)), slices.Sorted(maps.Keys(next.Upstreams)))
	diff("sources", slices.Sorted(maps.Keys(prev.Sources)), slices.Sorted(maps.Keys(next.Sources)))
	diff("projections", slices.Sorted(maps.Keys(prev.Projections)), slices.Sorted(maps.Keys(next.Projections)))
	if !prev.Auth.Same(next.Auth) {
		lines = append(lines, "  auth: changed (API keys, default scopes and filter_tools_list apply now; resource, oauth and cors after a restart)")
	}
	if len(lines) == 0 {
		return "  nothing added or removed; definitions changed in place"
	}
	return strings.Join(lines, "\n")
}

// catalogReload runs the watch (and, in the all-in-one, the file poller)
// of one serve process.
type catalogReload struct {
	log  *slog.Logger
	svcs []reloader
	// noters hear of refused catalogs (the console shows the last one).
	noters []refusalNoter
	// secrets are the secret groups the process started with: a reload
	// reads the same references, no more (catalogsecrets.go).
	secrets catalog.SecretGroups
	mu      sync.Mutex
	last    string // digest being served
	watch   *bus.CatalogWatch
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// startCatalogReload watches toolbus_catalog for the services that can
// reload; with pollFile it also applies the catalog file whenever it
// changes. Stop ends both.
func startCatalogReload(ctx context.Context, js jetstream.JetStream, maxPayload int64, cat *catalog.Catalog, svcs []lifecycle, pollFile string, log *slog.Logger) (*catalogReload, error) {
	r := &catalogReload{log: log, secrets: cat.SecretGroups(), last: cat.Digest, stop: make(chan struct{}), done: make(chan struct{})}
	for _, s := range svcs {
		if rl, ok := s.(reloader); ok {
			r.svcs = append(r.svcs, rl)
		}
		if n, ok := s.(refusalNoter); ok {
			r.noters = append(r.noters, n)
		}
	}
	var mod time.Time
	if pollFile != "" {
		// Taken before the file is read: an edit from now on is seen by
		// the poller, however soon it comes.
		mod = modTime(pollFile)
		// The file is the truth of the all-in-one: it replaces whatever
		// an earlier run applied.
		if _, _, err := applyBundle(ctx, js, maxPayload, pollFile, catalog.WithSecrets(r.secrets)); err != nil {
			log.Warn("catalog not published for reload", "error", err)
		}
	}
	w, err := bus.WatchCatalog(ctx, js, r.apply)
	if err != nil {
		return nil, err
	}
	r.watch = w
	if pollFile == "" {
		close(r.done)
		return r, nil
	}
	go r.poll(js, maxPayload, pollFile, mod)
	return r, nil
}

// apply loads an applied bundle and hands it to the services. An invalid
// catalog keeps the current one.
func (r *catalogReload) apply(value []byte, rev uint64) {
	b, err := decodeBundle(value)
	var cat *catalog.Catalog
	if err == nil {
		cat, err = catalog.ParseBundle(b, catalog.WithSecrets(r.secrets))
	}
	if err == nil {
		// The graphql-worker cannot serve operations whose schema is still
		// to be introspected (nothing is fetched during a reload): refuse
		// the catalog before any service takes it, so mcp-front and the
		// workers keep serving the same catalog.
		if p := cat.PendingGraphQLSchemas(); len(p) > 0 {
			err = fmt.Errorf("the schemas of graphql upstreams %s are not cached (introspection runs at start only): add a schema file or cache, or restart", strings.Join(p, ", "))
		}
	}
	if err != nil {
		r.log.Error("applied catalog refused; the current catalog keeps serving", "revision", rev, "error", err)
		for _, n := range r.noters {
			n.CatalogRefused(rev, err)
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cat.Digest == r.last {
		return
	}
	for _, s := range r.svcs {
		if err := s.Reload(cat); err != nil {
			r.log.Error("catalog reload failed", "revision", rev, "service", fmt.Sprintf("%T", s), "error", err)
		}
	}
	r.last = cat.Digest
	r.log.Info("catalog applied", "revision", rev, "digest", cat.Digest, "tools", len(cat.Tools))
}

// pollEvery is how often the all-in-one checks its catalog file.
const pollEvery = time.Second

// poll applies the file at path whenever its modification time is no
// longer mod.
func (r *catalogReload) poll(js jetstream.JetStream, maxPayload int64, path string, mod time.Time) {
	defer close(r.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		m := modTime(path)
		if m.Equal(mod) {
			continue
		}
		mod = m
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, _, err := applyBundle(ctx, js, maxPayload, path, catalog.WithSecrets(r.secrets)); err != nil {
			r.log.Error("edited catalog refused; the current catalog keeps serving", "file", path, "error", err)
			for _, n := range r.noters {
				n.CatalogRefused(0, err)
			}
		}
		cancel()
	}
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Stop ends the watch and the poller, and waits for them.
func (r *catalogReload) Stop() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		if err := r.watch.Stop(); err != nil {
			r.log.Debug("catalog watch stop", "error", err)
		}
	})
}
