package webhookingest

import (
	"io"
	"math/bits"
	"net/http"
	"sync"
)

// Bodies and encoded events are the only allocations of a delivery that
// grow with its size. They live only until the publish returned (NATS
// copies a message into its write buffer before it waits for the PubAck),
// so they are taken from and given back to size-class pools: with
// io.ReadAll and proto.Marshal, a 64 KB delivery allocated (and cleared)
// about 200 KB and drove most of the garbage collector's work.

const (
	minBufClass = 10 // 1 KiB
	maxBufClass = 19 // 512 KiB: larger buffers are not kept
	// unknownLengthStart is the first read buffer of a body sent without
	// Content-Length (chunked).
	unknownLengthStart = 4 << 10
)

var bufPools [maxBufClass + 1]sync.Pool // of *[]byte, by log2 of the capacity

// getBuf returns an empty buffer with a capacity of at least n.
func getBuf(n int) *[]byte {
	c := max(minBufClass, bits.Len(uint(max(n, 1)-1)))
	if c <= maxBufClass {
		if p, ok := bufPools[c].Get().(*[]byte); ok {
			*p = (*p)[:0]
			return p
		}
		n = 1 << c
	}
	b := make([]byte, 0, n)
	return &b
}

// putBuf gives p back; nothing may use its bytes afterwards.
func putBuf(p *[]byte) {
	if p == nil {
		return
	}
	// The class whose every buffer is at least this large.
	c := bits.Len(uint(cap(*p))) - 1
	if c < minBufClass || c > maxBufClass {
		return
	}
	*p = (*p)[:0]
	bufPools[c].Put(p)
}

// readBody reads a body of at most limit bytes into a pooled buffer: in one
// read of the right size when Content-Length is known (the caller refused
// one over the limit), else growing by doubling. A body over the limit
// fails with *http.MaxBytesError, as with http.MaxBytesReader, which still
// wraps the body either way.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*[]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n >= 0 && n <= limit {
		p := getBuf(int(n))
		b := (*p)[:n]
		if _, err := io.ReadFull(rd, b); err != nil {
			putBuf(p)
			return nil, err
		}
		// The declared length is all there is: net/http's body ends there.
		*p = b
		return p, nil
	}
	p := getBuf(unknownLengthStart)
	for {
		b := *p
		if len(b) == cap(b) {
			q := getBuf(2 * cap(b))
			*q = append(*q, b...)
			putBuf(p)
			p, b = q, *q
		}
		n, err := rd.Read(b[len(b):cap(b)])
		*p = b[:len(b)+n]
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			putBuf(p)
			return nil, err
		}
	}
}
