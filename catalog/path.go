package catalog

import (
	"fmt"
	"strings"
)

// parsePathTemplate checks a tool path such as /customers/{id}/orders and
// returns its placeholder names in order. Literal parts must be valid URL
// path characters (percent-escapes allowed); dot segments are refused so a
// template cannot climb out of the base URL.
func parsePathTemplate(path string) (names []string, problems []string) {
	if !strings.HasPrefix(path, "/") {
		return nil, []string{"must start with '/'"}
	}
	if strings.ContainsAny(path, "?#") {
		return nil, []string{"must not contain '?' or '#' (declare query parameters in input_schema)"}
	}
	seen := map[string]bool{}
	for i := 0; i < len(path); {
		c := path[i]
		switch {
		case c == '{':
			end := strings.IndexByte(path[i:], '}')
			if end < 0 {
				return names, append(problems, fmt.Sprintf("unclosed '{' at offset %d", i))
			}
			name := path[i+1 : i+end]
			switch {
			case name == "":
				problems = append(problems, "empty placeholder {}")
			case !isPlaceholderName(name):
				problems = append(problems, fmt.Sprintf("invalid placeholder {%s}: name must match [a-zA-Z_][a-zA-Z0-9_]*", name))
			case seen[name]:
				problems = append(problems, fmt.Sprintf("placeholder {%s} appears more than once", name))
			default:
				seen[name] = true
				names = append(names, name)
			}
			i += end + 1
		case c == '}':
			problems = append(problems, fmt.Sprintf("unmatched '}' at offset %d", i))
			i++
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				problems = append(problems, fmt.Sprintf("invalid percent-escape at offset %d", i))
			}
			i++
		case isPathChar(c):
			i++
		default:
			problems = append(problems, fmt.Sprintf("character %q is not allowed in a URL path", rune(c)))
			i++
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			problems = append(problems, "dot segments (. and ..) are not allowed")
			break
		}
	}
	return names, problems
}

func isPlaceholderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isPathChar reports RFC 3986 pchar characters and '/', except '%' (checked
// separately).
func isPathChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}
