package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// macs computes HMACs of one signed content under each key in turn.
type macs struct {
	keys    [][]byte
	newHash func() hash.Hash
	size    int
	// pools keep each key's HMAC states for reuse: hmac.New costs five
	// allocations and hashes the padded key twice, Reset restores the
	// keyed state instead.
	pools []*sync.Pool
}

func newMACs(keys [][]byte, newHash func() hash.Hash) macs {
	m := macs{keys: keys, newHash: newHash, size: newHash().Size(), pools: make([]*sync.Pool, len(keys))}
	for i, key := range keys {
		m.pools[i] = &sync.Pool{New: func() any { return hmac.New(newHash, key) }}
	}
	return m
}

// match reports the index of the first key whose HMAC over the
// concatenation of parts equals one of the candidates. Every comparison is
// constant-time; a candidate of the wrong length never matches.
func (m macs) match(candidates [][]byte, parts ...[]byte) (int, bool) {
	if len(candidates) == 0 {
		return 0, false
	}
	var buf [sha512.Size]byte
	for i := range m.keys {
		sum := m.sum(buf[:0], i, parts)
		for _, c := range candidates {
			if hmac.Equal(sum, c) {
				return i, true
			}
		}
	}
	return 0, false
}

// sign returns the HMAC of parts under the first (current) key.
func (m macs) sign(parts ...[]byte) []byte {
	return m.sum(nil, 0, parts)
}

// sum appends the HMAC of parts under key k to dst.
func (m macs) sum(dst []byte, k int, parts [][]byte) []byte {
	h := m.pools[k].Get().(hash.Hash)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	dst = h.Sum(dst)
	m.pools[k].Put(h)
	return dst
}

var hashes = map[string]func() hash.Hash{
	"sha1":   sha1.New,
	"sha256": sha256.New,
	"sha512": sha512.New,
}

// encoding is how a signature is written into a header.
type encoding uint8

const (
	encHex encoding = iota
	encBase64
)

var encodings = map[string]encoding{"hex": encHex, "base64": encBase64}

// decode decodes a signature of size bytes; anything else is malformed.
func (e encoding) decode(s string, size int) ([]byte, bool) {
	switch e {
	case encHex:
		if len(s) != hex.EncodedLen(size) {
			return nil, false
		}
		b, err := hex.DecodeString(s)
		return b, err == nil
	default:
		if len(s) != base64.StdEncoding.EncodedLen(size) {
			return nil, false
		}
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		return b, err == nil && len(b) == size
	}
}

func (e encoding) encode(b []byte) string {
	if e == encHex {
		return hex.EncodeToString(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// maxUnixDigits keeps timestamps in seconds (13 digits would be
// milliseconds) and far from int64 overflow.
const maxUnixDigits = 12

// parseUnix parses a Unix time in seconds written as plain digits: no sign,
// no spaces, no fraction. The raw text is what providers sign, so a lenient
// parse would let two spellings of one time carry one signature.
func parseUnix(s string) (time.Time, bool) {
	if len(s) == 0 || len(s) > maxUnixDigits {
		return time.Time{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

func formatUnix(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// checkTolerance refuses a timestamp more than tol before or after now.
// Both sides use Sub in the direction that cannot overflow into a negative.
func checkTolerance(scheme string, now, ts time.Time, tol time.Duration) error {
	if age := now.Sub(ts); age > tol {
		return fmt.Errorf("%s: timestamp is %s old, tolerance %s: %w",
			scheme, age.Truncate(time.Second), tol, ErrTimestampOutOfTolerance)
	}
	if ahead := ts.Sub(now); ahead > tol {
		return fmt.Errorf("%s: timestamp is %s in the future, tolerance %s: %w",
			scheme, ahead.Truncate(time.Second), tol, ErrTimestampOutOfTolerance)
	}
	return nil
}

// template is a signed-content template: literals and placeholders.
type template []segment

type segment struct {
	kind segmentKind
	lit  []byte
}

type segmentKind uint8

const (
	segLiteral segmentKind = iota
	segTimestamp
	segID
	segBody
)

var placeholders = map[string]segmentKind{
	"{timestamp}": segTimestamp,
	"{id}":        segID,
	"{body}":      segBody,
}

// parseTemplate parses text with {timestamp}, {id} and {body}; {body} must
// appear exactly once and any other {…} is refused, so a typo cannot
// silently become literal text.
func parseTemplate(s string) (template, error) {
	var t template
	bodies := 0
	for len(s) > 0 {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t = append(t, segment{kind: segLiteral, lit: []byte(s)})
			break
		}
		if open > 0 {
			t = append(t, segment{kind: segLiteral, lit: []byte(s[:open])})
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed { in signed_payload")
		}
		name := s[open : open+end+1]
		kind, ok := placeholders[name]
		if !ok {
			return nil, fmt.Errorf("unknown placeholder %s in signed_payload (known: {timestamp}, {id}, {body})", name)
		}
		if kind == segBody {
			bodies++
		}
		t = append(t, segment{kind: kind})
		s = s[open+end+1:]
	}
	if bodies != 1 {
		return nil, fmt.Errorf("signed_payload must contain {body} exactly once")
	}
	return t, nil
}

func (t template) has(k segmentKind) bool {
	for _, s := range t {
		if s.kind == k {
			return true
		}
	}
	return false
}

// parts lays out the signed content for macs without copying the body.
func (t template) parts(ts, id string, body []byte) [][]byte {
	parts := make([][]byte, len(t))
	for i, s := range t {
		switch s.kind {
		case segLiteral:
			parts[i] = s.lit
		case segTimestamp:
			parts[i] = []byte(ts)
		case segID:
			parts[i] = []byte(id)
		case segBody:
			parts[i] = body
		}
	}
	return parts
}

// hmacCore is a scheme with one signature in one header over a templated
// content, optionally with a timestamp header: github, shopify, slack and the
// generic hmac scheme are all instances of it.
type hmacCore struct {
	scheme    string
	macs      macs
	header    string
	prefix    string
	enc       encoding
	payload   template
	tsHeader  string
	idHeader  string
	tolerance time.Duration
}

// coreResult is what hmacCore learned from a verified request.
type coreResult struct {
	secret int
	ts     time.Time
}

func (c *hmacCore) verify(r Request) (coreResult, error) {
	raw := r.Header.Get(c.header)
	if raw == "" {
		return coreResult{}, fmt.Errorf("%s: no %s header: %w", c.scheme, c.header, ErrMissingSignature)
	}
	encoded, ok := strings.CutPrefix(raw, c.prefix)
	if !ok {
		return coreResult{}, fmt.Errorf("%s: %s does not start with %q: %w", c.scheme, c.header, c.prefix, ErrMalformedHeader)
	}
	sig, ok := c.enc.decode(encoded, c.macs.size)
	if !ok {
		return coreResult{}, fmt.Errorf("%s: %s is not a %d-byte signature in the expected encoding: %w",
			c.scheme, c.header, c.macs.size, ErrMalformedHeader)
	}
	var res coreResult
	var tsRaw string
	if c.tsHeader != "" {
		tsRaw = r.Header.Get(c.tsHeader)
		if tsRaw == "" {
			return coreResult{}, fmt.Errorf("%s: no %s header: %w", c.scheme, c.tsHeader, ErrMissingHeader)
		}
		if res.ts, ok = parseUnix(tsRaw); !ok {
			return coreResult{}, fmt.Errorf("%s: %s is not a Unix time in seconds: %w", c.scheme, c.tsHeader, ErrMalformedHeader)
		}
	}
	var id string
	if c.payload.has(segID) {
		if id = r.Header.Get(c.idHeader); id == "" {
			return coreResult{}, fmt.Errorf("%s: no %s header: %w", c.scheme, c.idHeader, ErrMissingHeader)
		}
	}
	if res.secret, ok = c.macs.match([][]byte{sig}, c.payload.parts(tsRaw, id, r.Body)...); !ok {
		return coreResult{}, fmt.Errorf("%s: %s matches none of %d secrets: %w",
			c.scheme, c.header, len(c.macs.keys), ErrSignatureMismatch)
	}
	if c.tsHeader != "" {
		if err := checkTolerance(c.scheme, now(r), res.ts, c.tolerance); err != nil {
			return coreResult{}, err
		}
	}
	return res, nil
}

func (c *hmacCore) sign(body []byte, now time.Time, id string) (http.Header, error) {
	h := http.Header{}
	ts := formatUnix(now)
	if c.tsHeader != "" {
		h.Set(c.tsHeader, ts)
	}
	if c.payload.has(segID) {
		if id == "" {
			return nil, fmt.Errorf("%s: sign: the signed content needs an id", c.scheme)
		}
		h.Set(c.idHeader, id)
	}
	sum := c.macs.sign(c.payload.parts(ts, id, body)...)
	h.Set(c.header, c.prefix+c.enc.encode(sum))
	return h, nil
}
