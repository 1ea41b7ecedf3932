package validate

import (
	"fmt"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// networkPolicies: every policy selects pods that exist; every same-namespace
// peer selects pods that exist; every port a rule opens is one the pods on
// the receiving side declare (a typo in a named port silently allows nothing).
func (c *checker) networkPolicies() {
	for _, np := range c.s.NetworkPolicies {
		obj := "NetworkPolicy/" + np.Name
		targets, err := c.selecting(&np.Spec.PodSelector)
		if err != nil {
			c.addf("netpol", obj, "bad podSelector: %v", err)
			continue
		}
		if len(targets) == 0 {
			c.addf("netpol", obj, "podSelector selects no pods in the render")
			continue
		}
		types := np.Spec.PolicyTypes
		if len(np.Spec.Egress) > 0 && !slices.Contains(types, networkingv1.PolicyTypeEgress) {
			c.addf("netpol", obj, "has egress rules but policyTypes lacks Egress")
		}
		for i, r := range np.Spec.Ingress {
			robj := fmt.Sprintf("%s ingress %d", obj, i)
			c.peers(robj, r.From)
			c.policyPorts(robj, r.Ports, targets)
		}
		for i, r := range np.Spec.Egress {
			robj := fmt.Sprintf("%s egress %d", obj, i)
			receivers := c.peers(robj, r.To)
			if receivers != nil { // only pods of this namespace can be checked
				c.policyPorts(robj, r.Ports, receivers)
			}
		}
	}
}

// peers checks same-namespace pod peers and returns the workloads they
// select, or nil when any peer is outside the render (namespace or IP block).
func (c *checker) peers(obj string, ps []networkingv1.NetworkPolicyPeer) []workload {
	var all []workload
	outside := len(ps) == 0
	for _, p := range ps {
		if p.NamespaceSelector != nil || p.IPBlock != nil || p.PodSelector == nil {
			outside = true
			continue
		}
		ws, err := c.selecting(p.PodSelector)
		if err != nil {
			c.addf("netpol", obj, "bad peer podSelector: %v", err)
			continue
		}
		if len(ws) == 0 {
			sel, _ := metav1LabelSelectorString(p.PodSelector)
			c.addf("netpol", obj, "peer podSelector %s selects no pods in the render", sel)
		}
		all = append(all, ws...)
	}
	if outside {
		return nil
	}
	return all
}

func (c *checker) policyPorts(obj string, ports []networkingv1.NetworkPolicyPort, receivers []workload) {
	for _, p := range ports {
		if p.Port == nil {
			continue
		}
		name, number := "", int32(0)
		if p.Port.Type == intstr.String {
			name = p.Port.StrVal
		} else {
			number = p.Port.IntVal
		}
		for _, w := range receivers {
			if !declaresPort(w.spec, name, number) {
				c.addf("netpol", obj, "opens port %s, which %s does not declare", p.Port.String(), w)
			}
		}
	}
}

// ingress: the public paths reach the right Services on ports they expose.
func (c *checker) ingress() {
	want := map[string]string{"/mcp": "mcp-front", "/webhooks": "webhook-ingest"}
	found := map[string]bool{}
	for _, ing := range c.s.Ingresses {
		obj := "Ingress/" + ing.Name
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName == "" {
			c.addf("ingress", obj, "has no ingressClassName")
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil {
					c.addf("ingress", obj, "path %s has no Service backend", p.Path)
					continue
				}
				if svc, ok := want[p.Path]; ok {
					found[p.Path] = true
					if b.Name != svc {
						c.addf("ingress", obj, "path %s goes to %s, want %s", p.Path, b.Name, svc)
					}
				}
				s := c.service(b.Name)
				if s == nil {
					c.addf("ingress", obj, "path %s: Service %q is not in the render", p.Path, b.Name)
					continue
				}
				ok := false
				for _, sp := range s.Spec.Ports {
					ok = ok || (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Name == "" && sp.Port == b.Port.Number)
				}
				if !ok {
					c.addf("ingress", obj, "path %s: Service %s has no port %s%d", p.Path, b.Name, b.Port.Name, b.Port.Number)
				}
			}
		}
	}
	for path, svc := range want {
		if !found[path] {
			c.addf("ingress", "Ingress", "no rule routes %s to %s", path, svc)
		}
	}
}

func metav1LabelSelectorString(s *metav1.LabelSelector) (string, error) {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "", err
	}
	return sel.String(), nil
}
