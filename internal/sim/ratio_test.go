package sim

import "testing"

func TestPreventedRatio(t *testing.T) {
	for _, c := range []struct {
		name      string
		base, got float64
		want      float64
	}{
		{"nothing attempted, nothing through", 0, 0, 1},
		{"all stopped", 1000, 0, 1},
		{"all through", 1000, 1000, 0},
		{"a quarter through", 1000, 250, 0.75},
		{"more through than the baseline", 1000, 1500, 0},
		{"through with no baseline", 0, 500, 0},
	} {
		if got := preventedRatio(c.base, c.got); got != c.want {
			t.Errorf("%s: preventedRatio(%v, %v) = %v, want %v", c.name, c.base, c.got, got, c.want)
		}
	}
}
