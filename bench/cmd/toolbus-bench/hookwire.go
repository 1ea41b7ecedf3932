package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The webhooks scenario's default client ("raw"): one kept-alive HTTP/1.1
// connection per sender, each request written with a single write from
// bytes prepared (and signed) before the clock starts, each answer read
// with a small parser. Go's net/http client costs the generator about as
// much CPU per event as the ingest itself (it shares the two cores with
// the server under test), and writes a body in 4 KB pieces; a provider's
// sender is on another machine. `-webhook-client nethttp` keeps the
// net/http client for comparison.

// wirePoster posts prepared requests over a pool of kept-alive
// connections.
type wirePoster struct {
	addr string // host:port
	path string
	host string // the Host header

	mu   sync.Mutex
	idle []*wireConn
}

func newWirePoster(rawURL string) (*wirePoster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("raw webhook client: %s: only http", rawURL)
	}
	return &wirePoster{addr: u.Host, path: u.RequestURI(), host: u.Host}, nil
}

// wire renders a whole request: request line, headers, body.
func (p *wirePoster) wire(h http.Header, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(256 + len(body))
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", p.path, p.host, len(body))
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (p *wirePoster) get() (*wireConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		wc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return wc, nil
	}
	p.mu.Unlock()
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &wireConn{c: c, br: bufio.NewReaderSize(c, 4096)}, nil
}

func (p *wirePoster) put(wc *wireConn) {
	p.mu.Lock()
	p.idle = append(p.idle, wc)
	p.mu.Unlock()
}

func (p *wirePoster) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, wc := range p.idle {
		_ = wc.c.Close()
	}
	p.idle = nil
}

// post writes req and reads the answer: its status and, for a failure, the
// start of its body.
func (p *wirePoster) post(req []byte, timeout time.Duration) (status int, body string, err error) {
	wc, err := p.get()
	if err != nil {
		return 0, "", err
	}
	_ = wc.c.SetDeadline(time.Now().Add(timeout))
	status, body, keep, err := wc.roundTrip(req)
	if err != nil || !keep {
		_ = wc.c.Close()
		return status, body, err
	}
	p.put(wc)
	return status, body, nil
}

var errBadAnswer = errors.New("malformed HTTP answer")

func (wc *wireConn) roundTrip(req []byte) (status int, body string, keep bool, err error) {
	if _, err := wc.c.Write(req); err != nil {
		return 0, "", false, err
	}
	line, err := wc.br.ReadSlice('\n')
	if err != nil {
		return 0, "", false, err
	}
	// HTTP/1.1 202 Accepted
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, "", false, errBadAnswer
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, "", false, errBadAnswer
	}
	length, keep := -1, true
	for {
		h, err := wc.br.ReadSlice('\n')
		if err != nil {
			return status, "", false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, "", false, errBadAnswer
		}
		v = bytes.TrimSpace(v)
		switch strings.ToLower(string(k)) {
		case "content-length":
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return status, "", false, errBadAnswer
			}
		case "connection":
			keep = !bytes.EqualFold(v, []byte("close"))
		case "transfer-encoding":
			return status, "", false, fmt.Errorf("raw webhook client: unexpected Transfer-Encoding %q", v)
		}
	}
	if length < 0 {
		return status, "", false, errBadAnswer
	}
	var b []byte
	if status/100 != 2 {
		b = make([]byte, min(length, 4096))
		if _, err := io.ReadFull(wc.br, b); err != nil {
			return status, "", false, err
		}
		length -= len(b)
	}
	if _, err := wc.br.Discard(length); err != nil {
		return status, string(b), false, err
	}
	return status, string(b), keep, nil
}
