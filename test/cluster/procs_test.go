package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the Toolbus repository this module lives in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("%s is not the repository root: %v", root, err)
	}
	return root
}

// natsServerBin is the nats-server that `make tools` builds.
func natsServerBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("NATS_SERVER")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "nats-server")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nats-server not found at %s (run 'make tools' or set NATS_SERVER): %v", bin, err)
	}
	return bin
}

// buildToolbus builds cmd/toolbus from the repository in workspace mode,
// or returns $TOOLBUS_BIN when set (a binary built by `make build`).
func buildToolbus(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("TOOLBUS_BIN"); bin != "" {
		return bin
	}
	out := filepath.Join(t.TempDir(), "toolbus")
	cmd := exec.Command("go", "build", "-o", out, "github.com/toolbus/toolbus/cmd/toolbus")
	cmd.Dir = repoRoot(t)
	// Workspace mode: no GOWORK=off, and no -mod flag (which this module's
	// own build may use) in GOFLAGS.
	var env []string
	for _, e := range os.Environ() {
		switch {
		case strings.HasPrefix(e, "GOWORK="):
		case strings.HasPrefix(e, "GOFLAGS="):
			var keep []string
			for _, f := range strings.Fields(strings.TrimPrefix(e, "GOFLAGS=")) {
				if !strings.HasPrefix(f, "-mod=") {
					keep = append(keep, f)
				}
			}
			env = append(env, "GOFLAGS="+strings.Join(keep, " "))
		default:
			env = append(env, e)
		}
	}
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build toolbus: %v\n%s", err, b)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process whose output is kept for the test log and whose
// JSON log lines can be waited for.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
	seen  *sync.Cond
}

func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.seen = sync.NewCond(&p.mu)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.seen.Broadcast()
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		w.Close()
		close(p.done)
		p.mu.Lock()
		p.seen.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 15*time.Second)
		if t.Failed() {
			p.mu.Lock()
			defer p.mu.Unlock()
			n := len(p.lines)
			from := max(0, n-60)
			t.Logf("last %d lines of %s:\n%s", n-from, name, strings.Join(p.lines[from:], "\n"))
		}
	})
	return p
}

// stop sends sig and waits up to wait before killing the process.
func (p *proc) stop(sig syscall.Signal, wait time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLog waits for a JSON log line whose msg is msg and returns its fields.
func (p *proc) waitLog(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { p.mu.Lock(); p.seen.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; ; {
		for ; i < len(p.lines); i++ {
			var m map[string]any
			if json.Unmarshal([]byte(p.lines[i]), &m) == nil && m["msg"] == msg {
				return m
			}
		}
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("%s: no %q log line within %s (exited: %v)", p.name, msg, timeout, p.exited())
		}
		p.seen.Wait()
	}
}

// natsNode is one server of the loopback cluster.
type natsNode struct {
	name                  string
	client, cluster, http int
	confFile, storeDir    string
	proc                  *proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.client) }

// clusterConfig rewrites the StatefulSet's nats.conf for loopback: the same
// file, with addresses, routes and paths replaced. Every replaced text must
// be present exactly once, so that the test follows the manifest.
func clusterConfig(t *testing.T, src string, nodes []*natsNode, i int) string {
	t.Helper()
	n := nodes[i]
	repl := []string{
		"listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", n.client),
		"http: 0.0.0.0:8222", fmt.Sprintf("http: 127.0.0.1:%d", n.http),
		"listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", n.cluster),
		"pid_file: /var/run/nats/nats.pid", "pid_file: " + strconv.Quote(filepath.Join(n.storeDir, "nats.pid")),
		"store_dir: /data", "store_dir: " + strconv.Quote(n.storeDir),
	}
	for j, o := range nodes {
		repl = append(repl, fmt.Sprintf("nats://nats-%d.nats-headless:6222", j), fmt.Sprintf("nats://127.0.0.1:%d", o.cluster))
	}
	for k := 0; k < len(repl); k += 2 {
		if c := strings.Count(src, repl[k]); c != 1 {
			t.Fatalf("nats.conf: %q occurs %d times, want 1: update clusterConfig to follow the manifest", repl[k], c)
		}
		src = strings.Replace(src, repl[k], repl[k+1], 1)
	}
	return src
}

func startCluster(t *testing.T) []*natsNode {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "base", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nodes := make([]*natsNode, 3)
	for i := range nodes {
		nodes[i] = &natsNode{name: fmt.Sprintf("nats-%d", i), client: freePort(t), cluster: freePort(t), http: freePort(t), storeDir: filepath.Join(dir, fmt.Sprintf("nats-%d", i))}
		if err := os.MkdirAll(nodes[i].storeDir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes {
		n.confFile = filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(n.confFile, []byte(clusterConfig(t, string(conf), nodes, i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitHealthy(t, 60*time.Second)
	}
	return nodes
}

// start runs the server as the pod does: same config file, SERVER_NAME from
// the pod name, same store directory across restarts.
func (n *natsNode) start(t *testing.T) {
	t.Helper()
	n.proc = startProc(t, n.name, natsServerBin(t), []string{"SERVER_NAME=" + n.name}, "--config", n.confFile)
}

// waitHealthy polls the startup probe's endpoint (/healthz: JetStream up and
// streams caught up) like the kubelet does.
func (n *natsNode) waitHealthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.http)
	for {
		res, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s: %s", res.Status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %s: %v", n.name, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
