package validate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// Set is a rendered overlay, decoded into typed objects.
type Set struct {
	Namespaces      []*corev1.Namespace
	ServiceAccounts []*corev1.ServiceAccount
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	Services        []*corev1.Service
	Deployments     []*appsv1.Deployment
	StatefulSets    []*appsv1.StatefulSet
	PDBs            []*policyv1.PodDisruptionBudget
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	NetworkPolicies []*networkingv1.NetworkPolicy
	Ingresses       []*networkingv1.Ingress
	ScaledObjects   []*ScaledObject
}

// Decode decodes every document strictly into its typed form. A kind this
// package does not know is an error: nothing in the render goes unchecked.
func Decode(docs []Doc) (*Set, error) {
	s := &Set{}
	for _, d := range docs {
		if err := s.add(d); err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
	}
	return s, nil
}

func decodeInto[T any](d Doc, list *[]*T) error {
	v := new(T)
	if err := strictUnmarshal(d.YAML, v); err != nil {
		return fmt.Errorf("strict decode as %s %s: %w", d.APIVersion, d.Kind, err)
	}
	*list = append(*list, v)
	return nil
}

func (s *Set) add(d Doc) error {
	switch d.APIVersion + " " + d.Kind {
	case "v1 Namespace":
		return decodeInto(d, &s.Namespaces)
	case "v1 ServiceAccount":
		return decodeInto(d, &s.ServiceAccounts)
	case "v1 ConfigMap":
		return decodeInto(d, &s.ConfigMaps)
	case "v1 Secret":
		return decodeInto(d, &s.Secrets)
	case "v1 Service":
		return decodeInto(d, &s.Services)
	case "apps/v1 Deployment":
		return decodeInto(d, &s.Deployments)
	case "apps/v1 StatefulSet":
		return decodeInto(d, &s.StatefulSets)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(d, &s.PDBs)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(d, &s.HPAs)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(d, &s.NetworkPolicies)
	case "networking.k8s.io/v1 Ingress":
		return decodeInto(d, &s.Ingresses)
	case "keda.sh/v1alpha1 ScaledObject":
		return decodeInto(d, &s.ScaledObjects)
	}
	return fmt.Errorf("unexpected kind %s %s: teach package validate to decode and check it", d.APIVersion, d.Kind)
}
