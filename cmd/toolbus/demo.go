package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/toolbus/toolbus/examples/crm"
	"github.com/toolbus/toolbus/examples/crmgraphql"
	"github.com/toolbus/toolbus/examples/demo"
)

// runDemo starts the demo CRM upstream and Toolbus with the demo catalog,
// then prints how to connect.
func runDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("toolbus demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	cfg.console.demo = true // console on by default
	if err := applyEnv(fs); err != nil {
		return usageError{err.Error()}
	}
	upstreamAddr := fs.String("upstream", demo.UpstreamAddr, "where the demo CRM upstream listens (the demo catalog expects "+demo.UpstreamAddr+")")
	graphqlAddr := fs.String("graphql-upstream", demo.GraphQLAddr, "where the demo CRM GraphQL upstream listens (the demo catalog expects "+demo.GraphQLAddr+")")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	svcs, err := parseServices(servicesAll)
	if err != nil {
		return err
	}
	cfg.services = svcs
	// Without --catalog, serve the demo catalog built into the binary.
	catalogSet := false
	fs.Visit(func(f *flag.Flag) { catalogSet = catalogSet || f.Name == "catalog" })
	if !catalogSet {
		cfg.catalogPath, cfg.catalogSrc, cfg.catalogFS = demo.CatalogFile+" (built in)", demo.Catalog, demo.Files
	}
	if cfg.logFormat == "json" && !flagSet(fs, "log-format") {
		cfg.logFormat = "text" // a person is reading
	}
	if !flagSet(fs, "log-level") {
		cfg.logLevel = "warn"
	}

	lis, err := net.Listen("tcp", *upstreamAddr)
	if err != nil {
		return fmt.Errorf("demo upstream: %w (is something else using %s? stop it or pass --upstream)", err, *upstreamAddr)
	}
	up := crm.NewServer(crm.Options{EnableFaults: true})
	upSrv := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := upSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "demo upstream:", err)
		}
	}()
	defer func() {
		up.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = upSrv.Shutdown(sctx)
	}()

	glis, err := net.Listen("tcp", *graphqlAddr)
	if err != nil {
		return fmt.Errorf("demo GraphQL upstream: %w (is something else using %s? stop it or pass --graphql-upstream)", err, *graphqlAddr)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", crmgraphql.NewHandler())
	gSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := gSrv.Serve(glis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "demo GraphQL upstream:", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = gSrv.Shutdown(sctx)
	}()

	return serve(ctx, cfg, stdin, stdout, stderr, func(a addrs) {
		printBanner(stderr, a, lis.Addr().String(), cfg)
		if cfg.console.enabled == nil || *cfg.console.enabled {
			fmt.Fprintf(stderr, "  Operator console:                http://%s/console/\n", a.http)
		}
		fmt.Fprintf(stderr, "  Demo CRM GraphQL upstream:       http://%s/graphql  (try: %s call gql_get_customer '{\"id\": \"c1\"}')\n\n", glis.Addr(), "toolbus")
	})
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func printBanner(w io.Writer, a addrs, upstream string, cfg serveConfig) {
	mcpURL := "http://" + a.http + "/mcp"
	self := "toolbus"
	if exe, err := os.Executable(); err == nil && strings.HasSuffix(exe, "/bin/toolbus") {
		self = "bin/toolbus"
	}
	urlFlag := ""
	if mcpURL != defaultMCPURL {
		urlFlag = " --url " + mcpURL
	}
	fmt.Fprintf(w, `
Toolbus %s is running (all services in one process, embedded NATS JetStream).

  MCP endpoint (Streamable HTTP):  %s
  gRPC ToolService + health:       %s
  NATS:                            %s   (JetStream files in %s)
  Demo CRM upstream:               http://%s/api/v1
  Catalog:                         %s

Try it from another terminal:
  %s tools%s
  %s call%s get_customer '{"id": 7}'

Or point any MCP client (MCP Inspector, Claude Desktop, ChatGPT developer mode
through a tunnel) at %s. Press Ctrl-C to stop.

`, version, mcpURL, a.grpc, orNone(a.nats, "in-process only"), cfg.dataDir, upstream, cfg.catalogPath, self, urlFlag, self, urlFlag, mcpURL)
}

func orNone(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
