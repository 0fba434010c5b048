package sim

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kabuto-sec/kabuto/internal/market"
)

// TestNiceTicks: axes are labelled at round, evenly spaced values that
// cover the data (not 0, 2, 3, 4, 6 at equal spacing).
func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct {
		lo, hi float64
		n      int
		want   string
	}{
		{0, 6, 5, "[0 2 4 6]"},
		{0, 524.5, 6, "[0 200 400 600]"},
		{0, 524.5, 8, "[0 100 200 300 400 500 600]"},
		{1.003, 1.097, 5, "[1 1.025 1.05 1.075 1.1]"},
		{2.55, 2.69, 5, "[2.55 2.6 2.65 2.7]"},
		{98.2, 104, 5, "[98 100 102 104]"},
		{0, 3, 5, "[0 1 2 3]"},
		{5, 5, 5, "[5 5.25 5.5 5.75 6]"},
	} {
		ticks, _ := niceTicks(tt.lo, tt.hi, tt.n)
		if got := fmt.Sprint(ticks); got != tt.want {
			t.Errorf("niceTicks(%v, %v, %d) = %s, want %s", tt.lo, tt.hi, tt.n, got, tt.want)
		}
		if ticks[0] > tt.lo+1e-9 || ticks[len(ticks)-1] < tt.hi-1e-9 {
			t.Errorf("niceTicks(%v, %v): %v does not cover the data", tt.lo, tt.hi, ticks)
		}
		for i := 2; i < len(ticks); i++ {
			if d1, d2 := ticks[i]-ticks[i-1], ticks[1]-ticks[0]; d1-d2 > 1e-9 || d2-d1 > 1e-9 {
				t.Errorf("uneven ticks %v", ticks)
			}
		}
	}
}

// TestPricePathGaps: the price line stops at lunch and starts again
// after it, instead of drawing a line across the break.
func TestPricePathGaps(t *testing.T) {
	var pts []pricePoint
	for m := at(11, 25); !m.After(at(11, 30)); m = m.Add(time.Minute) {
		pts = append(pts, pricePoint{m, 100})
	}
	for m := at(12, 31); !m.After(at(12, 35)); m = m.Add(time.Minute) {
		pts = append(pts, pricePoint{m, 101})
	}
	if p := pricePath(pts, 99, 102); strings.Count(p, "M") != 2 {
		t.Errorf("path %q: want two segments, morning and afternoon", p)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{1: "1 hijacked buy", 2: "2 hijacked buys", 0: "0 hijacked buys"} {
		if got := plural(n, "hijacked buy", "hijacked buys"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestReportInChromium renders the HTML report of a real (small) run in
// Chromium: headline figures first, the FSA table, the ablation chart and
// a chart per target with the hijacked orders marked; nothing wider than
// the page; a screenshot and a PDF printed through the print stylesheet.
// The screenshot is kept in KABUTO_TEST_SCREENSHOTS when that is set.
func TestReportInChromium(t *testing.T) {
	exe := os.Getenv("KABUTO_TEST_CHROMIUM")
	if exe == "" {
		t.Skip("set KABUTO_TEST_CHROMIUM=/usr/bin/chromium to render the report in Chromium")
	}
	cfg := Config{Seed: 1, Customers: 1500, Sessions: 150, HistoryDays: 6, Log: quiet(), TempDir: t.TempDir(), Only: []string{"all_on", "all_off", "no_guard", "no_passkeys"}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	body := html.String()
	for _, want := range []string{"Attempted", "Prevented", "Lost", "Friction", "The FSA's table", "Defences off", "Which defence does the work", "buy executed", "lunch", "close 15:30", "@media print"} {
		if !strings.Contains(body, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(body, "<pre>") {
		t.Error("the report still shows terminal text")
	}
	if strings.Index(body, "Attempted") > strings.Index(body, "The FSA's table") {
		t.Error("the headline figures do not come first")
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, html.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1000, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file)); err != nil {
		t.Fatal(err)
	}
	check := func(expr string) {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil || !ok {
			t.Errorf("%s: %v %v", expr, ok, err)
		}
	}
	// Nothing cut off at the right; every chart drawn with a size.
	check(`document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	check(`document.querySelectorAll("figure svg").length >= 8`)
	check(`[...document.querySelectorAll("figure svg")].every(s => { const r = s.getBoundingClientRect(); return r.width > 600 && r.height > 150 && r.right <= document.documentElement.clientWidth })`)
	check(`document.querySelector(".cards").getBoundingClientRect().top < document.querySelector("table").getBoundingClientRect().top`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 900 || b.Dy() < 2000 {
		t.Errorf("screenshot %v: the report did not render in full", b)
	}
	if dir := os.Getenv("KABUTO_TEST_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "simulator-report.png"), shot, 0o644); err != nil {
			t.Error(err)
		}
	}
	res, err := chromedp.Call(ctx, page.PrintToPDF, page.PrintToPDFParams{PaperWidth: 8.27, PaperHeight: 11.69})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(res.Data, []byte("%PDF")) || len(res.Data) < 10000 {
		t.Errorf("printing to PDF gave %d bytes", len(res.Data))
	}
}

// TestLotOfUnknownIssue: a holding of an issue the world does not list
// (a server's own) rounds by 1, never divides by a lot of 0.
func TestLotOfUnknownIssue(t *testing.T) {
	w := &world{inst: map[string]market.Instrument{"7203": {Symbol: "7203", Lot: 100}, "BAD": {Symbol: "BAD"}}}
	for sym, want := range map[string]int64{"7203": 100, "BAD": 1, "0700.HK-unknown": 1} {
		if got := w.lot(sym); got != want {
			t.Errorf("lot(%s) = %d, want %d", sym, got, want)
		}
	}
}
