package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/toolbus/toolbus/telemetry"
)

// BacklogOptions configure a BacklogWatcher.
type BacklogOptions struct {
	Stream    string
	Consumers []string
	// Every is the polling period (default 10s).
	Every  time.Duration
	Logger *slog.Logger
}

// BacklogWatcher reads the info of durable consumers periodically and
// exposes it as gauges: toolbus.consumer.pending (messages not yet
// delivered: the backlog that Kubernetes scales on), toolbus.consumer.ack_pending
// (delivered, not yet acknowledged) and toolbus.consumer.redelivered
// (delivered more than once and not yet acknowledged). Scrapes read the last
// poll, so a slow or absent NATS never blocks /metrics.
type BacklogWatcher struct {
	js   jetstream.JetStream
	opts BacklogOptions
	reg  metric.Registration

	mu   sync.Mutex
	last map[string]*jetstream.ConsumerInfo

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// WatchBacklog starts polling (one goroutine, owned by the watcher: call
// Stop). It polls once before returning so the gauges have values at once.
func WatchBacklog(ctx context.Context, js jetstream.JetStream, mp metric.MeterProvider, opts BacklogOptions) (*BacklogWatcher, error) {
	if opts.Every <= 0 {
		opts.Every = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &BacklogWatcher{js: js, opts: opts, last: map[string]*jetstream.ConsumerInfo{}, stop: make(chan struct{}), done: make(chan struct{})}
	m := mp.Meter(telemetry.MeterName)
	pending, err1 := m.Int64ObservableGauge("toolbus.consumer.pending", metric.WithUnit("{message}"),
		metric.WithDescription("Calls waiting in the upstream's consumer, not yet delivered to a worker (the backlog)."))
	ackPending, err2 := m.Int64ObservableGauge("toolbus.consumer.ack_pending", metric.WithUnit("{message}"),
		metric.WithDescription("Calls delivered to workers and not yet acknowledged (in flight)."))
	redelivered, err3 := m.Int64ObservableGauge("toolbus.consumer.redelivered", metric.WithUnit("{message}"),
		metric.WithDescription("Calls delivered more than once and not yet acknowledged."))
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	w.reg, err1 = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for name, ci := range w.last {
			set := metric.WithAttributeSet(attribute.NewSet(
				attribute.String(telemetry.LabelConsumer, name), attribute.String(telemetry.LabelStream, opts.Stream)))
			o.ObserveInt64(pending, int64(ci.NumPending), set)
			o.ObserveInt64(ackPending, int64(ci.NumAckPending), set)
			o.ObserveInt64(redelivered, int64(ci.NumRedelivered), set)
		}
		return nil
	}, pending, ackPending, redelivered)
	if err1 != nil {
		return nil, err1
	}
	w.poll(ctx)
	go w.run()
	return w, nil
}

func (w *BacklogWatcher) run() {
	defer close(w.done)
	t := time.NewTicker(w.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), min(w.opts.Every, 5*time.Second))
			w.poll(ctx)
			cancel()
		}
	}
}

func (w *BacklogWatcher) poll(ctx context.Context) {
	for _, name := range w.opts.Consumers {
		c, err := w.js.Consumer(ctx, w.opts.Stream, name)
		var ci *jetstream.ConsumerInfo
		if err == nil {
			ci, err = c.Info(ctx)
		}
		if err != nil {
			// Keep the last value; NATS being away is reported elsewhere.
			w.opts.Logger.Debug("consumer info", "consumer", name, "error", err)
			continue
		}
		w.mu.Lock()
		w.last[name] = ci
		w.mu.Unlock()
	}
}

// Stop ends polling and removes the gauges' callback. It is idempotent.
func (w *BacklogWatcher) Stop() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		_ = w.reg.Unregister()
	})
}
