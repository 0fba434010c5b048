package clock

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Date(2025, 4, 15, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	if got := f.Now(); !got.Equal(start) || got.Location() != JST || got.Hour() != 9 {
		t.Fatalf("Now = %v, want %v in JST (09:00)", got, start)
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { f.Advance(time.Second) })
	}
	wg.Wait()
	if got := f.Now().Sub(start); got != 100*time.Second {
		t.Fatalf("advanced %v, want 100s", got)
	}
	f.Set(start)
	if !Func(f)().Equal(start) {
		t.Fatal("Set did not move the clock back")
	}
}

func TestReal(t *testing.T) {
	before := time.Now()
	got := Real{}.Now()
	if got.Location() != JST || got.Before(before) || got.Sub(before) > time.Minute {
		t.Fatalf("Real.Now = %v (location %v), want about %v in JST", got, got.Location(), before)
	}
}

func TestMono(t *testing.T) {
	a := Mono{}.Now()
	b := Mono{}.Now()
	// Only a time with a monotonic reading prints one ("m=+…").
	if !strings.Contains(a.String(), " m=") || b.Before(a) {
		t.Fatalf("Mono.Now = %v then %v, want monotonic readings in order", a, b)
	}
}
