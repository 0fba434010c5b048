package sim

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// WriteHTML writes the report as one self-contained HTML page: the
// scorecard tables and server-side SVG charts (the price of each target
// with its halt marked, the news issue, and alerts over time).
func (rep *Report) WriteHTML(w io.Writer) error {
	var text strings.Builder
	rep.Format(&text)
	var charts []template.HTML
	if rep.charts != nil {
		for _, t := range rep.charts.targets {
			title := fmt.Sprintf("%s (%s): price, one-minute closes", t.sym, t.wave)
			var marks []mark
			if len(t.buys) >= 3 {
				marks = append(marks, mark{t.buys[2], "3rd hijacked buy", "#d98c00"})
			}
			if !t.haltAt.IsZero() {
				marks = append(marks, mark{t.haltAt, "buys halted", "#c0392b"})
			}
			charts = append(charts, priceSVG(title, t.prices, marks))
		}
		charts = append(charts, priceSVG(fmt.Sprintf("%s: the benign news spike (must not be halted)", rep.charts.newsSym), rep.charts.news, nil))
		charts = append(charts, alertsSVG(rep.charts.alerts))
	}
	return page.Execute(w, map[string]any{"Rep": rep, "Text": text.String(), "Charts": charts})
}

type mark struct {
	t     time.Time
	label string
	color string
}

const (
	svgW, svgH = 760, 220
	padL, padR = 56, 16
	padT, padB = 28, 28
)

// xOf places a time of the trading day (9:00-15:30 JST, lunch included) on the x axis.
func xOf(t time.Time) float64 {
	from, to := at(9, 0), at(15, 30)
	f := float64(t.Sub(from)) / float64(to.Sub(from))
	return padL + math.Max(0, math.Min(1, f))*(svgW-padL-padR)
}

func axes(b *strings.Builder, title string, lo, hi float64, fmtY func(float64) string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, svgW, svgH, svgW, svgH, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, padL, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, padL, padT, svgW-padL-padR, svgH-padT-padB)
	for h := 9; h <= 15; h++ {
		x := xOf(at(h, 0))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" font-size="10" text-anchor="middle">%d:00</text>`, x, padT, x, svgH-padB, x, svgH-padB+14, h)
	}
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		y := yOf(v, lo, hi)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>`, padL-4, y+3, template.HTMLEscapeString(fmtY(v)))
	}
}

func yOf(v, lo, hi float64) float64 {
	if hi <= lo {
		hi = lo + 1
	}
	return float64(svgH-padB) - (v-lo)/(hi-lo)*float64(svgH-padT-padB)
}

func priceSVG(title string, pts []pricePoint, marks []mark) template.HTML {
	var b strings.Builder
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Price), math.Max(hi, p.Price)
	}
	if len(pts) == 0 {
		lo, hi = 0, 1
	}
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = math.Max(hi*0.01, 0.01)
	}
	lo, hi = lo-pad, hi+pad
	axes(&b, title, lo, hi, func(v float64) string { return trimFloat(v) })
	var path strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, xOf(p.T), yOf(p.Price, lo, hi))
	}
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#2c6fbb" stroke-width="1.5"/>`, strings.TrimSpace(path.String()))
	for i, m := range marks {
		x := xOf(m.t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="4 3"/>`, x, padT, x, svgH-padB, m.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="%s">%s %s</text>`, x+3, padT+12+12*i, m.color, template.HTMLEscapeString(m.label), clock(m.t))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func alertsSVG(alerts []event.Alert) template.HTML {
	const bucket = 10 * time.Minute
	from := at(9, 0)
	n := int(at(15, 30).Sub(from) / bucket)
	counts := make([]int, n+1)
	halts := make([]int, n+1)
	maxC := 1
	for _, a := range alerts {
		i := int(a.Time.Sub(from) / bucket)
		if i < 0 || i > n {
			continue
		}
		counts[i]++
		if a.Action == event.AlertHaltBuys {
			halts[i]++
		}
		maxC = max(maxC, counts[i])
	}
	var b strings.Builder
	axes(&b, "Surveillance alerts per 10 minutes (red: with halt_buys)", 0, float64(maxC), func(v float64) string { return fmt.Sprintf("%.0f", v) })
	bw := (xOf(from.Add(bucket)) - xOf(from)) * 0.8
	for i := range counts {
		if counts[i] == 0 {
			continue
		}
		x := xOf(from.Add(time.Duration(i) * bucket))
		y := yOf(float64(counts[i]), 0, float64(maxC))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#7a9cc6"><title>%s: %d alerts</title></rect>`, x, y, bw, float64(svgH-padB)-y, clock(from.Add(time.Duration(i)*bucket)), counts[i])
		if halts[i] > 0 {
			yh := yOf(float64(halts[i]), 0, float64(maxC))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#c0392b"/>`, x, yh, bw, float64(svgH-padB)-yh)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Kabuto simulator: {{.Rep.Scenario}}, seed {{.Rep.Seed}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #222; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
figure { margin: 1.5em 0; }
</style></head>
<body>
<h1>Kabuto simulator</h1>
<p>{{.Rep.Scenario}}, seed {{.Rep.Seed}}, {{.Rep.Customers}} customers, enrolment {{.Rep.Enrolment}}, simulated day {{.Rep.Day}}.
What would have happened had Kabuto been running: the FSA's table with the defences off and on, and each layer off in turn.</p>
<h2>Scorecard</h2>
<pre>{{.Text}}</pre>
<h2>Charts (defences on)</h2>
{{range .Charts}}<figure>{{.}}</figure>
{{end}}
</body></html>
`))
