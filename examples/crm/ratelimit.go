package crm

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rateLimiter is a fixed-window counter shared by all clients: simple and
// exact, so tests can predict which request is the first to get 429.
type rateLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	start time.Time
	used  int
}

func newRateLimiter(limit int, window time.Duration) *rateLimiter {
	return &rateLimiter{limit: limit, window: window}
}

// take counts one request at now and reports whether it is allowed, the
// requests left in the window and the time until the window resets.
func (l *rateLimiter) take(now time.Time) (ok bool, remaining int, reset time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || now.Sub(l.start) >= l.window {
		l.start, l.used = now, 0
	}
	reset = l.window - now.Sub(l.start)
	if l.used >= l.limit {
		return false, 0, reset
	}
	l.used++
	return true, l.limit - l.used, reset
}

// ceilSeconds rounds d up to whole seconds, at least 1, as the RateLimit and
// Retry-After headers count in seconds.
func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// setRateLimitHeaders writes the IETF httpapi RateLimit headers
// (structured-field form): the policy (quota q per window w) and the state
// (r requests remaining, t seconds until reset).
func setRateLimitHeaders(h http.Header, limit int, window time.Duration, remaining int, reset time.Duration) {
	h.Set("RateLimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, limit, ceilSeconds(window)))
	h.Set("RateLimit", fmt.Sprintf(`"default";r=%d;t=%d`, remaining, ceilSeconds(reset)))
}

func (s *Server) rateLimit(next http.Handler) http.Handler {
	l := s.limiter
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPIPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		ok, remaining, reset := l.take(time.Now())
		setRateLimitHeaders(w.Header(), l.limit, l.window, remaining, reset)
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(reset)))
			writeError(w, http.StatusTooManyRequests, codeRateLimited,
				fmt.Sprintf("rate limit of %d requests per %s exceeded; retry after %ds", l.limit, l.window, ceilSeconds(reset)))
			return
		}
		next.ServeHTTP(w, r)
	})
}
