package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// otlpSink is the trace back end of the toolbus-traced scenario: an
// OTLP/HTTP endpoint in the benchmark process that reads every export
// request whole and answers success, so the scenario measures what tracing
// costs Toolbus (spans, batching, protobuf encoding, HTTP export) and not
// what a trace store costs. It counts what it received, so a run whose
// spans never arrived is reported instead of passing for cheap tracing.
type otlpSink struct {
	srv      *http.Server
	addr     string
	requests atomic.Int64
	bytes    atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		// An empty ExportTraceServiceResponse is an empty protobuf message.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *otlpSink) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// setupTraced is the all-in-one with tracing on as an operator would run
// it: every call sampled, the batch span processor, OTLP over HTTP.
func setupTraced(ctx context.Context, e *env) (*deployment, error) {
	sink, err := startOTLPSink()
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	d, err := startAllInOne(ctx, e, "toolbus-traced", []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + sink.addr,
		"OTEL_TRACES_SAMPLER=always_on",
	}, "as the all-in-one, with every call traced (always_on sampler, batch span processor, OTLP/HTTP to a sink in the benchmark process)")
	if err != nil {
		sink.Stop()
		return nil, err
	}
	d.after = func() string {
		defer sink.Stop()
		if sink.requests.Load() == 0 {
			return "toolbus-traced: the OTLP sink received no spans: tracing was not on, so this run does not measure it"
		}
		return fmt.Sprintf("toolbus-traced: the OTLP sink received %d export requests, %.1f MB of spans", sink.requests.Load(), float64(sink.bytes.Load())/1e6)
	}
	return d, nil
}
