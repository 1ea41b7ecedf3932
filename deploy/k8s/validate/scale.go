package validate

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/toolbus/toolbus/bus"
	"github.com/toolbus/toolbus/catalog"
)

// Services by how they scale.
var (
	cpuScaled     = []string{"mcp-front", "webhook-ingest"}
	backlogScaled = []string{"rest-worker", "graphql-worker", "state-updater"}
)

// backlog is one stream/consumer pair a worker drains.
type backlog struct{ Stream, Consumer string }

// expectedBacklog returns the consumers a worker Deployment must scale on,
// computed with package bus from the deployed catalog.
func expectedBacklog(target string, cat *catalog.Catalog) ([]backlog, error) {
	var kinds []catalog.Kind
	switch target {
	case "rest-worker":
		// The rest-worker also serves SOAP upstreams (calls-soap-<name>).
		kinds = []catalog.Kind{catalog.KindREST, catalog.KindSOAP}
	case "graphql-worker":
		kinds = []catalog.Kind{catalog.KindGraphQL}
	case "state-updater":
		var out []backlog
		for name := range cat.Projections {
			out = append(out, backlog{bus.StreamWebhooks, bus.StateConsumerName(name)})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("the catalog has no projection, so %s has no consumer to scale on", target)
		}
		slices.SortFunc(out, func(a, b backlog) int { return strings.Compare(a.Consumer, b.Consumer) })
		return out, nil
	default:
		return nil, fmt.Errorf("%s consumes no JetStream backlog that Toolbus knows of", target)
	}
	var out []backlog
	for _, u := range cat.Upstreams {
		if slices.Contains(kinds, u.Kind) {
			out = append(out, backlog{bus.StreamCalls, bus.CallConsumerName(string(u.Kind), u.Name)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the catalog has no %v upstream, so %s has no consumer to scale on", kinds, target)
	}
	slices.SortFunc(out, func(a, b backlog) int { return strings.Compare(a.Consumer, b.Consumer) })
	return out, nil
}

// scaling: each gateway scales on CPU with an HPA; each worker with one
// ScaledObject (or one HPA with the hpa-fallback component); nothing is
// scaled twice, and autoscaled Deployments leave replicas to the scaler.
func (c *checker) scaling() {
	hpas, sos := map[string][]string{}, map[string][]string{}
	for _, h := range c.s.HPAs {
		obj := "HorizontalPodAutoscaler/" + h.Name
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || c.deployment(ref.Name) == nil {
			c.addf("scaling", obj, "scaleTargetRef %s %s/%s is not a Deployment in the render", ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			c.addf("scaling", obj, "minReplicas %d > maxReplicas %d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		hpas[ref.Name] = append(hpas[ref.Name], obj)
		if slices.Contains(cpuScaled, ref.Name) && !scalesOnCPU(h.Spec.Metrics) {
			c.addf("scaling", obj, "%s must scale on CPU utilisation", ref.Name)
		}
	}
	for _, so := range c.s.ScaledObjects {
		sos[so.Spec.ScaleTargetRef.Name] = append(sos[so.Spec.ScaleTargetRef.Name], "ScaledObject/"+so.Name)
	}
	for _, d := range c.s.Deployments {
		obj := "Deployment/" + d.Name
		h, k := hpas[d.Name], sos[d.Name]
		if len(h)+len(k) > 1 {
			c.addf("scaling", obj, "scaled by more than one autoscaler: %v", append(h, k...))
		}
		if len(h)+len(k) > 0 && d.Spec.Replicas != nil {
			c.addf("scaling", obj, "sets spec.replicas although %v owns the count (every apply would reset it)", append(h, k...))
		}
		switch {
		case slices.Contains(cpuScaled, d.Name) && len(h) == 0:
			c.addf("scaling", obj, "needs a CPU HorizontalPodAutoscaler")
		case slices.Contains(backlogScaled, d.Name) && c.e.KEDA && len(k) == 0:
			c.addf("scaling", obj, "needs a KEDA ScaledObject on its consumer backlog")
		case slices.Contains(backlogScaled, d.Name) && !c.e.KEDA && len(h) == 0:
			c.addf("scaling", obj, "needs a HorizontalPodAutoscaler (hpa-fallback component)")
		}
	}
	if !c.e.KEDA && len(c.s.ScaledObjects) > 0 {
		c.addf("scaling", "ScaledObject/"+c.s.ScaledObjects[0].Name, "this overlay is for clusters without KEDA")
	}
}

func scalesOnCPU(ms []autoscalingv2.MetricSpec) bool {
	for _, m := range ms {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil {
			return true
		}
	}
	return false
}

// keda: every ScaledObject targets a Deployment of the render and drains
// exactly the consumers package bus names for it, through the NATS
// monitoring endpoint of the render's own NATS Service.
func (c *checker) keda() {
	for _, so := range c.s.ScaledObjects {
		obj := "ScaledObject/" + so.Name
		ref := so.Spec.ScaleTargetRef
		if (ref.APIVersion != "" && ref.APIVersion != "apps/v1") || (ref.Kind != "" && ref.Kind != "Deployment") || c.deployment(ref.Name) == nil {
			c.addf("keda", obj, "scaleTargetRef %s/%s is not a Deployment in the render", ref.Kind, ref.Name)
			continue
		}
		if so.Spec.MinReplicaCount != nil && so.Spec.MaxReplicaCount != nil && *so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
			c.addf("keda", obj, "minReplicaCount > maxReplicaCount")
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 {
			// A worker scaled to zero never creates its consumer, and the
			// scaler then reads the whole stream as backlog.
			c.addf("keda", obj, "minReplicaCount must be at least 1")
		}
		var got []backlog
		names := map[string]bool{}
		for i, t := range so.Spec.Triggers {
			tobj := fmt.Sprintf("%s trigger %d", obj, i)
			if t.Type != "nats-jetstream" {
				c.addf("keda", tobj, "type %q: workers scale on their JetStream backlog (nats-jetstream)", t.Type)
				continue
			}
			if names[t.Name] {
				c.addf("keda", tobj, "duplicate trigger name %q", t.Name)
			}
			names[t.Name] = true
			for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
				if t.Metadata[k] == "" {
					c.addf("keda", tobj, "metadata.%s is missing", k)
				}
			}
			if n, err := strconv.Atoi(t.Metadata["lagThreshold"]); err != nil || n < 1 {
				c.addf("keda", tobj, "lagThreshold %q is not a positive integer", t.Metadata["lagThreshold"])
			}
			if a := t.Metadata["account"]; a != "$G" {
				c.addf("keda", tobj, "account %q: Toolbus uses the default account $G", a)
			}
			if err := c.monitoringEndpoint(t.Metadata["natsServerMonitoringEndpoint"]); err != nil {
				c.addf("keda", tobj, "natsServerMonitoringEndpoint: %v", err)
			}
			got = append(got, backlog{t.Metadata["stream"], t.Metadata["consumer"]})
		}
		if c.cat == nil {
			continue // the catalog check reported why
		}
		want, err := expectedBacklog(ref.Name, c.cat)
		if err != nil {
			c.addf("keda", obj, "%v", err)
			continue
		}
		slices.SortFunc(got, func(a, b backlog) int { return strings.Compare(a.Consumer, b.Consumer) })
		if !slices.Equal(got, want) {
			c.addf("keda", obj, "scales on %v, but the code's consumers for %s are %v", got, ref.Name, want)
		}
	}
}

// monitoringEndpoint checks that host:port is <service>.<namespace>.svc...
// of a Service in the render that selects the NATS pods and exposes their
// monitoring port. KEDA runs in its own namespace, so the name must be
// fully qualified.
func (c *checker) monitoringEndpoint(ep string) error {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return err
	}
	labels := strings.Split(host, ".")
	if len(labels) < 3 || labels[2] != "svc" {
		return fmt.Errorf("%q is not <service>.<namespace>.svc[.cluster.local]: KEDA resolves it from its own namespace", host)
	}
	if labels[1] != c.e.Namespace {
		return fmt.Errorf("namespace %q, want %q", labels[1], c.e.Namespace)
	}
	svc := c.service(labels[0])
	if svc == nil {
		return fmt.Errorf("Service %q is not in the render", labels[0])
	}
	pn, _ := strconv.Atoi(port)
	for _, p := range svc.Spec.Ports {
		if int(p.Port) != pn {
			continue
		}
		for _, w := range c.selectingMap(svc.Spec.Selector) {
			for _, ctr := range w.spec.Containers {
				if isNATS(&ctr) && containerDeclares(&ctr, p.TargetPort.StrVal, p.TargetPort.IntVal) {
					conf, err := c.natsConfig(w, &ctr)
					if err != nil {
						return err
					}
					if hp, ok := confValue(conf, "http"); !ok || !strings.HasSuffix(hp, ":"+strconv.Itoa(int(containerPortNumber(&ctr, p.TargetPort.StrVal, p.TargetPort.IntVal)))) {
						return fmt.Errorf("nats.conf does not serve monitoring (http) on the port Service %s:%d targets", svc.Name, pn)
					}
					return nil
				}
			}
		}
		return fmt.Errorf("Service %s port %d does not reach a nats-server container", svc.Name, pn)
	}
	return fmt.Errorf("Service %s has no port %d", svc.Name, pn)
}

func containerPortNumber(ctr *corev1.Container, name string, number int32) int32 {
	if name == "" {
		return number
	}
	for _, p := range ctr.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}
