// Command crm serves the demo CRM upstream (package crm) on a TCP address.
//
//	go run ./examples/crm/cmd/crm -addr 127.0.0.1:8081
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/toolbus/toolbus/examples/crm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "crm:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	apiKey := flag.String("api-key", os.Getenv("CRM_API_KEY"), "API key required on /api/v1 (default $CRM_API_KEY; empty disables auth)")
	rate := flag.Int("rate", 0, "requests per second allowed on /api/v1 (0: unlimited)")
	faults := flag.Bool("faults", false, "serve the fault control API under /_faults")
	flag.Parse()

	srv := crm.NewServer(crm.Options{APIKey: *apiKey, RateLimit: *rate, EnableFaults: *faults})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("crm: listening on http://%s (API %s, OpenAPI http://%[1]s/openapi.yaml)\n", ln.Addr(), crm.APIPrefix)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
