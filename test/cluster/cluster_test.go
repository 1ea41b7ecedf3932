package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/examples/crm"
)

const streamReplicas = 3

// TestNATSNodeLossDuringToolCalls kills the CALLS stream's leader with
// SIGKILL while clients make tool calls, then restarts it on its old data.
// Calls may blip (clients retry with the same idempotency key, as a real
// MCP client would) but every call ends with the right answer, and every
// create the gateway acknowledged exists upstream exactly once.
func TestNATSNodeLossDuringToolCalls(t *testing.T) {
	root := repoRoot(t)
	toolbus := buildToolbus(t)
	nodes := startCluster(t)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	natsURLs := strings.Join(urls, ",")

	up := crm.NewServer(crm.Options{})
	upSrv := httptest.NewServer(up)
	t.Cleanup(func() { up.Close(); upSrv.Close() })
	catalogPath := demoCatalog(t, root, upSrv.URL)

	// The manifests pass the stream replica count this way (deploy/k8s).
	env := []string{fmt.Sprintf("TOOLBUS_STREAM_REPLICAS=%d", streamReplicas)}
	common := []string{"serve", "--catalog", catalogPath, "--nats", natsURLs, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--shutdown-grace", "10s"}
	front := startProc(t, "mcp-front", toolbus, env, append(common, "--services", "mcp-front", "--instance", "front-0")...)
	var workers []*proc
	for i := range 2 {
		workers = append(workers, startProc(t, fmt.Sprintf("rest-worker-%d", i), toolbus, env, append(common, "--services", "rest-worker", "--instance", fmt.Sprintf("rest-worker-%d", i))...))
	}
	frontHTTP := "http://" + front.waitLog(t, "toolbus ready", 60*time.Second)["http"].(string)
	for _, w := range workers {
		w.waitLog(t, "toolbus ready", 60*time.Second)
	}

	nc, err := nats.Connect(natsURLs, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	consumer := bus.CallConsumerName("rest", "crm")
	requireR3(t, toolbus, js, consumer)

	// Steady traffic from several MCP sessions.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var (
		mu       sync.Mutex
		created  = map[int]string{} // customer id -> email, acknowledged by the gateway
		failures []string
		ok       atomic.Int64
		retries  atomic.Int64
		wg       sync.WaitGroup
	)
	const clients = 4
	for c := range clients {
		s := session(t, frontHTTP+"/mcp")
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				var err error
				if i%2 == 0 {
					var id int
					email := fmt.Sprintf("c%d-%d@cluster.test", c, i)
					id, err = createCustomer(s, email, fmt.Sprintf("create-%d-%d", c, i), &retries)
					if err == nil {
						mu.Lock()
						created[id] = email
						mu.Unlock()
					}
				} else {
					err = lookup(s, fmt.Sprintf("id-%d-%d", c, i), &retries)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}

	waitCalls := func(n int64, within time.Duration) {
		t.Helper()
		target := ok.Load() + n
		deadline := time.Now().Add(within)
		for ok.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d more calls succeeded within %s", ok.Load()-target+n, n, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitCalls(50, 30*time.Second)

	// Kill the server that leads the CALLS stream: the worst one to lose.
	info, err := js.Stream(ctx, bus.StreamCalls)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	var victim *natsNode
	for _, n := range nodes {
		if n.name == leader {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("CALLS leader %q is not one of the test's servers", leader)
	}
	t.Logf("SIGKILL %s (CALLS leader) after %d calls", victim.name, ok.Load())
	victim.proc.stop(syscall.SIGKILL, 5*time.Second)
	killedAt := ok.Load()

	// With one server of three gone, calls keep succeeding.
	waitCalls(100, 60*time.Second)
	t.Logf("%d calls succeeded with %s down", ok.Load()-killedAt, victim.name)

	// Back on its old data, as the StatefulSet's pod on its volume.
	victim.start(t)
	victim.waitHealthy(t, 90*time.Second)
	waitCalls(100, 60*time.Second)
	stop()
	wg.Wait()

	for _, f := range failures {
		t.Errorf("call failed for good: %s", f)
	}
	t.Logf("%d calls succeeded, %d retries by the clients", ok.Load(), retries.Load())

	// Nothing acknowledged is lost, and nothing is done twice.
	for id, email := range created {
		var page struct {
			Data []struct {
				ID    int    `json:"id"`
				Email string `json:"email"`
			} `json:"data"`
		}
		getJSON(t, upSrv.URL+"/api/v1/customers?email="+url.QueryEscape(email), &page)
		if len(page.Data) != 1 || page.Data[0].ID != id {
			t.Errorf("customer %s (acknowledged as id %d): upstream has %+v, want exactly that one", email, id, page.Data)
		}
	}
	if len(created) == 0 {
		t.Error("no create_customer call succeeded")
	}

	// Every call was taken to an answer: none is stuck on the restarted server.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := bus.CallsOutstanding(context.Background(), js)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still outstanding after the test: %d (%v)", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requireR3 checks that the services created the streams and the worker's
// consumer with three replicas. A binary that does not read
// TOOLBUS_STREAM_REPLICAS yet creates R1 streams: the test then says so and
// raises them to R3 itself (as an operator would with `nats stream edit`),
// so that the node-loss scenario still runs on R3.
func requireR3(t *testing.T, toolbus string, js jetstream.JetStream, consumer string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	help, _ := exec.Command(toolbus, "serve", "-h").CombinedOutput()
	supported := strings.Contains(string(help), "TOOLBUS_STREAM_REPLICAS")
	for _, name := range []string{bus.StreamCalls, bus.StreamWebhooks, bus.StreamDeadLetters} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		cfg := s.CachedInfo().Config
		if cfg.Replicas == streamReplicas {
			continue
		}
		if supported {
			t.Fatalf("stream %s has %d replicas although the services were given TOOLBUS_STREAM_REPLICAS=%d", name, cfg.Replicas, streamReplicas)
		}
		t.Logf("NOTE: toolbus serve does not read TOOLBUS_STREAM_REPLICAS yet; stream %s was created R%d, raising it to R%d", name, cfg.Replicas, streamReplicas)
		cfg.Replicas = streamReplicas
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("raise %s to R%d: %v", name, streamReplicas, err)
		}
	}
	// Wait until every replica of the stream and of the consumer is current.
	for {
		si, err1 := js.Stream(ctx, bus.StreamCalls)
		var cons *jetstream.ConsumerInfo
		var err2 error
		if err1 == nil {
			var c jetstream.Consumer
			if c, err2 = si.Consumer(ctx, consumer); err2 == nil {
				cons = c.CachedInfo()
			}
		}
		if err1 == nil && err2 == nil && replicasCurrent(si.CachedInfo().Cluster) && replicasCurrent(cons.Cluster) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %s / consumer %s not at R%d with current replicas: %v %v", bus.StreamCalls, consumer, streamReplicas, err1, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func replicasCurrent(c *jetstream.ClusterInfo) bool {
	if c == nil || c.Leader == "" || len(c.Replicas) != streamReplicas-1 {
		return false
	}
	for _, r := range c.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// demoCatalog writes the demo catalog with its upstream moved to baseURL.
func demoCatalog(t *testing.T, root, baseURL string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "examples", "demo", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const demoURL = "http://127.0.0.1:8081/api/v1"
	if !strings.Contains(string(src), demoURL) {
		t.Fatalf("demo catalog no longer uses %s", demoURL)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), demoURL, baseURL+"/api/v1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The GraphQL upstream's schema is referenced relative to the catalog.
	schema, err := os.ReadFile(filepath.Join(root, "examples", "demo", "crm.graphql"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crm.graphql"), schema, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func session(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "cluster-test", Version: "test"}, nil)
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// callWithRetry calls a tool until it answers without error, for at most
// 30 seconds, with the same idempotency key on every attempt.
func callWithRetry(s *mcp.ClientSession, name, key string, args map[string]any, retries *atomic.Int64) (*mcp.CallToolResult, error) {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			retries.Add(1)
			time.Sleep(min(time.Duration(attempt)*100*time.Millisecond, time.Second))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args, Meta: mcp.Meta{"toolbus/idempotencyKey": key}})
		cancel()
		switch {
		case err != nil:
			last = err
		case res.IsError:
			last = errors.New(toolText(res))
		default:
			return res, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s %s: gave up after %d attempts: %w", name, key, attempt+1, last)
		}
	}
}

func toolText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func createCustomer(s *mcp.ClientSession, email, key string, retries *atomic.Int64) (int, error) {
	res, err := callWithRetry(s, "create_customer", key, map[string]any{"name": "Cluster " + key, "email": email}, retries)
	if err != nil {
		return 0, err
	}
	var got struct {
		ID    int    `json:"id"`
		Email string `json:"email"`
	}
	if err := remarshal(res.StructuredContent, &got); err != nil || got.ID == 0 || got.Email != email {
		return 0, fmt.Errorf("create_customer %s: wrong answer %v (%v)", email, res.StructuredContent, err)
	}
	return got.ID, nil
}

func lookup(s *mcp.ClientSession, id string, retries *atomic.Int64) error {
	res, err := callWithRetry(s, "lookup", "lookup-"+id, map[string]any{"id": id}, retries)
	if err != nil {
		return err
	}
	var got struct {
		ID string `json:"id"`
	}
	if err := remarshal(res.StructuredContent, &got); err != nil || got.ID != id {
		return fmt.Errorf("lookup %s: wrong answer %v (%v)", id, res.StructuredContent, err)
	}
	return nil
}

func remarshal(v, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
