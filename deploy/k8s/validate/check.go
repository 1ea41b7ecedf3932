package validate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/toolbus/toolbus/catalog"
)

// Problem is one failed check on one object.
type Problem struct {
	// Check names the rule, e.g. "probe-port"; tests match on it.
	Check string
	// Object is Kind/name of the object at fault.
	Object string
	Msg    string
}

func (p Problem) Error() string { return p.Check + ": " + p.Object + ": " + p.Msg }

// Expect is what an overlay must provide beyond internal consistency.
type Expect struct {
	// Namespace every object lives in.
	Namespace string
	// StreamReplicas is the JetStream replica count the services must be told.
	StreamReplicas int
	// KEDA says whether the workers scale with KEDA ScaledObjects (true) or
	// with plain HPAs (the hpa-fallback component).
	KEDA bool
	// DemoCatalog is the path of examples/demo/catalog.yaml.
	DemoCatalog string
}

// Check runs every check on s and returns the problems found, sorted.
func Check(s *Set, e Expect) []Problem {
	c := &checker{s: s, e: e}
	c.workloads()
	c.selectors()
	c.services()
	c.probes()
	c.resources()
	c.disruptionBudgets()
	c.references()
	c.security()
	c.grace()
	c.catalog() // before keda, which needs the catalog
	c.scaling()
	c.keda()
	c.networkPolicies()
	c.ingress()
	c.bus()
	sort.SliceStable(c.problems, func(i, j int) bool {
		a, b := c.problems[i], c.problems[j]
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Object < b.Object
	})
	return c.problems
}

type checker struct {
	s        *Set
	e        Expect
	pods     []workload
	problems []Problem
	cat      *catalog.Catalog
}

func (c *checker) addf(check, object, format string, args ...any) {
	c.problems = append(c.problems, Problem{Check: check, Object: object, Msg: fmt.Sprintf(format, args...)})
}

// workload is a Deployment or StatefulSet seen through its pod template.
type workload struct {
	kind, name  string
	meta        *metav1.ObjectMeta
	selector    *metav1.LabelSelector
	labels      labels.Set
	spec        *corev1.PodSpec
	replicasSet bool
}

func (w workload) String() string { return w.kind + "/" + w.name }

func (c *checker) workloads() {
	c.pods = nil
	for _, d := range c.s.Deployments {
		c.pods = append(c.pods, workload{kind: "Deployment", name: d.Name, meta: &d.ObjectMeta, selector: d.Spec.Selector,
			labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec, replicasSet: d.Spec.Replicas != nil})
	}
	for _, st := range c.s.StatefulSets {
		c.pods = append(c.pods, workload{kind: "StatefulSet", name: st.Name, meta: &st.ObjectMeta, selector: st.Spec.Selector,
			labels: st.Spec.Template.Labels, spec: &st.Spec.Template.Spec, replicasSet: st.Spec.Replicas != nil})
	}
}

// selecting returns the workloads whose pods a label selector selects.
// A nil selector selects nothing; an empty one selects everything.
func (c *checker) selecting(sel *metav1.LabelSelector) ([]workload, error) {
	if sel == nil {
		return nil, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	var out []workload
	for _, w := range c.pods {
		if s.Matches(w.labels) {
			out = append(out, w)
		}
	}
	return out, nil
}

func (c *checker) selectingMap(m map[string]string) []workload {
	if len(m) == 0 {
		return nil
	}
	var out []workload
	for _, w := range c.pods {
		if labels.SelectorFromSet(m).Matches(w.labels) {
			out = append(out, w)
		}
	}
	return out
}

func (c *checker) deployment(name string) *appsv1.Deployment {
	for _, d := range c.s.Deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (c *checker) service(name string) *corev1.Service {
	for _, s := range c.s.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// selectors: a workload's selector matches its own pods and no other
// workload's (two Deployments fighting over pods is a classic copy-paste).
func (c *checker) selectors() {
	for _, w := range c.pods {
		if w.selector == nil || (len(w.selector.MatchLabels) == 0 && len(w.selector.MatchExpressions) == 0) {
			c.addf("selector", w.String(), "has no selector")
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil {
			c.addf("selector", w.String(), "bad selector: %v", err)
			continue
		}
		if !sel.Matches(w.labels) {
			c.addf("selector", w.String(), "selector %s does not match its pod template labels %v", sel, w.labels)
		}
		for _, o := range c.pods {
			if o.String() != w.String() && sel.Matches(o.labels) {
				c.addf("selector", w.String(), "selector %s also matches the pods of %s", sel, o)
			}
		}
	}
	for _, st := range c.s.StatefulSets {
		svc := c.service(st.Spec.ServiceName)
		switch {
		case svc == nil:
			c.addf("selector", "StatefulSet/"+st.Name, "serviceName %q is not a Service in the render", st.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			c.addf("selector", "StatefulSet/"+st.Name, "serviceName %q is not a headless Service", st.Spec.ServiceName)
		}
	}
}

// services: every Service selects pods, and every target port is a port
// those pods declare.
func (c *checker) services() {
	for _, s := range c.s.Services {
		obj := "Service/" + s.Name
		ws := c.selectingMap(s.Spec.Selector)
		if len(ws) == 0 {
			c.addf("selector", obj, "selector %v selects no pods in the render", s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.String() == "0" || target.String() == "" {
				target.IntVal, target.StrVal = p.Port, ""
			}
			for _, w := range ws {
				if !declaresPort(w.spec, target.StrVal, target.IntVal) {
					c.addf("service-port", obj, "port %s targets %s, which %s does not declare", p.Name, target.String(), w)
				}
			}
		}
	}
}

// declaresPort reports whether a container of spec declares the named port
// (name != "") or the numbered one.
func declaresPort(spec *corev1.PodSpec, name string, number int32) bool {
	for _, ctr := range spec.Containers {
		for _, p := range ctr.Ports {
			if (name != "" && p.Name == name) || (name == "" && p.ContainerPort == number) {
				return true
			}
		}
	}
	return false
}

func containerDeclares(ctr *corev1.Container, name string, number int32) bool {
	for _, p := range ctr.Ports {
		if (name != "" && p.Name == name) || (name == "" && p.ContainerPort == number) {
			return true
		}
	}
	return false
}

// probes: every container has startup, readiness and liveness probes, and
// each probe hits a port that container declares.
func (c *checker) probes() {
	for _, w := range c.pods {
		for i := range w.spec.Containers {
			ctr := &w.spec.Containers[i]
			obj := w.String() + "/" + ctr.Name
			for _, p := range []struct {
				kind  string
				probe *corev1.Probe
			}{{"startup", ctr.StartupProbe}, {"readiness", ctr.ReadinessProbe}, {"liveness", ctr.LivenessProbe}} {
				if p.probe == nil {
					c.addf("probes", obj, "has no %s probe", p.kind)
					continue
				}
				name, number, ok := probePort(p.probe)
				if !ok {
					c.addf("probe-port", obj, "%s probe is neither httpGet, tcpSocket nor grpc", p.kind)
					continue
				}
				if !containerDeclares(ctr, name, number) {
					port := name
					if port == "" {
						port = fmt.Sprint(number)
					}
					c.addf("probe-port", obj, "%s probe uses port %s, which the container does not declare", p.kind, port)
				}
			}
		}
	}
}

func probePort(p *corev1.Probe) (name string, number int32, ok bool) {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port.StrVal, p.HTTPGet.Port.IntVal, true
	case p.TCPSocket != nil:
		return p.TCPSocket.Port.StrVal, p.TCPSocket.Port.IntVal, true
	case p.GRPC != nil:
		return "", p.GRPC.Port, true
	}
	return "", 0, false
}

// resources: requests and limits for CPU and memory on every container.
func (c *checker) resources() {
	for _, w := range c.pods {
		for _, ctr := range w.spec.Containers {
			obj := w.String() + "/" + ctr.Name
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := ctr.Resources.Requests[r]; !ok || q.IsZero() {
					c.addf("resources", obj, "no %s request", r)
				}
				if q, ok := ctr.Resources.Limits[r]; !ok || q.IsZero() {
					c.addf("resources", obj, "no %s limit", r)
				}
			}
		}
	}
}

// disruptionBudgets: every workload is covered by exactly one PDB, and
// every PDB covers a workload.
func (c *checker) disruptionBudgets() {
	covered := map[string]int{}
	for _, p := range c.s.PDBs {
		ws, err := c.selecting(p.Spec.Selector)
		if err != nil {
			c.addf("selector", "PodDisruptionBudget/"+p.Name, "bad selector: %v", err)
			continue
		}
		if len(ws) == 0 {
			c.addf("selector", "PodDisruptionBudget/"+p.Name, "selects no pods in the render")
		}
		for _, w := range ws {
			covered[w.String()]++
		}
	}
	for _, w := range c.pods {
		switch covered[w.String()] {
		case 0:
			c.addf("pdb", w.String(), "no PodDisruptionBudget selects its pods")
		case 1:
		default:
			c.addf("pdb", w.String(), "%d PodDisruptionBudgets select its pods (the eviction API refuses that)", covered[w.String()])
		}
	}
}

const externalSecretsAnnotation = "toolbus.io/external-secrets"

func externalSecrets(m *metav1.ObjectMeta) []string {
	var out []string
	for _, s := range strings.Split(m.Annotations[externalSecretsAnnotation], ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// references: ConfigMaps, Secrets and ServiceAccounts that pods name exist
// in the render. A Secret may instead be declared external (created out of
// band) in the workload's toolbus.io/external-secrets annotation.
func (c *checker) references() {
	cms, secrets, sas := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, o := range c.s.ConfigMaps {
		cms[o.Name] = true
	}
	for _, o := range c.s.Secrets {
		secrets[o.Name] = true
	}
	for _, o := range c.s.ServiceAccounts {
		sas[o.Name] = true
	}
	for _, w := range c.pods {
		ext := externalSecrets(w.meta)
		needCM := func(name, where string) {
			if !cms[name] {
				c.addf("ref", w.String(), "%s names ConfigMap %q, which is not in the render", where, name)
			}
		}
		needSecret := func(name, where string) {
			if !secrets[name] && !slices.Contains(ext, name) {
				c.addf("ref", w.String(), "%s names Secret %q, which is neither in the render nor declared in %s", where, name, externalSecretsAnnotation)
			}
		}
		sa := w.spec.ServiceAccountName
		if sa == "" {
			c.addf("ref", w.String(), "runs as the namespace's default ServiceAccount; give it its own")
		} else if !sas[sa] {
			c.addf("ref", w.String(), "serviceAccountName %q is not a ServiceAccount in the render", sa)
		}
		used := map[string]bool{} // Secrets the pod names
		for _, v := range w.spec.Volumes {
			if v.ConfigMap != nil {
				needCM(v.ConfigMap.Name, "volume "+v.Name)
			}
			if v.Secret != nil {
				needSecret(v.Secret.SecretName, "volume "+v.Name)
				used[v.Secret.SecretName] = true
			}
		}
		for _, ctr := range append(slices.Clone(w.spec.InitContainers), w.spec.Containers...) {
			for _, ef := range ctr.EnvFrom {
				if ef.ConfigMapRef != nil {
					needCM(ef.ConfigMapRef.Name, "envFrom of "+ctr.Name)
				}
				if ef.SecretRef != nil {
					needSecret(ef.SecretRef.Name, "envFrom of "+ctr.Name)
					used[ef.SecretRef.Name] = true
				}
			}
			for _, ev := range ctr.Env {
				if ev.ValueFrom == nil {
					continue
				}
				if r := ev.ValueFrom.ConfigMapKeyRef; r != nil {
					needCM(r.Name, "env "+ev.Name)
				}
				if r := ev.ValueFrom.SecretKeyRef; r != nil {
					needSecret(r.Name, "env "+ev.Name)
					used[r.Name] = true
				}
			}
		}
		for _, name := range ext {
			generated := false // an overlay's generator suffixes the name
			for u := range used {
				generated = generated || strings.HasPrefix(u, name+"-")
			}
			if !used[name] && !generated {
				c.addf("ref", w.String(), "%s lists Secret %q, which the pod does not use: remove it", externalSecretsAnnotation, name)
			}
		}
	}
	for _, ing := range c.s.Ingresses {
		ext := externalSecrets(&ing.ObjectMeta)
		for _, t := range ing.Spec.TLS {
			if t.SecretName != "" && !secrets[t.SecretName] && !slices.Contains(ext, t.SecretName) {
				c.addf("ref", "Ingress/"+ing.Name, "TLS names Secret %q, which is neither in the render nor declared in %s", t.SecretName, externalSecretsAnnotation)
			}
		}
	}
}

// security: the restricted Pod Security Standard plus a read-only root file
// system, and no Kubernetes API credentials in any pod.
func (c *checker) security() {
	for _, ns := range c.s.Namespaces {
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			c.addf("security", "Namespace/"+ns.Name, "does not enforce the restricted Pod Security Standard")
		}
	}
	for _, sa := range c.s.ServiceAccounts {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			c.addf("security", "ServiceAccount/"+sa.Name, "automountServiceAccountToken is not false")
		}
	}
	for _, w := range c.pods {
		ps := w.spec
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			c.addf("security", w.String(), "pod automountServiceAccountToken is not false")
		}
		podNonRoot := ps.SecurityContext != nil && ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot
		podSeccomp := ps.SecurityContext != nil && ps.SecurityContext.SeccompProfile != nil && ps.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			c.addf("security", w.String(), "uses a host namespace")
		}
		for _, ctr := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
			obj := w.String() + "/" + ctr.Name
			sc := ctr.SecurityContext
			if sc == nil {
				c.addf("security", obj, "has no securityContext")
				continue
			}
			if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				c.addf("security", obj, "runAsNonRoot is not true")
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 || ps.SecurityContext != nil && ps.SecurityContext.RunAsUser != nil && *ps.SecurityContext.RunAsUser == 0 {
				c.addf("security", obj, "runs as user 0")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				c.addf("security", obj, "allowPrivilegeEscalation is not false")
			}
			if sc.Privileged != nil && *sc.Privileged {
				c.addf("security", obj, "is privileged")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				c.addf("security", obj, "readOnlyRootFilesystem is not true")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				c.addf("security", obj, "does not drop ALL capabilities")
			} else if len(sc.Capabilities.Add) > 0 {
				c.addf("security", obj, "adds capabilities %v", sc.Capabilities.Add)
			}
			ctrSeccomp := sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
			if !podSeccomp && !ctrSeccomp {
				c.addf("security", obj, "seccompProfile is not RuntimeDefault")
			}
		}
	}
}
