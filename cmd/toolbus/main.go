// Command toolbus runs Toolbus: every service in one process over an
// embedded NATS JetStream server (the default, for laptops), or any subset of
// services against an external NATS cluster (the production shape).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Toolbus: MCP tools over your REST and GraphQL APIs, executed through NATS JetStream.

Usage:
  toolbus serve [flags]            run services (all of them over embedded NATS by default)
  toolbus demo [flags]             run everything with the demo upstream and demo catalog
  toolbus catalog validate FILE    check a catalog and print every problem with file:line
  toolbus catalog show FILE        print the loaded catalog as JSON, secrets shown as their references
  toolbus webhooks send|replay     sign and post a sample event; re-apply stored events
  toolbus tools [--url URL]        list the tools of a running Toolbus (MCP client)
  toolbus call NAME [JSON]         call a tool on a running Toolbus (MCP client)
  toolbus dlq list|show|replay     inspect and replay dead letters of a running system (--nats URL)
  toolbus version                  print the version

Run 'toolbus COMMAND -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "toolbus:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"toolbus: no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdin, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdin, stdout, stderr)
	case "catalog":
		return runCatalog(ctx, rest, stdout, stderr)
	case "webhooks":
		return runWebhooks(ctx, rest, stdout, stderr)
	case "tools":
		return runTools(ctx, rest, stdout, stderr)
	case "call":
		return runCall(ctx, rest, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "toolbus", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("toolbus: unknown command %q", cmd)}
}
