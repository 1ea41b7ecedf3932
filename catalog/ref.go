package catalog

import (
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// refPolicy says which references a field accepts.
type refPolicy int

const (
	refEnvOnly refPolicy = iota // non-secret interpolation (base_url)
	refAny                      // ${env:NAME} and ${file:/path} (header values)
)

// interpolate replaces ${env:NAME} and ${file:/path} references in s.
// "$${" stands for a literal "${". Problems name the reference, never the
// value it resolves to. hasRef reports whether s contained a reference.
//
// groups are the secret groups the references belong to; zero means
// configuration, always resolved. When the catalog is loaded without any of
// groups (WithSecrets), every reference is checked exactly as usual but not
// read: resolved is false and val holds nothing read.
func (p *parser) interpolate(s string, pol refPolicy, groups SecretGroups, report func(format string, args ...any)) (val string, hasRef, resolved, ok bool) {
	resolved = groups == 0 || p.opts.secrets.Has(groups)
	if !strings.Contains(s, "${") {
		return s, false, true, true
	}
	var b strings.Builder
	ok = true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			report("unterminated reference %q: want ${env:NAME} or ${file:/path}", s[i:])
			return "", hasRef, resolved, false
		}
		ref := s[i : i+end+1]
		s = s[i+end+1:]
		hasRef = true
		v, good := p.resolveRef(ref, pol, resolved, report)
		ok = ok && good
		b.WriteString(v)
	}
	if !hasRef {
		resolved = true
	}
	if !resolved {
		return "", hasRef, false, ok
	}
	return b.String(), hasRef, true, ok
}

// resolveRef checks ref and, when read is set, reads it.
func (p *parser) resolveRef(ref string, pol refPolicy, read bool, report func(format string, args ...any)) (string, bool) {
	scheme, arg, found := strings.Cut(ref[2:len(ref)-1], ":")
	switch {
	case !found || (scheme != "env" && scheme != "file"):
		report("malformed reference %s: want ${env:NAME} or ${file:/path}", ref)
		return "", false
	case scheme == "env":
		if !envNameRE.MatchString(arg) {
			report("malformed reference %s: want ${env:NAME} with NAME matching [A-Za-z_][A-Za-z0-9_]*", ref)
			return "", false
		}
		if !read {
			return "", true
		}
		v, set := p.opts.lookupEnv(arg)
		if !set {
			report("%s: environment variable %s is not set", ref, arg)
			return "", false
		}
		return v, true
	default: // file
		if pol == refEnvOnly {
			report("%s: only ${env:NAME} references are allowed here", ref)
			return "", false
		}
		if !strings.HasPrefix(arg, "/") {
			report("malformed reference %s: want ${file:/absolute/path}", ref)
			return "", false
		}
		if !read {
			return "", true
		}
		b, err := p.opts.readFile(arg)
		if err != nil {
			report("%s: %s", ref, fileErrText(err))
			return "", false
		}
		v := string(b)
		if strings.HasSuffix(v, "\r\n") {
			v = v[:len(v)-2]
		} else if strings.HasSuffix(v, "\n") {
			v = v[:len(v)-1]
		}
		return v, true
	}
}

// fileErrText describes a read error without repeating anything read.
func fileErrText(err error) string {
	return fmt.Sprintf("cannot read file: %v", err)
}
