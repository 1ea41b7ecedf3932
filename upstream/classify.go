package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/toolbus/toolbus/toolerr"
)

// Classify turns an error from [Client.Do] into the tool error to report.
// budget is the time the call had, quoted in timeout messages. The
// distinction that matters most is whether the request can have reached
// the upstream: a refused connection or failed DNS lookup never did (so
// any retry is safe), a reset connection may have.
func Classify(tool, upstream string, budget time.Duration, err error) *toolerr.ToolError {
	var (
		tooLarge *TooLargeError
		redirect *RedirectError
		dnsErr   *net.DNSError
		opErr    *net.OpError
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		netErr   net.Error
	)
	if te, ok := toolerr.As(err); ok {
		return te
	}
	if te := classifyReliability(tool, upstream, err); te != nil {
		return te
	}
	switch {
	case errors.As(err, &tooLarge):
		return toolerr.ResponseTooLarge(tool, upstream, tooLarge.Size, tooLarge.Limit)
	case errors.As(err, &redirect):
		return toolerr.RedirectRefused(tool, upstream, redirect.Status, redirect.Reason)
	case errors.Is(err, context.DeadlineExceeded):
		return toolerr.Timeout(tool, upstream, budget)
	case errors.Is(err, context.Canceled):
		return toolerr.Cancelled(tool, upstream)
	case errors.Is(err, ErrLinkLocal):
		return toolerr.Unreachable(tool, upstream, "its address is link-local, which Toolbus refuses to connect to")
	case errors.Is(err, syscall.ECONNREFUSED):
		return toolerr.Unreachable(tool, upstream, "connection refused")
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return toolerr.Unreachable(tool, upstream, "its host name "+dnsErr.Name+" does not resolve")
		}
		return toolerr.Unreachable(tool, upstream, "DNS lookup of "+dnsErr.Name+" failed")
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr):
		return toolerr.Unreachable(tool, upstream, "its TLS certificate was not accepted")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		if opErr.Timeout() {
			return toolerr.Unreachable(tool, upstream, "connecting timed out")
		}
		return toolerr.Unreachable(tool, upstream, "connecting failed: "+innermost(opErr).Error())
	case errors.As(err, &netErr) && netErr.Timeout():
		// The transport's own timeouts (response header, TLS handshake)
		// fire before the call's deadline; to a model both mean the same.
		return toolerr.Timeout(tool, upstream, budget)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return toolerr.ConnectionLost(tool, upstream, "connection reset by the upstream")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return toolerr.ConnectionLost(tool, upstream, "the upstream closed the connection before answering in full")
	}
	return toolerr.ConnectionLost(tool, upstream, innermost(err).Error())
}

// innermost is the deepest error in a chain of single wraps: the part that
// says what went wrong without the URL-bearing wrappers around it.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
