package identity

import (
	"sync"
	"time"
)

// Throttle counts attempts per key (an IP address, a network) in fixed
// windows, in memory. One instance per server: a fleet behind a load
// balancer divides the limits by its size, which errs on the strict side.
type Throttle struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*window
	n   int
}

type window struct {
	start time.Time
	count int
}

// NewThrottle returns a Throttle on the given clock.
func NewThrottle(now func() time.Time) *Throttle {
	return &Throttle{now: now, m: map[string]*window{}}
}

// Allow counts one attempt for key and reports whether it is within limit
// attempts per window.
func (t *Throttle) Allow(key string, limit int, per time.Duration) bool {
	if limit < 0 {
		return true
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.m[key]
	if w == nil || now.Sub(w.start) >= per {
		w = &window{start: now}
		t.m[key] = w
	}
	w.count++
	if t.n++; t.n%4096 == 0 {
		for k, v := range t.m {
			if now.Sub(v.start) >= per {
				delete(t.m, k)
			}
		}
	}
	return w.count <= limit
}
