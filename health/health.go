// Package health provides liveness and readiness for Toolbus processes, over
// HTTP (/healthz, /readyz) and the standard gRPC health protocol
// (grpc.health.v1), so Kubernetes can probe any service the same way.
//
// It runs the checks it is given and reports; it must not decide what a
// service needs to be ready.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Check reports why something is not ready, or nil.
type Check func(ctx context.Context) error

// Registry holds named readiness checks.
type Registry struct {
	timeout time.Duration

	mu     sync.RWMutex
	checks map[string]Check
}

// New returns an empty registry; each check gets timeout to answer.
func New(timeout time.Duration) *Registry {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Registry{timeout: timeout, checks: make(map[string]Check)}
}

// Add registers (or replaces) the check called name.
func (r *Registry) Add(name string, c Check) {
	r.mu.Lock()
	r.checks[name] = c
	r.mu.Unlock()
}

// Report is the outcome of every check.
type Report struct {
	Ready  bool              `json:"ready"`
	Failed map[string]string `json:"failed,omitempty"`
}

// Run runs every check concurrently.
func (r *Registry) Run(ctx context.Context) Report {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.mu.RLock()
	names := make([]string, 0, len(r.checks))
	for n := range r.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		c := r.checks[n]
		wg.Go(func() { errs[i] = c(ctx) })
	}
	r.mu.RUnlock()
	wg.Wait()
	rep := Report{Ready: true}
	for i, err := range errs {
		if err != nil {
			if rep.Failed == nil {
				rep.Failed = make(map[string]string)
			}
			rep.Ready = false
			rep.Failed[names[i]] = err.Error()
		}
	}
	return rep
}

// LiveHandler answers 200 while the process serves HTTP at all.
func LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// ReadyHandler answers 200 when every check passes, else 503 with the
// failing checks as JSON.
func (r *Registry) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rep := r.Run(req.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// RegisterGRPC serves grpc.health.v1 on g. The empty service name and every
// registered check name are known services; a check name reports only itself.
func (r *Registry) RegisterGRPC(g *grpc.Server) {
	healthpb.RegisterHealthServer(g, &grpcHealth{r: r})
}

type grpcHealth struct {
	healthpb.UnimplementedHealthServer
	r *Registry
}

func (h *grpcHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if name := req.GetService(); name != "" {
		h.r.mu.RLock()
		c, ok := h.r.checks[name]
		h.r.mu.RUnlock()
		if !ok {
			return nil, status.Errorf(codes.NotFound, "unknown service %q", name)
		}
		cctx, cancel := context.WithTimeout(ctx, h.r.timeout)
		defer cancel()
		if c(cctx) != nil {
			return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
		}
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	if !h.r.Run(ctx).Ready {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

var _ healthpb.HealthServer = (*grpcHealth)(nil)
