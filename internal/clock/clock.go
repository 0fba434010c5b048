// Package clock is the one place Kabuto reads the time: Real is the wall
// clock, Fake a clock that tests and replays set and advance themselves,
// and JST the brokerage's time zone. Every component that reads the time
// takes a Clock, so a test never sleeps to wait for one.
package clock

import (
	"sync"
	"time"
)

// JSTOffset is Japan Standard Time's offset east of UTC, in seconds, for
// the hot paths that do calendar arithmetic on Unix seconds themselves.
const JSTOffset = 9 * 60 * 60

// JST is Japan Standard Time (UTC+9, no daylight saving), the time zone of
// the Tokyo market and of every time Kabuto shows a person.
var JST = time.FixedZone("JST", JSTOffset)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Real is the wall clock, read in JST.
type Real struct{}

// Now returns the current time in JST.
func (Real) Now() time.Time { return time.Now().In(JST) }

// Fake is a clock that moves only when told to. Its zero value reads the
// zero time; it is safe for concurrent use.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a Fake reading t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake's time, in JST.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now.In(JST)
}

// Set moves the fake to t, forward or back.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// Advance moves the fake forward by d and returns the new time.
func (f *Fake) Advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return f.now.In(JST)
}

// Mono is the wall clock as the process's monotonic clock measures it:
// its times keep their monotonic reading (and so the machine's own time
// zone), so that a duration between two of them is right even when the
// wall clock is stepped. It is for measuring latency, not for times that
// are shown or stored.
type Mono struct{}

// Now returns the current time with its monotonic reading.
func (Mono) Now() time.Time { return time.Now() }

// Func adapts c to the func() time.Time that some constructors take.
func Func(c Clock) func() time.Time { return c.Now }
