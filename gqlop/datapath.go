package gqlop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// splitPath splits a dotted response path ("viewer.repositories") into its
// keys. The empty path is the data object itself.
func splitPath(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	keys := strings.Split(path, ".")
	for _, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("path %q has an empty key", path)
		}
	}
	return keys, nil
}

// object decodes raw as a JSON object, keeping its values undecoded.
func object(raw json.RawMessage, where string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", where, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s is null", where)
	}
	return m, nil
}

// lookup returns the value at path in data. A missing key is an error; a
// null value is returned as the JSON null.
func lookup(data json.RawMessage, path string) (json.RawMessage, error) {
	keys, err := splitPath(path)
	if err != nil {
		return nil, err
	}
	cur := data
	where := "data"
	for _, k := range keys {
		m, err := object(cur, where)
		if err != nil {
			return nil, err
		}
		v, ok := m[k]
		if !ok {
			return nil, fmt.Errorf("%s has no field %q", where, k)
		}
		cur, where = v, where+"."+k
	}
	return cur, nil
}

// replace returns data with the value at keys replaced by val.
func replace(data json.RawMessage, keys []string, val json.RawMessage) (json.RawMessage, error) {
	if len(keys) == 0 {
		return val, nil
	}
	m, err := object(data, "data")
	if err != nil {
		return nil, err
	}
	child, err := replace(m[keys[0]], keys[1:], val)
	if err != nil {
		return nil, err
	}
	m[keys[0]] = child
	return json.Marshal(m)
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}
