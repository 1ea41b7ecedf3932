package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Lookup helpers for mutations: they fail loudly when the render changed
// under the test.

func find[T any](t *testing.T, list []*T, name string, nameOf func(*T) string) *T {
	t.Helper()
	for _, o := range list {
		if nameOf(o) == name {
			return o
		}
	}
	t.Fatalf("no %T named %s in the render", *new(T), name)
	return nil
}

func dep(t *testing.T, s *Set, name string) *appsv1.Deployment {
	return find(t, s.Deployments, name, func(d *appsv1.Deployment) string { return d.Name })
}

func ctr0(t *testing.T, s *Set, name string) *corev1.Container {
	return &dep(t, s, name).Spec.Template.Spec.Containers[0]
}

func natsSTS(t *testing.T, s *Set) *appsv1.StatefulSet {
	return find(t, s.StatefulSets, "nats", func(d *appsv1.StatefulSet) string { return d.Name })
}

func svc(t *testing.T, s *Set, name string) *corev1.Service {
	return find(t, s.Services, name, func(d *corev1.Service) string { return d.Name })
}

func netpol(t *testing.T, s *Set, name string) *networkingv1.NetworkPolicy {
	return find(t, s.NetworkPolicies, name, func(d *networkingv1.NetworkPolicy) string { return d.Name })
}

func scaledObject(t *testing.T, s *Set, name string) *ScaledObject {
	return find(t, s.ScaledObjects, name, func(d *ScaledObject) string { return d.Name })
}

// configMap finds a generated ConfigMap by its name before the hash suffix.
func configMap(t *testing.T, s *Set, prefix string) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range s.ConfigMaps {
		if strings.HasPrefix(cm.Name, prefix+"-") {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %s-<hash>", prefix)
	return nil
}

func replaceIn(t *testing.T, s *string, old, new string) {
	t.Helper()
	if !strings.Contains(*s, old) {
		t.Fatalf("%q not found to replace", old)
	}
	*s = strings.Replace(*s, old, new, 1)
}

func removePDB(s *Set, name string) {
	for i, p := range s.PDBs {
		if p.Name == name {
			s.PDBs = append(s.PDBs[:i], s.PDBs[i+1:]...)
			return
		}
	}
}

func ptr[T any](v T) *T { return &v }

// removeSecretMount drops the named volume and its mount from d.
func removeSecretMount(t *testing.T, d *appsv1.Deployment, name string) {
	t.Helper()
	spec := &d.Spec.Template.Spec
	n := len(spec.Volumes)
	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	c := &spec.Containers[0]
	c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == name })
	if len(spec.Volumes) == n {
		t.Fatalf("%s has no volume %s", d.Name, name)
	}
}

// TestChecksCatchBrokenManifests breaks one thing in a rendered overlay and
// expects the check that guards it to say so, about the right object.
func TestChecksCatchBrokenManifests(t *testing.T) {
	tests := []struct {
		name       string
		overlay    string
		mutate     func(*testing.T, *Set)
		wantCheck  string
		wantObject string
		wantMsg    string
	}{
		// selectors
		{"deployment selector misses its pods", "prod", func(t *testing.T, s *Set) {
			dep(t, s, "mcp-front").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "mcp-fronts"
		}, "selector", "Deployment/mcp-front", "does not match its pod template"},
		{"service selects nothing", "prod", func(t *testing.T, s *Set) {
			svc(t, s, "mcp-front").Spec.Selector["app.kubernetes.io/name"] = "mcp"
		}, "selector", "Service/mcp-front", "selects no pods"},
		{"PDB selects nothing", "dev", func(t *testing.T, s *Set) {
			find(t, s.PDBs, "jaeger", nameOfPDB).Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "jaegr"
		}, "selector", "PodDisruptionBudget/jaeger", "selects no pods"},
		{"statefulset without its headless service", "prod", func(t *testing.T, s *Set) {
			natsSTS(t, s).Spec.ServiceName = "nats"
		}, "selector", "StatefulSet/nats", "not a headless Service"},
		{"service targets an undeclared port", "prod", func(t *testing.T, s *Set) {
			svc(t, s, "nats").Spec.Ports[1].TargetPort = intstr.FromString("monitoring")
		}, "service-port", "Service/nats", "targets monitoring"},

		// probes
		{"grpc probe on an undeclared port", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "mcp-front").ReadinessProbe.GRPC.Port = 9091
		}, "probe-port", "Deployment/mcp-front/toolbus", "readiness probe uses port 9091"},
		{"http probe on an undeclared named port", "prod", func(t *testing.T, s *Set) {
			natsSTS(t, s).Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromString("monitoring")
		}, "probe-port", "StatefulSet/nats/nats", "liveness probe uses port monitoring"},
		{"missing startup probe", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "rest-worker").StartupProbe = nil
		}, "probes", "Deployment/rest-worker/toolbus", "no startup probe"},
		{"missing liveness probe", "dev", func(t *testing.T, s *Set) {
			ctr0(t, s, "jaeger").LivenessProbe = nil
		}, "probes", "Deployment/jaeger/jaeger", "no liveness probe"},

		// resources and budgets
		{"missing memory limit", "prod", func(t *testing.T, s *Set) {
			delete(natsSTS(t, s).Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "resources", "StatefulSet/nats/nats", "no memory limit"},
		{"missing cpu request", "dev", func(t *testing.T, s *Set) {
			delete(ctr0(t, s, "webhook-ingest").Resources.Requests, corev1.ResourceCPU)
		}, "resources", "Deployment/webhook-ingest/toolbus", "no cpu request"},
		{"missing PDB", "prod", func(t *testing.T, s *Set) {
			removePDB(s, "rest-worker")
		}, "pdb", "Deployment/rest-worker", "no PodDisruptionBudget"},

		// references
		{"envFrom a missing ConfigMap", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "mcp-front").EnvFrom[0].ConfigMapRef.Name = "toolbus-config"
		}, "ref", "Deployment/mcp-front", `ConfigMap "toolbus-config"`},
		{"volume from a missing ConfigMap", "prod", func(t *testing.T, s *Set) {
			natsSTS(t, s).Spec.Template.Spec.Volumes[0].ConfigMap.Name = "nats-config"
		}, "ref", "StatefulSet/nats", `ConfigMap "nats-config"`},
		{"secret neither rendered nor declared external", "prod", func(t *testing.T, s *Set) {
			delete(dep(t, s, "webhook-ingest").Annotations, externalSecretsAnnotation)
		}, "ref", "Deployment/webhook-ingest", `Secret "toolbus-webhook-secrets"`},
		{"external secret the pod does not use", "prod", func(t *testing.T, s *Set) {
			dep(t, s, "rest-worker").Annotations[externalSecretsAnnotation] += ",toolbus-webhook-secrets"
		}, "ref", "Deployment/rest-worker", `lists Secret "toolbus-webhook-secrets", which the pod does not use`},
		{"dev secret generator dropped", "dev", func(t *testing.T, s *Set) {
			s.Secrets = nil
			delete(dep(t, s, "rest-worker").Annotations, externalSecretsAnnotation)
		}, "ref", "Deployment/rest-worker", "Secret"},
		{"ingress TLS secret undeclared", "prod", func(t *testing.T, s *Set) {
			s.Ingresses[0].Annotations = nil
		}, "ref", "Ingress/toolbus", `Secret "toolbus-tls"`},
		{"missing ServiceAccount", "prod", func(t *testing.T, s *Set) {
			dep(t, s, "state-updater").Spec.Template.Spec.ServiceAccountName = "toolbus"
		}, "ref", "Deployment/state-updater", `serviceAccountName "toolbus"`},

		// security
		{"writable root file system", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "graphql-worker").SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "security", "Deployment/graphql-worker/toolbus", "readOnlyRootFilesystem"},
		{"capabilities kept", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "otel-collector").SecurityContext.Capabilities.Drop = nil
		}, "security", "Deployment/otel-collector/otel-collector", "drop ALL"},
		{"no seccomp profile", "prod", func(t *testing.T, s *Set) {
			natsSTS(t, s).Spec.Template.Spec.SecurityContext.SeccompProfile = nil
		}, "security", "StatefulSet/nats/nats", "seccompProfile"},
		{"may run as root", "prod", func(t *testing.T, s *Set) {
			p := dep(t, s, "mcp-front").Spec.Template.Spec.SecurityContext
			p.RunAsNonRoot, p.RunAsUser = nil, nil
			ctr0(t, s, "mcp-front").SecurityContext.RunAsNonRoot = nil
		}, "security", "Deployment/mcp-front/toolbus", "runAsNonRoot"},
		{"API token mounted", "prod", func(t *testing.T, s *Set) {
			find(t, s.ServiceAccounts, "rest-worker", nameOfSA).AutomountServiceAccountToken = nil
		}, "security", "ServiceAccount/rest-worker", "automountServiceAccountToken"},

		// graceful termination
		{"grace shorter than drain plus preStop", "prod", func(t *testing.T, s *Set) {
			dep(t, s, "mcp-front").Spec.Template.Spec.TerminationGracePeriodSeconds = ptr[int64](30)
		}, "grace", "Deployment/mcp-front/toolbus", "shutdown grace 25s + preStop pause 5s"},
		{"drain longer than grace", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "rest-worker").Args = []string{"serve", "--services=rest-worker", "--shutdown-grace=2m"}
		}, "grace", "Deployment/rest-worker/toolbus", "shutdown grace 2m0s"},
		{"default drain with the default grace", "prod", func(t *testing.T, s *Set) {
			ctr0(t, s, "state-updater").Args = []string{"serve", "--services=state-updater"}
			dep(t, s, "state-updater").Spec.Template.Spec.TerminationGracePeriodSeconds = ptr[int64](20)
		}, "grace", "Deployment/state-updater/toolbus", "shutdown grace 25s"},
		{"nats lame duck longer than grace", "prod", func(t *testing.T, s *Set) {
			cm := configMap(t, s, "nats-config")
			conf := cm.Data["nats.conf"]
			replaceIn(t, &conf, "lame_duck_duration: 30s", "lame_duck_duration: 2m")
			cm.Data["nats.conf"] = conf
		}, "grace", "StatefulSet/nats/nats", "lame_duck_duration 2m0s"},

		// scaling
		{"gateway without HPA", "prod", func(t *testing.T, s *Set) {
			s.HPAs = s.HPAs[:0]
		}, "scaling", "Deployment/mcp-front", "CPU HorizontalPodAutoscaler"},
		{"HPA on memory only", "prod", func(t *testing.T, s *Set) {
			h := find(t, s.HPAs, "webhook-ingest", nameOfHPA)
			h.Spec.Metrics[0].Resource.Name = corev1.ResourceMemory
		}, "scaling", "HorizontalPodAutoscaler/webhook-ingest", "CPU"},
		{"worker scaled twice", "prod", func(t *testing.T, s *Set) {
			h := find(t, s.HPAs, "mcp-front", nameOfHPA).DeepCopy()
			h.Name, h.Spec.ScaleTargetRef.Name = "rest-worker", "rest-worker"
			s.HPAs = append(s.HPAs, h)
		}, "scaling", "Deployment/rest-worker", "more than one autoscaler"},
		{"replicas fixed under an autoscaler", "prod", func(t *testing.T, s *Set) {
			dep(t, s, "mcp-front").Spec.Replicas = ptr[int32](2)
		}, "scaling", "Deployment/mcp-front", "sets spec.replicas"},
		{"HPA targets a missing Deployment", "prod-hpa", func(t *testing.T, s *Set) {
			find(t, s.HPAs, "graphql-worker", nameOfHPA).Spec.ScaleTargetRef.Name = "gql-worker"
		}, "scaling", "HorizontalPodAutoscaler/graphql-worker", "not a Deployment"},
		{"worker without any scaler", "prod-hpa", func(t *testing.T, s *Set) {
			var keep []*autoscalingv2.HorizontalPodAutoscaler
			for _, h := range s.HPAs {
				if h.Name != "state-updater" {
					keep = append(keep, h)
				}
			}
			s.HPAs = keep
		}, "scaling", "Deployment/state-updater", "needs a HorizontalPodAutoscaler"},

		// KEDA
		{"consumer name drifted from package bus", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.Triggers[0].Metadata["consumer"] = "rest-crm"
		}, "keda", "ScaledObject/rest-worker", "calls-rest-crm"},
		{"stream name drifted from package bus", "dev", func(t *testing.T, s *Set) {
			scaledObject(t, s, "graphql-worker").Spec.Triggers[0].Metadata["stream"] = "calls"
		}, "keda", "ScaledObject/graphql-worker", "{CALLS calls-graphql-crmgraphql}"},
		{"catalog upstream without a trigger", "prod", func(t *testing.T, s *Set) {
			cm := configMap(t, s, "toolbus-catalog")
			cat := cm.Data["catalog.yaml"]
			replaceIn(t, &cat, "\nupstreams:\n", "\nupstreams:\n  billing:\n    base_url: http://billing.example\n")
			cm.Data["catalog.yaml"] = cat
		}, "keda", "ScaledObject/rest-worker", "calls-rest-billing"},
		{"state consumer guessed instead of derived", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "state-updater").Spec.Triggers[0].Metadata["consumer"] = "state-updater"
		}, "keda", "ScaledObject/state-updater", "state-payments"},
		{"target is not a Deployment of the render", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.ScaleTargetRef.Name = "rest"
		}, "keda", "ScaledObject/rest-worker", "not a Deployment"},
		{"monitoring endpoint in another namespace", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.Triggers[0].Metadata["natsServerMonitoringEndpoint"] = "nats.nats.svc.cluster.local:8222"
		}, "keda", "ScaledObject/rest-worker trigger 0", `namespace "nats"`},
		{"monitoring endpoint on the client port", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.Triggers[0].Metadata["natsServerMonitoringEndpoint"] = "nats.toolbus.svc.cluster.local:4222"
		}, "keda", "ScaledObject/rest-worker trigger 0", "monitoring"},
		{"monitoring endpoint not fully qualified", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.Triggers[0].Metadata["natsServerMonitoringEndpoint"] = "nats:8222"
		}, "keda", "ScaledObject/rest-worker trigger 0", "KEDA resolves it"},
		{"scale to zero", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.MinReplicaCount = ptr[int32](0)
		}, "keda", "ScaledObject/rest-worker", "minReplicaCount must be at least 1"},
		{"bad lag threshold", "prod", func(t *testing.T, s *Set) {
			scaledObject(t, s, "rest-worker").Spec.Triggers[0].Metadata["lagThreshold"] = "lots"
		}, "keda", "ScaledObject/rest-worker trigger 0", "lagThreshold"},

		// network policies
		{"policy selects no pods", "prod", func(t *testing.T, s *Set) {
			netpol(t, s, "nats").Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] = "natz"
		}, "netpol", "NetworkPolicy/nats", "selects no pods"},
		{"peer selects no pods", "prod", func(t *testing.T, s *Set) {
			netpol(t, s, "toolbus-to-bus-and-telemetry").Spec.Egress[1].To[0].PodSelector.MatchLabels["app.kubernetes.io/name"] = "otel"
		}, "netpol", "NetworkPolicy/toolbus-to-bus-and-telemetry egress 1", "selects no pods"},
		{"ingress rule opens an undeclared port", "prod", func(t *testing.T, s *Set) {
			p := intstr.FromString("clients")
			netpol(t, s, "nats").Spec.Ingress[0].Ports[0].Port = &p
		}, "netpol", "NetworkPolicy/nats ingress 0", "opens port clients"},
		{"egress to the wrong port of a pod", "prod", func(t *testing.T, s *Set) {
			p := intstr.FromInt32(4223)
			netpol(t, s, "toolbus-to-bus-and-telemetry").Spec.Egress[0].Ports[0].Port = &p
		}, "netpol", "NetworkPolicy/toolbus-to-bus-and-telemetry egress 0", "opens port 4223"},

		// ingress
		{"mcp path to the wrong service", "prod", func(t *testing.T, s *Set) {
			s.Ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "webhook-ingest"
		}, "ingress", "Ingress/toolbus", "path /mcp goes to webhook-ingest"},
		{"backend port missing", "prod", func(t *testing.T, s *Set) {
			s.Ingresses[0].Spec.Rules[0].HTTP.Paths[1].Backend.Service.Port.Name = "https"
		}, "ingress", "Ingress/toolbus", "has no port https"},
		{"webhooks not routed", "dev", func(t *testing.T, s *Set) {
			s.Ingresses[0].Spec.Rules[0].HTTP.Paths = s.Ingresses[0].Spec.Rules[0].HTTP.Paths[:1]
		}, "ingress", "Ingress", "no rule routes /webhooks"},

		// bus
		{"prod streams at R1", "prod", func(t *testing.T, s *Set) {
			configMap(t, s, "toolbus-config").Data["TOOLBUS_STREAM_REPLICAS"] = "1"
		}, "bus", "Deployment/mcp-front/toolbus", `TOOLBUS_STREAM_REPLICAS="1", want 3`},
		{"replicas not passed at all", "dev", func(t *testing.T, s *Set) {
			delete(configMap(t, s, "toolbus-config").Data, "TOOLBUS_STREAM_REPLICAS")
		}, "bus", "Deployment/rest-worker/toolbus", "TOOLBUS_STREAM_REPLICAS is not set"},
		{"NATS not a 3-server cluster", "prod", func(t *testing.T, s *Set) {
			natsSTS(t, s).Spec.Replicas = ptr[int32](1)
		}, "bus", "StatefulSet/nats", "runs 1 servers"},
		{"routes miss a server", "prod", func(t *testing.T, s *Set) {
			cm := configMap(t, s, "nats-config")
			conf := cm.Data["nats.conf"]
			replaceIn(t, &conf, "nats://nats-2.nats-headless:6222", "")
			cm.Data["nats.conf"] = conf
		}, "bus", "StatefulSet/nats", "routes"},
		{"JetStream on the container file system", "prod", func(t *testing.T, s *Set) {
			cm := configMap(t, s, "nats-config")
			conf := cm.Data["nats.conf"]
			replaceIn(t, &conf, "store_dir: /data", "store_dir: /tmp/js")
			cm.Data["nats.conf"] = conf
		}, "bus", "StatefulSet/nats", "store_dir"},
		{"services pointed at a missing NATS service", "prod", func(t *testing.T, s *Set) {
			configMap(t, s, "toolbus-config").Data["TOOLBUS_NATS_URL"] = "nats://nats-client:4222"
		}, "bus", "Deployment/mcp-front/toolbus", `Service "nats-client"`},
		{"services pointed at the monitoring port", "prod", func(t *testing.T, s *Set) {
			configMap(t, s, "toolbus-config").Data["TOOLBUS_NATS_URL"] = "nats://nats:8222"
		}, "bus", "Deployment/mcp-front/toolbus", "client port"},
		{"embedded NATS by omission", "prod", func(t *testing.T, s *Set) {
			delete(configMap(t, s, "toolbus-config").Data, "TOOLBUS_NATS_URL")
		}, "bus", "Deployment/mcp-front/toolbus", "embedded server"},

		// catalog
		{"catalog does not load", "prod", func(t *testing.T, s *Set) {
			delete(configMap(t, s, "toolbus-config").Data, "CRM_BASE_URL")
		}, "catalog", "Deployment/mcp-front/toolbus", "CRM_BASE_URL is not set"},
		{"secret file not mounted from a Secret", "prod", func(t *testing.T, s *Set) {
			cm := configMap(t, s, "toolbus-catalog")
			cat := cm.Data["catalog.yaml"]
			replaceIn(t, &cat, "${file:/etc/toolbus/secrets/upstream/crm-api-key}", "${file:/etc/toolbus/crm-api-key}")
			cm.Data["catalog.yaml"] = cat
		}, "catalog", "Deployment/rest-worker/toolbus", "not under a Secret volume mount"},
		// secrets: each Deployment mounts what its services read, no more
		{"webhook-ingest lacks the webhook secrets", "prod", func(t *testing.T, s *Set) {
			removeSecretMount(t, dep(t, s, "webhook-ingest"), "webhook-secrets")
		}, "catalog", "Deployment/webhook-ingest/toolbus", "/etc/toolbus/secrets/webhooks/stripe-signing-secret is not under a Secret volume mount of Deployment/webhook-ingest (services webhook-ingest read it)"},
		{"rest-worker lacks the upstream credentials", "dev", func(t *testing.T, s *Set) {
			removeSecretMount(t, dep(t, s, "rest-worker"), "upstream-credentials")
		}, "catalog", "Deployment/rest-worker/toolbus", "upstreams.crm.headers.X-Api-Key: ${file:/etc/toolbus/secrets/upstream/crm-api-key}: cannot read file: /etc/toolbus/secrets/upstream/crm-api-key is not under a Secret volume mount"},
		{"secret of another service mounted", "prod", func(t *testing.T, s *Set) {
			from, to := dep(t, s, "rest-worker"), dep(t, s, "state-updater")
			to.Spec.Template.Spec.Volumes = append(to.Spec.Template.Spec.Volumes, from.Spec.Template.Spec.Volumes[1])
			c := &to.Spec.Template.Spec.Containers[0]
			c.VolumeMounts = append(c.VolumeMounts, from.Spec.Template.Spec.Containers[0].VolumeMounts[1])
		}, "secrets", "Deployment/state-updater/toolbus", "mounts Secret toolbus-upstream-credentials at /etc/toolbus/secrets/upstream, but no catalog reference of its services (state-updater, secret groups none) reads from it"},
		{"generated secret lacks the referenced key", "dev", func(t *testing.T, s *Set) {
			for _, sec := range s.Secrets {
				if strings.HasPrefix(sec.Name, "toolbus-webhook-secrets-") {
					sec.Data["demo-signing-secret"] = sec.Data["stripe-signing-secret"]
					delete(sec.Data, "stripe-signing-secret")
				}
			}
		}, "catalog", "Deployment/webhook-ingest/toolbus", "has no key stripe-signing-secret"},
		{"catalog drifted from the demo", "prod", func(t *testing.T, s *Set) {
			cm := configMap(t, s, "toolbus-catalog")
			cat := cm.Data["catalog.yaml"]
			replaceIn(t, &cat, "name: sales_report", "name: sales_report_v2")
			cm.Data["catalog.yaml"] = cat
		}, "catalog", "ConfigMap/toolbus-catalog", "differ from the demo"},
		{"catalog mounted with subPath", "prod", func(t *testing.T, s *Set) {
			c := ctr0(t, s, "mcp-front")
			c.VolumeMounts[0].MountPath = "/etc/toolbus/catalog/catalog.yaml"
			c.VolumeMounts[0].SubPath = "catalog.yaml"
			configMap(t, s, "toolbus-config").Data["TOOLBUS_CATALOG"] = "/etc/toolbus/catalog/catalog.yaml"
		}, "catalog", "Deployment/mcp-front/toolbus", "subPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := decoded(t, tt.overlay)
			tt.mutate(t, s)
			problems := Check(s, overlays[tt.overlay])
			for _, p := range problems {
				if p.Check == tt.wantCheck && strings.HasPrefix(p.Object, tt.wantObject) && strings.Contains(p.Msg, tt.wantMsg) {
					return
				}
			}
			var got strings.Builder
			for _, p := range problems {
				fmt.Fprintf(&got, "\n  %v", p)
			}
			t.Errorf("want a %s problem on %s mentioning %q; got:%s", tt.wantCheck, tt.wantObject, tt.wantMsg, got.String())
		})
	}
}

func nameOfPDB(p *policyv1.PodDisruptionBudget) string          { return p.Name }
func nameOfSA(p *corev1.ServiceAccount) string                  { return p.Name }
func nameOfHPA(p *autoscalingv2.HorizontalPodAutoscaler) string { return p.Name }
