package risk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"time"
)

// Watcher reloads a policy file into an engine when the file changes. It
// polls the file's modification time and size, and compares a SHA-256 of
// the contents before loading, so a touch without a change does nothing.
// An invalid new file keeps the old policy and is reported to OnError.
type Watcher struct {
	Path     string
	Interval time.Duration
	Engine   *Engine
	// OnError receives read and load errors; nil ignores them.
	OnError func(error)
	// OnLoad, when set, receives each policy loaded.
	OnLoad func(*Policy)

	mu    sync.Mutex
	mod   time.Time
	size  int64
	sum   [32]byte
	valid bool
	tried bool
}

// WatchPolicy polls path every interval (at least 10 ms) until ctx is done,
// and sets each valid new version as engine's live policy. It loads the
// file once before returning the Watcher: an error from that first load is
// returned and the engine keeps its policy; watching goes on either way.
func WatchPolicy(ctx context.Context, path string, interval time.Duration, engine *Engine, onErr func(error)) (*Watcher, error) {
	if engine == nil {
		return nil, errPolicyNil
	}
	w := &Watcher{Path: path, Interval: max(interval, 10*time.Millisecond), Engine: engine, OnError: onErr}
	err := w.Check()
	go w.run(ctx)
	return w, err
}

func (w *Watcher) run(ctx context.Context) {
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.Check(); err != nil && w.OnError != nil {
				w.OnError(err)
			}
		}
	}
}

// Check looks at the file once and reloads it if it changed. It returns
// the read or load error of a changed file (reported once per change).
func (w *Watcher) Check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.Path)
	if err != nil {
		if w.valid || w.mod.IsZero() {
			w.valid = false
			w.mod = time.Unix(1, 0) // report once
			return err
		}
		return nil
	}
	if fi.ModTime().Equal(w.mod) && fi.Size() == w.size {
		return nil
	}
	w.mod, w.size = fi.ModTime(), fi.Size()
	src, err := os.ReadFile(w.Path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(src)
	if w.tried && bytes.Equal(sum[:], w.sum[:]) {
		return nil // same contents: already loaded, or already reported
	}
	w.sum, w.tried = sum, true
	p, err := LoadPolicy(w.Path, src)
	if err != nil {
		w.valid = false
		return err
	}
	w.valid = true
	w.Engine.SetPolicy(p)
	if w.OnLoad != nil {
		w.OnLoad(p)
	}
	return nil
}
