package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
}

// OWASP is the OWASP Password Storage Cheat Sheet's first argon2id
// configuration: 19 MiB of memory, two iterations, one thread.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32}

// Hash returns the PHC string of password under p with a fresh salt.
func Hash(password string, p Params) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// ErrBadHash is returned for a stored hash Kabuto cannot read.
var ErrBadHash = errors.New("identity: malformed password hash")

// Verify reports whether password matches the PHC string encoded, in
// constant time. The parameters come from encoded, so hashes made under
// older parameters keep verifying.
func Verify(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, ErrBadHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<22 || p.Time > 64 {
		return false, ErrBadHash
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, ErrBadHash
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// ErrBusy is returned when the password pool's queue is full.
var ErrBusy = errors.New("identity: password checks are queued full")

// Pool runs password hashing on a fixed number of workers behind a
// bounded queue, so a flood of password attempts costs a fixed amount of
// CPU and memory (workers × argon2 memory) and is refused quickly once the
// queue is full, instead of starving every other request. It also caps
// the attempts in flight for any one account, so a flood against one
// account leaves room for everyone else's sign-ins.
type Pool struct {
	jobs       chan func()
	perAccount int

	mu       sync.Mutex
	inflight map[string]int
}

// NewPool starts workers goroutines (0: GOMAXPROCS) behind a queue of
// queue jobs (0: 64 per worker). perAccount caps queued-or-running jobs per
// account (0: no cap).
func NewPool(workers, queue, perAccount int) *Pool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if queue <= 0 {
		queue = 64 * workers
	}
	p := &Pool{jobs: make(chan func(), queue), perAccount: perAccount, inflight: map[string]int{}}
	for range workers {
		go func() {
			for job := range p.jobs {
				job()
			}
		}()
	}
	return p
}

// Do runs fn on a worker and waits for it. It returns ErrBusy at once
// when the queue is full or account has too many jobs in flight, and
// ctx's error if ctx ends first (fn may still run).
func (p *Pool) Do(ctx context.Context, account string, fn func()) error {
	p.mu.Lock()
	if p.perAccount > 0 && p.inflight[account] >= p.perAccount {
		p.mu.Unlock()
		return ErrBusy
	}
	p.inflight[account]++
	p.mu.Unlock()
	release := func() {
		p.mu.Lock()
		if p.inflight[account]--; p.inflight[account] <= 0 {
			delete(p.inflight, account)
		}
		p.mu.Unlock()
	}
	done := make(chan struct{})
	job := func() {
		defer close(done)
		defer release()
		if ctx.Err() == nil {
			fn()
		}
	}
	select {
	case p.jobs <- job:
	default:
		release()
		return ErrBusy
	}
	select {
	case <-done:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
