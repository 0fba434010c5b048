package sim

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
)

// WriteHTML writes the report as one self-contained HTML page for a
// board: the headline figures first (value attempted, prevented and
// lost, and the friction on legitimate customers), the FSA's table with
// the defences off and on, an ablation chart, then a chart per target
// with the hijacked orders (executed and refused), the halt, the ring's
// sells, and the price with the defences off beside the price with them
// on. Charts are SVG drawn here; the page prints to A4 (print stylesheet).
func (rep *Report) WriteHTML(w io.Writer) error {
	on, off := rep.run("all_on", "as_deployed"), rep.run("all_off")
	d := htmlData{Rep: rep, Off: rep.FSATable.DefencesOff, On: rep.FSATable.DefencesOn}
	if on != nil {
		lost := on.FSA.ValueSoldJPY + on.FSA.ValueBoughtJPY + on.WithdrawnJPY
		// Attempted: what the hijackers set out to move. With a
		// defences-off run that is what the same sessions moved with
		// nothing in their way (stopped sessions attempt less than they
		// would have); without one, what they tried with the defences on.
		attempted := on.AttemptedSellJPY + on.AttemptedBuyJPY + on.AttemptedWithdrawJPY
		attemptedNote := "sells, buys and withdrawals the hijackers tried in stolen sessions"
		if off != nil {
			attempted = off.FSA.ValueSoldJPY + off.FSA.ValueBoughtJPY + off.WithdrawnJPY
			attemptedNote = "what the same hijacked sessions sold, bought and withdrew with no defence in their way"
		}
		prevented := max(attempted-lost, 0)
		d.Headline = []headline{
			{"Attempted", yenM(attempted), attemptedNote, ""},
			{"Prevented", yenM(prevented), pct(ratio(float64(prevented), float64(attempted))) + " of it kept from the hijackers", "good"},
			{"Lost", yenM(lost), fmt.Sprintf("sold, bought and withdrawn in %s", plural(on.FSA.UnauthorisedTrades, "hijacked trade", "hijacked trades")), bad(lost > 0)},
			{"Friction", pct(on.LegitChallengedRatio), fmt.Sprintf("of %d legitimate sessions asked for a step-up; %s of their actions blocked", on.LegitSessions, pct(on.LegitBlockedRatio)), ""},
		}
	}
	d.Ablation = ablationSVG(rep.Runs)
	if rep.charts != nil {
		offBy := map[string]*target{}
		for _, t := range rep.charts.offTargets {
			offBy[t.sym] = t
		}
		for _, t := range rep.charts.targets {
			d.Targets = append(d.Targets, targetSVG(t, offBy[t.sym]))
		}
		d.News = targetSVG(&target{sym: rep.charts.newsSym, wave: "news", prices: rep.charts.news}, nil)
		d.Alerts = alertsSVG(rep.charts.alerts)
	}
	return reportPage.Execute(w, d)
}

type htmlData struct {
	Rep      *Report
	Headline []headline
	Off      *FSARow
	On       FSARow
	Ablation template.HTML
	Targets  []template.HTML
	News     template.HTML
	Alerts   template.HTML
}

type headline struct{ Title, Figure, Note, Class string }

func bad(b bool) string {
	if b {
		return "bad"
	}
	return "good"
}

// run is the scored run of the first of names present.
func (rep *Report) run(names ...string) *RunScore {
	for _, n := range names {
		for i := range rep.Runs {
			if rep.Runs[i].Variant == n {
				return &rep.Runs[i]
			}
		}
	}
	return nil
}

var variantNames = map[string]string{
	"all_on": "All defences on", "as_deployed": "As deployed", "all_off": "All defences off",
	"no_passkeys": "Without passkeys", "no_guard": "Without the risk guard", "no_surveillance": "Without surveillance",
	"no_halts": "Without halts",
}

// niceTicks returns about n round tick values covering lo..hi (steps of
// 1, 2, 2.5 or 5 times a power of ten) and the decimals they need.
func niceTicks(lo, hi float64, n int) ([]float64, int) {
	if !(hi > lo) {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(max(n-1, 1))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if s := strconv.FormatFloat(step, 'f', -1, 64); strings.Contains(s, ".") {
		dec = max(dec, len(s)-strings.Index(s, ".")-1)
	}
	var ticks []float64
	for k := math.Floor(lo/step + 1e-9); k <= math.Ceil(hi/step-1e-9); k++ {
		v, _ := strconv.ParseFloat(strconv.FormatFloat(k*step, 'f', dec, 64), 64)
		ticks = append(ticks, v)
	}
	return ticks, dec
}

const (
	svgW, svgH = 760, 250
	padL, padR = 60, 20
	padT, padB = 48, 40
)

// The trading day of the chart: Tokyo's sessions, 9:00-11:30 and
// 12:30-15:30 JST; lunch and the close are drawn as gaps.
var (
	dayFrom, dayTo       = Day0.Add(market.TSEOpen), Day0.Add(market.TSEClose)
	lunchFrom, lunchTo   = Day0.Add(market.TSEMorningClose), Day0.Add(market.TSEAfternoonOpen)
	plotL, plotR         = float64(padL), float64(svgW - padR)
	plotTop, plotBottom  = float64(padT), float64(svgH - padB)
	gapMinutes           = 2 * time.Minute
	colOn, colOff, colRF = "#1f5fa8", "#9a9a9a", "#c0392b"
)

// xOf places a time of the trading day on the x axis.
func xOf(t time.Time) float64 {
	f := float64(t.Sub(dayFrom)) / float64(dayTo.Sub(dayFrom))
	return plotL + math.Max(0, math.Min(1, f))*(plotR-plotL)
}

func yOf(v, lo, hi float64) float64 {
	if hi <= lo {
		hi = lo + 1
	}
	return plotBottom - (v-lo)/(hi-lo)*(plotBottom-plotTop)
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// frame draws the title, the plot area, the time axis with lunch shaded
// as a gap and the close marked, and the y axis at nice ticks.
func frame(b *strings.Builder, title, yLabel string, lo, hi float64, ticks []float64, dec int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" font-family="system-ui, sans-serif">`, svgW, svgH, esc(title))
	fmt.Fprintf(b, `<text x="%d" y="18" font-size="14" font-weight="600">%s</text>`, padL, esc(title))
	fmt.Fprintf(b, `<text x="12" y="%.0f" font-size="10" fill="#555" transform="rotate(-90 12 %.0f)" text-anchor="middle">%s</text>`, (plotTop+plotBottom)/2, (plotTop+plotBottom)/2, esc(yLabel))
	for _, v := range ticks {
		y := yOf(v, lo, hi)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e6e6e6"/>`, plotL, y, plotR, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#333">%s</text>`, plotL-6, y+3, esc(groupDigits(v, dec)))
	}
	xl, xr := xOf(lunchFrom), xOf(lunchTo)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f3f3f3"/><text x="%.1f" y="%.1f" font-size="10" fill="#777" text-anchor="middle">lunch</text>`,
		xl, plotTop, xr-xl, plotBottom-plotTop, (xl+xr)/2, plotTop+12)
	for h := 9; h <= 15; h++ {
		x := xOf(at(h, 0))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%d:00</text>`, x, plotBottom, x, plotBottom+4, x, plotBottom+16, h)
	}
	xc := xOf(dayTo)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="2 2"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#555">close 15:30</text>`, xc, plotTop, xc, plotBottom, xc-4, plotTop+12)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, plotL, plotBottom, plotR, plotBottom)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, plotL, plotTop, plotL, plotBottom)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" fill="#555" text-anchor="middle">time of day (JST)</text>`, (plotL+plotR)/2, plotBottom+32)
}

// groupDigits formats v with dec decimals and thousands separators.
func groupDigits(v float64, dec int) string {
	s := fmt.Sprintf("%.*f", dec, v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var out []byte
	for i := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, intPart[i])
	}
	r := string(out)
	if frac != "" {
		r += "." + frac
	}
	if neg && strings.Trim(r, "0.,") != "" {
		r = "-" + r
	}
	return r
}

// pricePath is an SVG path of pts that breaks wherever no price was
// recorded for more than gapMinutes (lunch, the close).
func pricePath(pts []pricePoint, lo, hi float64) string {
	var b strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 || p.T.Sub(pts[i-1].T) > gapMinutes {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%.1f %.1f ", cmd, xOf(p.T), yOf(p.Price, lo, hi))
	}
	return strings.TrimSpace(b.String())
}

// targetSVG draws one issue's day: the price with the defences on, with
// them off (grey, dashed) when there was such a run, the hijacked buys
// (filled: executed; hollow with a cross: refused), the ring's sells and
// the halt.
func targetSVG(t, off *target) template.HTML {
	lo, hi := math.Inf(1), math.Inf(-1)
	span := func(pts []pricePoint) {
		for _, p := range pts {
			lo, hi = math.Min(lo, p.Price), math.Max(hi, p.Price)
		}
	}
	span(t.prices)
	if off != nil {
		span(off.prices)
	}
	marks := append(append([]orderMark(nil), t.orders...), t.sells...)
	if off != nil {
		marks = append(append(marks, off.orders...), off.sells...)
	}
	for _, o := range marks {
		if o.Price > 0 {
			lo, hi = math.Min(lo, o.Price), math.Max(hi, o.Price)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	ticks, dec := niceTicks(lo, hi, 5)
	lo, hi = ticks[0], ticks[len(ticks)-1]
	if hi <= lo {
		hi = lo + 1
	}
	title := fmt.Sprintf("%s: price through the day", t.sym)
	if t.wave == "news" {
		title = fmt.Sprintf("%s: the benign news spike (must not be halted)", t.sym)
	} else if t.wave != "" {
		title = fmt.Sprintf("%s (wave %s): price through the day", t.sym, t.wave)
	}
	var b strings.Builder
	frame(&b, title, "price", lo, hi, ticks, dec)
	if off != nil && len(off.prices) > 0 {
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="5 3"><title>defences off</title></path>`, pricePath(off.prices, lo, hi), colOff)
	}
	if len(t.prices) > 0 {
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"><title>defences on</title></path>`, pricePath(t.prices, lo, hi), colOn)
	}
	if !t.haltAt.IsZero() {
		x := xOf(t.haltAt)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f" font-size="10" fill="%s">buys halted %s</text>`,
			x, plotTop, x, plotBottom, colRF, x+4, plotTop+24, colRF, timeOfDay(t.haltAt))
	}
	offMarks := false
	if off != nil {
		// What the hijackers did with nothing in their way: outlines.
		for _, o := range off.orders {
			if o.Executed {
				offMarks = true
				fmt.Fprintf(&b, `<path d="M%.1f %.1f l5 9 h-10 z" fill="none" stroke="#d98c00" stroke-width="1.2"><title>defences off: hijacked buy executed %s at %s</title></path>`, xOf(o.T), yOf(o.Price, lo, hi)-4, timeOfDay(o.T), trimFloat(o.Price))
			}
		}
		for _, o := range off.sells {
			offMarks = true
			fmt.Fprintf(&b, `<path d="M%.1f %.1f l5 -9 h-10 z" fill="none" stroke="#2e8b57" stroke-width="1.2"><title>defences off: ring sells %s at %s</title></path>`, xOf(o.T), yOf(o.Price, lo, hi)+4, timeOfDay(o.T), trimFloat(o.Price))
		}
	}
	for _, o := range t.orders {
		x, y := xOf(o.T), yOf(o.Price, lo, hi)
		if o.Executed {
			fmt.Fprintf(&b, `<path d="M%.1f %.1f l5 9 h-10 z" fill="#d98c00"><title>hijacked buy executed %s at %s</title></path>`, x, y-4, timeOfDay(o.T), trimFloat(o.Price))
		} else {
			fmt.Fprintf(&b, `<g stroke="%s" stroke-width="1.5"><circle cx="%.1f" cy="%.1f" r="5" fill="white"/><path d="M%.1f %.1f l6 6 M%.1f %.1f l-6 6"/><title>hijacked buy refused %s</title></g>`,
				colRF, x, y, x-3, y-3, x+3, y-3, timeOfDay(o.T))
		}
	}
	for _, o := range t.sells {
		x, y := xOf(o.T), yOf(o.Price, lo, hi)
		fmt.Fprintf(&b, `<path d="M%.1f %.1f l5 -9 h-10 z" fill="#2e8b57"><title>ring sells %s at %s</title></path>`, x, y+4, timeOfDay(o.T), trimFloat(o.Price))
	}
	legend(&b, off != nil && len(off.prices) > 0, t.wave != "news", offMarks)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func legend(b *strings.Builder, withOff, withOrders, offMarks bool) {
	x := plotL
	y := 34.0
	item := func(sym, label string) {
		w := 14.0
		if strings.Count(sym, "<path") > 1 {
			w = 26
		}
		fmt.Fprintf(b, `<g transform="translate(%.1f %.1f)">%s<text x="%.0f" y="4" font-size="10">%s</text></g>`, x, y, sym, w, esc(label))
		x += w + 5.6*float64(len(label)) + 12
	}
	item(fmt.Sprintf(`<line x1="0" y1="0" x2="10" y2="0" stroke="%s" stroke-width="2"/>`, colOn), "defences on")
	if withOff {
		item(fmt.Sprintf(`<line x1="0" y1="0" x2="10" y2="0" stroke="%s" stroke-width="1.5" stroke-dasharray="4 2"/>`, colOff), "defences off")
	}
	if withOrders {
		item(`<path d="M5 -5 l5 9 h-10 z" fill="#d98c00"/>`, "buy executed")
		item(fmt.Sprintf(`<circle cx="5" cy="0" r="4" fill="white" stroke="%s"/>`, colRF), "buy refused")
		item(`<path d="M5 5 l5 -9 h-10 z" fill="#2e8b57"/>`, "ring sells")
	}
	if offMarks {
		item(`<path d="M5 -5 l5 9 h-10 z" fill="none" stroke="#d98c00"/><path d="M17 5 l5 -9 h-10 z" fill="none" stroke="#2e8b57"/>`, "the same, defences off")
	}
}

// ablationSVG draws the value lost by each run, all on, each layer off
// in turn, all off: horizontal bars on a yen axis at nice ticks.
func ablationSVG(runs []RunScore) template.HTML {
	if len(runs) < 2 {
		return ""
	}
	rs := append([]RunScore(nil), runs...)
	order := map[string]int{"all_on": 0, "as_deployed": 0, "all_off": 99}
	sort.SliceStable(rs, func(i, j int) bool { return order[rs[i].Variant] < order[rs[j].Variant] })
	lost := func(r RunScore) float64 {
		return float64(r.FSA.ValueSoldJPY+r.FSA.ValueBoughtJPY+r.WithdrawnJPY) / 1e6
	}
	maxV := 0.0
	for _, r := range rs {
		maxV = math.Max(maxV, lost(r))
	}
	ticks, dec := niceTicks(0, math.Max(maxV, 0.1), 6)
	hiV := ticks[len(ticks)-1]
	const rowH, left, top = 26.0, 170.0, 34.0
	w, right := float64(svgW), float64(svgW-padR)
	h := top + rowH*float64(len(rs)) + 36
	xv := func(v float64) float64 { return left + v/hiV*(right-left) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="Value lost with each layer off" font-family="system-ui, sans-serif">`, w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="600">Value lost to hijackers, each defence switched off in turn (¥ million)</text>`, 12)
	bottom := top + rowH*float64(len(rs))
	for _, v := range ticks {
		x := xv(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e6e6e6"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%s</text>`, x, top, x, bottom, x, bottom+14, esc(groupDigits(v, dec)))
	}
	for i, r := range rs {
		y := top + rowH*float64(i)
		name := variantNames[r.Variant]
		if name == "" {
			name = r.Variant
		}
		col := "#7a9cc6"
		switch r.Variant {
		case "all_on", "as_deployed":
			col = colOn
		case "all_off":
			col = colOff
		}
		v := lost(r)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`, left-8, y+rowH/2+4, esc(name))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: ¥%sm lost</title></rect>`, left, y+4, math.Max(xv(v)-left, 1), rowH-8, col, esc(name), groupDigits(v, 1))
		// The figure goes after the bar, or inside its end where it
		// would run past the chart's right edge.
		label := "¥" + groupDigits(v, 1) + "m"
		if x := xv(v) + 4; x+6.5*float64(len([]rune(label))) <= w {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10">%s</text>`, x, y+rowH/2+4, esc(label))
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#fff">%s</text>`, xv(v)-4, y+rowH/2+4, esc(label))
		}
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, left, top, left, bottom)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// alertsSVG counts the watchtower's alerts per 10 minutes, those that
// halted buying in red.
func alertsSVG(alerts []event.Alert) template.HTML {
	const bucket = 10 * time.Minute
	n := int(dayTo.Sub(dayFrom) / bucket)
	counts := make([]int, n+1)
	halts := make([]int, n+1)
	maxC := 1
	for _, a := range alerts {
		i := int(a.Time.Sub(dayFrom) / bucket)
		if i < 0 || i > n {
			continue
		}
		counts[i]++
		if a.Action == event.AlertHaltBuys {
			halts[i]++
		}
		maxC = max(maxC, counts[i])
	}
	ticks, _ := niceTicks(0, float64(maxC), 5)
	var whole []float64
	for _, v := range ticks { // counts are whole numbers: no tick at 2.5
		if v == math.Trunc(v) {
			whole = append(whole, v)
		}
	}
	hi := whole[len(whole)-1]
	var b strings.Builder
	frame(&b, "Watchtower alerts per 10 minutes (red: halted buying)", "alerts", 0, hi, whole, 0)
	bw := (xOf(dayFrom.Add(bucket)) - xOf(dayFrom)) * 0.8
	for i := range counts {
		if counts[i] == 0 {
			continue
		}
		t0 := dayFrom.Add(time.Duration(i) * bucket)
		x, y := xOf(t0), yOf(float64(counts[i]), 0, hi)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#7a9cc6"><title>%s: %d alerts</title></rect>`, x, y, bw, plotBottom-y, timeOfDay(t0), counts[i])
		if halts[i] > 0 {
			yh := yOf(float64(halts[i]), 0, hi)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, yh, bw, plotBottom-yh, colRF)
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

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"yen": yenM, "pct": pct, "int": func(n int) string { return groupDigits(float64(n), 0) },
	"top": func(m map[string]int) string { return topKinds(m, 4) },
	"name": func(v string) string {
		if n := variantNames[v]; n != "" {
			return n
		}
		return v
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kabuto: account-takeover defence, simulated day {{.Rep.Day}}</title>
<style>
:root { --ink: #1d2329; --muted: #5b6670; --rule: #d9dde1; --on: #1f5fa8; --bad: #c0392b; --good: #1e7b4f; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Noto Sans JP", sans-serif; margin: 0 auto; padding: 28px 32px 48px; max-width: 900px; color: var(--ink); line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
p.lede { color: var(--muted); margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; }
.card { border: 1px solid var(--rule); border-top: 4px solid var(--on); padding: 10px 12px; border-radius: 4px; }
.card.good { border-top-color: var(--good); } .card.bad { border-top-color: var(--bad); }
.card .t { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.card .f { font-size: 26px; font-weight: 700; margin: 2px 0; }
.card .n { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--rule); text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid var(--ink); font-weight: 600; }
td.num, th.num { font-variant-numeric: tabular-nums; }
figure { margin: 14px 0 22px; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: var(--muted); }
.ok { color: var(--good); font-weight: 600; } .no { color: var(--bad); font-weight: 600; }
ul.notes { font-size: 13px; color: var(--muted); }
footer { margin-top: 36px; font-size: 11px; color: var(--muted); border-top: 1px solid var(--rule); padding-top: 8px; }
@media (max-width: 700px) { .cards { grid-template-columns: repeat(2, 1fr); } }
@media print {
  @page { size: A4; margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .cards { grid-template-columns: repeat(4, 1fr); }
  section.charts { break-before: page; page-break-before: always; }
  a { color: inherit; text-decoration: none; }
}
</style></head>
<body>
<header>
<h1>Account takeovers on a simulated trading day: what Kabuto stops</h1>
<p class="lede">The 2025 campaign ({{.Rep.Scenario}}) replayed against {{int .Rep.Customers}} customers (authenticators as in {{.Rep.Enrolment}}) on {{.Rep.Day}}:
{{int .Rep.AttackSessions}} hijacked sessions with working credentials among {{int .Rep.LegitSessions}} legitimate ones.
{{if eq .Rep.Mode "http"}}Played against a running Kabuto over its API, as deployed.{{else}}Every defence on, every defence off, and each defence off in turn, on the same day.{{end}}
Seed {{.Rep.Seed}}: the same seed gives the same figures.</p>
</header>

{{with .Headline}}<section class="cards" aria-label="Headline figures">
{{range .}}<div class="card {{.Class}}"><div class="t">{{.Title}}</div><div class="f">{{.Figure}}</div><div class="n">{{.Note}}</div></div>
{{end}}</section>{{end}}

<h2>The FSA's table for the day</h2>
<table>
<thead><tr><th>Unauthorised trading</th>{{if .Off}}<th class="num">Defences off</th>{{end}}<th class="num">Defences on</th></tr></thead>
<tbody>
<tr><td>Unauthorised accesses</td>{{with .Off}}<td class="num">{{int .UnauthorisedAccesses}}</td>{{end}}<td class="num">{{int .On.UnauthorisedAccesses}}</td></tr>
<tr><td>Unauthorised trades</td>{{with .Off}}<td class="num">{{int .UnauthorisedTrades}}</td>{{end}}<td class="num">{{int .On.UnauthorisedTrades}}</td></tr>
<tr><td>Value sold</td>{{with .Off}}<td class="num">{{yen .ValueSoldJPY}}</td>{{end}}<td class="num">{{yen .On.ValueSoldJPY}}</td></tr>
<tr><td>Value bought</td>{{with .Off}}<td class="num">{{yen .ValueBoughtJPY}}</td>{{end}}<td class="num">{{yen .On.ValueBoughtJPY}}</td></tr>
</tbody></table>

{{with .Rep.BackOffice}}<h2>The back office</h2>
<p>With the defences on, the back office opened {{int .CasesOpened}} cases ({{int .CasesByAlert}} from alerts, {{int .CasesByHold}} from held actions, the rest from customers' reports); {{int .Victims}} customers reported unauthorised access, and their accounts were frozen, re-verified by call back and reopened with a supervisor's approval ({{int .Reopened}} reopened, {{int .StillFrozen}} still frozen).
Compensation owed: {{.HalfYen}} by the 50% method, {{.RestoreYen}} by restoration.
The FSA's table computed by the back office from its cases {{if .FSAMatches}}<span class="ok">equals</span>{{else}}<span class="no">differs from</span>{{end}} the simulator's
({{int .FSA.UnauthorisedAccesses}} accesses, {{int .FSA.UnauthorisedTrades}} trades, {{yen .FSA.ValueSoldJPY}} sold, {{yen .FSA.ValueBoughtJPY}} bought).</p>{{end}}

{{if .Ablation}}<h2>Which defence does the work</h2>
<figure>{{.Ablation}}<figcaption>Value sold, bought and withdrawn in hijacked sessions with every defence on, each one off in turn, and all off.</figcaption></figure>
<table>
<thead><tr><th>Run</th><th class="num">Sells prevented</th><th class="num">Buys prevented</th><th class="num">Sessions stopped</th><th class="num">Targets halted</th><th class="num">Legitimate sessions challenged</th><th class="num">Legitimate actions blocked</th></tr></thead>
<tbody>{{range .Rep.Ablation}}<tr><td>{{name (printf "no_%s" .Off)}}</td><td class="num">{{pct .PreventedSellRatio}}</td><td class="num">{{pct .PreventedBuyRatio}}</td><td class="num">{{pct .StoppedSessionRatio}}</td><td class="num">{{.TargetsHalted}}</td><td class="num">{{pct .LegitChallengedRatio}}</td><td class="num">{{pct .LegitBlockedRatio}}</td></tr>
{{end}}</tbody></table>{{end}}

<h2>Acceptance</h2>
<table><tbody>
<tr><td>Sells prevented ≥ 99%</td><td>{{if .Rep.Acceptance.SellPrevented99}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}} ({{pct .Rep.PreventedSellRatio}})</td></tr>
<tr><td>Buys prevented ≥ 99.5%</td><td>{{if .Rep.Acceptance.BuyPrevented995}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}} ({{pct .Rep.PreventedBuyRatio}})</td></tr>
<tr><td>Every target halted within 60 s of the third hijacked buy</td><td>{{if .Rep.Acceptance.HaltedWithin60s}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}}</td></tr>
<tr><td>Legitimate sessions challenged ≤ 2%</td><td>{{if .Rep.Acceptance.LegitChallenged2}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}} ({{pct .Rep.LegitChallengedSessionRatio}})</td></tr>
<tr><td>Legitimate actions blocked ≤ 0.1%</td><td>{{if .Rep.Acceptance.LegitBlocked01}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}} ({{pct .Rep.LegitBlockedActionRatio}})</td></tr>
<tr><td>No issue halted that no attacker bought</td><td>{{if .Rep.Acceptance.NoNonTargetHalt}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}}</td></tr>
<tr><td>No legitimate account frozen</td><td>{{if .Rep.Acceptance.NoLegitFrozen}}<span class="ok">met</span>{{else}}<span class="no">not met</span>{{end}}</td></tr>
</tbody></table>
{{with .Rep.Acceptance.Notes}}<ul class="notes">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}

{{with .Rep.Evasions}}<h2>Adaptive attackers: what each evasion got through</h2>
<p class="lede">Strategies the attackers rehearsed against the same guard and watchtower, best first: value sold and bought in the probe runs, the share of the victims' stake that moved, the sessions of the day that played it, and what stopped its probe sessions (the action and the guard's reason codes, or the alert kind that halted the target).</p>
<table>
<thead><tr><th>Evasion</th><th class="num">Probe sessions</th><th class="num">Sold</th><th class="num">Bought</th><th class="num">Through</th><th class="num">Day sessions</th><th class="num">Day sold</th><th class="num">Day bought</th><th>Stopped by</th></tr></thead>
<tbody>{{range .}}<tr><td title="{{.Params}}">{{.Name}}</td><td class="num">{{.ProbeSessions}}</td><td class="num">{{yen .ProbeSoldJPY}}</td><td class="num">{{yen .ProbeBoughtJPY}}</td><td class="num">{{pct .ProbeThroughRate}}</td><td class="num">{{.DaySessions}}</td><td class="num">{{yen .DaySoldJPY}}</td><td class="num">{{yen .DayBoughtJPY}}</td><td style="text-align:left">{{top .StoppedBy}}</td></tr>
{{end}}</tbody></table>{{end}}

<section class="charts">
{{if .Targets}}<h2>The pumped issues, defences on{{if .Off}} and off{{end}}</h2>
{{range .Targets}}<figure>{{.}}</figure>
{{end}}{{end}}
{{if .News}}<h2>A genuine news spike</h2>
<figure>{{.News}}<figcaption>An issue that rose on real news the same day: the watchtower must leave it alone.</figcaption></figure>{{end}}
{{if .Alerts}}<h2>The watchtower through the day</h2>
<figure>{{.Alerts}}</figure>{{end}}
</section>
<footer>Kabuto simulator · {{.Rep.Scenario}} · seed {{.Rep.Seed}} · {{.Rep.Mode}} · lunch (11:30–12:30) and the close (15:30) are gaps in the charts, not prices.</footer>
</body></html>
`))
