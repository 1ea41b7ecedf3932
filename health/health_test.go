package health_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/toolbus/toolbus/health"
)

func TestReadyReportsFailingChecks(t *testing.T) {
	r := health.New(0)
	r.Add("nats", func(context.Context) error { return errors.New("not connected") })
	r.Add("catalog", func(context.Context) error { return nil })
	srv := httptest.NewServer(r.ReadyHandler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", res.StatusCode)
	}
	want := health.Report{Ready: false, Failed: map[string]string{"nats": "not connected"}}
	if diff := cmp.Diff(want, r.Run(context.Background())); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	r.Add("nats", func(context.Context) error { return nil })
	res, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("status after recovery = %d, want 200", res.StatusCode)
	}
}

func TestGRPCHealth(t *testing.T) {
	r := health.New(0)
	var natsDown atomic.Bool
	r.Add("nats", func(context.Context) error {
		if natsDown.Load() {
			return errors.New("down")
		}
		return nil
	})
	g := grpc.NewServer()
	r.RegisterGRPC(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	ctx := context.Background()

	tests := []struct {
		give     string
		natsDown bool
		want     healthpb.HealthCheckResponse_ServingStatus
	}{
		{give: "", natsDown: true, want: healthpb.HealthCheckResponse_NOT_SERVING},
		{give: "nats", natsDown: true, want: healthpb.HealthCheckResponse_NOT_SERVING},
		{give: "", natsDown: false, want: healthpb.HealthCheckResponse_SERVING},
		{give: "nats", natsDown: false, want: healthpb.HealthCheckResponse_SERVING},
	}
	for _, tt := range tests {
		natsDown.Store(tt.natsDown)
		res, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: tt.give})
		if err != nil {
			t.Fatalf("Check(%q): %v", tt.give, err)
		}
		if res.Status != tt.want {
			t.Errorf("Check(%q) with nats down=%v = %v, want %v", tt.give, tt.natsDown, res.Status, tt.want)
		}
	}
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown service: %v, want NotFound", err)
	}
}
