package signature

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Reading an event id and type with encoding/json costs 4 to 7 µs per KB of
// body, several times the HMAC itself, because it validates and walks every
// nested value. The scanner below visits only the members of one object and
// skips nested values by bracket depth (strings with IndexByte), so the cost
// per KB stays well under the ingest's 1.5 µs budget. It runs on bodies whose
// signature already verified, and FuzzJSONMembers checks that it agrees
// with encoding/json on every valid document.

var errJSON = errors.New("not a JSON object")

// jsonMembers calls fn with each member of the object data: its key,
// unescaped, and its raw value.
func jsonMembers(data []byte, fn func(key string, value []byte)) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errJSON
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return trailing(data, i+1)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return errJSON
		}
		end := skipString(data, i)
		if end < 0 {
			return errJSON
		}
		key, ok := jsonString(data[i:end])
		if !ok {
			return errJSON
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return errJSON
		}
		i = skipSpace(data, i+1)
		end = skipValue(data, i)
		if end < 0 {
			return errJSON
		}
		fn(key, data[i:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return errJSON
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return trailing(data, i+1)
		default:
			return errJSON
		}
	}
}

func trailing(data []byte, i int) error {
	if skipSpace(data, i) != len(data) {
		return errJSON
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i] ('"'),
// or -1.
func skipString(data []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		// A quote is escaped when an odd number of backslashes precede it.
		n := 0
		for p := q - 1; p > i && data[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index after the value starting at data[i], or -1.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end := skipString(data, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nonEmpty(i, j)
			}
			j++
		}
		return nonEmpty(i, j)
	}
}

func nonEmpty(i, j int) int {
	if j == i {
		return -1
	}
	return j
}

// jsonString decodes a raw JSON string; ok is false for any other value.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// jsonFields returns the raw values of the named members of the object data
// (the last one when a key repeats, as encoding/json does); a missing member
// is nil.
func jsonFields(data []byte, keys ...string) ([][]byte, error) {
	values := make([][]byte, len(keys))
	err := jsonMembers(data, func(key string, value []byte) {
		for i, k := range keys {
			if key == k {
				values[i] = value
			}
		}
	})
	return values, err
}

// jsonStrings returns the named string members of the object data; a
// member that is missing or not a string is "".
func jsonStrings(data []byte, keys ...string) ([]string, error) {
	values, err := jsonFields(data, keys...)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, v := range values {
		out[i], _ = jsonString(v)
	}
	return out, nil
}
