package validate

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/toolbus/toolbus/catalog"
)

// toolbusEnv returns the environment a toolbus container gets from literal
// env entries and envFrom ConfigMaps of the render. Values from Secrets or
// the downward API are present with an empty value.
func (c *checker) toolbusEnv(ctr *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		for _, cm := range c.s.ConfigMaps {
			if cm.Name == ef.ConfigMapRef.Name {
				for k, v := range cm.Data {
					env[ef.Prefix+k] = v
				}
			}
		}
	}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	return env
}

type toolbusContainer struct {
	w   workload
	ctr *corev1.Container
	env map[string]string
}

func (c *checker) toolbusContainers() []toolbusContainer {
	var out []toolbusContainer
	for _, w := range c.pods {
		for i := range w.spec.Containers {
			if ctr := &w.spec.Containers[i]; isToolbus(ctr) {
				out = append(out, toolbusContainer{w, ctr, c.toolbusEnv(ctr)})
			}
		}
	}
	return out
}

// bus: every service reaches NATS through a Service that selects the NATS
// servers' client port; the StatefulSet forms a 3-server cluster whose routes
// are its own pods; JetStream stores on the pods' persistent volumes; and the
// services are told the replica count the overlay wants, which the cluster
// can hold.
func (c *checker) bus() {
	var nats *workload
	var natsCtr *corev1.Container
	for i, w := range c.pods {
		for j := range w.spec.Containers {
			if isNATS(&w.spec.Containers[j]) {
				nats, natsCtr = &c.pods[i], &w.spec.Containers[j]
			}
		}
	}
	if nats == nil || nats.kind != "StatefulSet" {
		c.addf("bus", "StatefulSet/nats", "no StatefulSet runs nats-server")
		return
	}
	var st = c.s.StatefulSets[slices.IndexFunc(c.s.StatefulSets, func(s *appsv1.StatefulSet) bool { return s.Name == nats.name })]
	obj := nats.String()
	replicas := 1
	if st.Spec.Replicas != nil {
		replicas = int(*st.Spec.Replicas)
	}
	if replicas != 3 {
		c.addf("bus", obj, "runs %d servers, want 3 (R3 streams survive one lost server)", replicas)
	}
	conf, err := c.natsConfig(*nats, natsCtr)
	if err != nil {
		c.addf("bus", obj, "%v", err)
		return
	}
	// Routes: one per pod, through the headless Service, on the cluster port.
	clusterPort := containerPortNumber(natsCtr, "cluster", 0)
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("nats://%s-%d.%s:%d", st.Name, i, st.Spec.ServiceName, clusterPort))
	}
	if got := confRoutes(conf); !slices.Equal(got, want) {
		c.addf("bus", obj, "nats.conf routes %v, want %v", got, want)
	}
	if v, _ := confValue(conf, "server_name"); !strings.HasPrefix(v, "$") {
		c.addf("bus", obj, "server_name %q must come from the pod name (a variable), or JetStream peers change identity", v)
	}
	// JetStream data on a volume claim.
	storeDir, ok := confValue(conf, "store_dir")
	var claims []string
	for _, t := range st.Spec.VolumeClaimTemplates {
		claims = append(claims, t.Name)
	}
	onClaim := false
	for _, m := range natsCtr.VolumeMounts {
		if ok && (storeDir == m.MountPath || strings.HasPrefix(storeDir, strings.TrimSuffix(m.MountPath, "/")+"/")) && slices.Contains(claims, m.Name) {
			onClaim = true
		}
	}
	if !onClaim {
		c.addf("bus", obj, "JetStream store_dir %q is not on a volumeClaimTemplate mount", storeDir)
	}

	for _, tc := range c.toolbusContainers() {
		tobj := tc.w.String() + "/" + tc.ctr.Name
		u, err := url.Parse(firstOf(flagOrEnv(tc, "nats", "TOOLBUS_NATS_URL")))
		if err != nil || u.Scheme != "nats" || u.Hostname() == "" {
			c.addf("bus", tobj, "NATS URL %q is not nats://<service>:<port> (an empty URL starts an embedded server)", flagOrEnv(tc, "nats", "TOOLBUS_NATS_URL"))
		} else if err := c.natsClientService(u); err != nil {
			c.addf("bus", tobj, "NATS URL %s: %v", u, err)
		}
		r, set := tc.env["TOOLBUS_STREAM_REPLICAS"]
		n, err := strconv.Atoi(r)
		switch {
		case !set:
			c.addf("bus", tobj, "TOOLBUS_STREAM_REPLICAS is not set (want %d)", c.e.StreamReplicas)
		case err != nil || n != c.e.StreamReplicas:
			c.addf("bus", tobj, "TOOLBUS_STREAM_REPLICAS=%q, want %d", r, c.e.StreamReplicas)
		case n > replicas:
			c.addf("bus", tobj, "TOOLBUS_STREAM_REPLICAS=%d but NATS has %d servers", n, replicas)
		}
	}
}

func flagOrEnv(tc toolbusContainer, flag, env string) string {
	if v, ok := flagValue(tc.ctr.Args, flag); ok {
		return v
	}
	return tc.env[env]
}

func firstOf(urls string) string {
	first, _, _ := strings.Cut(urls, ",")
	return strings.TrimSpace(first)
}

// natsClientService checks that u names a Service of the render that
// reaches a nats-server client port.
func (c *checker) natsClientService(u *url.URL) error {
	name, _, _ := strings.Cut(u.Hostname(), ".")
	svc := c.service(name)
	if svc == nil {
		return fmt.Errorf("Service %q is not in the render", name)
	}
	port, _ := strconv.Atoi(u.Port())
	if port == 0 {
		port = 4222
	}
	for _, p := range svc.Spec.Ports {
		if int(p.Port) != port {
			continue
		}
		for _, w := range c.selectingMap(svc.Spec.Selector) {
			for _, ctr := range w.spec.Containers {
				if isNATS(&ctr) && containerPortNumber(&ctr, p.TargetPort.StrVal, p.TargetPort.IntVal) == 4222 {
					return nil
				}
			}
		}
		return fmt.Errorf("Service %s port %d does not reach a nats-server client port", name, port)
	}
	return fmt.Errorf("Service %s has no port %d", name, port)
}

// catalog: the catalog ConfigMap every service mounts parses with the
// catalog package, using the environment the pods get and reading only the
// secret references of the container's services, as `toolbus serve` does
// (catalog.SecretsFor); those secret files come from mounted Secrets (with
// the key, when the Secret is in the render), and no Secret is mounted that
// none of them reads (least privilege); it keeps the demo catalog's
// upstreams and tools.
func (c *checker) catalog() {
	tcs := c.toolbusContainers()
	if len(tcs) == 0 {
		c.addf("catalog", "Deployment", "no container runs the toolbus image")
		return
	}
	var src string
	for _, tc := range tcs {
		obj := tc.w.String() + "/" + tc.ctr.Name
		file := flagOrEnv(tc, "catalog", "TOOLBUS_CATALOG")
		if file == "" {
			c.addf("catalog", obj, "neither --catalog nor TOOLBUS_CATALOG is set")
			continue
		}
		data, key, err := c.mountedConfigMap(tc.w, tc.ctr, file)
		if err != nil {
			c.addf("catalog", obj, "%v", err)
			continue
		}
		s := data[key]
		// Files the catalog names by relative path come from the same mount.
		fsys := fstest.MapFS{}
		for k, v := range data {
			fsys[k] = &fstest.MapFile{Data: []byte(v)}
		}
		switch {
		case src == "":
			src = s
		case s != src:
			c.addf("catalog", obj, "mounts a different catalog than the other services")
		}
		services, groups := serveSecretGroups(tc)
		var read []string // secret files the catalog read
		cat, err := catalog.Parse(file, []byte(s), catalog.WithFS(fsys), catalog.WithSecrets(groups),
			catalog.WithLookupEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }),
			catalog.WithReadFile(func(p string) ([]byte, error) {
				if err := c.secretFile(tc.w, tc.ctr, p); err != nil {
					return nil, fmt.Errorf("%w (services %s read it): %w", err, services, os.ErrNotExist)
				}
				read = append(read, path.Clean(p))
				return []byte("secret-from-kubernetes"), nil
			}))
		if err != nil {
			c.addf("catalog", obj, "the deployed catalog does not load: %v", err)
			continue
		}
		c.unusedSecretMounts(tc, services, groups, read)
		if c.cat == nil {
			c.cat = cat
		}
	}
	if c.cat == nil || c.e.DemoCatalog == "" {
		return
	}
	demo, err := catalog.Load(c.e.DemoCatalog)
	if err != nil {
		c.addf("catalog", c.e.DemoCatalog, "%v", err)
		return
	}
	for name, u := range demo.Upstreams {
		if d, ok := c.cat.Upstreams[name]; !ok || d.Kind != u.Kind {
			c.addf("catalog", "ConfigMap/toolbus-catalog", "lacks the demo catalog's %s upstream %q", u.Kind, name)
		}
	}
	var got, want []string
	for _, t := range c.cat.Tools {
		got = append(got, t.Name)
	}
	for _, t := range demo.Tools {
		want = append(want, t.Name)
	}
	if !slices.Equal(got, want) {
		c.addf("catalog", "ConfigMap/toolbus-catalog", "tools %v differ from the demo catalog's %v", got, want)
	}
}

// serveSecretGroups are the services of a toolbus container (--services or
// TOOLBUS_SERVICES, default all) and the secret groups serve resolves for
// them: catalog.SecretsFor, plus the MCP-side auth secrets when the console
// is turned on explicitly (cmd/toolbus/catalogsecrets.go).
func serveSecretGroups(tc toolbusContainer) (string, catalog.SecretGroups) {
	services := flagOrEnv(tc, "services", "TOOLBUS_SERVICES")
	if services == "" {
		services = "all"
	}
	g := catalog.SecretsFor(strings.Split(services, ",")...)
	console, ok := flagValue(tc.ctr.Args, "console")
	if !ok && slices.Contains(tc.ctr.Args, "--console") {
		console, ok = "true", true
	}
	if !ok {
		console = tc.env["TOOLBUS_CONSOLE"]
	}
	if on, err := strconv.ParseBool(console); err == nil && on {
		g |= catalog.SecretsServerAuth
	}
	return services, g
}

// secretFile checks that file is under a Secret volume mount of ctr and,
// when that Secret is in the render, that it has the file's key.
func (c *checker) secretFile(w workload, ctr *corev1.Container, file string) error {
	file = path.Clean(file)
	for _, m := range ctr.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range w.spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			key := rel
			if len(v.Secret.Items) > 0 {
				key = ""
				for _, it := range v.Secret.Items {
					if it.Path == rel {
						key = it.Key
					}
				}
				if key == "" {
					return fmt.Errorf("%s: volume %s projects no item at %s", file, v.Name, rel)
				}
			}
			for _, s := range c.s.Secrets {
				if s.Name != v.Secret.SecretName {
					continue
				}
				_, inData := s.Data[key]
				_, inString := s.StringData[key]
				if !inData && !inString {
					return fmt.Errorf("Secret %s mounted at %s has no key %s (for %s)", s.Name, m.MountPath, key, file)
				}
			}
			return nil // rendered with the key, or created out of band
		}
	}
	return fmt.Errorf("%s is not under a Secret volume mount of %s", file, w)
}

// unusedSecretMounts reports Secret volumes mounted in a toolbus container
// from which no secret reference of its services reads: a pod holds only
// the credentials its services use.
func (c *checker) unusedSecretMounts(tc toolbusContainer, services string, groups catalog.SecretGroups, read []string) {
	for _, m := range tc.ctr.VolumeMounts {
		for _, v := range tc.w.spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			used := false
			for _, f := range read {
				used = used || strings.HasPrefix(f, strings.TrimSuffix(m.MountPath, "/")+"/")
			}
			if !used {
				c.addf("secrets", tc.w.String()+"/"+tc.ctr.Name, "mounts Secret %s at %s, but no catalog reference of its services (%s, secret groups %s) reads from it: remove the mount (least privilege)", v.Secret.SecretName, m.MountPath, services, groups)
			}
		}
	}
}
