package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnectOptions configures a connection to NATS.
type ConnectOptions struct {
	// URL of the NATS server or cluster (comma-separated seeds). Ignored when
	// InProcess is set.
	URL string
	// InProcess connects to an embedded server without a socket.
	InProcess *server.Server
	// Name identifies the client in NATS monitoring (service and instance).
	Name   string
	Logger *slog.Logger
}

// Connect connects to NATS. If the server is not reachable yet, the
// connection keeps retrying in the background (logging each failure) instead
// of failing: Kubernetes starts pods in any order. Use WaitJetStream to block
// until the bus is usable. Publishes fail immediately while disconnected
// rather than being buffered, so callers get a prompt, clear error.
func Connect(opts ConnectOptions) (*nats.Conn, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	throttle := &logThrottle{every: 10 * time.Second}
	nopts := []nats.Option{
		nats.Name(opts.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			// Retries run every few hundred milliseconds: say so once in a while.
			if throttle.allow(time.Now()) {
				log.Warn("nats unreachable, retrying", "url", RedactURL(opts.URL), "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "error", err)
		}),
	}
	url := opts.URL
	if opts.InProcess != nil {
		nopts = append(nopts, nats.InProcessServer(opts.InProcess))
		url = ""
	} else if url == "" {
		return nil, errors.New("nats: no URL and no embedded server")
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", RedactURL(url), err)
	}
	return nc, nil
}

// WaitJetStream blocks until JetStream answers on nc, or ctx ends. It logs
// why it is still waiting at most every few seconds.
func WaitJetStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	var lastLog time.Time
	wait := 100 * time.Millisecond
	for {
		var err error
		if nc.IsConnected() {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.AccountInfo(actx)
			cancel()
			if err == nil {
				return nil
			}
		} else {
			err = nats.ErrNoServers
		}
		if time.Since(lastLog) > 5*time.Second {
			log.Warn("waiting for NATS JetStream", "url", RedactURL(nc.Opts.Url), "error", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for NATS JetStream: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// EmbeddedOptions configures an in-process NATS server with JetStream.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// Host and Port to listen on for other processes; Port -1 picks a free
	// port; DontListen serves only in-process connections.
	Host       string
	Port       int
	DontListen bool
	// ServerName in monitoring and logs.
	ServerName string
}

// StartEmbedded starts a NATS server with JetStream inside this process and
// waits until it accepts connections.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	name := opts.ServerName
	if name == "" {
		name = "toolbus-embedded"
	}
	sopts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       opts.Port,
		DontListen: opts.DontListen,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Calls carry at most 1 MiB of arguments; leave room for headers.
		MaxPayload: 8 << 20,
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 15s")
	}
	return ns, nil
}

// logThrottle lets one message through per period.
type logThrottle struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
}

func (l *logThrottle) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < l.every {
		return false
	}
	l.last = now
	return true
}

// RedactURL hides credentials in a NATS URL list (user, password or token).
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
