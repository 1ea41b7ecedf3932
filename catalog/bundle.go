package catalog

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
)

// Bundle is a catalog with the files it references (GraphQL schemas and
// operations, OpenAPI documents, WSDLs, widget templates), so that it can
// be loaded on another machine exactly as it was validated: this is what
// `toolbus catalog apply` publishes. Files read through ${file:…} secret
// references are never bundled; each machine reads its own.
type Bundle struct {
	// File is the catalog's path as given to LoadBundle; referenced paths
	// are resolved against its directory, as on the machine that built it.
	File  string            `json:"file"`
	Files map[string][]byte `json:"files"`
}

var fileRefRE = regexp.MustCompile(`\$\{file:([^}]*)\}`)

// LoadBundle loads and validates the catalog at path and returns it with
// its bundle.
func LoadBundle(path string, opts ...Option) (*Catalog, *Bundle, error) {
	o := newOptions(opts)
	var mu sync.Mutex
	files := map[string][]byte{}
	record := func(name string) ([]byte, error) {
		b, err := o.readFile(name)
		if err == nil {
			mu.Lock()
			files[name] = b
			mu.Unlock()
		}
		return b, err
	}
	cat, err := Load(path, append(append([]Option(nil), opts...), WithReadFile(record))...)
	if err != nil {
		return nil, nil, err
	}
	src := files[path]
	for _, m := range fileRefRE.FindAllSubmatch(src, -1) {
		delete(files, string(m[1]))
	}
	return cat, &Bundle{File: path, Files: files}, nil
}

// ParseBundle loads a bundle. Paths not in the bundle (secret references)
// are read from this machine.
func ParseBundle(b *Bundle, opts ...Option) (*Catalog, error) {
	if b == nil || b.File == "" {
		return nil, errors.New("catalog: empty bundle")
	}
	src, ok := b.Files[b.File]
	if !ok {
		return nil, fmt.Errorf("catalog: bundle has no %s", b.File)
	}
	o := newOptions(opts)
	read := func(name string) ([]byte, error) {
		if data, ok := b.Files[name]; ok {
			return data, nil
		}
		if o.readFile != nil {
			return o.readFile(name)
		}
		return os.ReadFile(name)
	}
	return Parse(b.File, src, append(append([]Option(nil), opts...), WithReadFile(read))...)
}
