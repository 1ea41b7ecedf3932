// Package validate renders Toolbus's kustomize overlays with the kustomize
// Go API and checks the result offline: every object decodes strictly into
// its typed Kubernetes (or KEDA) form, and the objects agree with each other
// and with the code (stream and consumer names from package bus, derived
// from the catalog the manifests ship).
//
// It must not talk to a cluster or the network: everything it knows comes
// from the files on disk.
package validate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Doc is one rendered object as kustomize produced it.
type Doc struct {
	APIVersion string
	Kind       string
	Name       string
	YAML       []byte
}

func (d Doc) String() string { return d.Kind + "/" + d.Name }

// Render builds the kustomization in dir (an overlay) from disk.
func Render(dir string) ([]Doc, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var docs []Doc
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		docs = append(docs, Doc{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Name: r.GetName(), YAML: b})
	}
	return docs, nil
}

// strictUnmarshal decodes YAML into v and fails on any field v does not
// know, at any depth, and on duplicate keys.
func strictUnmarshal(y []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}
