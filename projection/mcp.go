package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/telemetry"
)

// EntityView is an entity as MCP clients see it.
type EntityView struct {
	Key        string         `json:"key" jsonschema:"entity key"`
	URI        string         `json:"uri" jsonschema:"resource URI of the entity"`
	Value      any            `json:"value" jsonschema:"the projected fields"`
	Version    string         `json:"version" jsonschema:"ordering version of the last applied event"`
	EventID    string         `json:"event_id" jsonschema:"id of the last applied event"`
	EventType  string         `json:"event_type" jsonschema:"type of the last applied event"`
	Source     string         `json:"source"`
	ReceivedAt string         `json:"received_at" jsonschema:"when the last applied event was received (RFC 3339)"`
	History    []HistoryEntry `json:"history,omitempty" jsonschema:"recent events of the entity, oldest first"`
}

func view(projection string, e *Entity, withHistory bool) EntityView {
	v := EntityView{
		Key: e.Key, URI: EntityURI(projection, e.Key), Value: e.Value, Version: e.Version,
		EventID: e.EventID, EventType: e.EventType, Source: e.Source,
		ReceivedAt: e.ReceivedAt.UTC().Format(time.RFC3339Nano),
	}
	if withHistory {
		v.History = e.History
	}
	return v
}

// GetInput is the input of get_<projection>.
type GetInput struct {
	Key string `json:"key" jsonschema:"the entity key"`
}

// ListInput is the input of list_<projection>.
type ListInput struct {
	Where  map[string]any `json:"where,omitempty" jsonschema:"keep entities whose fields equal these values"`
	Prefix string         `json:"prefix,omitempty" jsonschema:"keep entities whose key starts with this"`
	Limit  int            `json:"limit,omitempty" jsonschema:"page size (default 50, at most 500)"`
	Cursor string         `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page"`
}

// ListOutput is the output of list_<projection> and the listing resource.
type ListOutput struct {
	Items      []EntityView `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty" jsonschema:"pass as cursor to get the next page; absent on the last page"`
}

// Register adds to srv, for every projection of cat: the resource template
// toolbus://state/<projection>/{key}, the listing resource
// toolbus://state/<projection> (first page), and the read-only tools
// get_<projection> and list_<projection>.
//
// Change notifications need two more things from whoever builds srv:
// ServerOptions.SubscribeHandler and UnsubscribeHandler set (SubscribeHandler
// and UnsubscribeHandler here), and Notify running for the server's life.
func Register(srv *mcp.Server, r *Reader, cat *catalog.Catalog) {
	for _, name := range sortedNames(cat) {
		RegisterProjection(srv, r, name)
	}
}

// RegisterProjection is Register for one projection: a hot reload adds a
// new projection's resources and tools with it.
func RegisterProjection(srv *mcp.Server, r *Reader, name string) {
	srv.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:        "state_" + name,
		Title:       "State: " + name,
		Description: fmt.Sprintf("One %s entity by key, as projected from webhook events. Subscribe to hear about changes.", name),
		MIMEType:    "application/json",
		URITemplate: URIPrefix + name + "/{key}",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		uri := req.Params.URI
		pname, key, err := ParseURI(uri)
		if err != nil || pname != name || key == "" {
			return nil, mcp.ResourceNotFoundError(uri)
		}
		e, err := r.Get(ctx, name, key)
		if errors.Is(err, ErrNotFound) {
			return nil, mcp.ResourceNotFoundError(uri)
		}
		if err != nil {
			return nil, err
		}
		return jsonResource(uri, view(name, e, true))
	})
	srv.AddResource(&mcp.Resource{
		Name:        "state_" + name + "_list",
		Title:       "State: all " + name,
		Description: fmt.Sprintf("The first %d %s entities in key order; use list_%s for filters and paging.", DefaultPageSize, name, name),
		MIMEType:    "application/json",
		URI:         ListURI(name),
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		page, err := r.List(ctx, name, Query{})
		if err != nil {
			return nil, err
		}
		return jsonResource(req.Params.URI, listOutput(name, page))
	})

	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(bool)}
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_" + name,
		Title:       "Get " + name,
		Description: fmt.Sprintf("Get one %s entity by key (state kept up to date from webhook events).", name),
		Annotations: readOnly,
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in GetInput) (*mcp.CallToolResult, EntityView, error) {
		if in.Key == "" {
			return nil, EntityView{}, errors.New("invalid argument key: must not be empty")
		}
		e, err := r.Get(ctx, name, in.Key)
		if errors.Is(err, ErrNotFound) {
			return nil, EntityView{}, fmt.Errorf("%s %q not found", name, in.Key)
		}
		if err != nil {
			return nil, EntityView{}, fmt.Errorf("reading %s failed, retry shortly: %w", name, err)
		}
		return nil, view(name, e, true), nil
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_" + name,
		Title:       "List " + name,
		Description: fmt.Sprintf("List %s entities in key order, filtered by field values or key prefix, one page at a time.", name),
		Annotations: readOnly,
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in ListInput) (*mcp.CallToolResult, ListOutput, error) {
		if in.Limit < 0 || in.Limit > MaxPageSize {
			return nil, ListOutput{}, fmt.Errorf("invalid argument limit: must be between 1 and %d", MaxPageSize)
		}
		page, err := r.List(ctx, name, Query{Where: in.Where, Prefix: in.Prefix, Limit: in.Limit, Cursor: in.Cursor})
		if errors.Is(err, ErrBadCursor) {
			return nil, ListOutput{}, errors.New("invalid argument cursor: pass next_cursor from the previous page unchanged")
		}
		if err != nil {
			return nil, ListOutput{}, fmt.Errorf("listing %s failed, retry shortly: %w", name, err)
		}
		return nil, listOutput(name, page), nil
	})
}

func listOutput(name string, page *Page) ListOutput {
	out := ListOutput{Items: make([]EntityView, 0, len(page.Items)), NextCursor: page.NextCursor}
	for _, e := range page.Items {
		out.Items = append(out.Items, view(name, e, false))
	}
	return out
}

func jsonResource(uri string, v any) (*mcp.ReadResourceResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode resource: %w", err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}

// Unregister removes what RegisterProjection added for the projection.
// Sessions subscribed to its URIs keep their subscriptions, and hear
// nothing more once its watch stops.
func Unregister(srv *mcp.Server, name string) {
	srv.RemoveResourceTemplates(URIPrefix + name + "/{key}")
	srv.RemoveResources(ListURI(name))
	srv.RemoveTools("get_"+name, "list_"+name)
}

// SubscribeHandler is the ServerOptions.SubscribeHandler for a server with
// the projections of cat registered: it accepts subscriptions to projection
// URIs (the server then records them) and refuses others.
func SubscribeHandler(cat *catalog.Catalog) func(context.Context, *mcp.SubscribeRequest) error {
	return NewReader(nil, cat).SubscribeHandler()
}

// SubscribeHandler is SubscribeHandler for the projections r reads now,
// following SetCatalog.
func (r *Reader) SubscribeHandler() func(context.Context, *mcp.SubscribeRequest) error {
	return func(_ context.Context, req *mcp.SubscribeRequest) error {
		p, _, err := ParseURI(req.Params.URI)
		if err != nil {
			return fmt.Errorf("cannot subscribe to %s: %w", req.Params.URI, err)
		}
		if !r.has(p) {
			return fmt.Errorf("cannot subscribe to %s: %q: %w", req.Params.URI, p, ErrUnknownProjection)
		}
		return nil
	}
}

// UnsubscribeHandler is the matching ServerOptions.UnsubscribeHandler.
func UnsubscribeHandler(context.Context, *mcp.UnsubscribeRequest) error { return nil }

// Notify watches every projection bucket and tells srv about each changed
// entity: ResourceUpdated for the entity's URI and for the listing URI
// (the server sends it only to sessions subscribed to that URI). It
// returns when ctx ends; run it for the life of the server. It records no
// spans: NotifyWith with a TracerProvider does.
func Notify(ctx context.Context, srv *mcp.Server, r *Reader, cat *catalog.Catalog, log *slog.Logger) error {
	return NotifyWith(ctx, srv, r, cat, NotifyOptions{Logger: log})
}

// NotifyOptions are the optional parts of NotifyWith.
type NotifyOptions struct {
	// Logger: slog.Default() when nil.
	Logger *slog.Logger
	// TracerProvider records a "notify <projection>" span per changed
	// entity, a child of the apply span that wrote it (Entity.Trace), or a
	// root span when the record carries no trace context. No spans when nil.
	TracerProvider trace.TracerProvider
	// Watching, when set, is called each time the watch of a projection is
	// established (at start and after a reconnect). Changes made before
	// that moment are not notified: the watch sees updates only.
	Watching func(projection string)
	// Projections restricts the watch to these projections of the catalog
	// (all of them when empty).
	Projections []string
	// Ready, when set, is called once, when every projection whose bucket
	// already exists as NotifyWith starts is watched: from then on each of
	// their changes is notified. (A bucket created later is watched within
	// a second of its creation; Watching tells when.)
	Ready func()
}

// notifyTracerName is the instrumentation scope of notify spans.
const notifyTracerName = "github.com/toolbus/toolbus/projection"

// NotifyWith is Notify with options.
func NotifyWith(ctx context.Context, srv *mcp.Server, r *Reader, cat *catalog.Catalog, o NotifyOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	tracer := tp.Tracer(notifyTracerName)
	names := sortedNames(cat)
	if len(o.Projections) > 0 {
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(o.Projections, n) })
	}
	ready := r.readiness(ctx, names, o.Ready)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			for {
				watching := func() {
					if o.Watching != nil {
						o.Watching(name)
					}
					ready(name)
				}
				err := r.watchEntities(ctx, name, func(e *Entity) {
					notifyEntity(ctx, srv, tracer, log, name, e)
				}, watching)
				if ctx.Err() != nil {
					return
				}
				// The bus went away under the watcher: start over shortly.
				log.Warn("projection watch stopped, restarting", "projection", name, "error", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// readiness returns the function each established watch calls: it calls
// done once the projections whose buckets exist now have all been watched
// once (at once when there are none). A bucket that cannot be looked up is
// not waited for: its watch retries on its own.
func (r *Reader) readiness(ctx context.Context, names []string, done func()) func(projection string) {
	if done == nil {
		return func(string) {}
	}
	var mu sync.Mutex
	waiting := map[string]bool{}
	for _, name := range names {
		if kv, err := r.bucket(ctx, name); err == nil && kv != nil {
			waiting[name] = true
		}
	}
	var once sync.Once
	if len(waiting) == 0 {
		once.Do(done)
	}
	return func(name string) {
		mu.Lock()
		_, ok := waiting[name]
		delete(waiting, name)
		left := len(waiting)
		mu.Unlock()
		if ok && left == 0 {
			once.Do(done)
		}
	}
}

// notifyEntity sends the notifications of one changed entity under a
// "notify <projection>" producer span continuing the apply span's trace.
// The entity key may be personal data, so the span carries its hash and
// the resource template, not the entity URI.
func notifyEntity(ctx context.Context, srv *mcp.Server, tracer trace.Tracer, log *slog.Logger, name string, e *Entity) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			telemetry.AttrProjection.String(name),
			telemetry.AttrMCPMethod.String("notifications/resources/updated"),
			telemetry.AttrMCPResourceTemplate.String(URIPrefix+name+"/{key}"),
			telemetry.AttrEntityKeyHash.String(KeyHash(e.Key)),
		),
	}
	if parent := e.Trace.SpanContext(); parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} else {
		opts = append(opts, trace.WithNewRoot())
	}
	ctx, span := tracer.Start(ctx, "notify "+name, opts...)
	defer span.End()
	failed := 0
	for _, uri := range []string{EntityURI(name, e.Key), ListURI(name)} {
		if err := srv.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
			failed++
			span.RecordError(err)
			log.WarnContext(ctx, "resource update notification", "uri", uri, "error", err)
		}
	}
	if failed > 0 {
		span.SetStatus(codes.Error, "resource update notification failed")
	}
}
