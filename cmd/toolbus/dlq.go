package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/deadletter"
	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

const dlqUsage = `usage:
  toolbus dlq list [--nats URL] [--json]
  toolbus dlq show [--nats URL] ID
  toolbus dlq replay [--nats URL] [--timeout D] [--keep] ID|--all
ID is a dead letter's id or its stream sequence (first column of list).`

// runDLQ lists, shows and replays dead letters of a running system.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{dlqUsage}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("toolbus dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", envOr("TOOLBUS_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL of the running system [TOOLBUS_NATS_URL]")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "replay every dead letter")
	timeout := fs.Duration("timeout", 0, "deadline of a replayed call (default: its original budget)")
	keep := fs.Bool("keep", false, "keep dead letters that replayed successfully")
	if err := fs.Parse(rest); err != nil {
		return usageError{err.Error()}
	}
	switch {
	case sub == "list" && fs.NArg() == 0:
	case sub == "show" && fs.NArg() == 1:
	case sub == "replay" && (fs.NArg() == 1) != *all:
	default:
		return usageError{dlqUsage}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	nc, js, err := dialBus(cctx, *url)
	cancel()
	if err != nil {
		return err
	}
	defer nc.Close()

	switch sub {
	case "list":
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		entries, err := deadletter.List(lctx, js)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, entries)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tID\tFAILED\tKIND\tNAME\tDELIVERIES\tREASON")
		for _, e := range entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Id, e.FailedAt.AsTime().Format(time.RFC3339), e.Kind, entryName(e), e.Deliveries, e.Reason)
		}
		return tw.Flush()
	case "show":
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		e, err := deadletter.Get(sctx, js, fs.Arg(0))
		if err != nil {
			return err
		}
		return printJSON(stdout, e)
	}

	var entries []deadletter.Entry
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if *all {
		entries, err = deadletter.List(lctx, js)
	} else {
		var e deadletter.Entry
		e, err = deadletter.Get(lctx, js, fs.Arg(0))
		entries = append(entries, e)
	}
	cancel()
	if err != nil {
		return err
	}
	failed := 0
	for _, e := range entries {
		res, err := deadletter.Replay(ctx, nc, js, e, deadletter.ReplayOptions{Timeout: *timeout, Keep: *keep})
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "%d %s: not replayed: %v\n", e.Seq, e.Id, err)
		case res == nil:
			fmt.Fprintf(stdout, "%d %s: republished on %s\n", e.Seq, e.Id, e.Subject)
		case res.Error != nil:
			failed++
			fmt.Fprintf(stdout, "%d %s: replayed, failed again: %s\n", e.Seq, e.Id, res.Error.Message)
		default:
			fmt.Fprintf(stdout, "%d %s: replayed, %s succeeded:\n%s\n", e.Seq, e.Id, entryName(e), resultText(res))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d dead letters did not replay successfully", failed, len(entries))
	}
	return nil
}

// dialBus connects to a running system's NATS and fails fast when it is
// not there (the CLI should not wait like a service does).
func dialBus(ctx context.Context, url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("toolbus-dlq"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w (is toolbus running? pass --nats)", bus.RedactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream at %s: %w", bus.RedactURL(url), err)
	}
	return nc, js, nil
}

func entryName(e deadletter.Entry) string {
	if e.Call != nil {
		return e.Call.Upstream + "/" + e.Call.Tool
	}
	return e.Subject
}

func resultText(res *toolbusv1.ToolResult) string {
	switch {
	case len(res.Json) > 0:
		return string(res.Json)
	case res.Text != "":
		return res.Text
	}
	return "(empty)"
}

// printJSON prints entries with their protobuf parts in protojson form and
// the payload as the decoded call.
func printJSON(w io.Writer, v any) error {
	type shown struct {
		Seq  uint64          `json:"seq"`
		DL   json.RawMessage `json:"dead_letter"`
		Call json.RawMessage `json:"call,omitempty"`
	}
	conv := func(e deadletter.Entry) (shown, error) {
		dl := protojson.MarshalOptions{UseProtoNames: true}
		raw, err := dl.Marshal(e.DeadLetter)
		if err != nil {
			return shown{}, err
		}
		s := shown{Seq: e.Seq, DL: raw}
		if e.Call != nil {
			if s.Call, err = dl.Marshal(e.Call); err != nil {
				return shown{}, err
			}
		}
		return s, nil
	}
	var out any
	switch x := v.(type) {
	case deadletter.Entry:
		s, err := conv(x)
		if err != nil {
			return err
		}
		out = s
	case []deadletter.Entry:
		list := make([]shown, 0, len(x))
		for _, e := range x {
			s, err := conv(e)
			if err != nil {
				return err
			}
			list = append(list, s)
		}
		out = list
	default:
		return errors.New("printJSON: unsupported value")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
