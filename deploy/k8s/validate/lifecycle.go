package validate

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// binaryDefaultGrace mirrors the default of `toolbus serve --shutdown-grace`
// (cmd/toolbus/serve.go, defaultGrace), used when the manifests do not pass one.
const binaryDefaultGrace = 25 * time.Second

// isToolbus reports whether ctr runs the toolbus image.
func isToolbus(ctr *corev1.Container) bool {
	img := ctr.Image
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	img, _, _ = strings.Cut(img, "@")
	img, _, _ = strings.Cut(img, ":")
	return img == "toolbus"
}

// flagValue finds --name=value or --name value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
		}
	}
	return "", false
}

func envValue(ctr *corev1.Container, name string) (string, bool) {
	for _, e := range ctr.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// shutdownGrace is how long the toolbus process may drain after SIGTERM.
func shutdownGrace(ctr *corev1.Container) (time.Duration, error) {
	v, ok := flagValue(ctr.Args, "shutdown-grace")
	if !ok {
		v, ok = envValue(ctr, "TOOLBUS_SHUTDOWN_GRACE")
	}
	if !ok {
		return binaryDefaultGrace, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("bad shutdown grace %q: %w", v, err)
	}
	return d, nil
}

func preStopPause(ctr *corev1.Container) time.Duration {
	if ctr.Lifecycle == nil || ctr.Lifecycle.PreStop == nil || ctr.Lifecycle.PreStop.Sleep == nil {
		return 0
	}
	return time.Duration(ctr.Lifecycle.PreStop.Sleep.Seconds) * time.Second
}

// grace: the kubelet's SIGKILL comes terminationGracePeriodSeconds after the
// preStop hook starts; it must come after the process has drained.
func (c *checker) grace() {
	for _, w := range c.pods {
		tgps := 30 * time.Second // the Kubernetes default
		if w.spec.TerminationGracePeriodSeconds != nil {
			tgps = time.Duration(*w.spec.TerminationGracePeriodSeconds) * time.Second
		}
		for i := range w.spec.Containers {
			ctr := &w.spec.Containers[i]
			obj := w.String() + "/" + ctr.Name
			var need time.Duration
			var what string
			switch {
			case isToolbus(ctr):
				g, err := shutdownGrace(ctr)
				if err != nil {
					c.addf("grace", obj, "%v", err)
					continue
				}
				need, what = g+preStopPause(ctr), fmt.Sprintf("shutdown grace %s + preStop pause %s", g, preStopPause(ctr))
			case isNATS(ctr):
				conf, err := c.natsConfig(w, ctr)
				if err != nil {
					c.addf("grace", obj, "%v", err)
					continue
				}
				ld, err1 := confDuration(conf, "lame_duck_duration", 2*time.Minute)
				lg, err2 := confDuration(conf, "lame_duck_grace_period", 10*time.Second)
				if err1 != nil || err2 != nil {
					c.addf("grace", obj, "nats.conf: %v %v", err1, err2)
					continue
				}
				need, what = ld+lg, fmt.Sprintf("lame_duck_duration %s + lame_duck_grace_period %s", ld, lg)
			default:
				continue
			}
			if tgps <= need {
				c.addf("grace", obj, "terminationGracePeriodSeconds %s is not longer than %s: in-flight work would be killed", tgps, what)
			}
		}
	}
}

func isNATS(ctr *corev1.Container) bool {
	return len(ctr.Command) > 0 && path.Base(ctr.Command[0]) == "nats-server"
}

// natsConfig returns the text of the nats-server configuration file that ctr
// is started with, read from the ConfigMap mounted at its directory.
func (c *checker) natsConfig(w workload, ctr *corev1.Container) (string, error) {
	file, ok := flagValue(append(ctr.Command[1:len(ctr.Command):len(ctr.Command)], ctr.Args...), "config")
	if !ok {
		file, ok = flagValue(append(ctr.Command[1:len(ctr.Command):len(ctr.Command)], ctr.Args...), "c")
	}
	if !ok {
		return "", fmt.Errorf("nats-server is started without --config")
	}
	return c.mountedConfigMapFile(w, ctr, file)
}

// mountedConfigMapFile reads file through ctr's volume mounts from a
// ConfigMap in the render.
func (c *checker) mountedConfigMapFile(w workload, ctr *corev1.Container, file string) (string, error) {
	data, key, err := c.mountedConfigMap(w, ctr, file)
	if err != nil {
		return "", err
	}
	return data[key], nil
}

// mountedConfigMap returns the data of the ConfigMap that ctr sees file in,
// and file's key in it.
func (c *checker) mountedConfigMap(w workload, ctr *corev1.Container, file string) (map[string]string, string, error) {
	for _, m := range ctr.VolumeMounts {
		if m.SubPath != "" && m.MountPath == file {
			return nil, "", fmt.Errorf("%s is mounted with subPath: ConfigMap updates would never reach it", file)
		}
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if m.SubPath != "" {
			return nil, "", fmt.Errorf("%s is mounted with subPath: ConfigMap updates would never reach it", file)
		}
		for _, v := range w.spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				return nil, "", fmt.Errorf("%s is on volume %s, which is not a ConfigMap", file, v.Name)
			}
			for _, cm := range c.s.ConfigMaps {
				if cm.Name == v.ConfigMap.Name {
					if _, ok := cm.Data[rel]; !ok {
						return nil, "", fmt.Errorf("ConfigMap %s has no key %s (for %s)", cm.Name, rel, file)
					}
					return cm.Data, rel, nil
				}
			}
			return nil, "", fmt.Errorf("ConfigMap %s (for %s) is not in the render", v.ConfigMap.Name, file)
		}
	}
	return nil, "", fmt.Errorf("no volume is mounted at the directory of %s", file)
}

// confValue reads a top-level-looking "key: value" or "key = value" from a
// nats-server configuration (enough for the keys checked here).
func confValue(conf, key string) (string, bool) {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s*[:=]\s*"?([^"\s#]+)"?`)
	m := re.FindStringSubmatch(conf)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func confDuration(conf, key string, def time.Duration) (time.Duration, error) {
	v, ok := confValue(conf, key)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return d, nil
}

// confRoutes returns the URLs in the cluster block's routes list.
func confRoutes(conf string) []string {
	i := strings.Index(conf, "routes:")
	if i < 0 {
		i = strings.Index(conf, "routes =")
	}
	if i < 0 {
		return nil
	}
	rest := conf[i:]
	open, end := strings.Index(rest, "["), strings.Index(rest, "]")
	if open < 0 || end < open {
		return nil
	}
	return regexp.MustCompile(`nats(?:-route)?://[^\s,\]]+`).FindAllString(rest[open:end], -1)
}
