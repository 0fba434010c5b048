package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// chartInput is what one instrument chart shows.
type chartInput struct {
	Symbol  string
	Bars    []bar
	Orders  []order
	Flagged map[string]bool // accounts named in alerts on this symbol
	Halts   []time.Time     // when buying was halted
	Alerts  []time.Time     // when alerts were raised
}

// chart draws price (line) and volume (bars) over time, with the flagged
// accounts' orders as triangles (filled: executed; hollow: refused) and
// halts as vertical lines, as an SVG document.
func chart(in chartInput) template.HTML {
	const w, h, pad, volH = 900.0, 360.0, 48.0, 80.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s price and volume" class="chart">`, w, h, template.HTMLEscapeString(in.Symbol))
	if len(in.Bars) == 0 {
		b.WriteString(`<text x="450" y="180" text-anchor="middle" fill="#666">no market data yet · 市場データなし</text></svg>`)
		return template.HTML(b.String())
	}
	t0, t1 := in.Bars[0].t.Add(-time.Minute), in.Bars[len(in.Bars)-1].t
	for _, o := range in.Orders {
		if o.T.Before(t0) {
			t0 = o.T
		}
		if o.T.After(t1) {
			t1 = o.T
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var vmax int64 = 1
	for _, x := range in.Bars {
		lo, hi = math.Min(lo, x.low), math.Max(hi, x.high)
		vmax = max(vmax, x.volume)
	}
	if hi-lo < hi*0.02 {
		mid := (hi + lo) / 2
		lo, hi = mid*0.99, mid*1.01
	}
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 60
	}
	x := func(t time.Time) float64 { return pad + (w-2*pad)*t.Sub(t0).Seconds()/span }
	py := func(p float64) float64 { return pad/2 + (h-pad-volH)*(hi-p)/(hi-lo) }
	// axes and labels
	fmt.Fprintf(&b, `<g font-size="11" fill="#555">`)
	for i := 0; i <= 4; i++ {
		p := lo + (hi-lo)*float64(i)/4
		y := py(p)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="4" y="%.1f">%s</text>`, pad, w-pad, y, y, y+4, fmtPrice(p))
	}
	for i := 0; i <= 4; i++ {
		t := t0.Add(time.Duration(float64(i) / 4 * span * float64(time.Second)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(t), h-4, t.Format("15:04"))
	}
	b.WriteString(`</g>`)
	// volume
	bw := math.Max(1, (w-2*pad)/float64(len(in.Bars))*0.8)
	for _, v := range in.Bars {
		vh := volH * 0.9 * float64(v.volume) / float64(vmax)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#c9d6e8"/>`, x(v.t)-bw/2, h-pad+8-vh, bw, vh)
	}
	// price
	b.WriteString(`<polyline fill="none" stroke="#1f4e8c" stroke-width="1.6" points="`)
	for _, v := range in.Bars {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(v.t), py(v.close))
	}
	b.WriteString(`"/>`)
	// halts and alerts
	for _, t := range in.Alerts {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e0a000" stroke-dasharray="2 3"/>`, x(t), x(t), pad/2, h-pad-volH)
	}
	for _, t := range in.Halts {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#c0392b" stroke-width="2"/><text x="%.1f" y="%.1f" font-size="11" fill="#c0392b">HALT 買停止 %s</text>`,
			x(t), x(t), pad/2, h-pad+8, x(t)+4, pad/2+10, t.Format("15:04:05"))
	}
	// flagged orders at the price of the bar nearest in time
	for _, o := range in.Orders {
		if !in.Flagged[o.Account] {
			continue
		}
		p := nearestClose(in.Bars, o.T)
		cx, cy := x(o.T), py(p)
		fill := "#c0392b"
		if o.Action != "allow" {
			fill = "none"
		}
		if o.Side == "buy" {
			fmt.Fprintf(&b, `<path d="M%.1f %.1f l5 9 h-10 z" fill="%s" stroke="#c0392b"><title>%s buy %d · %s %s</title></path>`, cx, cy-4, fill,
				template.HTMLEscapeString(o.Account), o.Qty, template.HTMLEscapeString(o.Action), template.HTMLEscapeString(strings.Join(o.Reasons, " ")))
		} else {
			fmt.Fprintf(&b, `<path d="M%.1f %.1f l5 -9 h-10 z" fill="%s" stroke="#7d3c98"><title>%s sell %d · %s</title></path>`, cx, cy+4, strings.Replace(fill, "#c0392b", "#7d3c98", 1),
				template.HTMLEscapeString(o.Account), o.Qty, template.HTMLEscapeString(o.Action))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func nearestClose(bars []bar, t time.Time) float64 {
	best, d := bars[0].close, math.Inf(1)
	for _, v := range bars {
		if dd := math.Abs(v.t.Sub(t).Seconds()); dd < d {
			best, d = v.close, dd
		}
	}
	return best
}

func fmtPrice(p float64) string {
	if p >= 100 {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.2f", p)
}
