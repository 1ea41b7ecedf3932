package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
	"github.com/toolbus/toolbus/webhookcli"
)

func runWebhooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: toolbus webhooks send|replay [flags] (see -h of each)"}
	}
	switch args[0] {
	case "send":
		return runWebhooksSend(ctx, args[1:], stdout, stderr)
	case "replay":
		return runWebhooksReplay(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("toolbus webhooks: unknown command %q (send or replay)", args[0])}
}

func runWebhooksSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("toolbus webhooks send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, webhookcli.SendUsage); fs.PrintDefaults() }
	catPath := fs.String("catalog", envOr("TOOLBUS_CATALOG", "toolbus.yaml"), "catalog declaring the source [TOOLBUS_CATALOG]")
	source := fs.String("source", "", "source name in the catalog")
	file := fs.String("file", "", "JSON payload to sign and send")
	eventType := fs.String("type", "", "event type, for schemes that carry it in a header")
	url := fs.String("url", envOr("TOOLBUS_URL", "http://127.0.0.1:8080"), "base URL of a running Toolbus [TOOLBUS_URL]")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *source == "" || *file == "" {
		return usageError{"toolbus webhooks send: --source and --file are required"}
	}
	cat, err := catalog.Load(*catPath)
	if err != nil {
		return err
	}
	src, ok := cat.Sources[*source]
	if !ok {
		return fmt.Errorf("source %q is not declared in %s", *source, *catPath)
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := webhookcli.Send(ctx, *url, src, body, *eventType)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	fmt.Fprintf(stdout, "%s %s\n", res.Status, strings.TrimSpace(string(msg)))
	if res.StatusCode >= 300 {
		return fmt.Errorf("delivery refused: %s", res.Status)
	}
	return nil
}

func runWebhooksReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("toolbus webhooks replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, webhookcli.ReplayUsage); fs.PrintDefaults() }
	catPath := fs.String("catalog", envOr("TOOLBUS_CATALOG", "toolbus.yaml"), "catalog [TOOLBUS_CATALOG]")
	natsURL := fs.String("nats", envOr("TOOLBUS_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL of the running system [TOOLBUS_NATS_URL]")
	source := fs.String("source", "", "source whose events are replayed")
	since := fs.String("since", "", "RFC 3339 time or a duration such as 24h (default: all stored events)")
	reset := fs.Bool("reset", false, "empty the projections first (rebuild from scratch)")
	var projections stringList
	fs.Var(&projections, "projection", "projection to rebuild (repeatable; default: all the source feeds)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *source == "" {
		return usageError{"toolbus webhooks replay: --source is required"}
	}
	var sinceT time.Time
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			sinceT = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			sinceT = t
		} else {
			return usageError{fmt.Sprintf("--since %q: want an RFC 3339 time or a duration such as 24h", *since)}
		}
	}
	cat, err := catalog.Load(*catPath)
	if err != nil {
		return err
	}
	nc, err := bus.Connect(bus.ConnectOptions{URL: *natsURL, Name: "toolbus-cli"})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := bus.WaitJetStream(wctx, nc, js, nil); err != nil {
		return err
	}
	st, err := webhookcli.Replay(ctx, js, webhookcli.ReplayOptions{Catalog: cat, Source: *source, Since: sinceT, Projections: projections, Reset: *reset})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %d events: %d applied, %d unchanged, %d poison\n", st.Events, st.Applied, st.Unchanged, st.Poison)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
